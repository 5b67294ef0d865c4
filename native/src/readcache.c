/* The read cache (dwfs_readcache.h): per inode, a sorted array of
 * non-overlapping spans, found by binary search; across inodes, one
 * least-recently-used list that bounds the bytes held. A promised span has no
 * bytes yet (ptr NULL): it is in its inode's array but not in the LRU list,
 * and counts no bytes. */
#include "dwfs_readcache.h"

#include <stdlib.h>
#include <string.h>

#define BUCKET_BITS 12

typedef struct span {
    struct span *prev, *next; /* the LRU list (head: most recent); next also chains the dead */
    struct node *node;
    uint64_t off;
    size_t len;
    const unsigned char *ptr;
    void *owner;
    int fresh; /* filled from a promise and not yet read */
    uint64_t ticket; /* a promise's (kept once filled; 0 for a put span) */
} span;

typedef struct node {
    struct node *chain;
    uint64_t ino;
    span **v;
    size_t n, cap;
} node;

struct rc_cache {
    node *buckets[1 << BUCKET_BITS];
    span *head, *tail, *dead;
    size_t bytes, budget;
    uint64_t tickets; /* the last promise's */
};

static size_t bucket_of(uint64_t ino) {
    return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> (64 - BUCKET_BITS));
}

rc_cache *rc_new(size_t budget) {
    rc_cache *c = calloc(1, sizeof *c);
    if (c) c->budget = budget;
    return c;
}

static node *find(rc_cache *c, uint64_t ino) {
    for (node *n = c->buckets[bucket_of(ino)]; n; n = n->chain)
        if (n->ino == ino) return n;
    return NULL;
}

static node *find_or_add(rc_cache *c, uint64_t ino) {
    node *n = find(c, ino);
    if (n) return n;
    n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->ino = ino;
    size_t b = bucket_of(ino);
    n->chain = c->buckets[b];
    c->buckets[b] = n;
    return n;
}

static void forget_node(rc_cache *c, node *n) {
    node **at = &c->buckets[bucket_of(n->ino)];
    while (*at != n) at = &(*at)->chain;
    *at = n->chain;
    free(n->v);
    free(n);
}

/* The first span of n that ends after off (spans are sorted and disjoint, so
 * their ends are sorted too). */
static size_t first_ending_after(const node *n, uint64_t off) {
    size_t lo = 0, hi = n->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n->v[mid]->off + n->v[mid]->len <= off) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static void lru_unlink(rc_cache *c, span *s) {
    if (s->prev) s->prev->next = s->next; else c->head = s->next;
    if (s->next) s->next->prev = s->prev; else c->tail = s->prev;
    s->prev = s->next = NULL;
}

static void lru_push(rc_cache *c, span *s) {
    s->prev = NULL;
    s->next = c->head;
    if (c->head) c->head->prev = s; else c->tail = s;
    c->head = s;
}

/* Moves a span out of the LRU list onto the dead list; its node keeps it. */
static void kill(rc_cache *c, span *s) {
    lru_unlink(c, s);
    c->bytes -= s->len;
    s->node = NULL;
    s->next = c->dead;
    c->dead = s;
}

/* Removes a span that overlaps new ones or whose inode is dropped. */
static void discard(rc_cache *c, span *s) {
    if (s->ptr == NULL) free(s); else kill(c, s);
}

static void remove_at(node *n, size_t i) {
    memmove(&n->v[i], &n->v[i + 1], (n->n - i - 1) * sizeof *n->v);
    n->n--;
}

static void evict_one(rc_cache *c) {
    span *s = c->tail;
    node *n = s->node;
    size_t i = first_ending_after(n, s->off);
    remove_at(n, i);
    kill(c, s);
    if (n->n == 0) forget_node(c, n);
}

/* Gives a span its bytes' place in the LRU list and the budget. */
static void fill(rc_cache *c, span *s) {
    lru_push(c, s);
    c->bytes += s->len;
    while (c->bytes > c->budget) evict_one(c);
}

/* Places a span over [off, off + len) of ino, removing the spans it
 * overlaps; the span is a promise when ptr is NULL. The span, or NULL when
 * out of memory. */
static span *place(rc_cache *c, uint64_t ino, uint64_t off, const void *ptr, size_t len, void *owner) {
    span *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    node *n = find_or_add(c, ino);
    if (n && n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 8;
        span **v = realloc(n->v, cap * sizeof *v);
        if (v) { n->v = v; n->cap = cap; }
    }
    if (n == NULL || n->n == n->cap) {
        if (n && n->n == 0) forget_node(c, n);
        free(s);
        return NULL;
    }
    size_t i = first_ending_after(n, off);
    while (i < n->n && n->v[i]->off < off + len) {
        discard(c, n->v[i]);
        remove_at(n, i);
    }
    memmove(&n->v[i + 1], &n->v[i], (n->n - i) * sizeof *n->v);
    n->v[i] = s;
    n->n++;
    s->node = n;
    s->off = off;
    s->len = len;
    s->ptr = ptr;
    s->owner = owner;
    if (ptr != NULL) fill(c, s);
    return s;
}

int rc_put(rc_cache *c, uint64_t ino, uint64_t off, const void *ptr, size_t len, void *owner) {
    if (len == 0 || len > c->budget || ptr == NULL) return 0;
    return place(c, ino, off, ptr, len, owner) != NULL;
}

uint64_t rc_promise(rc_cache *c, uint64_t ino, uint64_t off, size_t len) {
    if (len == 0 || len > c->budget) return 0;
    if (rc_covered(c, ino, off, len)) return 0;
    span *s = place(c, ino, off, NULL, len, NULL);
    if (s == NULL) return 0;
    s->ticket = ++c->tickets;
    return s->ticket;
}

/* The promise `ticket` of ino that is exactly [off, off + len), or NULL. */
static span *promised(rc_cache *c, uint64_t ino, uint64_t off, size_t len, uint64_t ticket,
                      node **in, size_t *at) {
    node *n = find(c, ino);
    if (n == NULL) return NULL;
    size_t i = first_ending_after(n, off);
    if (i == n->n) return NULL;
    span *s = n->v[i];
    if (s->ptr != NULL || s->off != off || s->len != len || s->ticket != ticket) return NULL;
    *in = n;
    *at = i;
    return s;
}

int rc_fulfil(rc_cache *c, uint64_t ino, uint64_t off, size_t len, uint64_t ticket,
              const void *ptr, void *owner) {
    node *n;
    size_t i;
    span *s = ptr ? promised(c, ino, off, len, ticket, &n, &i) : NULL;
    if (s == NULL) return 0;
    s->ptr = ptr;
    s->owner = owner;
    s->fresh = 1;
    fill(c, s);
    return 1;
}

void rc_unpromise(rc_cache *c, uint64_t ino, uint64_t off, size_t len, uint64_t ticket) {
    node *n;
    size_t i;
    span *s = promised(c, ino, off, len, ticket, &n, &i);
    if (s == NULL) return;
    remove_at(n, i);
    free(s);
    if (n->n == 0) forget_node(c, n);
}

int rc_covered(rc_cache *c, uint64_t ino, uint64_t off, size_t len) {
    node *n = find(c, ino);
    if (n == NULL || len == 0) return 0;
    size_t i = first_ending_after(n, off);
    uint64_t pos = off, end = off + len;
    while (pos < end) {
        if (i >= n->n || n->v[i]->off > pos) return 0;
        pos = n->v[i]->off + n->v[i]->len;
        i++;
    }
    return 1;
}

int rc_get(rc_cache *c, uint64_t ino, uint64_t off, size_t len, struct iovec *iov, int max,
           int *fresh) {
    node *n = find(c, ino);
    if (n == NULL || len == 0 || max <= 0) return 0;
    size_t i = first_ending_after(n, off), first = i;
    uint64_t pos = off, end = off + len;
    int k = 0;
    while (pos < end) {
        if (i >= n->n || k == max) return 0;
        span *s = n->v[i];
        if (s->off > pos || s->ptr == NULL) return 0;
        uint64_t stop = s->off + s->len < end ? s->off + s->len : end;
        iov[k].iov_base = (void *)(s->ptr + (pos - s->off));
        iov[k].iov_len = (size_t)(stop - pos);
        k++;
        pos = stop;
        i++;
    }
    for (size_t j = first; j < i; j++) {
        lru_unlink(c, n->v[j]);
        lru_push(c, n->v[j]);
        if (n->v[j]->fresh && fresh) *fresh = 1;
        n->v[j]->fresh = 0;
    }
    return k;
}

void rc_drop(rc_cache *c, uint64_t ino) {
    node *n = find(c, ino);
    if (n == NULL) return;
    for (size_t i = 0; i < n->n; i++) discard(c, n->v[i]);
    forget_node(c, n);
}

void rc_clear(rc_cache *c) {
    for (size_t b = 0; b < (size_t)1 << BUCKET_BITS; b++)
        while (c->buckets[b]) rc_drop(c, c->buckets[b]->ino);
}

void *rc_next_dead(rc_cache *c) {
    span *s = c->dead;
    if (s == NULL) return NULL;
    c->dead = s->next;
    void *owner = s->owner;
    free(s);
    return owner;
}

size_t rc_bytes(const rc_cache *c) { return c->bytes; }

void rc_free(rc_cache *c) {
    if (c == NULL) return;
    rc_clear(c);
    while (c->dead) rc_next_dead(c);
    free(c);
}
