"""Volume's lifetimes of inodes, on a real pool in temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dwfs.errors import NotFound
from dwfs.vfs import open_volume
from dwfs.vfs._attrs import ROOT_INO
from tests.unit.vfs.test_inline import credential, make


async def test_a_forgotten_unlinked_inode_is_purged_at_the_next_commit(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, attr = await volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.write(fh, 0, os.urandom(100_000))
        await volume.release(fh)
        volume.lookup(ROOT_INO, b"f")
        volume.unlink(ROOT_INO, b"f")
        assert volume.tree.attr(attr.ino).nlink == 0, "the kernel still holds it"
        volume.forget(attr.ino, 2)
        assert volume.tree.attr(attr.ino).nlink == 0, "purged with the next commit"
        await volume.sync_all()
        with pytest.raises(NotFound):
            volume.tree.attr(attr.ino)
        assert volume.db.one("SELECT count(*) FROM extents WHERE ino = ?", (attr.ino,)) == (0,)


async def test_a_forgotten_inode_that_is_still_linked_stays(tmp_path: Path) -> None:
    device = make(tmp_path)
    async with open_volume(device, credential()) as volume:
        fh, attr = await volume.create(ROOT_INO, b"f", 0o644, os.O_RDWR, 0, 0)
        await volume.release(fh)
        volume.forget(attr.ino, 1)
        await volume.sync_all()
        assert volume.lookup(ROOT_INO, b"f").ino == attr.ino
