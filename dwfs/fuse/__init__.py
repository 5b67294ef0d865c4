"""The Linux adapter: FUSE requests to Volume calls (pyfuse3)."""

from dwfs.fuse.mount import ALLOWED_OPTIONS as ALLOWED_OPTIONS
from dwfs.fuse.mount import serve as serve

__all__ = ["ALLOWED_OPTIONS", "serve"]
