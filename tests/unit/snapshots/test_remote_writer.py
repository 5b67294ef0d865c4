"""Whose copy the remote holds: this machine's last recorded sync, its last
sync that stopped after writing the superblock (told apart by the intent it
recorded first), or another machine's."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.chunks import LocalState
from dwfs.errors import IntegrityError
from dwfs.snapshots._replica import _check_writer
from dwfs.tiers import RemoteSuperblock

URL = "dir:///remote"


def sb(generation: int, manifest: str) -> RemoteSuperblock:
    return RemoteSuperblock("pool", generation, {"manifest": manifest})


def test_a_copy_this_machine_wrote_but_did_not_record_is_its_own() -> None:
    _check_writer(URL, sb(5, "manifests/ours"), 4, (5, "manifests/ours"))


def test_another_machines_copy_at_the_same_generation_is_refused() -> None:
    with pytest.raises(IntegrityError, match="in use on another machine"):
        _check_writer(URL, sb(5, "manifests/theirs"), 4, (5, "manifests/ours"))
    with pytest.raises(IntegrityError, match="in use on another machine"):
        _check_writer(URL, sb(6, "manifests/ours"), 4, (5, "manifests/ours"))


def test_a_rolled_back_remote_is_refused_whatever_the_intent() -> None:
    with pytest.raises(IntegrityError, match="rolled back"):
        _check_writer(URL, sb(3, "manifests/old"), 4, (5, "manifests/ours"))


def test_the_intent_is_kept_durably_and_read_back(tmp_path: Path) -> None:
    state = LocalState("pool", tmp_path)
    assert state.remote_intent() is None
    state.record_remote_intent(7, "manifests/abc")
    assert LocalState("pool", tmp_path).remote_intent() == (7, "manifests/abc")


@given(st.binary(max_size=300))
def test_a_garbled_intent_reads_as_none_or_a_pair(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = LocalState("pool", Path(tmp))
        state.dir.mkdir(mode=0o700)
        (state.dir / "remote-intent").write_bytes(raw)
        found = state.remote_intent()
        assert found is None or (isinstance(found[0], int) and isinstance(found[1], str))
