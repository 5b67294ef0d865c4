"""The remote tier on real mounts: a directory remote and moto's S3 server on
loopback. A pool synced to a remote is attached on new devices by a machine
that has only the URL and the passphrase, and every file, xattr, hard link,
symlink and snapshot is there at once; file contents come back bit-exact, a
chunk at a time, as they are read."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dwfs.tiers._dir import STALE_TMP_SECONDS
from tests.integration.conftest import LivePool, PoolFactory, dwfsctl, mounted_at
from tests.servers import S3Server, rclone_s3

MiB = 1024 * 1024


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_of(root: Path) -> dict[str, tuple[str, ...]]:
    """Every entry under root: kind, content digest or link target, mode, xattrs."""
    found: dict[str, tuple[str, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".snapshots")
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
                continue
            xattrs = tuple(sorted(f"{n}={os.getxattr(path, n)!r}" for n in os.listxattr(path)))
            kind = digest(path) if path.is_file() else "dir"
            found[rel] = (kind, oct(st.st_mode), *xattrs)
    return found


def fill(mnt: Path) -> None:
    (mnt / "big").write_bytes(os.urandom(12 * MiB))
    (mnt / "docs").mkdir()
    for i in range(40):
        (mnt / "docs" / f"note{i}.txt").write_text(f"note {i}\n" * (i + 1))
    (mnt / "docs" / "note1.txt").chmod(0o640)
    os.setxattr(mnt / "docs" / "note2.txt", "user.tag", b"kept")
    subprocess.run(["setfacl", "-m", "u:nobody:r", mnt / "docs" / "note6.txt"], check=True)
    os.link(mnt / "docs" / "note3.txt", mnt / "hardlink")
    os.symlink("docs/note4.txt", mnt / "symlink")


def state_of(path: Path) -> str:
    return os.getxattr(path, "user.dwfs.state").decode()


def new_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """From here on, act as a machine that has never seen the pool (a fresh
    state directory)."""
    state = tmp_path / name
    state.mkdir()
    monkeypatch.setenv("DWFS_STATE_DIR", str(state))


@pytest.fixture
def attached_pools(tmp_path: Path) -> Iterator[list[LivePool]]:
    made: list[LivePool] = []
    yield made
    for pool in made:
        if pool.pid is not None and mounted_at(pool.mnt):
            result = dwfsctl("fsck", "--json", pool.mnt, check=False)
            assert result.returncode == 0, result.stdout or result.stderr
        pool.cleanup()


def attach(
    source: LivePool, url: str, made: list[LivePool], n: int = 2
) -> tuple[LivePool, dict[str, Any]]:
    root = source.root.parent / f"attached{len(made)}"
    root.mkdir()
    devices = [root / f"dev{i}" for i in range(n)]
    result = dwfsctl("attach", "--json", "--passphrase-file", source.passfile, url, *devices)
    mnt = root / "mnt"
    mnt.mkdir()
    pool = LivePool(root, devices, source.passfile, mnt)
    made.append(pool)
    return pool, json.loads(result.stdout)


def attach_elsewhere(
    pool: LivePool,
    url: str,
    made: list[LivePool],
    monkeypatch: pytest.MonkeyPatch,
    machine: str,
    n: int = 1,
) -> LivePool:
    """Unmount the pool, then on a machine that never saw it, attach it from the
    remote and mount it."""
    pool.umount()
    new_machine(pool.root.parent, monkeypatch, machine)
    other, _ = attach(pool, url, made, n)
    other.mount()
    return other


def remote_show(pool: LivePool) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(dwfsctl("remote", "show", "--json", pool.mnt).stdout)
    return shown


@pytest.mark.slow
def test_a_synced_pool_attaches_elsewhere_whole_and_hydrates_on_read(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    fill(pool.mnt)
    dwfsctl("snapshot", "create", pool.mnt, "before")
    (pool.mnt / "docs" / "note5.txt").write_text("changed after the snapshot\n")
    expected = tree_of(pool.mnt)
    url = f"dir://{tmp_path}/remote"
    dwfsctl("remote", "add", pool.mnt, url)
    synced = json.loads(dwfsctl("sync", "--json", pool.mnt).stdout)
    assert synced["generation"] >= 1  # the mount may have synced by itself first
    shown = remote_show(pool)
    assert shown["pending_chunks"] == 0 and shown["chunks"]["local_only"] == 0
    assert state_of(pool.mnt / "big") == "local"
    pool.umount()

    new_machine(tmp_path, monkeypatch, "other-machine")
    other, done = attach(pool, url, attached_pools)
    assert done["generation"] >= synced["generation"]
    other.mount()
    assert state_of(other.mnt / "big") == "remote"
    assert os.stat(other.mnt / "big").st_size == 12 * MiB
    with open(other.mnt / "big", "rb") as f:
        f.seek(6 * MiB)
        f.read(MiB)
    assert state_of(other.mnt / "big") == "partial"
    fetched = remote_show(other)["stats"]["bytes_fetched"]
    assert 0 < fetched < 4 * MiB, fetched
    assert tree_of(other.mnt) == expected
    assert state_of(other.mnt / "big") == "local"
    assert os.stat(other.mnt / "hardlink").st_ino == os.stat(other.mnt / "docs/note3.txt").st_ino
    assert os.stat(other.mnt / "hardlink").st_nlink == 2
    old = other.mnt / ".snapshots" / "before" / "docs" / "note5.txt"
    assert old.read_text() == "note 5\n" * 6
    other.remount()
    assert remote_show(other)["chunks"]["remote_only"] == 0
    assert tree_of(other.mnt) == expected


@pytest.mark.slow
def test_s3_remote_round_trip(
    make_pool: PoolFactory,
    s3_env: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    fill(pool.mnt)
    expected = tree_of(pool.mnt)
    url = f"s3://{s3_env.new_bucket()}/pools/home"
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    other = attach_elsewhere(pool, url, attached_pools, monkeypatch, "s3-machine")
    assert tree_of(other.mnt) == expected


def rclone_daemons() -> list[str]:
    """Command lines of the rclone processes dwfs runs (their private directory
    is named dwfs-rclone-*)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and b"dwfs-rclone-" in cmdline and b"rcd" in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.slow
def test_rclone_remote_round_trip_and_no_rclone_left(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    monkeypatch.setenv("RCLONE_CONFIG", os.devnull)
    monkeypatch.setenv("RCLONE_CONFIG_DWFSTEST_TYPE", "local")
    pool = make_pool()
    fill(pool.mnt)
    expected = tree_of(pool.mnt)
    unknown = dwfsctl("remote", "add", pool.mnt, "rclone:nosuchremote:x", check=False)
    assert unknown.returncode == 8 and "nosuchremote" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    url = f"rclone:dwfstest:{tmp_path}/rclone-remote"
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    other = attach_elsewhere(pool, url, attached_pools, monkeypatch, "rclone-machine")
    assert state_of(other.mnt / "big") == "remote"
    assert tree_of(other.mnt) == expected
    assert rclone_daemons(), "the mount reads through a long-running rclone"
    other.umount()
    assert rclone_daemons() == []


def tamper(pack: Path, how: str) -> None:
    data = bytearray(pack.read_bytes())
    if how == "flip":
        for at in range(0, len(data), 4096):
            data[at] ^= 0xFF
        pack.write_bytes(bytes(data))
    elif how == "truncate":
        pack.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "delete":
        pack.unlink()
    else:  # "replace": other bytes of the same length in its place
        pack.write_bytes(os.urandom(len(data)))


@pytest.mark.parametrize("how", ["flip", "truncate", "delete", "replace"])
def test_a_changed_pack_is_eio_never_data(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
    how: str,
) -> None:
    pool = make_pool()
    (pool.mnt / "file").write_bytes(os.urandom(3 * MiB))
    url = f"dir://{tmp_path}/remote"
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    pool.umount()
    new_machine(tmp_path, monkeypatch, "m2")
    other, _ = attach(pool, url, attached_pools, n=1)
    manifest_packs = {p for p in (tmp_path / "remote" / "packs").rglob("*") if p.is_file()}
    for pack in manifest_packs:
        if pack.stat().st_size >= 2 * MiB:  # the file's pack, not the metadata image's
            tamper(pack, how)
    other.mount()
    with pytest.raises(OSError) as caught:
        (other.mnt / "file").read_bytes()
    assert caught.value.errno == errno.EIO
    assert remote_show(other)["stats"]["failed_authentication"] > 0
    other.umount()


def test_a_rolled_back_remote_is_refused(
    make_pool: PoolFactory, tmp_path: Path, attached_pools: list[LivePool]
) -> None:
    pool = make_pool()
    (pool.mnt / "a").write_text("one\n")
    url = f"dir://{tmp_path}/remote"
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    shutil.copytree(tmp_path / "remote", tmp_path / "old-remote")
    (pool.mnt / "b").write_text("two\n")
    dwfsctl("sync", pool.mnt)
    shutil.rmtree(tmp_path / "remote")
    shutil.copytree(tmp_path / "old-remote", tmp_path / "remote")
    failed = dwfsctl("sync", pool.mnt, check=False)
    assert failed.returncode == 4
    assert "rolled back" in failed.stderr and "Traceback" not in failed.stderr
    pool.remount()  # the uploader looks at the remote it is given before sending anything
    (pool.mnt / "c").write_text("three\n")
    deadline = time.monotonic() + 30
    while "rolled back" not in remote_show(pool)["last_error"]:
        assert time.monotonic() < deadline, remote_show(pool)
        time.sleep(0.5)
    status = dwfsctl("status", pool.mnt).stdout
    assert "rolled back" in status
    pool.umount()
    root = tmp_path / "attach-old"
    root.mkdir()
    refused = dwfsctl("attach", "--passphrase-file", pool.passfile, url, root / "d0", check=False)
    assert refused.returncode == 4 and "rolled back" in refused.stderr
    assert not (root / "d0").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "unknown scheme"),
        ("dir://relative", "absolute path"),
        ("s3://Bad_Bucket", "valid bucket"),
    ],
)
def test_bad_remote_urls_are_refused_with_one_line(
    mounted: LivePool, url: str, message: str
) -> None:
    result = dwfsctl("remote", "add", mounted.mnt, url, check=False)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert remote_show(mounted)["url"] is None


def test_a_missing_bucket_and_another_pools_remote_are_refused(
    make_pool: PoolFactory, s3_env: S3Server, tmp_path: Path
) -> None:
    first, second = make_pool(), make_pool()
    missing = dwfsctl("remote", "add", first.mnt, "s3://no-such-bucket-dwfs", check=False)
    assert missing.returncode == 8 and "does not exist" in missing.stderr
    url = f"dir://{tmp_path}/shared"
    dwfsctl("remote", "add", first.mnt, url)
    dwfsctl("sync", first.mnt)
    taken = dwfsctl("remote", "add", second.mnt, url, check=False)
    assert taken.returncode == 8 and "holds another pool" in taken.stderr
    assert remote_show(second)["url"] is None


def test_state_xattrs_are_read_only_and_not_listed(mounted: LivePool) -> None:
    path = mounted.mnt / "f"
    path.write_bytes(b"x" * 100_000)
    deadline = time.monotonic() + 30
    while (state := state_of(path)) == "pending":  # until the write-behind stored it
        assert time.monotonic() < deadline, "never stored"
        time.sleep(0.05)
    assert state == "local"
    assert "user.dwfs.state" not in os.listxattr(path)
    with pytest.raises(OSError) as caught:
        os.setxattr(path, "user.dwfs.state", b"remote")
    assert caught.value.errno == errno.EPERM
    assert int(os.getxattr(path, "user.dwfs.local_bytes")) == 100_000


@pytest.fixture
def rclone_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """rclone serving S3 over a directory, with credentials it checks."""
    with rclone_s3(tmp_path) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.mark.slow
def test_a_remote_that_stops_answering_gives_eio_then_works_again(
    make_pool: PoolFactory,
    rclone_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    content = os.urandom(6 * MiB)
    (pool.mnt / "file").write_bytes(content)
    (pool.mnt / "local").write_text("metadata and inline data stay local\n")
    url = f"s3://{rclone_server.new_bucket()}"
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    pool.umount()
    new_machine(tmp_path, monkeypatch, "offline-machine")
    other, _ = attach(pool, url, attached_pools, n=1)
    other.mount(None, "remote_timeout=2")
    os.kill(rclone_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(OSError) as caught:
            (other.mnt / "file").read_bytes()
        assert caught.value.errno == errno.EIO
        assert time.monotonic() - started < 60
        assert sorted(os.listdir(other.mnt)) == ["file", "local"]
        assert (other.mnt / "local").read_text().startswith("metadata")
        assert os.stat(other.mnt / "file").st_size == len(content)
    finally:
        os.kill(rclone_server.process.pid, signal.SIGCONT)
    assert (other.mnt / "file").read_bytes() == content
    log = (tmp_path / "offline-machine").glob("*/mount.log")
    assert any("did not answer within 2 s" in p.read_text() for p in log)


def test_credentials_the_server_refuses_are_one_line(
    mounted: LivePool, rclone_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = rclone_server.new_bucket()
    mounted.umount()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    mounted.mount()
    result = dwfsctl("remote", "add", mounted.mnt, f"s3://{bucket}", check=False)
    assert result.returncode == 8, result.stderr
    assert "refused the credentials" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert remote_show(mounted)["url"] is None


def test_pin_dehydrate_hydrate_and_a_bounded_cache(mounted: LivePool, tmp_path: Path) -> None:
    mnt = mounted.mnt
    (mnt / "keep").mkdir()
    (mnt / "other").mkdir()
    kept, other = os.urandom(3 * MiB), os.urandom(3 * MiB)
    (mnt / "keep" / "a").write_bytes(kept)
    (mnt / "other" / "b").write_bytes(other)
    (mnt / "other" / "shared").write_bytes(kept)  # the same chunks as a pinned file
    remote = tmp_path / "remote"
    dwfsctl("remote", "add", mnt, f"dir://{remote}")
    dwfsctl("sync", mnt)
    remote.rename(tmp_path / "away")  # the remote goes; a file stands in its way
    remote.write_bytes(b"")
    (mnt / "other" / "c").write_bytes(os.urandom(MiB))
    os.sync()
    assert state_of(mnt / "other" / "c") == "pending"
    early = json.loads(dwfsctl("dehydrate", "--json", mnt / "other" / "c").stdout)
    assert early["chunks_evicted"] == 0  # what is not uploaded is never evicted
    assert state_of(mnt / "other" / "c") == "pending"
    remote.unlink()
    (tmp_path / "away").rename(remote)
    dwfsctl("sync", mnt)
    assert state_of(mnt / "other" / "c") == "local"

    pinned = json.loads(dwfsctl("pin", "--json", mnt / "keep").stdout)
    assert pinned["pinned"] == 2
    (mnt / "keep" / "later").write_bytes(b"new files in a pinned directory are pinned")
    assert os.getxattr(mnt / "keep" / "later", "user.dwfs.pinned") == b"1"
    assert os.getxattr(mnt / "other" / "b", "user.dwfs.pinned") == b"0"

    done = json.loads(dwfsctl("dehydrate", "--json", mnt / "keep", mnt / "other").stdout)
    assert 4 * MiB <= done["bytes_freed"] < 4.1 * MiB  # b and c: a, and shared's chunks, stay
    assert state_of(mnt / "other" / "b") == "remote"
    assert state_of(mnt / "other" / "shared") == "local"
    assert state_of(mnt / "keep" / "a") == "local"

    fetched = json.loads(dwfsctl("hydrate", "--json", mnt / "other" / "b").stdout)
    assert 3 * MiB <= fetched["bytes_fetched"] < 3.1 * MiB  # sealed bytes
    assert state_of(mnt / "other" / "b") == "local"

    os.setxattr(mnt / "keep" / "a", "user.dwfs.pinned", b"0")
    os.setxattr(mnt / "keep", "user.dwfs.pinned", b"0")
    with open(mnt / "keep" / "a", "rb") as held:
        shown = json.loads(dwfsctl("cache", "--json", "--max-size", "1M", mnt).stdout)
        assert shown["max_size"] == MiB
        assert state_of(mnt / "other" / "b") == "remote"
        assert state_of(mnt / "keep" / "a") == "local"  # open: not evicted
        assert held.read() == kept
    mounted.remount()
    assert state_of(mnt / "other" / "b") == "remote"
    assert (mnt / "other" / "b").read_bytes() == other
    assert (mnt / "keep" / "a").read_bytes() == kept


def test_pin_outside_a_mount_is_refused(mounted: LivePool, tmp_path: Path) -> None:
    result = dwfsctl("pin", tmp_path, check=False)
    assert result.returncode == 2
    assert "is not inside a mounted dwfs filesystem" in result.stderr
    result = dwfsctl("hydrate", mounted.mnt / "missing", check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_kill_9_during_uploads_and_hydration_loses_nothing(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    url = f"dir://{tmp_path}/remote"
    dwfsctl("remote", "add", pool.mnt, url)
    written: dict[str, bytes] = {}
    rng = random.Random(11)
    for round_ in range(3):
        for i in range(4):
            data = os.urandom(rng.randrange(MiB, 3 * MiB))
            name = f"r{round_}-{i}"
            with open(pool.mnt / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            written[name] = data
        time.sleep(rng.uniform(0, 6))  # the uploader wakes every 5 s
        pool.crash()
        pool.mount()
        for name, data in written.items():
            assert (pool.mnt / name).read_bytes() == data, name
        dwfsctl("sync", pool.mnt)  # uploads resume; the copy is complete again
    assert remote_show(pool)["pending_chunks"] == 0
    pool.umount()

    new_machine(tmp_path, monkeypatch, "hydrating-machine")
    other, _ = attach(pool, url, attached_pools, n=1)
    for _ in range(3):
        other.mount()
        reader = subprocess.Popen(
            ["cat", *sorted(written)],
            cwd=other.mnt,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 0.5))  # hydration under way
        other.crash()
        reader.wait(30)
    other.mount()
    for name, data in written.items():
        assert (other.mnt / name).read_bytes() == data, name


def wait_for_journal(pool: LivePool, txg: int, seconds: float = 60.0) -> dict[str, Any]:
    """The remote's state once its journal holds txg (the uploader's rounds)."""
    deadline = time.monotonic() + seconds
    while True:
        shown = remote_show(pool)
        if (shown["journal_txg"] or 0) >= txg:
            return shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.5)


@pytest.mark.slow
def test_what_a_crashed_pool_did_after_its_last_sync_reaches_a_new_machine(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    url = f"dir://{tmp_path}/remote"
    dwfsctl("remote", "add", pool.mnt, url)
    synced = json.loads(dwfsctl("sync", "--json", pool.mnt).stdout)
    fill(pool.mnt)
    os.rename(pool.mnt / "docs" / "note7.txt", pool.mnt / "moved.txt")
    (pool.mnt / "docs" / "note8.txt").unlink()
    with open(pool.mnt / "logged", "wb") as f:
        f.write(b"fsync'd moments before the crash\n")
        os.fsync(f.fileno())
    expected = tree_of(pool.mnt)
    stats = json.loads(dwfsctl("stats", "--json", pool.mnt).stdout)
    shown = wait_for_journal(pool, stats["journal"]["txg"])
    assert shown["last_sync"]["generation"] == synced["generation"], "no sync since"
    pool.crash()

    new_machine(tmp_path, monkeypatch, "after-crash-machine")
    other, done = attach(pool, url, attached_pools, n=1)
    assert done["journal_txgs"] > 0 and done["txg"] >= stats["journal"]["txg"]
    other.mount()
    assert tree_of(other.mnt) == expected


def test_packs_nothing_needs_leave_the_remote_and_the_copy_stays_whole(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    url = f"dir://{tmp_path}/remote"
    (pool.mnt / "a").write_bytes(os.urandom(2 * MiB))
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    orphan = tmp_path / "remote" / "packs" / "ff" / ("ff" * 16)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"a pack a crash cut off before its rows were committed")
    (pool.mnt / "b").write_bytes(os.urandom(MiB))
    done = json.loads(dwfsctl("sync", "--json", pool.mnt).stdout)
    assert done["packs_removed"] >= 2  # the orphan and the first sync's metadata image
    assert not orphan.exists()
    expected = tree_of(pool.mnt)
    other = attach_elsewhere(pool, url, attached_pools, monkeypatch, "gc-machine")
    assert tree_of(other.mnt) == expected


def pack_bytes(remote: Path) -> int:
    return sum(p.stat().st_size for p in (remote / "packs").rglob("*") if p.is_file())


def test_mostly_dead_packs_are_repacked_and_the_space_comes_back(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    remote = tmp_path / "remote"
    url = f"dir://{remote}"
    kept_local, kept_remote = os.urandom(MiB), os.urandom(MiB)
    (pool.mnt / "gone").write_bytes(os.urandom(6 * MiB))
    (pool.mnt / "local").write_bytes(kept_local)
    (pool.mnt / "remote-only").write_bytes(kept_remote)
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    before = pack_bytes(remote)
    (pool.mnt / "gone").unlink()
    dwfsctl("dehydrate", pool.mnt / "remote-only")  # its chunks must come from the old pack
    assert state_of(pool.mnt / "remote-only") == "remote"
    done = json.loads(dwfsctl("sync", "--json", pool.mnt).stdout)
    assert done["packs_repacked"] == 1
    assert 2 * MiB <= done["bytes_repacked"] < 2.1 * MiB
    assert pack_bytes(remote) < before - 5 * MiB
    again = json.loads(dwfsctl("sync", "--json", pool.mnt).stdout)
    assert again["packs_repacked"] == 0  # the new pack is all live
    assert (pool.mnt / "remote-only").read_bytes() == kept_remote  # from the new pack
    expected = tree_of(pool.mnt)
    other = attach_elsewhere(pool, url, attached_pools, monkeypatch, "repack-machine")
    assert tree_of(other.mnt) == expected
    assert (other.mnt / "local").read_bytes() == kept_local


def test_kill_9_during_repacking_syncs_leaves_the_remote_copy_whole(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    url = f"dir://{tmp_path}/remote"
    kept = {f"k{i}": os.urandom(MiB) for i in range(6)}
    for name, data in kept.items():
        (pool.mnt / name).write_bytes(data)
        (pool.mnt / f"gone-{name}").write_bytes(os.urandom(3 * MiB))
    dwfsctl("remote", "add", "--bwlimit", "16M", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    for name in kept:
        (pool.mnt / f"gone-{name}").unlink()
    directory = os.open(pool.mnt, os.O_RDONLY)
    os.fsync(directory)  # the deletions are durable; the crashes below cut syncs only
    os.close(directory)
    here = os.environ["DWFS_STATE_DIR"]
    rng = random.Random(5)
    for round_ in range(3):
        sync = subprocess.Popen(
            [sys.executable, "-m", "dwfs.cli.main", "sync", pool.mnt], stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.1, 1.0))  # the repack's uploads under way, or the sync's
        pool.crash()
        sync.wait(30)
        copy = tmp_path / f"remote-as-left-{round_}"  # a machine attaching it takes it over
        shutil.copytree(tmp_path / "remote", copy)
        new_machine(tmp_path, monkeypatch, f"checking-machine-{round_}")
        other, _ = attach(pool, f"dir://{copy}", attached_pools, n=1)
        other.mount()
        for name, data in kept.items():
            assert (other.mnt / name).read_bytes() == data, (round_, name)
        other.umount()
        monkeypatch.setenv("DWFS_STATE_DIR", here)
        pool.mount()
        for name, data in kept.items():
            assert (pool.mnt / name).read_bytes() == data, (round_, name)
    cut_off = list((tmp_path / "remote").rglob(".tmp-*"))  # puts the crashes cut short
    for leftover in cut_off:  # they go once an hour old (a put in flight is never that old)
        os.utime(leftover, (0, time.time() - 2 * STALE_TMP_SECONDS))
    dwfsctl("sync", pool.mnt)  # finishes what a crash cut off
    again = json.loads(dwfsctl("sync", "--json", pool.mnt).stdout)
    assert again["packs_repacked"] == 0
    assert not list((tmp_path / "remote").rglob(".tmp-*"))
    assert pack_bytes(tmp_path / "remote") < 8 * MiB  # 6 MiB live, and the metadata


def test_a_remote_written_by_another_machine_is_not_overwritten(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    first_state = os.environ["DWFS_STATE_DIR"]
    url = f"dir://{tmp_path}/remote"
    dwfsctl("remote", "add", pool.mnt, url)
    dwfsctl("sync", pool.mnt)
    new_machine(tmp_path, monkeypatch, "second-machine")
    other, _ = attach(pool, url, attached_pools, n=1)
    other.mount()
    (other.mnt / "written-there").write_text("x\n")
    dwfsctl("sync", other.mnt)
    other.umount()
    monkeypatch.setenv("DWFS_STATE_DIR", first_state)
    (pool.mnt / "written-here").write_text("y\n")
    refused = dwfsctl("sync", pool.mnt, check=False)
    assert refused.returncode == 4
    assert "in use on another machine" in refused.stderr


def test_a_removed_remote_is_forgotten_and_a_new_one_gets_everything(
    make_pool: PoolFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    attached_pools: list[LivePool],
) -> None:
    pool = make_pool()
    (pool.mnt / "f").write_bytes(os.urandom(2 * MiB))
    dwfsctl("remote", "add", pool.mnt, f"dir://{tmp_path}/first")
    dwfsctl("sync", pool.mnt)
    dwfsctl("dehydrate", pool.mnt / "f")
    refused = dwfsctl("remote", "remove", pool.mnt, check=False)
    assert refused.returncode == 2 and "hydrate every file" in refused.stderr
    dwfsctl("hydrate", pool.mnt / "f")
    dwfsctl("remote", "remove", pool.mnt)
    assert remote_show(pool)["url"] is None
    second = f"dir://{tmp_path}/second"
    dwfsctl("remote", "add", pool.mnt, second)
    dwfsctl("sync", pool.mnt)
    expected = tree_of(pool.mnt)
    other = attach_elsewhere(pool, second, attached_pools, monkeypatch, "second-remote")
    assert tree_of(other.mnt) == expected


def test_a_chunk_the_devices_lost_is_read_from_the_remote(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    pool = make_pool(layout="raid0", n=1)
    content = os.urandom(3 * MiB)
    (pool.mnt / "f").write_bytes(content)
    dwfsctl("remote", "add", pool.mnt, f"dir://{tmp_path}/remote")
    dwfsctl("sync", pool.mnt)
    pool.umount()
    first = min((pool.devices[0] / "segments").iterdir())
    data = bytearray(first.read_bytes())
    for at in range(100, 2 * MiB, 4096):  # the file's stripes, written before any checkpoint
        data[at] ^= 0xFF
    first.write_bytes(bytes(data))
    pool.mount()
    assert (pool.mnt / "f").read_bytes() == content
    logs = Path(os.environ["DWFS_STATE_DIR"]).glob("*/mount.log")
    assert any("fetching the remote's copy" in p.read_text() for p in logs)
