"""A hypothesis state machine applies the same random operations to the mount and
to a plain directory, and compares outcomes (errno included) and both trees
after every step; now and then it remounts the pool."""

from __future__ import annotations

import mmap
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from tests.integration.conftest import LivePool

NAMES = ["a", "b", "d", "d/a", "d/e"]
paths = st.sampled_from(NAMES)
blobs = st.binary(max_size=3000) | st.builds(
    lambda n, b: bytes([b]) * n, st.integers(0, 700_000), st.integers(0, 255)
)


def outcome(fn: Callable[[], Any]) -> object:
    try:
        fn()
    except OSError as exc:
        return exc.errno
    return None


def read_direct(path: Path) -> bytes:
    """The file's bytes as the filesystem returns them, past the kernel's page cache."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1 << 20)
    out = bytearray()
    try:
        while n := os.readv(fd, [buf]):
            out += buf[:n]
    finally:
        os.close(fd)
        buf.close()
    return bytes(out)


def snapshot(root: Path, direct: bool = False) -> dict[str, tuple[Any, ...]]:
    tree: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st_ = os.lstat(path)
            rel = str(path.relative_to(root))
            xattrs = tuple(
                sorted(
                    (x, os.getxattr(path, x, follow_symlinks=False))
                    for x in os.listxattr(path, follow_symlinks=False)
                    if x.startswith("user.")
                )
            )
            if stat.S_ISDIR(st_.st_mode):
                tree[rel] = ("dir", st_.st_nlink, xattrs)
            else:
                data = read_direct(path) if direct else path.read_bytes()
                tree[rel] = ("file", st_.st_size, st_.st_nlink, data, xattrs)
    return tree


class Model(RuleBasedStateMachine):
    pool: LivePool
    plain_root: Path
    counter = 0

    @initialize()
    def start(self) -> None:
        Model.counter += 1
        self.case = f"case{Model.counter}"
        self.mount = self.pool.mnt / self.case
        self.plain = self.plain_root / self.case
        self.mount.mkdir()
        self.plain.mkdir()
        self.remounts = 0

    def both(self, op: Callable[[Path], Any]) -> None:
        expected = outcome(lambda: op(self.plain))
        got = outcome(lambda: op(self.mount))
        assert got == expected, f"mount gave {got}, a plain directory {expected}"
        assert snapshot(self.mount, direct=True) == snapshot(self.plain)

    @rule(path=paths, data=blobs)
    def create(self, path: str, data: bytes) -> None:
        self.both(lambda root: (root / path).write_bytes(data))

    @rule(path=paths, offset=st.integers(0, 1_000_000), data=blobs)
    def write_at(self, path: str, offset: int, data: bytes) -> None:
        def op(root: Path) -> None:
            fd = os.open(root / path, os.O_WRONLY)
            try:
                os.pwrite(fd, data, offset)
            finally:
                os.close(fd)

        self.both(op)

    @rule(path=paths, size=st.integers(0, 1_200_000))
    def truncate(self, path: str, size: int) -> None:
        self.both(lambda root: os.truncate(root / path, size))

    @rule(path=paths, size=st.integers(0, 300_000), grow=st.integers(1, 900_000))
    def shrink_then_grow(self, path: str, size: int, grow: int) -> None:
        """Bytes cut off by a truncate must read as zeros when the file grows again."""

        def op(root: Path) -> None:
            os.truncate(root / path, size)
            os.truncate(root / path, size + grow)

        self.both(op)

    @rule(src=paths, dst=paths)
    def rename(self, src: str, dst: str) -> None:
        self.both(lambda root: os.rename(root / src, root / dst))

    @rule(src=paths, dst=paths)
    def link(self, src: str, dst: str) -> None:
        self.both(lambda root: os.link(root / src, root / dst))

    @rule(path=paths)
    def unlink(self, path: str) -> None:
        self.both(lambda root: os.unlink(root / path))

    @rule(path=paths)
    def mkdir(self, path: str) -> None:
        self.both(lambda root: os.mkdir(root / path))

    @rule(path=paths)
    def rmdir(self, path: str) -> None:
        self.both(lambda root: os.rmdir(root / path))

    @rule(path=paths, value=st.binary(max_size=100))
    def setxattr(self, path: str, value: bytes) -> None:
        self.both(lambda root: os.setxattr(root / path, "user.k", value))

    @rule(path=paths)
    def fsync(self, path: str) -> None:
        def op(root: Path) -> None:
            fd = os.open(root / path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        self.both(op)

    @rule()
    def remount(self) -> None:
        if self.remounts >= 2:
            return
        self.remounts += 1
        self.pool.remount()
        assert snapshot(self.mount) == snapshot(self.plain)


def test_mount_behaves_like_a_plain_directory(mounted: LivePool, tmp_path: Path) -> None:
    Model.pool = mounted
    Model.plain_root = tmp_path / "plain"
    Model.plain_root.mkdir()
    examples = int(os.environ.get("DWFS_MODEL_EXAMPLES", "12"))
    run_state_machine_as_test(
        Model,
        settings=hypothesis.settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        ),
    )
    shutil.rmtree(Model.plain_root)
