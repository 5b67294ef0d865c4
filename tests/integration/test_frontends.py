"""Both front ends serve the same pool: what one wrote the other reads, and
each mount says in its log which one it runs. (The whole integration suite
runs on the native front end, and again on pyfuse3 with DWFS_FRONTEND=pyfuse3:
`make test`.)"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
from pathlib import Path

from tests.integration.conftest import PoolFactory


def tree_of(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry: mode, size, mtime, content digest or link target, xattrs."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.iterdir()):
        st = path.lstat()
        body = (
            os.readlink(path)
            if path.is_symlink()
            else hashlib.sha256(path.read_bytes()).hexdigest()
        )
        xattrs = () if path.is_symlink() else tuple(sorted(os.listxattr(path)))
        found[path.name] = (st.st_mode, st.st_size, st.st_mtime_ns, body, xattrs)
    return found


def mount_log(pool_mnt: Path) -> str:
    state = Path(os.environ["DWFS_STATE_DIR"])
    return "".join(p.read_text() for p in state.glob("*/mount.log"))


def test_what_one_front_end_wrote_the_other_reads(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    pool.mount(None, "frontend=pyfuse3")
    tree = pool.mnt / "tree"
    tree.mkdir()
    for i in range(50):
        (tree / f"f{i}").write_bytes(os.urandom(i * 997))
    os.setxattr(tree / "f3", "user.kept", b"yes")
    os.symlink("f1", tree / "link")
    expected = tree_of(tree)
    pool.umount()
    pool.mount(None, "frontend=native")
    assert tree_of(tree) == expected
    (tree / "f7").write_bytes(b"changed through the native front end")
    expected = tree_of(tree)
    pool.umount()
    pool.mount(None, "frontend=pyfuse3")
    assert tree_of(tree) == expected
    log = mount_log(pool.mnt)
    assert "through the pyfuse3 front end" in log and "through the native front end" in log


def capability(path: Path) -> bytes | None:
    try:
        return os.getxattr(path, "security.capability")
    except OSError as exc:
        assert exc.errno == errno.ENODATA
        return None


CAP_NET_RAW = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
"""A file capability (VFS_CAP_REVISION_2, effective): cap_net_raw permitted."""


def test_file_capabilities_are_kept_whatever_answers_for_them(make_pool: PoolFactory) -> None:
    """Until some inode carries security.capability, the native front end
    answers its getxattr (asked before every write) in C; setting one must
    switch that off at once, and a remount must see it."""
    pool = make_pool()
    tool = pool.mnt / "tool"
    with open(tool, "wb") as f:
        for _ in range(100):
            f.write(b"x" * 4096)
    assert capability(tool) is None
    os.setxattr(tool, "security.capability", CAP_NET_RAW)
    assert capability(tool) == CAP_NET_RAW
    assert capability(pool.mnt) is None
    with open(tool, "ab") as f:  # a write drops it, as on ext4: the kernel must see it
        f.write(b"more")
    assert capability(tool) is None
    os.setxattr(tool, "security.capability", CAP_NET_RAW)
    pool.remount()
    assert capability(tool) == CAP_NET_RAW
    os.removexattr(tool, "security.capability")
    assert capability(tool) is None
