/* dwfs read cache: spans of files' plaintext, by inode and offset, that the
 * native FUSE front end answers reads from without Python.
 *
 * Pure C with no Python.h and no libfuse, so the C tests can drive it. The
 * cache does not own the bytes: each span carries an opaque owner (the binding
 * keeps a Python buffer there) that the cache hands back through
 * rc_next_dead() once the span is gone, for the caller to release where it
 * may (the binding holds the GIL then). Not thread-safe: callers lock.
 */
#ifndef DWFS_READCACHE_H
#define DWFS_READCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct rc_cache rc_cache;

/* A cache holding at most `budget` bytes of spans (least recently used go first). */
rc_cache *rc_new(size_t budget);

/* Frees the cache; every span left goes to the dead list first, so drain it
 * with rc_next_dead() before calling rc_free(). */
void rc_clear(rc_cache *c);
void rc_free(rc_cache *c);

/* Caches [off, off + len) of inode ino, whose bytes are at ptr and stay valid
 * until the span's owner comes back from rc_next_dead(). Spans it overlaps
 * go. 1, or 0 when refused (then the owner is not taken). */
int rc_put(rc_cache *c, uint64_t ino, uint64_t off, const void *ptr, size_t len, void *owner);

/* Promises [off, off + len) of ino: its bytes are on their way (read-ahead)
 * and will come through rc_fulfil or be taken back through rc_unpromise. A
 * promise holds no bytes and counts none; spans it overlaps go, as with
 * rc_put, and it goes as a span does (overlapped, dropped, cleared). Returns
 * the promise's ticket, never 0 and never given twice, which its bytes must
 * come back with: a promise of the same range made after the file changed
 * is another promise, which the old bytes must not fill. 0 when no promise
 * was made: refused, or the range is already wholly covered by spans and
 * promises (left as it is). */
uint64_t rc_promise(rc_cache *c, uint64_t ino, uint64_t off, size_t len);

/* Fills the promise `ticket` of exactly [off, off + len) of ino with bytes at
 * ptr, owned as with rc_put: 1, or 0 when no such promise stands (it was
 * overlapped or dropped since: the file changed) and the owner is not taken. */
int rc_fulfil(rc_cache *c, uint64_t ino, uint64_t off, size_t len, uint64_t ticket,
              const void *ptr, void *owner);

/* Takes back the promise `ticket` of exactly [off, off + len) of ino, if it stands. */
void rc_unpromise(rc_cache *c, uint64_t ino, uint64_t off, size_t len, uint64_t ticket);

/* Whether [off, off + len) of ino is wholly covered by spans and promises. */
int rc_covered(rc_cache *c, uint64_t ino, uint64_t off, size_t len);

/* When [off, off + len) of ino is wholly cached (no promise in it), in at
 * most `max` contiguous spans: fills iov with it and returns how many entries;
 * else 0. len > 0. When fresh is not NULL, sets *fresh if any of those spans
 * was filled from a promise and not read since (the first read of bytes read
 * ahead, which the reader's read-ahead must hear of). */
int rc_get(rc_cache *c, uint64_t ino, uint64_t off, size_t len, struct iovec *iov, int max,
           int *fresh);

/* Drops every span of ino (its content changed or the kernel forgot it). */
void rc_drop(rc_cache *c, uint64_t ino);

/* The owner of a span that went, or NULL when none is left. */
void *rc_next_dead(rc_cache *c);

/* Bytes cached now. */
size_t rc_bytes(const rc_cache *c);

#endif
