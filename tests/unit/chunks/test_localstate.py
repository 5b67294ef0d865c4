"""What this machine keeps about a pool: written without following links, read
with bounds, the chain head surviving a torn write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dwfs._accel import write_flush
from dwfs.chunks import HEAD_COPY_LIMIT, LocalState, append_private
from dwfs.errors import UsageError
from dwfs.types import ChainHead

KEY = bytes(range(32))


def test_state_files_are_never_written_through_a_link(tmp_path: Path) -> None:
    state = LocalState("pool", tmp_path)
    state.dir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (state.dir / "generation").symlink_to(victim)
    assert state.last_generation() == 0, "a link is not read"
    state.record_generation(5)
    assert victim.read_text() == "precious"
    assert not (state.dir / "generation").is_symlink()
    assert state.last_generation() == 5
    assert (state.dir / "generation").stat().st_mode & 0o777 == 0o600


def test_a_state_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    state = LocalState("pool", tmp_path)
    state.dir.mkdir(mode=0o777)
    state.dir.chmod(0o777)
    with pytest.raises(UsageError, match="writable by others"):
        state.record_generation(1)


def test_logs_are_private_and_not_opened_through_a_link(tmp_path: Path) -> None:
    log = tmp_path / "mount.log"
    os.close(append_private(log))
    assert log.stat().st_mode & 0o777 == 0o600
    log.unlink()
    log.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError):
        append_private(log)
    assert not (tmp_path / "elsewhere").exists()


def test_the_chain_head_survives_a_torn_write_and_a_wrong_key(tmp_path: Path) -> None:
    state = LocalState("pool", tmp_path)
    assert state.chain_head(KEY) is None
    first = ChainHead(7, b"e" * 16, b"t" * 16)
    second = ChainHead(8, b"e" * 16, b"u" * 16)
    state.record_chain_head(KEY, first)
    state.record_chain_head(KEY, second)
    assert state.chain_head(KEY) == second
    path = state.dir / "journal-head"
    raw = bytearray(path.read_bytes())
    raw[10] ^= 0xFF  # slot 0 holds txg 8: tear it
    path.write_bytes(bytes(raw))
    assert state.chain_head(KEY) == first
    assert state.chain_head(bytes(32)) is None, "a head MACed with another key is not ours"
    state.close()


@pytest.mark.parametrize("tag", [b"", b"t" * 15 + b"\0", bytes(16), b"\0" + b"x" * 15])
def test_a_tag_ending_in_zero_bytes_reads_back_whole(tmp_path: Path, tag: bytes) -> None:
    """Tags are binary: one in 256 ends in a zero byte (a flaky mount refusal once)."""
    state = LocalState("pool", tmp_path)
    head = ChainHead(3, b"e" * 16, tag)
    state.record_chain_head(KEY, head)
    assert state.chain_head(KEY) == head
    state.close()


def test_a_head_carries_its_record_and_a_torn_copy_unmakes_it(tmp_path: Path) -> None:
    """The copy lets a head be flushed with its record rather than after it: a
    crash that tears the copy must leave the previous head, never a head whose
    record neither the devices nor the copy hold whole."""
    state = LocalState("pool", tmp_path)
    first = ChainHead(7, b"e" * 16, b"t" * 16, b"record seven" * 100)
    second = ChainHead(8, b"e" * 16, b"u" * 16, b"record eight" * 100)
    for made in (first, second):
        fd, data, offset = state.chain_head_write(KEY, made)
        assert write_flush([(fd, data, offset, True)]) == [0]
    head = state.chain_head(KEY)
    assert head == second and head is not None and head.record == second.record
    path = state.dir / "journal-head"
    raw = bytearray(path.read_bytes())
    raw[100 + len(second.record) // 2] ^= 0xFF  # inside slot 0's copy of record 8
    path.write_bytes(bytes(raw))
    head = state.chain_head(KEY)
    assert head == first and head is not None and head.record == first.record
    with pytest.raises(ValueError):
        state.chain_head_write(KEY, ChainHead(9, b"e" * 16, b"v" * 16, bytes(HEAD_COPY_LIMIT + 1)))
    assert state.chain_head(KEY) == first
    state.close()
