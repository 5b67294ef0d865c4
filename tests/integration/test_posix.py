"""POSIX semantics on a real mount, checked with plain os calls and errno."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import LivePool, PoolFactory

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def renameat2(old: Path, new: Path, flags: int) -> None:
    if libc.renameat2(AT_FDCWD, bytes(old), AT_FDCWD, bytes(new), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def raises(code: int, fn: object, *args: object) -> None:
    with pytest.raises(OSError) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.errno == code, info.value


def test_files_directories_and_errors(mounted: LivePool) -> None:
    m = mounted.mnt
    (m / "a").write_bytes(b"hello")
    assert (m / "a").read_bytes() == b"hello"
    raises(errno.ENOENT, os.stat, m / "missing")
    raises(errno.EEXIST, os.mkdir, m / "a")
    os.mkdir(m / "d")
    (m / "d" / "f").write_text("x")
    raises(errno.ENOTEMPTY, os.rmdir, m / "d")
    raises(errno.EISDIR, os.unlink, m / "d")
    raises(errno.ENOTDIR, os.listdir, m / "a")
    raises(errno.ENOTDIR, os.mkdir, m / "a" / "x")
    raises(errno.ENAMETOOLONG, os.mkdir, m / ("n" * 256))
    os.mkdir(m / ("n" * 255))
    assert sorted(os.listdir(m)) == sorted(["a", "d", "n" * 255])
    assert os.stat(m / "d").st_nlink == 2
    os.mkdir(m / "d" / "sub")
    assert os.stat(m / "d").st_nlink == 3
    os.unlink(m / "d" / "f")
    os.rmdir(m / "d" / "sub")
    os.rmdir(m / "d")
    raises(errno.ENOENT, os.stat, m / "d")


def test_links_and_symlinks(mounted: LivePool) -> None:
    m = mounted.mnt
    (m / "f").write_bytes(b"data")
    os.link(m / "f", m / "g")
    assert os.stat(m / "f").st_nlink == 2
    assert os.stat(m / "f").st_ino == os.stat(m / "g").st_ino
    os.unlink(m / "f")
    assert (m / "g").read_bytes() == b"data"
    assert os.stat(m / "g").st_nlink == 1
    os.symlink("g", m / "s")
    assert os.readlink(m / "s") == "g"
    assert (m / "s").read_bytes() == b"data"
    assert stat.S_ISLNK(os.lstat(m / "s").st_mode)
    os.mkdir(m / "dir")
    raises(errno.EPERM, os.link, m / "dir", m / "dirlink")


def test_rename_variants(mounted: LivePool) -> None:
    m = mounted.mnt
    (m / "a").write_text("A")
    (m / "b").write_text("B")
    os.rename(m / "a", m / "c")
    assert (m / "c").read_text() == "A" and not (m / "a").exists()
    raises(errno.EEXIST, renameat2, m / "c", m / "b", RENAME_NOREPLACE)
    renameat2(m / "c", m / "b", RENAME_EXCHANGE)
    assert (m / "b").read_text() == "A" and (m / "c").read_text() == "B"
    raises(errno.ENOENT, renameat2, m / "b", m / "zz", RENAME_EXCHANGE)
    os.replace(m / "c", m / "b")
    assert (m / "b").read_text() == "B"
    os.makedirs(m / "x" / "y")
    os.mkdir(m / "empty")
    raises(errno.EINVAL, os.rename, m / "x", m / "x" / "y" / "z")
    os.rename(m / "x", m / "empty")
    assert (m / "empty" / "y").is_dir()
    os.mkdir(m / "full")
    (m / "full" / "f").write_text("f")
    raises(errno.ENOTEMPTY, os.rename, m / "empty", m / "full")
    raises(errno.EISDIR, os.rename, m / "b", m / "full")
    raises(errno.ENOTDIR, os.rename, m / "full", m / "b")


def test_append_truncate_sparse_and_holes(mounted: LivePool) -> None:
    m = mounted.mnt
    with open(m / "log", "ab") as f:
        f.write(b"one\n")
    with open(m / "log", "ab") as f:
        f.write(b"two\n")
    assert (m / "log").read_bytes() == b"one\ntwo\n"
    with open(m / "log", "wb") as f:
        f.write(b"x")
    assert (m / "log").read_bytes() == b"x"
    with open(m / "sparse", "wb") as f:
        f.seek(10_000_000)
        f.write(b"end")
    data = (m / "sparse").read_bytes()
    assert len(data) == 10_000_003 and data[:10_000_000] == bytes(10_000_000)
    os.truncate(m / "sparse", 5)
    assert (m / "sparse").read_bytes() == bytes(5)
    os.truncate(m / "sparse", 100)
    assert (m / "sparse").read_bytes() == bytes(100)
    with open(m / "rw", "w+b") as f:
        f.write(os.urandom(700_000))
        f.seek(300_000)
        f.write(b"MIDDLE")
        f.flush()
        os.fsync(f.fileno())
        f.seek(299_998)
        assert f.read(10)[2:8] == b"MIDDLE"


def test_open_unlinked_file_keeps_its_data(mounted: LivePool) -> None:
    m = mounted.mnt
    with open(m / "tmp", "w+b") as f:
        f.write(b"still here" * 1000)
        f.flush()
        os.unlink(m / "tmp")
        assert not (m / "tmp").exists()
        f.seek(0)
        assert f.read() == b"still here" * 1000
        f.write(b"more")
    assert os.listdir(m) == []


def test_metadata_and_times(mounted: LivePool) -> None:
    m = mounted.mnt
    (m / "f").write_text("x")
    os.chmod(m / "f", 0o640)
    assert stat.S_IMODE(os.stat(m / "f").st_mode) == 0o640
    os.chown(m / "f", 1234, 5678)
    st = os.stat(m / "f")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.utime(m / "f", ns=(1_000_000_000, 2_000_000_000))
    st = os.stat(m / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000, 2_000_000_000)
    before_1970, year_2200 = -1_500_000_001, 7_258_118_400_123_456_789
    os.utime(m / "f", ns=(before_1970, year_2200))
    st = os.stat(m / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (before_1970, year_2200)
    os.mkfifo(m / "fifo")
    assert stat.S_ISFIFO(os.stat(m / "fifo").st_mode)
    os.mknod(m / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert os.stat(m / "null").st_rdev == os.makedev(1, 3)


def test_a_write_by_an_unprivileged_user_drops_setuid_and_setgid(
    make_pool: PoolFactory,
) -> None:
    """The front ends ask the kernel for handle_killpriv (the filesystem drops
    the bits itself): a write or truncate by someone without CAP_FSETID must
    still drop them, as on ext4."""
    pool = make_pool(mount=False)
    pool.mount(None, "allow_other")
    prog = pool.mnt / "prog"
    prog.write_bytes(b"x" * 10)
    os.chown(prog, 1000, 1000)
    as_user = "import os, sys; fd = int(sys.argv[1]); os.setgid(1000); os.setuid(1000); "
    for change in ("os.write(fd, b'y')", "os.ftruncate(fd, 3)"):
        os.chmod(prog, 0o6775)
        fd = os.open(prog, os.O_WRONLY)  # opened here: the user cannot reach our tmp_path
        try:
            subprocess.run(
                [sys.executable, "-c", as_user + change, str(fd)], check=True, pass_fds=(fd,)
            )
        finally:
            os.close(fd)
        assert stat.S_IMODE(os.stat(prog).st_mode) == 0o775, change


def test_setgid_directory_and_sticky_bit(mounted: LivePool) -> None:
    m = mounted.mnt
    os.mkdir(m / "shared")
    os.chown(m / "shared", 0, 4242)
    os.chmod(m / "shared", 0o2775)
    (m / "shared" / "f").write_text("x")
    os.mkdir(m / "shared" / "sub")
    assert os.stat(m / "shared" / "f").st_gid == 4242
    assert os.stat(m / "shared" / "sub").st_gid == 4242
    assert os.stat(m / "shared" / "sub").st_mode & stat.S_ISGID


def test_sticky_directory_protects_other_users_files(make_pool: object) -> None:
    pool = make_pool(mount=False)  # type: ignore[operator]
    pool.mount(None, "allow_other")
    m = pool.mnt
    os.chmod(m, 0o755)
    os.mkdir(m / "tmp")
    os.chmod(m / "tmp", 0o1777)
    (m / "tmp" / "roots").write_text("mine")
    os.chmod(m / "tmp" / "roots", 0o666)
    nobody = 65534
    # The child opens the directory before dropping root, because pytest's
    # temporary root above the mount is closed to other users.
    script = (
        f"import os; d = os.open('{m}/tmp', os.O_RDONLY); os.setgid({nobody}); "
        f"os.setuid({nobody})\n"
        "os.close(os.open('theirs', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d))\n"
        "try:\n    os.unlink('roots', dir_fd=d)\nexcept PermissionError:\n    print('EPERM')"
    )
    result = subprocess.run(["python3", "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "EPERM", result.stderr
    assert os.stat(m / "tmp" / "theirs").st_uid == nobody
    assert (m / "tmp" / "roots").exists()


def test_xattrs(mounted: LivePool) -> None:
    m = mounted.mnt
    (m / "f").write_text("x")
    os.setxattr(m / "f", "user.color", b"blue")
    os.setxattr(m / "f", "user.empty", b"")
    assert os.getxattr(m / "f", "user.color") == b"blue"
    assert sorted(os.listxattr(m / "f")) == ["user.color", "user.empty"]
    os.removexattr(m / "f", "user.color")
    raises(errno.ENODATA, os.getxattr, m / "f", "user.color")
    raises(errno.ENODATA, os.removexattr, m / "f", "user.color")
    os.setxattr(m / "f", "user.new", b"1", os.XATTR_CREATE)
    raises(errno.EEXIST, os.setxattr, m / "f", "user.new", b"2", os.XATTR_CREATE)
    raises(errno.ENODATA, os.setxattr, m / "f", "user.none", b"2", os.XATTR_REPLACE)
    os.setxattr(m / "f", "user.new", b"3", os.XATTR_REPLACE)
    assert os.getxattr(m / "f", "user.new") == b"3"


def test_statfs_reports_pool_capacity(mounted: LivePool) -> None:
    st = os.statvfs(mounted.mnt)
    assert st.f_blocks > 0 and st.f_bavail <= st.f_blocks and st.f_namemax == 255


def test_readdir_offsets_are_stable_while_the_directory_changes(mounted: LivePool) -> None:
    m = mounted.mnt
    for i in range(300):
        (m / f"f{i:03d}").write_text("")
    seen = []
    with os.scandir(m) as it:
        for n, entry in enumerate(it):
            seen.append(entry.name)
            if n == 10:
                for i in range(0, 300, 7):
                    (m / f"f{i:03d}").unlink(missing_ok=True)
                (m / "new").write_text("")
    assert len(seen) == len(set(seen)), "no entry is returned twice"
    assert {f"f{i:03d}" for i in range(300) if i % 7} <= set(seen), "no survivor is skipped"


def test_data_survives_remount(mounted: LivePool) -> None:
    m = mounted.mnt
    payload = os.urandom(3_000_000)
    (m / "big").write_bytes(payload)
    os.makedirs(m / "a" / "b")
    os.symlink("../big", m / "a" / "link")
    os.setxattr(m / "big", "user.k", b"v")
    mounted.remount()
    assert (m / "big").read_bytes() == payload
    assert os.readlink(m / "a" / "link") == "../big"
    assert os.getxattr(m / "big", "user.k") == b"v"


def test_concurrent_appenders_lose_nothing(mounted: LivePool) -> None:
    """Two processes appending large records through O_APPEND: every record lands
    whole, none overwrites another."""
    path = mounted.mnt / "shared.log"
    script = (
        "import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
        "for i in range(200):\n"
        "    os.write(fd, sys.argv[2].encode() * 9000 + b'\\n')\n"
        "os.close(fd)\n"
    )
    procs = [subprocess.Popen(["python3", "-c", script, str(path), tag]) for tag in "AB"]
    for p in procs:
        assert p.wait() == 0
    lines = path.read_bytes().split(b"\n")[:-1]
    assert len(lines) == 400
    assert all(line in (b"A" * 9000, b"B" * 9000) for line in lines)


def test_names_looked_up_while_missing_appear_when_created(mounted: LivePool) -> None:
    """Missing names are cached as negative entries: each way of creating one
    must still make it visible at once."""
    m = mounted.mnt
    (m / "src").write_bytes(b"s")
    (m / "gone").write_bytes(b"g")
    makers: dict[str, Callable[[Path], object]] = {
        "file": lambda p: p.write_bytes(b"f"),
        "dir": os.mkdir,
        "symlink": lambda p: os.symlink("src", p),
        "link": lambda p: os.link(m / "src", p),
        "fifo": os.mkfifo,
        "rename": lambda p: os.rename(m / "gone", p),
    }
    for kind, make in makers.items():
        path = m / f"late-{kind}"
        for _ in range(3):
            raises(errno.ENOENT, os.lstat, path)
        make(path)
        assert os.path.lexists(path), kind
    os.unlink(m / "late-file")
    raises(errno.ENOENT, os.stat, m / "late-file")
    (m / "late-file").write_bytes(b"again")
    assert (m / "late-file").read_bytes() == b"again"
