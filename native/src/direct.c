/* Reading a file opened with O_DIRECT at any offset and length.
 *
 * Direct reads bypass the page cache: the device DMAs into the buffer, no page
 * cache page is allocated for the bytes, and the chunk cache stays the only
 * cache of what was read (as ZFS's ARC is). The kernel wants the file offset,
 * the length and the buffer's address aligned to the device's block size, so
 * the read covers the aligned range around the one asked for, into a scratch
 * buffer each thread keeps, and the asked-for bytes are copied out of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dwfs_native.h"

#define SCRATCH_MIN (64 * 1024)

struct scratch {
    size_t cap;
    char *buf;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *p) {
    struct scratch *s = p;
    free(s->buf);
    free(s);
}

static void scratch_key_make(void) { scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0; }

/* This thread's aligned scratch of at least size bytes (freed when the thread
 * ends), or NULL when memory or a thread key is short. */
static char *scratch(size_t size) {
    pthread_once(&scratch_once, scratch_key_make);
    if (!scratch_key_ok) return NULL;
    struct scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) return NULL;
        if (pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->cap < size) {
        size_t cap = SCRATCH_MIN;
        while (cap < size) cap <<= 1;
        void *buf;
        if (posix_memalign(&buf, DWFS_DIRECT_ALIGN, cap) != 0) return NULL;
        free(s->buf);
        s->buf = buf;
        s->cap = cap;
    }
    return s->buf;
}

ssize_t dwfs_read_direct(int fd, uint64_t offset, const struct dwfs_part *parts, int n) {
    size_t want = 0;
    for (int i = 0; i < n; i++) want += parts[i].len;
    if (want == 0) return 0;
    const uint64_t mask = DWFS_DIRECT_ALIGN - 1;
    if (offset > UINT64_MAX - want - mask) return -EINVAL;
    uint64_t lo = offset & ~mask;
    uint64_t hi = (offset + want + mask) & ~mask;
    size_t span = (size_t)(hi - lo);
    char *buf = scratch(span);
    if (buf == NULL) return -ENOMEM;
    size_t got = 0;
    while (got < span) {
        ssize_t r = pread(fd, buf + got, span - got, (off_t)(lo + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        got += (size_t)r;
        if (got & mask) break; /* a short read off the alignment: the file ended */
    }
    size_t skip = (size_t)(offset - lo);
    size_t avail = got > skip ? got - skip : 0;
    if (avail > want) avail = want;
    const char *from = buf + skip;
    size_t left = avail;
    for (int i = 0; i < n && left; i++) {
        size_t take = parts[i].len < left ? parts[i].len : left;
        memcpy(parts[i].data, from, take);
        from += take;
        left -= take;
    }
    return (ssize_t)avail;
}
