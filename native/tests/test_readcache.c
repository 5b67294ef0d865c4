/* C tests of the read cache: random operations against a model that keeps
 * every byte's owner (or promise), then eviction's bound, and that every
 * owner comes back exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwfs_readcache.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define INODES 4
#define SPACE 4096
#define PUTS 20000

/* The model: for each inode and byte, the put that holds it (0: none; below
 * 0, the promise that holds it). */
static int model[INODES][SPACE];
static unsigned char *buffers[PUTS + 1];
static int returned[PUTS + 1];
static int fresh_ids[PUTS + 1]; /* filled from a promise and not read since */

static void model_put(int ino, int off, int len, int id) {
    int lo = off, hi = off + len;
    for (int b = 0; b < SPACE; b++) {
        int held = model[ino][b];
        if (held == 0) continue;
        /* a put that overlaps [lo, hi) goes as a whole */
        int start = b, end = b;
        while (end < SPACE && model[ino][end] == held) end++;
        if (start < hi && end > lo)
            for (int x = start; x < end; x++) model[ino][x] = 0;
        b = end - 1;
    }
    for (int b = lo; b < hi; b++) model[ino][b] = id;
}

static int model_has(int ino, int off, int len) {
    for (int b = off; b < off + len; b++)
        if (model[ino][b] <= 0) return 0;
    return 1;
}

static int model_covered(int ino, int off, int len) {
    for (int b = off; b < off + len; b++)
        if (model[ino][b] == 0) return 0;
    return 1;
}

/* The promise that holds exactly [off, off + len), or 0. */
static int model_promise(int ino, int off, int len) {
    int held = model[ino][off];
    if (held >= 0 || (off > 0 && model[ino][off - 1] == held)) return 0;
    for (int b = off; b < off + len; b++)
        if (model[ino][b] != held) return 0;
    if (off + len < SPACE && model[ino][off + len] == held) return 0;
    return held;
}

/* Where the span holding byte b begins (b is held). */
static int span_start(int ino, int b) {
    while (b > 0 && model[ino][b - 1] == model[ino][b]) b--;
    return b;
}

static void drain(rc_cache *c) {
    void *owner;
    while ((owner = rc_next_dead(c)) != NULL) {
        int id = (int)(intptr_t)owner;
        returned[id]++;
    }
}

static void test_against_model(void) {
    rc_cache *c = rc_new((size_t)1 << 40);
    srand(99);
    int next_id = 1, last_ticket = 0;
    for (int round = 0; round < PUTS; round++) {
        int ino = rand() % INODES, op = rand() % 10;
        int off = rand() % (SPACE - 1), len = 1 + rand() % 300;
        if (off + len > SPACE) len = SPACE - off;
        if (op < 3 && next_id <= PUTS) {
            int id = next_id++;
            buffers[id] = malloc((size_t)len);
            for (int i = 0; i < len; i++) buffers[id][i] = (unsigned char)(id * 31 + off + i);
            CHECK(rc_put(c, (uint64_t)ino + 7, (uint64_t)off, buffers[id], (size_t)len,
                         (void *)(intptr_t)id) == 1, "put refused");
            model_put(ino, off, len, id);
        } else if (op < 5) {
            int covered = model_covered(ino, off, len);
            uint64_t ticket = rc_promise(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len);
            if (covered) {
                CHECK(ticket == 0, "a covered range was promised again");
            } else {
                CHECK(ticket == (uint64_t)last_ticket + 1, "promise refused or its ticket reused");
                last_ticket = (int)ticket;
                model_put(ino, off, len, -last_ticket);
            }
        } else if (op < 7 && next_id <= PUTS) {
            /* fulfil (or take back) a promise: one that stands, or any range;
             * with its ticket, or another (one of a promise that went) */
            if (rand() % 2 && model[ino][off] != 0) {
                off = span_start(ino, off);
                len = 1;
                while (off + len < SPACE && model[ino][off + len] == model[ino][off]) len++;
            }
            int held = model_promise(ino, off, len);
            int ticket = held && rand() % 4 ? -held : 1 + rand() % (last_ticket + 1);
            int stands = held != 0 && ticket == -held;
            if (rand() % 4 == 0) {
                rc_unpromise(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len, (uint64_t)ticket);
                if (stands) memset(&model[ino][off], 0, (size_t)len * sizeof model[ino][0]);
            } else {
                int id = next_id++;
                buffers[id] = malloc((size_t)len);
                for (int i = 0; i < len; i++) buffers[id][i] = (unsigned char)(id * 31 + off + i);
                int got = rc_fulfil(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len,
                                    (uint64_t)ticket, buffers[id], (void *)(intptr_t)id);
                CHECK(got == stands, "fulfil of %d+%d: %d, the model says %d", off, len, got, stands);
                if (got) { model_put(ino, off, len, id); fresh_ids[id] = 1; }
                else returned[id]++; /* never taken: comes back at once */
            }
            CHECK(rc_covered(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len)
                      == model_covered(ino, off, len), "covered %d+%d", off, len);
        } else if (op < 9) {
            len = 1 + rand() % 600;
            if (off + len > SPACE) len = SPACE - off;
            struct iovec iov[64];
            CHECK(rc_covered(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len)
                      == model_covered(ino, off, len), "covered %d+%d", off, len);
            int fresh = 0, was_fresh = 0;
            int k = rc_get(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len, iov, 64, &fresh);
            CHECK((k > 0) == model_has(ino, off, len), "get %d at %d+%d: %d", ino, off, len, k);
            if (k > 0)
                for (int b = off; b < off + len; b++) {
                    was_fresh |= fresh_ids[model[ino][b]];
                    fresh_ids[model[ino][b]] = 0;
                }
            CHECK(fresh == was_fresh, "fresh at %d+%d: %d, the model says %d", off, len, fresh, was_fresh);
            int pos = off;
            for (int i = 0; i < k; i++) {
                const unsigned char *p = iov[i].iov_base;
                for (size_t j = 0; j < iov[i].iov_len; j++, pos++) {
                    int id = model[ino][pos];
                    int start = span_start(ino, pos);
                    CHECK(p[j] == (unsigned char)(id * 31 + start + (pos - start)),
                          "wrong byte at %d of inode %d", pos, ino);
                }
            }
            CHECK(k == 0 || pos == off + len, "iov covers %d of %d", pos - off, len);
        } else {
            rc_drop(c, (uint64_t)ino + 7);
            memset(model[ino], 0, sizeof model[ino]);
        }
        drain(c);
    }
    rc_clear(c);
    drain(c);
    CHECK(rc_bytes(c) == 0, "bytes left after clear: %zu", rc_bytes(c));
    for (int id = 1; id < next_id; id++) {
        CHECK(returned[id] == 1, "owner %d came back %d times", id, returned[id]);
        free(buffers[id]);
    }
    rc_free(c);
}

static void test_budget(void) {
    static unsigned char data[1000];
    rc_cache *c = rc_new(10000);
    int back = 0, kept = 0;
    for (int i = 0; i < 500; i++) {
        kept += rc_put(c, (uint64_t)(i % 13), (uint64_t)i * 1000, data, 1000, (void *)1);
        CHECK(rc_bytes(c) <= 10000, "over budget: %zu", rc_bytes(c));
        while (rc_next_dead(c)) back++;
    }
    struct iovec iov[4];
    CHECK(rc_get(c, 499 % 13, 499 * 1000, 1000, iov, 4, NULL) == 1, "the newest span was evicted");
    CHECK(rc_get(c, 0, 0, 1000, iov, 4, NULL) == 0, "the oldest span stayed");
    CHECK(rc_put(c, 1, 0, data, 10001, (void *)1) == 0, "a span over the budget was kept");
    rc_clear(c);
    while (rc_next_dead(c)) back++;
    CHECK(back == kept && kept == 500, "owners: %d kept, %d back", kept, back);
    rc_free(c);
}

/* Promises count no bytes and eviction passes them by: only a change of
 * their file (an overlap, a drop) takes them. */
static void test_promises_outlive_eviction(void) {
    static unsigned char data[1000];
    rc_cache *c = rc_new(10000);
    for (int i = 0; i < 50; i++)
        CHECK(rc_promise(c, 99, (uint64_t)i * 1000, 1000) == (uint64_t)i + 1, "promise refused");
    CHECK(rc_bytes(c) == 0, "promises count %zu bytes", rc_bytes(c));
    for (int i = 0; i < 500; i++) {
        rc_put(c, (uint64_t)(i % 13), (uint64_t)i * 1000, data, 1000, (void *)1);
        while (rc_next_dead(c)) {}
    }
    CHECK(rc_covered(c, 99, 0, 50000), "eviction took a promise");
    struct iovec iov[4];
    CHECK(rc_get(c, 99, 0, 1000, iov, 4, NULL) == 0, "a promise answered a read");
    CHECK(rc_fulfil(c, 99, 0, 999, 1, data, (void *)1) == 0, "a promise of another length was filled");
    CHECK(rc_fulfil(c, 99, 0, 1000, 2, data, (void *)1) == 0, "another promise's bytes filled one");
    CHECK(rc_fulfil(c, 99, 0, 1000, 1, data, (void *)1) == 1, "a standing promise was not filled");
    int fresh = 0;
    CHECK(rc_get(c, 99, 0, 1000, iov, 4, &fresh) == 1 && fresh, "a filled promise's first read");
    fresh = 0;
    CHECK(rc_get(c, 99, 500, 10, iov, 4, &fresh) == 1 && !fresh, "a filled promise stays fresh");
    CHECK(rc_put(c, 99, 2000, data, 1000, (void *)1) == 1, "put refused");
    CHECK(rc_get(c, 99, 2000, 1000, iov, 4, &fresh) == 1 && !fresh, "a put span is fresh");
    rc_drop(c, 99);
    CHECK(!rc_covered(c, 99, 1000, 1000), "a promise outlived its file's drop");
    CHECK(rc_fulfil(c, 99, 1000, 1000, 2, data, (void *)1) == 0, "a dropped promise was filled");
    uint64_t again = rc_promise(c, 99, 1000, 1000);
    CHECK(again == 51, "the same range promised again: ticket %llu", (unsigned long long)again);
    CHECK(rc_fulfil(c, 99, 1000, 1000, 2, data, (void *)1) == 0,
          "the bytes of a promise made before the file changed filled one made after");
    rc_unpromise(c, 99, 1000, 1000, 2);
    CHECK(rc_covered(c, 99, 1000, 1000), "taking back a promise that went took back its successor");
    CHECK(rc_fulfil(c, 99, 1000, 1000, again, data, (void *)1) == 1, "a promise was not filled");
    rc_clear(c);
    while (rc_next_dead(c)) {}
    rc_free(c);
}

int main(void) {
    test_against_model();
    test_budget();
    test_promises_outlive_eviction();
    printf("readcache: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
