"""Both front ends serve the same pool: what one wrote the other reads, and
each mount says in its log which one it runs. (The whole integration suite
runs on the native front end, and again on pyfuse3 with DWFS_FRONTEND=pyfuse3:
`make test`.)"""

from __future__ import annotations

import hashlib
import os
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
