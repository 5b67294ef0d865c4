/* C tests of the read cache: random operations against a model that keeps
 * every byte's owner, then eviction's bound, and that every owner comes back
 * exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwfs_readcache.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define INODES 4
#define SPACE 4096
#define PUTS 20000

/* The model: for each inode and byte, the put that holds it (0: none). */
static int model[INODES][SPACE];
static unsigned char *buffers[PUTS + 1];
static int returned[PUTS + 1];

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
        if (model[ino][b] == 0) return 0;
    return 1;
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
    int next_id = 1;
    for (int round = 0; round < PUTS; round++) {
        int ino = rand() % INODES, op = rand() % 10;
        if (op < 5 && next_id <= PUTS) {
            int off = rand() % (SPACE - 1), len = 1 + rand() % 300;
            if (off + len > SPACE) len = SPACE - off;
            int id = next_id++;
            buffers[id] = malloc((size_t)len);
            for (int i = 0; i < len; i++) buffers[id][i] = (unsigned char)(id * 31 + off + i);
            CHECK(rc_put(c, (uint64_t)ino + 7, (uint64_t)off, buffers[id], (size_t)len,
                         (void *)(intptr_t)id) == 1, "put refused");
            model_put(ino, off, len, id);
        } else if (op < 9) {
            int off = rand() % (SPACE - 1), len = 1 + rand() % 600;
            if (off + len > SPACE) len = SPACE - off;
            struct iovec iov[64];
            int k = rc_get(c, (uint64_t)ino + 7, (uint64_t)off, (size_t)len, iov, 64);
            CHECK((k > 0) == model_has(ino, off, len), "get %d at %d+%d: %d", ino, off, len, k);
            int pos = off;
            for (int i = 0; i < k; i++) {
                const unsigned char *p = iov[i].iov_base;
                for (size_t j = 0; j < iov[i].iov_len; j++, pos++) {
                    int id = model[ino][pos];
                    int start = pos;
                    while (start > 0 && model[ino][start - 1] == id) start--;
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
    CHECK(rc_get(c, 499 % 13, 499 * 1000, 1000, iov, 4) == 1, "the newest span was evicted");
    CHECK(rc_get(c, 0, 0, 1000, iov, 4) == 0, "the oldest span stayed");
    CHECK(rc_put(c, 1, 0, data, 10001, (void *)1) == 0, "a span over the budget was kept");
    rc_clear(c);
    while (rc_next_dead(c)) back++;
    CHECK(back == kept && kept == 500, "owners: %d kept, %d back", kept, back);
    rc_free(c);
}

int main(void) {
    test_against_model();
    test_budget();
    printf("readcache: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
