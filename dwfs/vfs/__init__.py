"""The filesystem's semantics (POSIX), independent of FUSE and WinFsp."""

from dwfs.vfs._attrs import MAX_NAME as MAX_NAME
from dwfs.vfs._attrs import ROOT_INO as ROOT_INO
from dwfs.vfs._attrs import Attr as Attr
from dwfs.vfs._attrs import now_ns as now_ns
from dwfs.vfs._files import Span as Span
from dwfs.vfs._remote_ops import COMPUTED as COMPUTED_XATTRS
from dwfs.vfs._snapshot_tree import BASE as SNAPSHOT_INODES
from dwfs.vfs._tree import RENAME_EXCHANGE as RENAME_EXCHANGE
from dwfs.vfs._tree import RENAME_NOREPLACE as RENAME_NOREPLACE
from dwfs.vfs._volume import AttrChanges as AttrChanges
from dwfs.vfs._volume import Volume as Volume
from dwfs.vfs._volume import open_volume as open_volume

__all__ = [
    "COMPUTED_XATTRS",
    "MAX_NAME",
    "RENAME_EXCHANGE",
    "RENAME_NOREPLACE",
    "ROOT_INO",
    "SNAPSHOT_INODES",
    "Span",
    "Attr",
    "AttrChanges",
    "Volume",
    "now_ns",
    "open_volume",
]
