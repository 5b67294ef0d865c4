"""Snapshots as a user meets them: dwfsctl snapshot on a real mount, browsing
.snapshots with real programs, space that comes back only when no snapshot
keeps it, and snapshots that survive unmount, kill -9 and a lost state
directory."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import LivePool, PoolFactory


def snap(pool: LivePool, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return pool.ctl("snapshot", *args, check=check)


def listing(pool: LivePool) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(snap(pool, "list", "--json", str(pool.mnt)).stdout)
    return result


def tree_of(root: Path) -> dict[str, tuple[object, ...]]:
    """What `ls -lR` and `cat` would show of a tree, with inode identity within it."""
    seen: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            first = inodes.setdefault(st.st_ino, rel)
            body: object = None
            if stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                body = path.read_bytes()
            xattrs = {
                n: os.getxattr(path, n, follow_symlinks=False)
                for n in os.listxattr(path, follow_symlinks=False)
            }
            seen[rel] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_nlink,
                st.st_size,
                st.st_mtime_ns,
                first,
                body,
                xattrs,
            )
    return seen


def populate(mnt: Path) -> None:
    (mnt / "docs").mkdir()
    (mnt / "docs" / "a.txt").write_text("first version\n")
    (mnt / "docs" / "big.bin").write_bytes(os.urandom(3_000_000))
    os.link(mnt / "docs" / "a.txt", mnt / "hard-a")
    os.symlink("docs/a.txt", mnt / "link")
    os.setxattr(mnt / "docs" / "a.txt", "user.tag", b"v1")
    os.chown(mnt / "docs" / "big.bin", 1234, 5678)
    os.chmod(mnt / "docs" / "big.bin", 0o640)
    with open(mnt / "sparse", "wb") as f:
        f.seek(5_000_000)
        f.write(b"end")
    subprocess.run(["setfacl", "-m", "u:1234:rw", str(mnt / "docs" / "a.txt")], check=True)


def test_a_snapshot_shows_the_tree_as_it_was(make_pool: PoolFactory) -> None:
    pool = make_pool()
    populate(pool.mnt)
    before = tree_of(pool.mnt)
    snap(pool, "create", str(pool.mnt), "monday")
    (pool.mnt / "docs" / "a.txt").write_text("second version, longer\n")
    os.setxattr(pool.mnt / "docs" / "a.txt", "user.tag", b"v2")
    (pool.mnt / "docs" / "big.bin").unlink()
    os.rename(pool.mnt / "link", pool.mnt / "link2")
    (pool.mnt / "new").write_bytes(b"after")
    shutil.rmtree(pool.mnt / "docs")
    view = pool.mnt / ".snapshots" / "monday"
    assert tree_of(view) == before
    got = subprocess.run(
        ["getfacl", "-c", str(view / "docs" / "a.txt")], capture_output=True, text=True, check=True
    )
    assert "user:1234:rw-" in got.stdout
    assert os.listdir(pool.mnt / ".snapshots") == ["monday"]
    assert ".snapshots" not in os.listdir(pool.mnt), "hidden from the root's listing"
    live = {p.lstat().st_ino for p in pool.mnt.rglob("*")}
    inside = {p.lstat().st_ino for p in view.rglob("*")}
    assert not live & inside, "snapshot inodes never collide with the live tree's"
    assert view.joinpath("hard-a").stat().st_ino == view.joinpath("docs", "a.txt").stat().st_ino
    # tar reads the snapshot like any tree (and sees the holes)
    out = subprocess.run(["tar", "-C", str(view), "-cf", "-", "."], capture_output=True, check=True)
    assert len(out.stdout) > 3_000_000
    pool.remount()
    assert tree_of(pool.mnt / ".snapshots" / "monday") == before


@pytest.mark.parametrize(
    "action",
    [
        lambda v: (v / "docs" / "a.txt").write_text("x"),
        lambda v: (v / "docs" / "new").write_text("x"),
        lambda v: (v / "docs" / "a.txt").unlink(),
        lambda v: os.rename(v / "docs" / "a.txt", v / "docs" / "b.txt"),
        lambda v: (v / "docs" / "sub").mkdir(),
        lambda v: os.setxattr(v / "docs" / "a.txt", "user.x", b"1"),
        lambda v: os.chmod(v / "docs" / "a.txt", 0o600),
        lambda v: os.truncate(v / "docs" / "a.txt", 0),
        lambda v: os.symlink("x", v / "s"),
        lambda v: (v.parent / "monday").rmdir(),
        lambda v: (v.parent.parent / ".snapshots").rmdir(),
        lambda v: os.rename(v.parent.parent / "new", v / "new"),
    ],
)
def test_every_change_under_snapshots_is_refused(make_pool: PoolFactory, action: object) -> None:
    pool = make_pool()
    populate(pool.mnt)
    (pool.mnt / "new").write_text("n")
    snap(pool, "create", str(pool.mnt), "monday")
    view = pool.mnt / ".snapshots" / "monday"
    before = tree_of(view)
    with pytest.raises(OSError) as caught:
        action(view)  # type: ignore[operator]
    assert caught.value.errno in (30, 18), caught.value  # EROFS, or EXDEV for a rename
    assert tree_of(view) == before


def test_space_comes_back_only_when_no_snapshot_keeps_it(make_pool: PoolFactory) -> None:
    pool = make_pool(segment_size=4 * 1024 * 1024)  # the segment being written is never freed
    payload = os.urandom(24_000_000)
    (pool.mnt / "big").write_bytes(payload)
    snap(pool, "create", str(pool.mnt), "keep")
    used = _used(pool)
    (pool.mnt / "big").unlink()
    time.sleep(12)  # two commit intervals: garbage collection would have run
    assert _used(pool) >= used - 1_000_000, "the snapshot keeps the file's chunks"
    assert (pool.mnt / ".snapshots" / "keep" / "big").read_bytes() == payload
    [entry] = listing(pool)
    assert int(str(entry["unique_bytes"])) >= 24_000_000
    dry = snap(pool, "delete", "--dry-run", str(pool.mnt), "keep")
    assert "would delete keep" in dry.stdout
    assert listing(pool), "a dry run deletes nothing"
    snap(pool, "delete", str(pool.mnt), "keep")
    deadline = time.monotonic() + 40
    while _used(pool) > used - 12_000_000:  # all but the segment being written
        assert time.monotonic() < deadline, "the space did not come back"
        time.sleep(0.5)
    assert listing(pool) == []


def _used(pool: LivePool) -> int:
    st = os.statvfs(pool.mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_snapshots_survive_kill_9_and_a_lost_state_directory(make_pool: PoolFactory) -> None:
    pool = make_pool()
    (pool.mnt / "f").write_bytes(b"one")
    snap(pool, "create", str(pool.mnt), "s1")
    (pool.mnt / "f").write_bytes(b"two")
    snap(pool, "create", str(pool.mnt), "s2")
    pool.crash()
    pool.mount()
    assert (pool.mnt / ".snapshots" / "s1" / "f").read_bytes() == b"one"
    assert (pool.mnt / ".snapshots" / "s2" / "f").read_bytes() == b"two"
    pool.umount()
    state = Path(os.environ["DWFS_STATE_DIR"])
    shutil.rmtree(state)
    pool.mount()
    assert [s["name"] for s in listing(pool)] == ["s1", "s2"]
    assert (pool.mnt / ".snapshots" / "s1" / "f").read_bytes() == b"one"
    pool.umount()


def test_bad_snapshot_requests_say_so_and_change_nothing(make_pool: PoolFactory) -> None:
    pool = make_pool()
    snap(pool, "create", str(pool.mnt), "ok")
    cases = [
        (("create", str(pool.mnt), "a/b"), "'/'"),
        (("create", str(pool.mnt), ".."), "cannot name a snapshot"),
        (("create", str(pool.mnt), ""), "cannot name a snapshot"),
        (("create", str(pool.mnt), "x" * 256), "at most 255 bytes"),
        (("create", str(pool.mnt), "ok"), "exists"),
        (("delete", str(pool.mnt), "nosuch"), "no snapshot named 'nosuch'"),
        (("delete", str(pool.mnt), "ok", "nosuch"), "no snapshot named 'nosuch'"),
        (("create", str(pool.mnt / "missing")), "no dwfs filesystem is mounted"),
    ]
    for args, message in cases:
        result = snap(pool, *args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert [s["name"] for s in listing(pool)] == ["ok"]
    default = json.loads(snap(pool, "create", "--json", str(pool.mnt)).stdout)
    assert default["name"].endswith("Z") and default["name"][:4].isdigit()
    assert not default["auto"]
