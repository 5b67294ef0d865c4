"""The Linux adapter: FUSE requests to Volume calls, through the native front
end (dwfs._fuse over libfuse3) or pyfuse3."""

from dwfs.fuse.mount import ALLOWED_OPTIONS as ALLOWED_OPTIONS
from dwfs.fuse.mount import FRONTEND_OPTION as FRONTEND_OPTION
from dwfs.fuse.mount import frontend_of as frontend_of
from dwfs.fuse.mount import option_value as option_value
from dwfs.fuse.mount import serve as serve

__all__ = ["ALLOWED_OPTIONS", "FRONTEND_OPTION", "frontend_of", "option_value", "serve"]
