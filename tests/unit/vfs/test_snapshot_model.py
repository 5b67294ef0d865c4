"""Snapshots of a real volume against a model that keeps a full copy of the
tree at each snapshot: random programs of writes, overwrites, truncates,
deletes, renames, snapshots, snapshot deletions, rollbacks, restores and
remounts, with every file of the live tree and of every snapshot read back and
the metadata checked by fsck's queries after each step."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.errors import NotFound
from dwfs.meta import check
from dwfs.vfs import AttrChanges, Volume, open_volume
from dwfs.vfs._attrs import ROOT_INO
from dwfs.vfs._snapshot_tree import NAME as SNAPSHOTS
from tests.conftest import FAST_KDF

Model = dict[bytes, bytes]
NAMES = st.sampled_from([b"a", b"b", b"c"])
DATA = st.one_of(st.binary(max_size=40), st.integers(1, 12).map(lambda k: os.urandom(k * 1500)))
SNAPS = st.integers(0, 3)
STEPS = st.one_of(
    st.tuples(st.just("write"), NAMES, st.integers(0, 5000), DATA),
    st.tuples(st.just("truncate"), NAMES, st.integers(0, 9000)),
    st.tuples(st.just("unlink"), NAMES),
    st.tuples(st.just("rename"), NAMES, NAMES),
    st.tuples(st.just("snapshot")),
    st.tuples(st.just("delete"), SNAPS),
    st.tuples(st.just("rollback"), SNAPS),
    st.tuples(st.just("restore"), SNAPS, NAMES, NAMES),
    st.tuples(st.just("remount")),
)


def credential() -> Credential:
    return Credential(PASSPHRASE, bytearray(b"model"))


async def read_all(volume: Volume, ino: int) -> bytes:
    fh = await volume.open(ino, os.O_RDONLY)
    try:
        return await volume.read(fh, 0, 1 << 24)
    finally:
        await volume.release(fh)


async def find(volume: Volume, parent: int, name: bytes) -> int | None:
    try:
        ino = volume.lookup(parent, name).ino
    except NotFound:
        return None
    volume.forget(ino, 1)
    return ino


async def tree(volume: Volume, directory: int) -> Model:
    out = {}
    for _, name, attr in volume.entries(directory, 0, 1000):
        if name not in (b".", b".."):
            out[name] = await read_all(volume, attr.ino)
    return out


class Run:
    def __init__(self) -> None:
        self.model: Model = {}
        self.snaps: dict[str, Model] = {}
        self.count = 0

    def snap_name(self, k: int) -> str:
        names = sorted(self.snaps)
        return names[k % len(names)]

    async def step(self, v: Volume, step: tuple[object, ...]) -> None:
        match step:
            case ("write", bytes() as name, int() as off, bytes() as data):
                await self.write(v, name, off, data)
            case ("truncate", bytes() as name, int() as size) if name in self.model:
                ino = await find(v, ROOT_INO, name)
                assert ino is not None
                await v.setattr(ino, AttrChanges(size=size))
                self.model[name] = self.model[name][:size].ljust(size, b"\0")
            case ("unlink", bytes() as name) if name in self.model:
                v.unlink(ROOT_INO, name)
                del self.model[name]
            case ("rename", bytes() as a, bytes() as b) if a in self.model:
                v.rename(ROOT_INO, a, ROOT_INO, b, 0)
                self.model[b] = self.model.pop(a)
            case ("snapshot",):
                self.count += 1
                await v.snapshots.create(f"s{self.count}")
                self.snaps[f"s{self.count}"] = dict(self.model)
            case ("delete", int() as k) if self.snaps:
                snap = self.snap_name(k)
                await v.snapshots.delete([snap])
                del self.snaps[snap]
            case ("rollback", int() as k) if self.snaps:
                snap = self.snap_name(k)
                done = await v.snapshots.rollback(snap)
                self.snaps[done["saved_as"]] = dict(self.model)
                self.model = dict(self.snaps[snap])
            case ("restore", int() as k, bytes() as src, bytes() as dest) if self.snaps:
                snap = self.snap_name(k)
                if src in self.snaps[snap] and dest not in self.model:
                    await v.snapshots.restore(snap, src, dest)
                    self.model[dest] = self.snaps[snap][src]

    async def write(self, v: Volume, name: bytes, off: int, data: bytes) -> None:
        ino = await find(v, ROOT_INO, name)
        if ino is None:
            fh, attr = v.create(ROOT_INO, name, 0o644, os.O_RDWR, 0, 0)
            v.forget(attr.ino, 1)
        else:
            fh = await v.open(ino, os.O_RDWR)
        await v.write(fh, off, data)
        await v.release(fh)
        old = self.model.get(name, b"").ljust(off, b"\0")
        self.model[name] = old[:off] + data + old[off + len(data) :]

    async def verify(self, v: Volume) -> None:
        assert await tree(v, ROOT_INO) == self.model
        snapdir = await find(v, ROOT_INO, SNAPSHOTS)
        assert snapdir is not None
        for name, copy in self.snaps.items():
            root = await find(v, snapdir, name.encode())
            assert root is not None, name
            assert await tree(v, root) == copy, name
        await v.sync_all()
        assert check(v.db) == []


async def run(program: list[tuple[object, ...]], root: Path) -> None:
    devices = [root / f"dev{i}" for i in range(3)]
    create_pool(devices, credential(), PoolOptions("raidz1", kdf=FAST_KDF))
    state = Run()
    steps = iter(program)
    done = False
    while not done:
        async with open_volume(devices[0], credential()) as v:
            await state.verify(v)
            for step in steps:
                if step[0] == "remount":
                    break
                await state.step(v, step)
                await state.verify(v)
            else:
                done = True


@settings(max_examples=40)
@given(st.lists(STEPS, max_size=30))
def test_snapshots_match_a_model_of_copies(program: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as root:
        trio.run(run, program, Path(root))
