"""The native front end answers lookup and getattr in C, from a copy of the
names and attributes Python last answered (docs/design.md). A stale name or
attribute there is a bug, so: random changes of every kind through the mount,
each followed by stats that the kernel must ask the daemon for (after its own
dentries and inodes are dropped, so each name is looked up again, and statx
with AT_STATX_FORCE_SYNC on descriptors held open), checked against a model;
then the changes the daemon makes without a request of that inode (a snapshot
restored, a rollback, the write-behind storing a file). The lookups must
mostly have been answered in C, or the test proves nothing."""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import os
import random
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import LivePool

pytestmark = pytest.mark.skipif(
    os.environ.get("DWFS_FRONTEND") == "pyfuse3", reason="only the native front end caches entries"
)

AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_STATX_FORCE_SYNC = 0x2000
STATX_BASIC_STATS = 0x7FF
SLACK_NS = 20_000_000
"""How far a time the kernel sets may read behind the test's clock (it takes
the coarse clock, a tick behind)."""


class StatxTime(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_int64), ("nsec", ctypes.c_uint32), ("_pad", ctypes.c_int32)]


class Statx(ctypes.Structure):
    _fields_ = [
        ("mask", ctypes.c_uint32),
        ("blksize", ctypes.c_uint32),
        ("attributes", ctypes.c_uint64),
        ("nlink", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("mode", ctypes.c_uint16),
        ("_spare0", ctypes.c_uint16),
        ("ino", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
        ("blocks", ctypes.c_uint64),
        ("attributes_mask", ctypes.c_uint64),
        ("atime", StatxTime),
        ("btime", StatxTime),
        ("ctime", StatxTime),
        ("mtime", StatxTime),
        ("_rest", ctypes.c_uint8 * 144),
    ]


_libc = ctypes.CDLL(None, use_errno=True)


def forced_stat(fd: int) -> Statx:
    """The attributes of an open file as the daemon answers them now (statx with
    AT_STATX_FORCE_SYNC: the kernel asks, whatever it has cached)."""
    out = Statx()
    flags = AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_FORCE_SYNC
    if _libc.statx(fd, b"", flags, STATX_BASIC_STATS, ctypes.byref(out)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return out


def ns(t: StatxTime) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nsec)


def drop_kernel_entries() -> None:
    """Make the kernel forget every unused dentry and inode, so the next stat of
    each path looks it up again (through the daemon)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("2\n")


def in_c(pool: LivePool, counter: str = "answered_in_c") -> int:
    """One of the native front end's counters, as `dwfsctl status` shows it."""
    status = json.loads(pool.ctl("status", "--json", pool.mnt).stdout)
    return int(status["mount"]["front_end"][counter])


def requests_in_python(pool: LivePool, kind: str) -> int:
    """How many requests of this kind the mount's Python handlers answered."""
    requests = json.loads(pool.ctl("stats", "--json", pool.mnt).stdout)["requests"]
    return int(requests.get(kind, {}).get("count", 0))


@dataclasses.dataclass
class Node:
    """An inode of the model: what a stat of any of its names must show."""

    kind: int
    mode: int
    size: int = 0
    mtime_ns: int | None = None
    """Known exactly after a utime; None when the daemon chose it."""
    modified_after: int = 0
    """Wall time before the last change that moved its mtime (when not known)."""
    changed_after: int = 0
    """Wall time before the last change that moved its ctime."""
    xattrs: dict[str, bytes] = dataclasses.field(default_factory=dict)

    def modified(self, before: int) -> None:
        self.mtime_ns, self.modified_after, self.changed_after = None, before, before


class Model:
    """Paths under the mount and the nodes they name."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.paths: dict[str, Node] = {"": Node(stat.S_IFDIR, 0o755)}
        self.held: dict[str, int] = {}
        self.count = 0

    def nlink(self, path: str) -> int:
        node = self.paths[path]
        if node.kind == stat.S_IFDIR:
            subdirs = [p for p in self.of(stat.S_IFDIR) if self.parent(p) == path]
            return 2 + len(subdirs)
        return sum(1 for n in self.paths.values() if n is node)

    @staticmethod
    def parent(path: str) -> str:
        return path.rpartition("/")[0]

    def of(self, kind: int) -> list[str]:
        return sorted(p for p, n in self.paths.items() if n.kind == kind and p)

    def dirs(self) -> list[str]:
        return sorted(p for p, n in self.paths.items() if n.kind == stat.S_IFDIR)

    def new_path(self) -> str:
        self.count += 1
        parent = self.rng.choice(self.dirs())
        return f"{parent}/n{self.count}" if parent else f"n{self.count}"

    def real(self, path: str) -> Path:
        return self.root / path if path else self.root

    def touch_parent(self, path: str, before: int) -> None:
        self.paths[self.parent(path)].modified(before)

    def under(self, path: str) -> list[str]:
        return [p for p in self.paths if p == path or p.startswith(path + "/")]


def change(model: Model) -> None:
    """One random change through the mount, applied to the model too."""
    rng = model.rng
    files, dirs = model.of(stat.S_IFREG), model.of(stat.S_IFDIR)
    op = rng.choice(
        [
            "create",
            "create",
            "write",
            "truncate",
            "chmod",
            "utime",
            "rename",
            "unlink",
            "link",
            "mkdir",
            "rmdir",
            "xattr",
            "unxattr",
            "hold",
            "release",
        ]
    )
    before = time.time_ns()
    if op == "create" or (
        not files
        and op in ("write", "truncate", "chmod", "utime", "unlink", "link", "xattr", "hold")
    ):
        path = model.new_path()
        data = rng.randbytes(rng.choice([0, 10, 5000, 100_000]))
        model.real(path).write_bytes(data)
        model.paths[path] = Node(stat.S_IFREG, 0o644, len(data), None, before, before)
        model.touch_parent(path, before)
    elif op == "write":
        path = rng.choice(files)
        node = model.paths[path]
        off, data = rng.randrange(0, node.size + 4096), rng.randbytes(rng.randrange(1, 70_000))
        fd = model.held.get(path)
        own = fd is None
        fd = os.open(model.real(path), os.O_WRONLY) if fd is None else fd
        os.pwrite(fd, data, off)
        if own:
            os.close(fd)
        node.size = max(node.size, off + len(data))
        node.modified(before)
    elif op == "truncate":
        path = rng.choice(files)
        node = model.paths[path]
        node.size = rng.randrange(0, node.size + 10_000)
        os.truncate(model.real(path), node.size)
        node.modified(before)
    elif op == "chmod":
        path = rng.choice(files + dirs)
        node = model.paths[path]
        node.mode = rng.choice([0o600, 0o640, 0o644, 0o700, 0o755])
        os.chmod(model.real(path), node.mode)
        node.changed_after = before
    elif op == "utime":
        path = rng.choice(files + dirs)
        node = model.paths[path]
        node.mtime_ns = rng.randrange(1, 2_000_000_000) * 1_000_000_000 + rng.randrange(0, 10**9)
        os.utime(model.real(path), ns=(node.mtime_ns, node.mtime_ns))
        node.changed_after = before
    elif op == "rename":
        source = rng.choice(files + dirs) if files + dirs else None
        if source is None:
            return
        node = model.paths[source]
        targets = [p for p in files if node.kind == stat.S_IFREG and model.paths[p] is not node]
        target = rng.choice(targets) if targets and rng.random() < 0.3 else model.new_path()
        if node.kind == stat.S_IFDIR and (target + "/").startswith(source + "/"):
            return
        os.rename(model.real(source), model.real(target))
        moved = {p: model.paths.pop(p) for p in model.under(source)}
        model.paths.pop(target, None)
        for p, n in moved.items():
            model.paths[target + p[len(source) :]] = n
        for path in (source, target):
            model.touch_parent(path, before)
        node.changed_after = before
        for held in [p for p in model.held if p in moved or p == target]:
            os.close(model.held.pop(held))
    elif op == "unlink":
        path = rng.choice(files)
        os.unlink(model.real(path))
        node = model.paths.pop(path)
        node.changed_after = before
        model.touch_parent(path, before)
        if path in model.held:
            os.close(model.held.pop(path))
    elif op == "link":
        source, target = rng.choice(files), model.new_path()
        os.link(model.real(source), model.real(target))
        node = model.paths[target] = model.paths[source]
        node.changed_after = before
        model.touch_parent(target, before)
    elif op == "mkdir":
        path = model.new_path()
        os.mkdir(model.real(path), 0o755)
        model.paths[path] = Node(stat.S_IFDIR, 0o755, 0, None, before, before)
        model.touch_parent(path, before)
    elif op == "rmdir":
        empty = [d for d in dirs if len(model.under(d)) == 1]
        if empty:
            path = rng.choice(empty)
            os.rmdir(model.real(path))
            del model.paths[path]
            model.touch_parent(path, before)
    elif op == "xattr":
        path = rng.choice(files + dirs)
        name, value = rng.choice(["user.tag", "user.other"]), rng.randbytes(8)
        os.setxattr(model.real(path), name, value)
        model.paths[path].xattrs[name] = value
        model.paths[path].changed_after = before
    elif op == "unxattr":
        tagged = [p for p in files + dirs if model.paths[p].xattrs]
        if tagged:
            path = rng.choice(tagged)
            name = rng.choice(sorted(model.paths[path].xattrs))
            os.removexattr(model.real(path), name)
            del model.paths[path].xattrs[name]
            model.paths[path].changed_after = before
    elif op == "hold" and len(model.held) < 4:
        path = rng.choice(files)
        if path not in model.held:
            model.held[path] = os.open(model.real(path), os.O_RDWR)
    elif op == "release" and model.held:
        path = rng.choice(sorted(model.held))
        os.close(model.held.pop(path))


def check(model: Model, got: os.stat_result | Statx, path: str) -> None:
    node = model.paths[path]
    mode = got.st_mode if isinstance(got, os.stat_result) else got.mode
    nlink = got.st_nlink if isinstance(got, os.stat_result) else got.nlink
    size = got.st_size if isinstance(got, os.stat_result) else got.size
    mtime = got.st_mtime_ns if isinstance(got, os.stat_result) else ns(got.mtime)
    ctime = got.st_ctime_ns if isinstance(got, os.stat_result) else ns(got.ctime)
    where = f"{path or '/'} ({'statx' if isinstance(got, Statx) else 'lookup'})"
    assert stat.S_IFMT(mode) == node.kind, f"{where}: the type is stale"
    assert stat.S_IMODE(mode) == node.mode, f"{where}: mode {oct(mode)}, not {oct(node.mode)}"
    assert nlink == model.nlink(path), f"{where}: nlink {nlink}, not {model.nlink(path)}"
    if node.kind == stat.S_IFREG:
        assert size == node.size, f"{where}: size {size}, not {node.size}"
    if node.mtime_ns is not None:
        assert mtime == node.mtime_ns, f"{where}: mtime {mtime}, not {node.mtime_ns}"
    else:
        assert mtime >= node.modified_after - SLACK_NS, (
            f"{where}: the mtime is from before a change"
        )
    assert ctime >= node.changed_after - SLACK_NS, f"{where}: the ctime is from before a change"


def check_xattrs(model: Model, path: str) -> None:
    """The xattrs a path shows, twice: the first ENODATA or empty list may tell C
    the inode has none, which it then answers itself. The computed ones stay."""
    real, node = model.real(path), model.paths[path]
    for _ in range(2):
        assert sorted(os.listxattr(real)) == sorted(node.xattrs), f"{path}: stale xattr names"
        for name in ("user.tag", "user.other"):
            try:
                value = os.getxattr(real, name)
            except OSError as exc:
                assert exc.errno == errno.ENODATA
                value = None
            assert value == node.xattrs.get(name), f"{path}: stale {name}"
    if node.kind == stat.S_IFREG:
        assert os.getxattr(real, "user.dwfs.state") in (b"local", b"pending")


def check_all(model: Model) -> None:
    drop_kernel_entries()
    for path in sorted(model.paths):
        check(model, os.lstat(model.real(path)), path)
        check_xattrs(model, path)
    for path, fd in model.held.items():
        check(model, forced_stat(fd), path)


def test_names_and_attributes_answered_in_c_follow_every_change(mounted: LivePool) -> None:
    model = Model(mounted.mnt, random.Random(20261205))
    first = in_c(mounted)
    umask = os.umask(0o022)
    try:
        for step in range(160):
            change(model)
            if step % 4 == 3:
                check_all(model)
        check_all(model)
    finally:
        os.umask(umask)
        for fd in model.held.values():
            os.close(fd)
    assert in_c(mounted) - first > 500, "the lookups were not answered in C: this proved nothing"


def test_a_stored_file_keeps_the_ctime_a_later_change_gave_it(mounted: LivePool) -> None:
    """The write-behind stores a file after its close, without a request of it:
    what a stat shows must not move back then (the chmod's ctime, not the
    write's)."""
    path = mounted.mnt / "later"
    with open(path, "wb") as f:
        f.write(os.urandom(300_000))
        f.flush()
        before_chmod = time.time_ns()
        os.fchmod(f.fileno(), 0o600)
    drop_kernel_entries()
    seen = os.lstat(path)
    assert seen.st_ctime_ns >= before_chmod - SLACK_NS
    mounted.stored()
    drop_kernel_entries()
    after = os.lstat(path)
    assert (after.st_size, after.st_mode, after.st_mtime_ns) == (
        seen.st_size,
        seen.st_mode,
        seen.st_mtime_ns,
    )
    assert after.st_ctime_ns == seen.st_ctime_ns, "storing the file moved its ctime"


def test_the_getattrs_after_an_untars_changes_are_answered_in_c(mounted: LivePool) -> None:
    """An untar's steps per file (create, write, utime, chown, chmod, close, in one
    directory), then deleting them all: the kernel asks for the directory's
    attributes after each entry changed in it, and a file's after a chown. The
    replies to those changes leave the attributes in C, which answers them, and
    the setattrs after the write, whose changes Python applies together; what
    stats show afterwards is what the changes made."""
    folder = mounted.mnt / "untar"
    folder.mkdir()
    n = 200
    before, set_before = (
        requests_in_python(mounted, "getattr"),
        requests_in_python(mounted, "setattr"),
    )
    merged_before = in_c(mounted, "setattrs_merged")
    for i in range(n):
        started = time.time_ns()
        fd = os.open(folder / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"x" * 5000)
        os.utime(fd, ns=(1, 10**18 + i))
        os.fchown(fd, 1000 + i, 2000)
        os.fchmod(fd, 0o640)
        os.close(fd)
    asked = requests_in_python(mounted, "getattr") - before
    assert asked < n // 10, f"{asked} getattrs of {n} files' untar went to Python"
    asked = requests_in_python(mounted, "setattr") - set_before
    assert asked < n // 10, f"{asked} setattrs of {n} files' untar went to Python"
    merged = in_c(mounted, "setattrs_merged") - merged_before
    assert merged > n, f"only {merged} setattrs of {n} files were applied with the one before"
    for i in range(n):
        seen = os.stat(folder / f"f{i}")
        assert (seen.st_size, seen.st_mtime_ns, seen.st_uid, seen.st_gid) == (
            5000,
            10**18 + i,
            1000 + i,
            2000,
        )
        assert stat.S_IMODE(seen.st_mode) == 0o640
    assert os.stat(folder).st_mtime_ns >= started - SLACK_NS
    before = requests_in_python(mounted, "getattr")
    for i in range(n):
        started = time.time_ns()
        os.unlink(folder / f"f{i}")
    asked = requests_in_python(mounted, "getattr") - before
    assert asked < n // 10, f"{asked} getattrs of {n} unlinks went to Python"
    seen = os.stat(folder)
    assert seen.st_mtime_ns >= started - SLACK_NS and seen.st_nlink == 2
    assert not os.listdir(folder)


def test_setattrs_answered_in_c_are_kept(mounted: LivePool) -> None:
    """chmod, chown and utime (given times and now) of files whose attributes C
    holds are answered in C and applied by Python after: stats show each change
    at once, with the ctime it made, and a remount (Python's record) the same."""
    folder = mounted.mnt / "set"
    folder.mkdir()
    n = 100
    for i in range(n):
        (folder / f"f{i}").write_bytes(b"y" * i)
    for i in range(n):
        os.stat(folder / f"f{i}")
    before = requests_in_python(mounted, "setattr")
    started = time.time_ns()
    for i in range(n):
        path = folder / f"f{i}"
        os.chmod(path, 0o600 | (i % 64))
        os.chown(path, 3000 + i, 4000 + i)
        if i % 2:
            os.utime(path, ns=(2 * 10**17 + i, 10**18 + i))
        else:
            os.utime(path)
    asked = requests_in_python(mounted, "setattr") - before
    assert asked < n // 10, f"{asked} of {3 * n} setattrs went to Python"

    def expected(i: int, seen: os.stat_result) -> None:
        where = f"f{i}"
        assert stat.S_IMODE(seen.st_mode) == 0o600 | (i % 64), where
        assert (seen.st_uid, seen.st_gid, seen.st_size) == (3000 + i, 4000 + i, i), where
        if i % 2:
            assert (seen.st_atime_ns, seen.st_mtime_ns) == (2 * 10**17 + i, 10**18 + i), where
        else:
            assert seen.st_mtime_ns >= started - SLACK_NS, where
        assert seen.st_ctime_ns >= started - SLACK_NS, where

    shown = {}
    for i in range(n):
        shown[i] = os.stat(folder / f"f{i}")
        expected(i, shown[i])
    mounted.remount()
    for i in range(n):
        kept = os.stat(folder / f"f{i}")
        expected(i, kept)
        assert (kept.st_mode, kept.st_mtime_ns, kept.st_ctime_ns) == (
            shown[i].st_mode,
            shown[i].st_mtime_ns,
            shown[i].st_ctime_ns,
        ), f"f{i}: Python kept other attributes than C answered"


def test_a_chmod_of_a_file_with_an_acl_moves_its_mask(mounted: LivePool) -> None:
    """C answers a chmod only of an inode known to have no xattr: with an
    access ACL, the chmod must reach Python, which moves the ACL's mask too."""
    path = mounted.mnt / "shared"
    path.write_bytes(b"z")
    os.stat(path)
    os.chmod(path, 0o600)
    subprocess.run(["setfacl", "-m", "u:1234:rw", str(path)], check=True)
    os.stat(path)
    os.chmod(path, 0o640)
    acl = subprocess.run(["getfacl", "-c", str(path)], capture_output=True, text=True, check=True)
    assert "mask::r--" in acl.stdout.split(), acl.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_new_directorys_missing_names_are_answered_in_c_and_every_name_it_gets_is_found(
    mounted: LivePool,
) -> None:
    """C knows every name of a directory made through the mount until something
    it cannot follow changes it, and answers a lookup of any other name there
    itself: the negative lookup before each create of an untar. Every way a name
    comes into such a directory must then be found, after the kernel forgot
    its dentries: a create, mkdir, mknod, symlink and link (cached from their
    replies), a rename into it, and a create again after an unlink."""
    folder = mounted.mnt / "new"
    folder.mkdir()
    before = requests_in_python(mounted, "lookup")
    for i in range(50):
        (folder / f"f{i}").write_bytes(b"f")
    asked = requests_in_python(mounted, "lookup") - before
    assert asked < 5, f"{asked} of 50 lookups of new names went to Python"
    assert not (folder / "missing").exists()

    outside = mounted.mnt / "outside"
    outside.write_bytes(b"o")
    (mounted.mnt / "other").write_bytes(b"t")
    os.mkdir(folder / "sub")
    os.mkfifo(folder / "fifo")
    os.symlink("f0", folder / "link")
    os.link(mounted.mnt / "other", folder / "hard")
    os.rename(outside, folder / "moved")
    drop_kernel_entries()
    for name in ("sub", "fifo", "link", "hard", "moved", "f0", "f49"):
        assert os.lstat(folder / name), name
    assert (folder / "moved").read_bytes() == b"o"

    os.mkdir(folder / "sub" / "deeper")
    (folder / "sub" / "file").write_bytes(b"s")
    os.rename(folder / "sub" / "file", folder / "sub" / "deeper" / "file")
    os.unlink(folder / "f1")
    (folder / "f1").write_bytes(b"again")
    drop_kernel_entries()
    assert (folder / "sub" / "deeper" / "file").read_bytes() == b"s"
    assert not (folder / "sub" / "file").exists()
    assert (folder / "f1").read_bytes() == b"again"
    assert sorted(os.listdir(folder / "sub")) == ["deeper"]


def test_closes_answered_in_c_are_made(mounted: LivePool) -> None:
    """While no store could fail, C answers the flush of each close itself and
    Python makes it after: small files (kept in the metadata), larger ones
    (chunks), a file written through a dup after one of its descriptors was
    closed, and files only read. Every byte is there at once, once stored, and
    after a remount."""
    folder = mounted.mnt / "closes"
    folder.mkdir()
    n = 100
    expected = {
        f"f{i}": os.urandom(100 + 3000 * (i % 7) + (200_000 if i % 10 == 0 else 0))
        for i in range(n)
    }
    before = requests_in_python(mounted, "flush")
    for name, data in expected.items():
        (folder / name).write_bytes(data)
    asked = requests_in_python(mounted, "flush") - before
    assert asked < n // 10, f"{asked} of {n} closes went to Python"

    fd = os.open(folder / "dup", os.O_WRONLY | os.O_CREAT, 0o644)
    other = os.dup(fd)
    os.write(fd, b"first ")
    os.close(fd)
    os.write(other, b"second")
    os.close(other)
    expected["dup"] = b"first second"
    for name in list(expected)[:10]:
        with open(folder / name, "rb") as f:
            assert f.read() == expected[name]

    for name, data in expected.items():
        assert (folder / name).read_bytes() == data, name
    mounted.stored()
    mounted.remount()
    for name, data in expected.items():
        assert (folder / name).read_bytes() == data, f"{name} after a remount"


def test_writes_answered_in_c_are_kept(mounted: LivePool) -> None:
    """C answers a file's writes under 512 KiB itself, and Python takes them
    after, in order: an untar's small files, rewrites of their middles, and
    appends through a second descriptor, each followed by the close's setattrs.
    Sizes and bytes are right at once (as the daemon answers them, the kernel's
    entries dropped), once stored, and after a remount."""
    folder = mounted.mnt / "writes"
    folder.mkdir()
    n = 100
    rng = random.Random(12)
    expected = {f"f{i}": bytearray(rng.randbytes(1 + 4000 * (i % 11))) for i in range(n)}
    python_before, c_before = requests_in_python(mounted, "write"), in_c(mounted, "writes_in_c")
    for name, data in expected.items():
        (folder / name).write_bytes(data)
        os.utime(folder / name, ns=(1_000_000_000, 2_000_000_000))
    asked = requests_in_python(mounted, "write") - python_before
    assert asked < n // 10, f"{asked} of {n} files' writes went to Python"
    assert in_c(mounted, "writes_in_c") - c_before >= n - asked

    for name, data in list(expected.items())[::3]:
        with open(folder / name, "r+b") as f, open(folder / name, "ab") as appender:
            f.seek(len(data) // 2)
            middle = rng.randbytes(len(data) // 3)
            f.write(middle)
            f.flush()
            data[len(data) // 2 : len(data) // 2 + len(middle)] = middle
            tail = rng.randbytes(rng.randrange(1, 9000))
            appender.write(tail)
            data.extend(tail)
        os.chmod(folder / name, 0o600)
    drop_kernel_entries()
    for name, data in expected.items():
        seen = os.stat(folder / name)
        assert (seen.st_size, seen.st_blocks) == (len(data), -(-len(data) // 512)), name
        assert (folder / name).read_bytes() == data, name
    mounted.stored()
    mounted.remount()
    for name, data in expected.items():
        assert (folder / name).read_bytes() == data, f"{name} after a remount"


def test_a_restore_and_a_rollback_leave_nothing_stale(mounted: LivePool) -> None:
    """Changes the daemon makes itself, asked by dwfsctl: the names and inodes
    they replace must not be answered from what C kept of them."""
    rng = random.Random(5)
    model = Model(mounted.mnt, rng)
    umask = os.umask(0o022)
    try:
        for _ in range(40):
            change(model)
        for fd in model.held.values():
            os.close(fd)
        model.held.clear()
        check_all(model)
        mounted.ctl("snapshot", "create", mounted.mnt, "base")
        snapshot = {
            p: dataclasses.replace(n, xattrs=dict(n.xattrs)) for p, n in model.paths.items()
        }
        links = {
            p: next(q for q, m in model.paths.items() if m is n) for p, n in model.paths.items()
        }
        victim = next(p for p in model.of(stat.S_IFREG) if model.nlink(p) == 1)
        os.unlink(model.real(victim))
        removed = model.paths.pop(victim)
        model.touch_parent(victim, time.time_ns())
        check_all(model)
        mounted.ctl("snapshot", "restore", mounted.mnt, "base", victim)
        model.paths[victim] = dataclasses.replace(removed, changed_after=0)
        model.paths[model.parent(victim)].modified(0)
        check_all(model)

        for _ in range(40):
            change(model)
        for fd in model.held.values():
            os.close(fd)
        model.held.clear()
        held = os.open(model.real(next(iter(model.of(stat.S_IFREG)))), os.O_RDONLY)
        check_all(model)
        mounted.ctl("snapshot", "rollback", mounted.mnt, "base")
        assert forced_stat(held).nlink == 0, "an open file's old inode kept its links"
        os.close(held)
        model.paths = {p: snapshot[links[p]] for p in snapshot}
        for node in model.paths.values():
            node.changed_after = node.modified_after = 0
        check_all(model)
    finally:
        os.umask(umask)
        for fd in model.held.values():
            os.close(fd)


def inodes(pool: LivePool) -> int:
    """Live inodes in the pool (statfs's file count is those plus the free ones)."""
    st = os.statvfs(pool.mnt)
    return st.f_files - st.f_ffree


def test_references_lookups_in_c_took_keep_and_free_an_unlinked_file(mounted: LivePool) -> None:
    """Each lookup answered in C is a reference the kernel holds until it forgets
    the inode: counted too few, an unlinked file the kernel still holds (an
    O_PATH descriptor, a working directory) would be purged under it; too many,
    it would never be."""
    before = inodes(mounted)
    path = mounted.mnt / "counted"
    data = os.urandom(200_000)
    path.write_bytes(data)
    first = in_c(mounted)
    for _ in range(5):
        drop_kernel_entries()
        assert os.stat(path).st_size == len(data)
    # the first goes to Python (the writes dropped the file's attributes); the rest not
    assert in_c(mounted) - first >= 4, "the lookups were not answered in C"
    fd = os.open(path, os.O_PATH)  # a reference of the kernel's, no open file of ours
    try:
        path.unlink()
        drop_kernel_entries()
        mounted.stored()
        time.sleep(1.5)  # commits come after the write-behind
        assert forced_stat(fd).nlink == 0, "the unlinked file went while the kernel held it"
    finally:
        os.close(fd)
    drop_kernel_entries()
    deadline = time.monotonic() + 30
    while inodes(mounted) != before:
        assert time.monotonic() < deadline, "the unlinked file was never purged"
        time.sleep(0.1)
