"""Devices: superblocks, segments, RAID layouts, parity, scrub and replace.

Holds opaque sealed bytes only: nothing here knows about chunks' contents,
files or keys beyond the two MAC keys it is handed.
"""

from dwfs.devices._array import COMPACTION_RESERVE as COMPACTION_RESERVE
from dwfs.devices._array import FAULTED as FAULTED
from dwfs.devices._array import MISSING as MISSING
from dwfs.devices._array import ONLINE as ONLINE
from dwfs.devices._array import DeviceArray as DeviceArray
from dwfs.devices._array import MemberState as MemberState
from dwfs.devices._layout import LAYOUT_NAMES as LAYOUT_NAMES
from dwfs.devices._layout import Layout as Layout
from dwfs.devices._layout import default_layout_name as default_layout_name
from dwfs.devices._layout import parse_layout as parse_layout
from dwfs.devices._open import DEFAULT_SEGMENT_SIZE as DEFAULT_SEGMENT_SIZE
from dwfs.devices._open import check_new_devices as check_new_devices
from dwfs.devices._open import create_devices as create_devices
from dwfs.devices._open import new_pool_id as new_pool_id
from dwfs.devices._open import open_array as open_array
from dwfs.devices._open import read_slots as read_slots
from dwfs.devices._repair import ScrubReport as ScrubReport
from dwfs.devices._repair import find_member as find_member
from dwfs.devices._repair import finish_resilver as finish_resilver
from dwfs.devices._repair import finish_scrub as finish_scrub
from dwfs.devices._repair import replace as replace
from dwfs.devices._repair import resilver_batch as resilver_batch
from dwfs.devices._repair import scrub as scrub
from dwfs.devices._repair import scrub_stripes as scrub_stripes
from dwfs.devices._repair import swap_in as swap_in
from dwfs.devices._shard import HEADER_SIZE as SHARD_HEADER_SIZE
from dwfs.devices._superblock import Slot as Slot

__all__ = [
    "COMPACTION_RESERVE",
    "DEFAULT_SEGMENT_SIZE",
    "FAULTED",
    "LAYOUT_NAMES",
    "MISSING",
    "ONLINE",
    "SHARD_HEADER_SIZE",
    "DeviceArray",
    "Layout",
    "MemberState",
    "ScrubReport",
    "Slot",
    "check_new_devices",
    "create_devices",
    "default_layout_name",
    "find_member",
    "finish_resilver",
    "finish_scrub",
    "new_pool_id",
    "open_array",
    "parse_layout",
    "read_slots",
    "replace",
    "resilver_batch",
    "scrub",
    "scrub_stripes",
    "swap_in",
]
