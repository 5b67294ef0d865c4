"""dwfs: an encrypted, deduplicated, RAID-protected filesystem.

The public API: create and open pools, and the error taxonomy.
"""

from dwfs import errors as errors
from dwfs.chunks import Credential as Credential
from dwfs.chunks import Pool as Pool
from dwfs.chunks import PoolOptions as PoolOptions
from dwfs.chunks import create_pool as create_pool
from dwfs.chunks import open_pool as open_pool

__version__ = "0.1.0"

__all__ = ["Credential", "Pool", "PoolOptions", "create_pool", "errors", "open_pool"]
