/* Reading files opened with O_DIRECT at any offset and length, one read at a
 * time or many in flight at once.
 *
 * Direct reads bypass the page cache: the device DMAs into the buffer, no page
 * cache page is allocated for the bytes, and the chunk cache stays the only
 * cache of what was read (as ZFS's ARC is). The kernel wants the file offset,
 * the length and the buffer's address aligned to the device's block size, so
 * each read covers the aligned range around the one asked for, into a scratch
 * buffer each thread keeps, and the asked-for bytes are copied out of it.
 *
 * A direct read has no kernel read-ahead behind it and waits for the disk, so
 * a batch of them (every data shard of every chunk in a read-ahead batch) is
 * submitted together through Linux AIO, which for O_DIRECT descriptors is
 * truly asynchronous: the batch costs about its largest read, not their sum. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dwfs_native.h"

#if defined(__linux__)
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#endif

#define SCRATCH_MIN (64 * 1024)
#define MASK ((uint64_t)DWFS_DIRECT_ALIGN - 1)
#define RING 64
#define NOT_TAKEN (-SSIZE_MAX - 1) /* a read the ring did not take */

struct thread_state {
    size_t cap;
    char *buf;
#if defined(__linux__)
    aio_context_t ring;
    int ring_state; /* 0 not tried, 1 ready, -1 unavailable */
#endif
};

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_ok;

static void state_free(void *p) {
    struct thread_state *s = p;
#if defined(__linux__)
    if (s->ring_state == 1) syscall(SYS_io_destroy, s->ring);
#endif
    free(s->buf);
    free(s);
}

static void state_key_make(void) { state_key_ok = pthread_key_create(&state_key, state_free) == 0; }

/* This thread's state (freed when the thread ends), or NULL when memory or a
 * thread key is short. */
static struct thread_state *thread_state(void) {
    pthread_once(&state_once, state_key_make);
    if (!state_key_ok) return NULL;
    struct thread_state *s = pthread_getspecific(state_key);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) return NULL;
        if (pthread_setspecific(state_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    return s;
}

/* This thread's aligned scratch of at least size bytes, or NULL. */
static char *scratch(struct thread_state *s, size_t size) {
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

/* The aligned range [*lo, *lo + *span) around a read; nonzero when it would
 * pass the end of the offsets. */
static int aligned(const struct dwfs_read *r, size_t want, uint64_t *lo, size_t *span) {
    if (r->offset > UINT64_MAX - want - MASK) return -1;
    *lo = r->offset & ~MASK;
    *span = (size_t)(((r->offset + want + MASK) & ~MASK) - *lo);
    return 0;
}

static size_t wanted(const struct dwfs_read *r) {
    size_t want = 0;
    for (int i = 0; i < r->n; i++) want += r->parts[i].len;
    return want;
}

/* Reads on into buf[got..span) from lo + got until the span is full or the
 * file ends; the bytes in buf then, or -errno. */
static ssize_t read_span(int fd, char *buf, uint64_t lo, size_t span, size_t got) {
    while (got < span) {
        ssize_t r = pread(fd, buf + got, span - got, (off_t)(lo + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        got += (size_t)r;
        if (got & MASK) break; /* a short read off the alignment: the file ended */
    }
    return (ssize_t)got;
}

/* Copies the asked-for bytes of a read whose aligned range begins at lo and
 * of which got bytes are in buf; how many of them there were. */
static ssize_t scatter(const struct dwfs_read *r, const char *buf, uint64_t lo, size_t got, size_t want) {
    size_t skip = (size_t)(r->offset - lo);
    size_t avail = got > skip ? got - skip : 0;
    if (avail > want) avail = want;
    const char *from = buf + skip;
    size_t left = avail;
    for (int i = 0; i < r->n && left; i++) {
        size_t take = r->parts[i].len < left ? r->parts[i].len : left;
        memcpy(r->parts[i].data, from, take);
        from += take;
        left -= take;
    }
    return (ssize_t)avail;
}

#if defined(__linux__)
static int ring_ready(struct thread_state *s) {
    if (s->ring_state == 0) {
        s->ring = 0;
        s->ring_state = syscall(SYS_io_setup, RING, &s->ring) == 0 ? 1 : -1;
    }
    return s->ring_state == 1;
}

/* Submits reads [0, n) (n <= RING) of buf's spans at once and reaps them all;
 * got[i] is each one's bytes or -errno, or NOT_TAKEN when it was not taken
 * (the caller reads that one itself). Nonzero when the ring failed. */
static int aio_batch(struct thread_state *s, const struct dwfs_read *reads, int n, char *const *bufs,
                     const uint64_t *los, const size_t *spans, ssize_t *got) {
    struct iocb cbs[RING];
    struct iocb *ptrs[RING];
    memset(cbs, 0, sizeof(struct iocb) * (size_t)n);
    for (int i = 0; i < n; i++) {
        cbs[i].aio_fildes = (uint32_t)reads[i].fd;
        cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
        cbs[i].aio_buf = (uint64_t)(uintptr_t)bufs[i];
        cbs[i].aio_nbytes = spans[i];
        cbs[i].aio_offset = (int64_t)los[i];
        cbs[i].aio_data = (uint64_t)i;
        ptrs[i] = &cbs[i];
        got[i] = NOT_TAKEN;
    }
    int submitted = 0, taken = 0;
    while (submitted < n) {
        long took = syscall(SYS_io_submit, s->ring, n - submitted, ptrs + submitted);
        if (took > 0) {
            for (long j = 0; j < took; j++) got[submitted + j] = 0;
            submitted += (int)took;
            taken += (int)took;
        } else if (took < 0 && errno == EINTR) {
            continue;
        } else {
            submitted++; /* refused: left at NOT_TAKEN for the caller */
        }
    }
    int reaped = 0;
    while (reaped < taken) {
        struct io_event events[RING];
        long left = taken - reaped;
        long e = syscall(SYS_io_getevents, s->ring, left, left, events, NULL);
        if (e < 0) {
            if (errno == EINTR) continue;
            return -1; /* the reads in flight still land in this thread's scratch: fatal to reuse it */
        }
        for (long j = 0; j < e; j++) {
            uint64_t i = events[j].data;
            if (i < (uint64_t)n) got[i] = (ssize_t)events[j].res; /* bytes, or -errno */
        }
        reaped += (int)e;
    }
    return 0;
}
#endif

int dwfs_read_direct_many(struct dwfs_read *reads, int n) {
    struct thread_state *s = thread_state();
    size_t *wants = calloc((size_t)n + 1, sizeof(size_t));
    size_t *spans = calloc((size_t)n + 1, sizeof(size_t));
    uint64_t *los = calloc((size_t)n + 1, sizeof(uint64_t));
    char **bufs = calloc((size_t)n + 1, sizeof(char *));
    ssize_t *got = calloc((size_t)n + 1, sizeof(ssize_t));
    size_t total = 0;
    int together = 0, ok = s != NULL && wants && spans && los && bufs && got;
    for (int i = 0; ok && i < n; i++) {
        wants[i] = wanted(&reads[i]);
        if (aligned(&reads[i], wants[i], &los[i], &spans[i]) != 0) spans[i] = 0;
        if (wants[i] == 0) spans[i] = 0;
        total += spans[i];
    }
    char *buf = ok ? scratch(s, total ? total : 1) : NULL;
    if (buf == NULL) {
        for (int i = 0; i < n; i++) reads[i].result = -ENOMEM;
        goto done;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        bufs[i] = buf + at;
        at += spans[i];
    }
    for (int i = 0; i < n; i++) got[i] = NOT_TAKEN;
#if defined(__linux__)
    if (n > 1 && ring_ready(s)) {
        together = 1;
        for (int done = 0; done < n && together; done += RING) {
            int batch = n - done < RING ? n - done : RING;
            together = aio_batch(s, reads + done, batch, bufs + done, los + done, spans + done, got + done) == 0;
        }
        if (!together) {
            s->ring_state = -1; /* reads may still be landing in the scratch: leave it to them */
            s->buf = NULL;
            s->cap = 0;
            for (int i = 0; i < n; i++) reads[i].result = -EIO;
            goto done;
        }
    }
#endif
    for (int i = 0; i < n; i++) {
        if (wants[i] == 0) {
            reads[i].result = 0;
            continue;
        }
        if (spans[i] == 0) {
            reads[i].result = -EINVAL;
            continue;
        }
        ssize_t have = got[i];
        if (have == NOT_TAKEN) have = read_span(reads[i].fd, bufs[i], los[i], spans[i], 0);
        else if (have > 0 && (size_t)have < spans[i] && !((size_t)have & MASK))
            have = read_span(reads[i].fd, bufs[i], los[i], spans[i], (size_t)have); /* cut short, not ended */
        reads[i].result = have < 0 ? have : scatter(&reads[i], bufs[i], los[i], (size_t)have, wants[i]);
    }
done:
    free(wants);
    free(spans);
    free(los);
    free(bufs);
    free(got);
    return together;
}
