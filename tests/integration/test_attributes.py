"""Attributes through the mount, with the kernel caching them (attribute and
entry timeouts, the writeback cache): random changes of names and
attributes, applied to the mount and to a plain directory alike, each
followed by a stat of every path on both (type and mode, links, size, owner
must agree, and the mount's change times must move as they should); and
changes made through the control socket (a rollback) must show too."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from dwfs.vfs import now_ns
from tests.integration.conftest import LivePool

NAMES = ["a", "b", "d", "e", "d/a", "d/b", "e/a"]
CTIME_CHANGES = (6, 8, 9)
"""The steps that must move their path's ctime: chmod, chown, setxattr (a truncate
moves it only if the size changes)."""


def shape(path: Path) -> tuple[int, ...] | int:
    """What must agree between the mount and a plain directory, or the errno."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return exc.errno or -1
    size = st.st_size if not os.path.isdir(path) else 0
    return (st.st_mode, st.st_nlink, size, st.st_uid, st.st_gid)


def ctime(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_ino, st.st_ctime_ns


def past_a_tick(stamp: int) -> None:
    """Waits until the clock changes are stamped with has moved past a stamp."""
    while now_ns() <= stamp:
        time.sleep(0.001)


def outcome(fn: Callable[[], object]) -> int:
    try:
        fn()
    except OSError as exc:
        return exc.errno or -1
    return 0


def step(root: Path, choice: int, a: str, b: str, data: bytes) -> int:
    """One change, the same on either tree; its errno (0: done)."""
    p, q = root / a, root / b
    changes: list[Callable[[], object]] = [
        lambda: p.write_bytes(data),
        lambda: p.mkdir(),
        lambda: p.unlink(),
        lambda: p.rmdir(),
        lambda: p.rename(q),
        lambda: os.link(p, q),
        lambda: p.chmod(0o600 + choice % 0o100),
        lambda: os.truncate(p, len(data)),
        lambda: os.chown(p, 1000 + choice % 3, 2000 + choice % 5),
        lambda: os.setxattr(p, "user.k", data[:10]),
    ]
    return outcome(changes[choice % len(changes)])


def test_attributes_never_go_stale(mounted: LivePool, tmp_path: Path) -> None:
    rng = random.Random(20261203)
    plain = tmp_path / "plain"
    plain.mkdir()
    trees = [mounted.mnt, plain]
    for number in range(400):
        choice = rng.randrange(1000)
        a, b = rng.choice(NAMES), rng.choice(NAMES)
        data = rng.randbytes(rng.choice([0, 10, 5000, 70_000]))
        ctimes = {n: ctime(mounted.mnt / n) for n in NAMES if os.path.lexists(mounted.mnt / n)}
        if choice % 10 in CTIME_CHANGES:
            past_a_tick(max((then for _, then in ctimes.values()), default=0))
        results = [step(tree, choice, a, b, data) for tree in trees]
        assert results[0] == results[1], f"step {number}: errno {results[0]} vs {results[1]}"
        for name in NAMES:
            on_mount, on_plain = shape(mounted.mnt / name), shape(plain / name)
            assert on_mount == on_plain, f"step {number} ({choice % 10} {a} {b}): {name}"
        if results[0] == 0 and choice % 10 in CTIME_CHANGES and a in ctimes:
            assert ctime(mounted.mnt / a)[1] > ctimes[a][1], f"step {number} ({choice % 10}): {a}"
        for name, (ino, then) in ctimes.items():
            now = ctime(mounted.mnt / name) if os.path.lexists(mounted.mnt / name) else None
            if now is not None and now[0] == ino:
                assert now[1] >= then, f"step {number}: {name}'s ctime went back"


def test_a_rollback_shows_in_the_root_s_attributes(mounted: LivePool) -> None:
    """A rollback changes the root's links through the control socket, not a
    request: the kernel must be told, and see them."""
    for name in ("a", "b", "c"):
        (mounted.mnt / name).mkdir()
    mounted.ctl("snapshot", "create", mounted.mnt, "three")
    shutil.rmtree(mounted.mnt / "b")
    shutil.rmtree(mounted.mnt / "c")
    for _ in range(3):
        assert os.stat(mounted.mnt).st_nlink == 3
        (mounted.mnt / "x").write_bytes(b"x")
        (mounted.mnt / "x").unlink()
    mounted.ctl("snapshot", "rollback", mounted.mnt, "three")
    assert os.stat(mounted.mnt).st_nlink == 5
    assert sorted(p.name for p in mounted.mnt.iterdir() if not p.name.startswith(".")) == [
        "a",
        "b",
        "c",
    ]
