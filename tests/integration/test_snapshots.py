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
import sys
import time
from pathlib import Path
from typing import Any

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
    deadline = time.monotonic() + 90  # about 10 s here; a CI machine can be far slower
    while (now := _used(pool)) > used - 12_000_000:  # all but the segment being written
        assert time.monotonic() < deadline, f"the space did not come back: {used} then {now}"
        time.sleep(0.5)
    assert listing(pool) == []


def _used(pool: LivePool) -> int:
    """What the pool's segments take (statvfs's used bytes would count everything
    else on the disk the devices share, which other programs change meanwhile)."""
    stats = json.loads(pool.ctl("stats", "--json", pool.mnt).stdout)
    return int(stats["capacity"]["used"])


def test_snapshots_survive_kill_9_a_lost_state_directory_and_a_lost_device(
    make_pool: PoolFactory,
) -> None:
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
    shutil.rmtree(pool.devices[0])  # m = 1 device lost
    pool.mount(pool.devices[1], "degraded")
    assert (pool.mnt / ".snapshots" / "s1" / "f").read_bytes() == b"one"
    assert [s["name"] for s in listing(pool)] == ["s1", "s2"]
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


def test_holds_keep_snapshots_until_released_or_their_date(make_pool: PoolFactory) -> None:
    pool = make_pool()
    snap(pool, "create", str(pool.mnt), "kept")
    snap(pool, "hold", str(pool.mnt), "kept")
    refused = snap(pool, "delete", str(pool.mnt), "kept", check=False)
    assert refused.returncode != 0 and "is held" in refused.stderr
    snap(pool, "release", str(pool.mnt), "kept")
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 300))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    snap(pool, "hold", "--until", soon, str(pool.mnt), "kept")
    assert listing(pool)[0]["held_until"] == soon
    for args, message in [
        (("release", str(pool.mnt), "kept"), "cannot be released before"),
        (("delete", str(pool.mnt), "kept"), f"held until {soon}"),
        (("hold", "--until", "2001-01-01", str(pool.mnt), "kept"), "has passed"),
        (("hold", "--until", "next week", str(pool.mnt), "kept"), "is not a date"),
    ]:
        result = snap(pool, *args, check=False)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
    snap(pool, "hold", "--until", later, str(pool.mnt), "kept")  # extending is allowed
    shorter = snap(pool, "hold", "--until", soon, str(pool.mnt), "kept", check=False)
    assert shorter.returncode != 0 and "never shortened" in shorter.stderr
    pool.remount()
    assert listing(pool)[0]["held_until"] == later, "holds survive a remount"
    assert snap(pool, "delete", str(pool.mnt), "kept", check=False).returncode != 0
    assert [s["name"] for s in listing(pool)] == ["kept"]


def test_restore_puts_files_and_trees_back_sharing_chunks(make_pool: PoolFactory) -> None:
    pool = make_pool()
    populate(pool.mnt)
    before = tree_of(pool.mnt / "docs")
    snap(pool, "create", str(pool.mnt), "monday")
    used = _used(pool)
    shutil.rmtree(pool.mnt / "docs")
    snap(pool, "restore", str(pool.mnt), "monday", "docs")
    assert _unlinked(tree_of(pool.mnt / "docs")) == _unlinked(before)
    assert (pool.mnt / "docs" / "a.txt").stat().st_nlink == 1, "its other link was not restored"
    snap(pool, "restore", str(pool.mnt), "monday", "docs/big.bin", str(pool.mnt / "big-again"))
    assert (pool.mnt / "big-again").read_bytes() == (pool.mnt / "docs" / "big.bin").read_bytes()
    assert _used(pool) < used + 1_000_000, "a restore shares chunks: nothing was copied"
    snap(pool, "restore", str(pool.mnt), "monday", "/", "whole")
    assert set(os.listdir(pool.mnt / "whole")) == {"docs", "hard-a", "link", "sparse"}
    (pool.mnt / "docs" / "a.txt").write_text("edited after the restore")
    assert (pool.mnt / ".snapshots" / "monday" / "docs" / "a.txt").read_text() == "first version\n"
    for args, message in [
        (("monday", "docs"), "exists: give a DEST"),
        (("monday", "nothing/here", "x"), "holds no nothing/here"),
        (("nosuch", "docs", "x"), "no snapshot named"),
        (("monday", "docs", "/docs"), "exists: give a DEST"),
        (("monday", "docs", ".snapshots/x"), "read-only"),
        (("monday", "../etc", "x"), "cannot hold '..'"),
    ]:
        result = snap(pool, "restore", str(pool.mnt), *args, check=False)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
    pool.remount()
    assert _unlinked(tree_of(pool.mnt / "whole" / "docs")) == _unlinked(before)


def test_rollback_returns_to_a_snapshot_and_loses_nothing(make_pool: PoolFactory) -> None:
    pool = make_pool()
    populate(pool.mnt)
    monday = tree_of(pool.mnt)
    snap(pool, "create", str(pool.mnt), "monday")
    (pool.mnt / "docs" / "a.txt").write_text("tuesday's version")
    (pool.mnt / "tuesday").mkdir()
    (pool.mnt / "tuesday" / "notes").write_text("kept in the pre-rollback snapshot")
    snap(pool, "create", str(pool.mnt), "tuesday")
    (pool.mnt / "wednesday").write_text("not in any snapshot yet")
    tuesday_evening = tree_of(pool.mnt)
    held = open(pool.mnt / "wednesday", "rb")  # noqa: SIM115 (open across the rollback)
    out = snap(pool, "rollback", str(pool.mnt), "monday").stdout
    saved = out.split("snapshot ")[-1].strip()
    assert saved.startswith("pre-rollback-")
    assert _shape(tree_of(pool.mnt)) == _shape(monday)
    assert held.read() == b"not in any snapshot yet", "an open file keeps its content"
    held.close()
    names = [s["name"] for s in listing(pool)]
    assert names == ["monday", "tuesday", saved], "later snapshots stay"
    assert _shape(tree_of(pool.mnt / ".snapshots" / saved)) == _shape(tuesday_evening)
    (pool.mnt / "after").write_text("life goes on")
    pool.remount()
    assert (pool.mnt / "after").read_text() == "life goes on"
    assert (pool.mnt / "docs" / "a.txt").read_text() == "first version\n"
    result = snap(pool, "rollback", str(pool.mnt), "nosuch", check=False)
    assert result.returncode != 0 and "no snapshot named" in result.stderr


def test_a_rollback_killed_midway_is_all_or_nothing(make_pool: PoolFactory) -> None:
    """kill -9 at moments around the one the rollback reaches the daemon: each
    crash leaves every file of one day, never a mix (both days are committed
    first, so the committer's timer cannot have caught a loop half done)."""
    pool = make_pool()
    for day in ("monday", "tuesday"):
        for i in range(300):
            (pool.mnt / f"f{i}").write_text(f"{day} {i}")
        snap(pool, "create", str(pool.mnt), day)
    today = "tuesday"
    for offset in (-0.02, 0.0, 0.01, 0.02, 0.04):
        started = time.monotonic()
        snap(pool, "list", str(pool.mnt))
        reach = time.monotonic() - started
        other = "monday" if today == "tuesday" else "tuesday"
        job = subprocess.Popen(
            [*_dwfsctl(), "snapshot", "rollback", str(pool.mnt), other],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(max(0.0, reach + offset))
        pool.crash()
        job.wait(timeout=60)
        pool.mount()
        days = {(pool.mnt / f"f{i}").read_text().split()[0] for i in range(300)}
        assert days in ({"monday"}, {"tuesday"}), (offset, days)
        today = days.pop()


def _unlinked(tree: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """A tree_of() without link counts."""
    return {path: entry[:3] + entry[4:] for path, entry in tree.items()}


def _dwfsctl() -> list[str]:
    return [sys.executable, "-m", "dwfs.cli.main"]


def _shape(tree: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """A tree_of() without inode identity's first path and mtime of directories
    (a rollback gives every inode a new number)."""
    shaped = {}
    for path, (mode, uid, gid, nlink, size, mtime, _, body, xattrs) in tree.items():
        shaped[path] = (
            mode,
            uid,
            gid,
            nlink,
            size,
            None if stat.S_ISDIR(mode) else mtime,
            body,
            xattrs,
        )
    return shaped


def test_diff_lists_what_changed(make_pool: PoolFactory) -> None:
    pool = make_pool()
    populate(pool.mnt)
    (pool.mnt / "stays").write_text("untouched")
    snap(pool, "create", str(pool.mnt), "before")
    (pool.mnt / "docs" / "a.txt").write_text("changed")
    os.rename(pool.mnt / "sparse", pool.mnt / "docs" / "sparse-moved")
    (pool.mnt / "docs" / "big.bin").unlink()
    (pool.mnt / "fresh").write_text("new")
    os.chmod(pool.mnt / "stays", 0o600)
    changes = json.loads(snap(pool, "diff", "--json", str(pool.mnt), "before").stdout)
    got = {(c["path"], c["change"], c["from"]) for c in changes}
    assert ("/docs/a.txt", "modified", None) in got
    assert ("/docs/sparse-moved", "renamed", "/sparse") in got
    assert ("/docs/big.bin", "removed", None) in got
    assert ("/fresh", "added", None) in got
    assert ("/stays", "metadata", None) in got
    assert ("/docs", "modified", None) in got
    assert not any(path == "/link" for path, _, _ in got), "unchanged files are not listed"
    snap(pool, "create", str(pool.mnt), "after")
    (pool.mnt / "later").write_text("not between the two")
    between = json.loads(snap(pool, "diff", "--json", str(pool.mnt), "before", "after").stdout)
    assert {(c["path"], c["change"], c["from"]) for c in between} == got
    text = snap(pool, "diff", str(pool.mnt), "before", "after").stdout
    assert "R  /docs/sparse-moved  (was /sparse)" in text and "+  /fresh" in text


def test_a_policy_takes_and_prunes_automatic_snapshots_only(make_pool: PoolFactory) -> None:
    pool = make_pool()
    snap(pool, "create", str(pool.mnt), "by-hand")
    bad = snap(pool, "policy", str(pool.mnt), "--every", "5s", check=False)
    assert bad.returncode != 0 and "keep none" in bad.stderr
    assert json.loads(snap(pool, "policy", "--json", str(pool.mnt)).stdout)["every"] == "off"
    out = snap(pool, "policy", str(pool.mnt), "--every", "5s", "--keep-last", "2").stdout
    assert "every 5s" in out and "last 2" in out
    first_auto = [s for s in listing(pool) if s["auto"]]
    assert len(first_auto) == 1, "a new policy takes its first snapshot at once"
    snap(pool, "hold", str(pool.mnt), str(first_auto[0]["name"]))
    deadline = time.monotonic() + 60
    while len([s for s in listing(pool) if s["auto"] and not s["held"]]) < 2:
        assert time.monotonic() < deadline, "the policy took no more snapshots"
        time.sleep(1)
    time.sleep(12)  # two more intervals: snapshots taken, the oldest unheld pruned
    snaps = listing(pool)
    autos = [s for s in snaps if s["auto"]]
    assert "by-hand" in [s["name"] for s in snaps], "a snapshot taken by hand stays"
    assert first_auto[0]["name"] in [s["name"] for s in autos], "a held one stays"
    assert len([s for s in autos if not s["held"]]) <= 2
    snap(pool, "policy", str(pool.mnt), "--every", "off")
    pool.remount()
    policy = json.loads(snap(pool, "policy", "--json", str(pool.mnt)).stdout)
    assert policy["every"] == "off" and policy["keep_last"] == 2, "the policy is in the pool"


def test_fsck_checks_a_mounted_and_an_unmounted_pool(make_pool: PoolFactory) -> None:
    pool = make_pool()
    populate(pool.mnt)
    snap(pool, "create", str(pool.mnt), "s")
    shutil.rmtree(pool.mnt / "docs")
    report = json.loads(pool.ctl("fsck", "--json", str(pool.mnt)).stdout)
    assert report["ok"] and report["snapshots"] == 1 and report["chunks_read"] >= 3
    pool.umount()
    text = pool.ctl("fsck", "--passphrase-file", str(pool.passfile), str(pool.devices[0])).stdout
    assert "fsck: clean" in text
    wrong = pool.ctl("fsck", str(pool.root / "nowhere"), check=False)
    assert wrong.returncode != 0 and wrong.stderr.count("\n") == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshots_taken_survive_kill_9_at_a_random_moment(
    make_pool: PoolFactory, seed: int
) -> None:
    """Random writes, deletes, snapshots and snapshot deletions through the mount,
    the daemon killed at a random moment while a background writer runs: every
    snapshot whose create returned is there after the remount with exactly the
    files it had, every deleted one is gone, and fsck finds nothing wrong."""
    import random

    rng = random.Random(seed)
    pool = make_pool()
    model: dict[str, bytes] = {}
    taken: dict[str, dict[str, bytes]] = {}
    for step in range(rng.randint(8, 20)):
        action = rng.random()
        name = f"f{rng.randrange(6)}"
        if action < 0.5:
            data = rng.randbytes(rng.choice([10, 3000, 70_000]))
            (pool.mnt / name).write_bytes(data)
            model[name] = data
        elif action < 0.65 and name in model:
            (pool.mnt / name).unlink()
            del model[name]
        elif action < 0.9:
            snap(pool, "create", str(pool.mnt), f"s{step}")
            taken[f"s{step}"] = dict(model)
        elif taken:
            gone = rng.choice(sorted(taken))
            snap(pool, "delete", str(pool.mnt), gone)
            del taken[gone]
    (pool.mnt / "busy").mkdir()  # gone with the mount, so the writer cannot outlive it
    writer = subprocess.Popen(
        ["sh", "-c", f"while true; do head -c 5000 /dev/urandom > {pool.mnt}/busy/f; done"],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(rng.uniform(0.1, 1.5))
    pool.crash()
    writer.kill()
    writer.wait()
    pool.mount()
    assert {s["name"] for s in listing(pool)} == set(taken)
    for name, files in taken.items():
        view = pool.mnt / ".snapshots" / name
        assert {p.name: p.read_bytes() for p in view.iterdir()} == files, name
