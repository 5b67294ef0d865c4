"""Chunks: chunking, chunk ids, compression, encryption, the dedup index and the
block store, and the pool that ties them to the devices.

Knows nothing of files: content in, chunk ids out.
"""

from dwfs.chunks._chunker import Chunker as Chunker
from dwfs.chunks._chunker import ChunkerParams as ChunkerParams
from dwfs.chunks._compress import ALGORITHMS as COMPRESSIONS
from dwfs.chunks._events import HOOK_SECONDS as HOOK_SECONDS
from dwfs.chunks._events import WATCH_EVERY as WATCH_EVERY
from dwfs.chunks._events import Events as Events
from dwfs.chunks._events import PoolWatch as PoolWatch
from dwfs.chunks._localstate import HEAD_COPY_LIMIT as HEAD_COPY_LIMIT
from dwfs.chunks._localstate import LocalState as LocalState
from dwfs.chunks._localstate import append_private as append_private
from dwfs.chunks._localstate import private_dir as private_dir
from dwfs.chunks._localstate import read_private as read_private
from dwfs.chunks._localstate import state_root as state_root
from dwfs.chunks._localstate import write_private as write_private
from dwfs.chunks._pool import Pool as Pool
from dwfs.chunks._pool import PoolOptions as PoolOptions
from dwfs.chunks._pool import create_attached as create_attached
from dwfs.chunks._pool import create_pool as create_pool
from dwfs.chunks._pool import open_pool as open_pool
from dwfs.chunks._pool import read_remote as read_remote
from dwfs.chunks._scrub import LIVE_SHARE as LIVE_SHARE
from dwfs.chunks._store import BlockStore as BlockStore
from dwfs.chunks._tier import PACK_BYTES as PACK_BYTES
from dwfs.chunks._tier import Tier as Tier
from dwfs.chunks._tier import pack_name as pack_name
from dwfs.chunks.crypto import CIPHERS as CIPHERS
from dwfs.chunks.crypto import PADDINGS as PADDINGS
from dwfs.chunks.keys import KDF_PRESETS as KDF_PRESETS
from dwfs.chunks.keys import KEYFILE as KEYFILE
from dwfs.chunks.keys import PASSPHRASE as PASSPHRASE
from dwfs.chunks.keys import RECOVERY as RECOVERY
from dwfs.chunks.keys import Credential as Credential
from dwfs.chunks.keys import new_recovery_key as new_recovery_key

__all__ = [
    "HEAD_COPY_LIMIT",
    "HOOK_SECONDS",
    "WATCH_EVERY",
    "Events",
    "PoolWatch",
    "LIVE_SHARE",
    "CIPHERS",
    "COMPRESSIONS",
    "KEYFILE",
    "PASSPHRASE",
    "RECOVERY",
    "BlockStore",
    "Chunker",
    "ChunkerParams",
    "Credential",
    "Pool",
    "PoolOptions",
    "create_attached",
    "create_pool",
    "read_remote",
    "PACK_BYTES",
    "Tier",
    "pack_name",
    "new_recovery_key",
    "open_pool",
    "state_root",
    "KDF_PRESETS",
    "PADDINGS",
    "append_private",
    "LocalState",
    "private_dir",
    "read_private",
    "write_private",
]
