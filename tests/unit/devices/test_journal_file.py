"""A device's journal epoch file: preallocated in zeroed extents so an append is an
overwrite (its fdatasync changes no metadata), read back whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from dwfs.devices._device import JOURNAL_EXTENT, DirDevice
from dwfs.errors import DeviceError


def test_records_land_in_a_preallocated_extent(tmp_path: Path) -> None:
    device = DirDevice.initialise(tmp_path / "dev")
    try:
        device.append_journal(3, b"one")
        path = tmp_path / "dev" / "journal" / "00000003.jnl"
        assert path.stat().st_size == JOURNAL_EXTENT
        device.append_journal(3, b"two")
        assert path.stat().st_size == JOURNAL_EXTENT, "the second append grows nothing"
        assert device.read_journal(3) == b"onetwo" + bytes(JOURNAL_EXTENT - 6)
        big = b"x" * JOURNAL_EXTENT
        device.append_journal(3, big)
        assert device.read_journal(3)[: 6 + len(big)] == b"onetwo" + big
        device.append_journal(4, b"next epoch")
        assert device.read_journal(4).rstrip(b"\0") == b"next epoch"
        assert device.journal_epochs() == [3, 4]
    finally:
        device.close()


def test_an_epoch_file_another_process_made_is_not_appended_to(tmp_path: Path) -> None:
    device = DirDevice.initialise(tmp_path / "dev")
    try:
        device.append_journal(1, b"ours")
        (tmp_path / "dev" / "journal" / "00000002.jnl").write_bytes(b"theirs")
        with pytest.raises(DeviceError, match="exists already"):
            device.append_journal(2, b"ours")
        assert (tmp_path / "dev" / "journal" / "00000002.jnl").read_bytes() == b"theirs"
    finally:
        device.close()
