"""Real programs doing real work on the mount: cp, rsync, tar, git, sqlite3."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import LivePool

PROJECT = Path(__file__).resolve().parents[2]


def run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


def make_tree(root: Path) -> None:
    """A tree with what copies get wrong: hard links, symlinks, xattrs, sparse files,
    modes and times."""
    shutil.copytree(
        PROJECT / "dwfs", root / "src", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    (root / "bin").mkdir()
    (root / "bin" / "blob").write_bytes(os.urandom(3_000_000))
    os.link(root / "bin" / "blob", root / "bin" / "blob-link")
    os.symlink("../src/__init__.py", root / "bin" / "init-link")
    os.symlink("dangling-target", root / "bin" / "dangling")
    with open(root / "bin" / "sparse", "wb") as f:
        f.seek(20_000_000)
        f.write(b"tail")
    os.setxattr(root / "bin" / "blob", "user.origin", b"test")
    os.chmod(root / "bin" / "blob", 0o600)
    os.utime(root / "src", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


def same_tree(a: Path, b: Path, dir_times: bool = True) -> None:
    run("diff", "-r", "--no-dereference", a, b)
    for path in a.rglob("*"):
        other = b / path.relative_to(a)
        sa, sb = os.lstat(path), os.lstat(other)
        assert (sa.st_mode, sa.st_nlink) == (sb.st_mode, sb.st_nlink), path
        if not path.is_dir():  # a directory's st_size is the filesystem's own business
            assert sa.st_size == sb.st_size, path
        if not path.is_symlink() and (dir_times or not path.is_dir()):
            assert sa.st_mtime_ns // 1000 == sb.st_mtime_ns // 1000, path
            assert os.listxattr(path) == os.listxattr(other), path


@pytest.mark.parametrize("tool", ["cp", "rsync"])
def test_copy_a_tree_in_and_out_bit_exact(mounted: LivePool, tmp_path: Path, tool: str) -> None:
    source = tmp_path / "source"
    source.mkdir()
    make_tree(source)
    inside, back = mounted.mnt / "copy", tmp_path / "back"
    if tool == "cp":
        run("cp", "-a", source, inside)
    else:
        run("rsync", "-aHAX", f"{source}/", f"{inside}/")
    mounted.remount()
    # rsync -H can link a file into a directory after it has set that directory's
    # time; on FUSE filesystems the window is wide enough to see (gocryptfs shows the
    # same in about one run in four), so rsync copies are not held to directory times.
    dir_times = tool == "cp"
    same_tree(source, inside, dir_times)
    if tool == "cp":
        run("cp", "-a", inside, back)
    else:
        run("rsync", "-aHAX", f"{inside}/", f"{back}/")
    same_tree(source, back, dir_times)


def test_tar_extracts_a_real_tree(mounted: LivePool, tmp_path: Path) -> None:
    archive = tmp_path / "tree.tar"
    run("tar", "-cf", archive, "-C", "/usr/share", "doc")
    run("tar", "-xf", archive, "-C", mounted.mnt)
    run("tar", "--compare", "-f", archive, "-C", mounted.mnt)


def test_git_repository(mounted: LivePool) -> None:
    repo = mounted.mnt / "repo"
    run("git", "init", "-q", repo)
    env = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for i in range(20):
        (repo / f"file{i % 5}.txt").write_text(f"revision {i}\n" * (i + 1))
        run("git", *env, "add", "-A", cwd=repo)
        run("git", *env, "commit", "-q", "-m", f"commit {i}", cwd=repo)
    run("git", "gc", "-q", cwd=repo)
    mounted.remount()
    run("git", "fsck", "--full", "--strict", cwd=repo)
    assert run("git", "rev-list", "--count", "HEAD", cwd=repo).strip() == "20"


def test_sqlite_database_stays_intact(mounted: LivePool) -> None:
    db = mounted.mnt / "test.db"
    statements = ["PRAGMA journal_mode=WAL;", "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"]
    for i in range(300):
        statements.append(
            f"BEGIN; INSERT INTO t(v) VALUES (hex(randomblob({50 + i}))); "
            f"UPDATE t SET v = v || 'x' WHERE k % 7 = {i % 7}; "
            f"DELETE FROM t WHERE k % 11 = {i % 11} AND k < {i - 20}; COMMIT;"
        )
    run("sqlite3", db, "\n".join(statements))
    mounted.remount()
    assert run("sqlite3", db, "PRAGMA integrity_check;").strip() == "ok"
    assert int(run("sqlite3", db, "SELECT count(*) FROM t;")) > 0
