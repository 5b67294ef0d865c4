/* The attribute cache (dwfs_attrcache.h): a chained hash table by inode. */
#include "dwfs_attrcache.h"

#include <stdlib.h>

#define BUCKET_BITS 14

typedef struct entry {
    struct entry *chain;
    uint64_t ino;
    struct stat st;
    double timeout;
} entry;

struct ac_table {
    entry *buckets[1 << BUCKET_BITS];
    size_t count, max;
};

static size_t bucket_of(uint64_t ino) {
    return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> (64 - BUCKET_BITS));
}

ac_table *ac_new(size_t max_entries) {
    ac_table *t = calloc(1, sizeof *t);
    if (t) t->max = max_entries;
    return t;
}

void ac_clear(ac_table *t) {
    for (size_t b = 0; b < (size_t)1 << BUCKET_BITS; b++) {
        entry *e = t->buckets[b];
        while (e) {
            entry *next = e->chain;
            free(e);
            e = next;
        }
        t->buckets[b] = NULL;
    }
    t->count = 0;
}

void ac_free(ac_table *t) {
    if (t == NULL) return;
    ac_clear(t);
    free(t);
}

static entry **slot(const ac_table *t, uint64_t ino) {
    entry **at = (entry **)&t->buckets[bucket_of(ino)];
    while (*at && (*at)->ino != ino) at = &(*at)->chain;
    return at;
}

int ac_put(ac_table *t, uint64_t ino, const struct stat *st, double timeout) {
    entry **at = slot(t, ino);
    if (*at == NULL) {
        if (t->count >= t->max) {
            ac_clear(t);
            at = slot(t, ino);
        }
        entry *e = calloc(1, sizeof *e);
        if (e == NULL) return 0;
        e->ino = ino;
        *at = e;
        t->count++;
    }
    (*at)->st = *st;
    (*at)->timeout = timeout;
    return 1;
}

int ac_get(const ac_table *t, uint64_t ino, struct stat *st, double *timeout) {
    entry *e = *slot(t, ino);
    if (e == NULL) return 0;
    *st = e->st;
    *timeout = e->timeout;
    return 1;
}

void ac_drop(ac_table *t, uint64_t ino) {
    entry **at = slot(t, ino);
    entry *e = *at;
    if (e == NULL) return;
    *at = e->chain;
    free(e);
    t->count--;
}

size_t ac_count(const ac_table *t) { return t->count; }
