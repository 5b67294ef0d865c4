"""Which devices a journal record must be durable on before a commit returns:
m + 1, spread over filesystems, with the rest catching up through the page cache
(and syncing at once when a device that should have synced failed)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.devices import create_devices, open_array, parse_layout
from dwfs.devices._array import spread
from dwfs.errors import DeviceError

SB_KEY = bytes(range(32))
SHARD_KEY = bytes(range(1, 33))


@given(st.lists(st.lists(st.integers(), max_size=5), max_size=5))
def test_spread_takes_one_of_each_group_before_a_second_of_any(groups: list[list[int]]) -> None:
    tagged = [[(g, item) for item in group] for g, group in enumerate(groups)]
    out = spread(tagged)
    assert sorted(out) == sorted(x for group in tagged for x in group)
    for k in range(len(out) + 1):
        chosen = {g for g, _ in out[:k]}
        assert len(chosen) == min(k, sum(1 for group in groups if group))
        for g in chosen:
            taken = [x for x in out[:k] if x[0] == g]
            assert taken == tagged[g][: len(taken)], "each group keeps its order"


@pytest.mark.parametrize(
    ("spec", "n", "durable"), [("raidz1", 3, 2), ("raidz2", 5, 3), ("raid1", 2, 2), ("raid0", 2, 1)]
)
def test_a_record_is_durable_on_m_plus_1_devices(
    tmp_path: Path, spec: str, n: int, durable: int
) -> None:
    paths = [tmp_path / f"dev{i}" for i in range(n)]
    create_devices(paths, parse_layout(spec, n), {}, SB_KEY, "pool-1", 1 << 20)
    array = open_array(paths[0], SB_KEY, SHARD_KEY)
    try:
        [group] = array.journal_groups()  # every device of this test is on one filesystem
        assert [member.index for member, _ in group] == list(range(n))
        assert [flag for _, flag in group] == [i < durable for i in range(n)]
        for member, flag in group:
            assert member.device is not None
            member.device.append_journal(1, b"record", flag)
        cached = [member for member, flag in group if not flag]
        array.settle_journal(durable, cached, n)
        for path in paths:
            assert (path / "journal" / "00000001.jnl").read_bytes().startswith(b"record")
    finally:
        array.close()


def test_cached_copies_sync_when_durable_devices_failed(tmp_path: Path) -> None:
    paths = [tmp_path / f"dev{i}" for i in range(3)]
    create_devices(paths, parse_layout("raidz1", 3), {}, SB_KEY, "pool-1", 1 << 20)
    array = open_array(paths[0], SB_KEY, SHARD_KEY)
    try:
        [group] = array.journal_groups()
        members = [member for member, _ in group]
        for member in members:
            assert member.device is not None
            member.device.append_journal(1, b"record", False)
        array.settle_journal(0, members[1:], 3)  # two cached copies stand in for two syncs
        with pytest.raises(DeviceError, match="reached only 1 devices"):
            array.settle_journal(0, members[2:], 3)
        with pytest.raises(DeviceError, match="reached only 0 devices"):
            array.settle_journal(0, [], 3)
        array.settle_journal(1, [], 1)  # a pool down to one online device needs one
    finally:
        array.close()


def test_a_record_and_other_files_are_flushed_in_one_round(tmp_path: Path) -> None:
    """append_journal writes and flushes the devices' copies and the caller's
    writes (the chain head) together, and reports each of the caller's."""
    paths = [tmp_path / f"dev{i}" for i in range(3)]
    create_devices(paths, parse_layout("raidz1", 3), {}, SB_KEY, "pool-1", 1 << 20)
    array = open_array(paths[0], SB_KEY, SHARD_KEY)
    head = os.open(tmp_path / "head", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        also = [(head, b"head", 2), (1 << 20, b"nowhere", 0)]
        assert array.append_journal(1, b"record", also) == [0, errno.EBADF]
        assert array.append_journal(1, b"second") == []
        assert (tmp_path / "head").read_bytes() == b"\0\0head"
        for path in paths:
            assert (path / "journal" / "00000001.jnl").read_bytes().startswith(b"recordsecond")
        assert array.state() == "online"
    finally:
        os.close(head)
        array.close()
