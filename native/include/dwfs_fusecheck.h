/* dwfs fusecheck: whether a request read from /dev/fuse is well formed before
 * libfuse parses it. libfuse trusts the kernel: it reads each opcode's argument
 * struct and names without checking the request is long enough or the names
 * are terminated. The kernel does send well-formed requests; this check makes
 * a malformed one (a kernel bug, or a test speaking the protocol over a
 * socket) an EINVAL reply instead of a read past the request.
 *
 * Pure C over the kernel's UAPI header (linux/fuse.h), no libfuse, no Python.
 */
#ifndef DWFS_FUSECHECK_H
#define DWFS_FUSECHECK_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the len bytes at msg are one well-formed request: a header whose
 * length is len, its opcode's argument struct whole, its names NUL-terminated
 * inside it, and any data it declares present. Unknown opcodes are well formed
 * (libfuse answers them ENOSYS without reading their arguments). */
int dwfs_fuse_request_ok(const void *msg, size_t len);

/* Whether the kernel expects no reply to requests of this opcode. */
int dwfs_fuse_no_reply(uint32_t opcode);

#endif
