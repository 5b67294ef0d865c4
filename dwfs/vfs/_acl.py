"""POSIX ACLs as Linux stores them in the system.posix_acl_* xattrs.

The kernel enforces ACLs and keeps an access ACL and the mode in step; the
filesystem's part is inheritance: a new inode in a directory with a default ACL
takes that ACL (masked by the mode it was created with) instead of the umask,
as posix_acl_create() does in ext4. Pure functions on the xattr bytes.
"""

from __future__ import annotations

import struct

ACCESS = b"system.posix_acl_access"
DEFAULT = b"system.posix_acl_default"
_VERSION = 2
_HEAD = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

Entry = tuple[int, int, int]


def decode(data: bytes) -> list[Entry]:
    """(tag, permissions, id) entries; ValueError if data is not an ACL."""
    if len(data) < _HEAD.size or (len(data) - _HEAD.size) % _ENTRY.size:
        raise ValueError("malformed ACL")
    if _HEAD.unpack_from(data)[0] != _VERSION:
        raise ValueError("unknown ACL version")
    return [_ENTRY.unpack_from(data, off) for off in range(_HEAD.size, len(data), _ENTRY.size)]


def encode(entries: list[Entry]) -> bytes:
    return _HEAD.pack(_VERSION) + b"".join(_ENTRY.pack(*e) for e in entries)


def inherit(default: bytes, mode: int, is_dir: bool) -> tuple[int, bytes | None, bytes | None]:
    """(mode, access ACL or None, default ACL or None) of a new inode whose parent
    has the default ACL `default` and which was created with `mode`."""
    entries = decode(default)
    has_mask = any(tag == MASK for tag, _, _ in entries)
    masked: list[Entry] = []
    perm_bits = mode & 0o777
    new_bits = 0
    for tag, perm, ident in entries:
        if tag == USER_OBJ:
            perm &= (perm_bits >> 6) & 7
            new_bits |= perm << 6
        elif tag == OTHER:
            perm &= perm_bits & 7
            new_bits |= perm
        elif tag == MASK or (tag == GROUP_OBJ and not has_mask):
            perm &= (perm_bits >> 3) & 7
            new_bits |= perm << 3
        masked.append((tag, perm, ident))
    mode = (mode & ~0o777) | new_bits
    extended = any(tag in (USER, GROUP, MASK) for tag, _, _ in masked)
    return mode, encode(masked) if extended else None, default if is_dir else None


def mode_bits(access: bytes) -> tuple[int, bool]:
    """(rwx bits for the mode, whether the ACL says no more than the mode does)."""
    entries = decode(access)
    tags = {tag: perm for tag, perm, _ in entries}
    group = tags.get(MASK, tags.get(GROUP_OBJ, 0))
    bits = (tags.get(USER_OBJ, 0) << 6) | (group << 3) | tags.get(OTHER, 0)
    return bits, not any(tag in (USER, GROUP, MASK) for tag, _, _ in entries)


def chmod(access: bytes, mode: int) -> bytes:
    """The access ACL after a chmod to mode (owner, mask or group, other follow it)."""
    entries = decode(access)
    has_mask = any(tag == MASK for tag, _, _ in entries)
    out = []
    for tag, perm, ident in entries:
        if tag == USER_OBJ:
            perm = (mode >> 6) & 7
        elif tag == MASK or (tag == GROUP_OBJ and not has_mask):
            perm = (mode >> 3) & 7
        elif tag == OTHER:
            perm = mode & 7
        out.append((tag, perm, ident))
    return encode(out)
