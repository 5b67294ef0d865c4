/* The entry cache (dwfs_entrycache.h): five chained hash tables, of
 * attributes by inode, of names by (directory, name), of inodes without
 * xattrs, of complete directories and of open file handles, each with as
 * many buckets as it may hold entries. */
#include "dwfs_entrycache.h"

#include <stdlib.h>
#include <string.h>

typedef struct attr_node {
    struct attr_node *next;
    struct stat st;
    double timeout;
} attr_node;

/* a member of a set: the bare inodes, the complete directories, the handles */
typedef struct bare_node {
    struct bare_node *next;
    uint64_t ino;
} bare_node;

typedef struct name_node {
    struct name_node *next;
    uint64_t parent, ino;
    double timeout;
    size_t len;
    char name[];
} name_node;

struct ec_cache {
    attr_node **attrs;
    name_node **names;
    bare_node **bares, **completes, **handles;
    size_t max, mask, n_attrs, n_names, n_bare, n_complete, n_handles;
    /* held inodes and their counts of changes, n_holds of them, unordered */
    uint64_t hold_ino[EC_HOLDS_MAX];
    unsigned hold_count[EC_HOLDS_MAX];
    size_t n_holds;
};

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static size_t attr_bucket(const ec_cache *c, uint64_t ino) { return (size_t)(mix(ino) & c->mask); }

static size_t name_bucket(const ec_cache *c, uint64_t parent, const char *name, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL ^ mix(parent); /* FNV-1a over the name */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)name[i]) * 0x100000001b3ULL;
    return (size_t)(mix(h) & c->mask);
}

ec_cache *ec_new(size_t max) {
    if (max == 0) return NULL;
    size_t buckets = 1;
    while (buckets < max) buckets <<= 1;
    ec_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->attrs = calloc(buckets, sizeof *c->attrs);
    c->names = calloc(buckets, sizeof *c->names);
    c->bares = calloc(buckets, sizeof *c->bares);
    c->completes = calloc(buckets, sizeof *c->completes);
    c->handles = calloc(buckets, sizeof *c->handles);
    if (c->attrs == NULL || c->names == NULL || c->bares == NULL || c->completes == NULL ||
        c->handles == NULL) {
        free(c->attrs);
        free(c->names);
        free(c->bares);
        free(c->completes);
        free(c->handles);
        free(c);
        return NULL;
    }
    c->max = max;
    c->mask = buckets - 1;
    return c;
}

void ec_clear(ec_cache *c) {
    for (size_t b = 0; b <= c->mask; b++) {
        for (attr_node *a = c->attrs[b], *next; a; a = next) { next = a->next; free(a); }
        for (name_node *n = c->names[b], *next; n; n = next) { next = n->next; free(n); }
        for (bare_node *n = c->bares[b], *next; n; n = next) { next = n->next; free(n); }
        for (bare_node *n = c->completes[b], *next; n; n = next) { next = n->next; free(n); }
        for (bare_node *n = c->handles[b], *next; n; n = next) { next = n->next; free(n); }
        c->attrs[b] = NULL;
        c->names[b] = NULL;
        c->bares[b] = NULL;
        c->completes[b] = NULL;
        c->handles[b] = NULL;
    }
    c->n_attrs = c->n_names = c->n_bare = c->n_complete = c->n_handles = 0;
}

void ec_free(ec_cache *c) {
    if (c == NULL) return;
    ec_clear(c);
    free(c->attrs);
    free(c->names);
    free(c->bares);
    free(c->completes);
    free(c->handles);
    free(c);
}

static attr_node **find_attr(ec_cache *c, uint64_t ino) {
    attr_node **at = &c->attrs[attr_bucket(c, ino)];
    while (*at && (uint64_t)(*at)->st.st_ino != ino) at = &(*at)->next;
    return at;
}

static name_node **find_name(ec_cache *c, uint64_t parent, const char *name, size_t len) {
    name_node **at = &c->names[name_bucket(c, parent, name, len)];
    while (*at && !((*at)->parent == parent && (*at)->len == len && memcmp((*at)->name, name, len) == 0))
        at = &(*at)->next;
    return at;
}

void ec_drop_attr(ec_cache *c, uint64_t ino) {
    attr_node **at = find_attr(c, ino);
    attr_node *a = *at;
    if (a == NULL) return;
    *at = a->next;
    free(a);
    c->n_attrs--;
}

static size_t find_hold(const ec_cache *c, uint64_t ino) {
    size_t i = 0;
    while (i < c->n_holds && c->hold_ino[i] != ino) i++;
    return i;
}

unsigned ec_held(const ec_cache *c, uint64_t ino) {
    size_t i = find_hold(c, ino);
    return i < c->n_holds ? c->hold_count[i] : 0;
}

unsigned ec_unhold(ec_cache *c, uint64_t ino) {
    size_t i = find_hold(c, ino);
    if (i == c->n_holds) return 0;
    unsigned left = --c->hold_count[i];
    if (left == 0) {
        c->n_holds--;
        c->hold_ino[i] = c->hold_ino[c->n_holds];
        c->hold_count[i] = c->hold_count[c->n_holds];
    }
    return left;
}

static int put_attr(ec_cache *c, const struct stat *st, double timeout);

int ec_change_attr(ec_cache *c, const struct stat *st, double timeout) {
    uint64_t ino = (uint64_t)st->st_ino;
    size_t i = find_hold(c, ino);
    if (i == c->n_holds && c->n_holds == EC_HOLDS_MAX) return -1;
    if (put_attr(c, st, timeout) < 0) return -1;
    if (i == c->n_holds) {
        c->hold_ino[i] = ino;
        c->hold_count[i] = 0;
        c->n_holds++;
    }
    c->hold_count[i]++;
    return 0;
}

int ec_put_attr(ec_cache *c, const struct stat *st, double timeout) {
    if (ec_held(c, (uint64_t)st->st_ino)) return 1;
    return put_attr(c, st, timeout);
}

static int put_attr(ec_cache *c, const struct stat *st, double timeout) {
    attr_node **at = find_attr(c, (uint64_t)st->st_ino);
    if (*at == NULL && c->n_attrs >= c->max) {
        ec_clear(c);
        at = find_attr(c, (uint64_t)st->st_ino);
    }
    if (*at == NULL) {
        attr_node *a = malloc(sizeof *a);
        if (a == NULL) return -1;
        a->next = NULL;
        *at = a;
        c->n_attrs++;
    }
    (*at)->st = *st;
    (*at)->timeout = timeout;
    return 0;
}

int ec_get_attr(const ec_cache *c, uint64_t ino, struct stat *st, double *timeout) {
    attr_node *const *at = find_attr((ec_cache *)c, ino);
    if (*at == NULL) return 0;
    *st = (*at)->st;
    *timeout = (*at)->timeout;
    return 1;
}

static bare_node **find_in(ec_cache *c, bare_node **set, uint64_t ino) {
    bare_node **at = &set[attr_bucket(c, ino)];
    while (*at && (*at)->ino != ino) at = &(*at)->next;
    return at;
}

/* Adds ino to a set (bare, complete or handles) whose count is *n. */
static int set_add(ec_cache *c, bare_node **set, size_t *n, uint64_t ino) {
    if (*find_in(c, set, ino) != NULL) return 0;
    if (*n >= c->max) ec_clear(c);
    bare_node *node = malloc(sizeof *node);
    if (node == NULL) return -1;
    node->ino = ino;
    bare_node **head = &set[attr_bucket(c, ino)];
    node->next = *head;
    *head = node;
    (*n)++;
    return 0;
}

static void set_drop(ec_cache *c, bare_node **set, size_t *n, uint64_t ino) {
    bare_node **at = find_in(c, set, ino);
    bare_node *node = *at;
    if (node == NULL) return;
    *at = node->next;
    free(node);
    (*n)--;
}

int ec_set_bare(ec_cache *c, uint64_t ino) { return set_add(c, c->bares, &c->n_bare, ino); }

int ec_is_bare(const ec_cache *c, uint64_t ino) {
    return *find_in((ec_cache *)c, c->bares, ino) != NULL;
}

void ec_drop_bare(ec_cache *c, uint64_t ino) { set_drop(c, c->bares, &c->n_bare, ino); }

int ec_set_complete(ec_cache *c, uint64_t dir) {
    return set_add(c, c->completes, &c->n_complete, dir);
}

int ec_is_complete(const ec_cache *c, uint64_t dir) {
    return *find_in((ec_cache *)c, c->completes, dir) != NULL;
}

void ec_drop_complete(ec_cache *c, uint64_t dir) {
    set_drop(c, c->completes, &c->n_complete, dir);
}

int ec_add_handle(ec_cache *c, uint64_t fh) { return set_add(c, c->handles, &c->n_handles, fh); }

int ec_has_handle(const ec_cache *c, uint64_t fh) {
    return *find_in((ec_cache *)c, c->handles, fh) != NULL;
}

void ec_drop_handle(ec_cache *c, uint64_t fh) { set_drop(c, c->handles, &c->n_handles, fh); }

uint64_t ec_drop_name(ec_cache *c, uint64_t parent, const char *name, size_t len) {
    name_node **at = find_name(c, parent, name, len);
    name_node *n = *at;
    if (n == NULL) return 0;
    uint64_t ino = n->ino;
    *at = n->next;
    free(n);
    c->n_names--;
    return ino;
}

int ec_put_name(ec_cache *c, uint64_t parent, const char *name, size_t len, uint64_t ino,
                double timeout) {
    ec_drop_name(c, parent, name, len);
    if (c->n_names >= c->max) ec_clear(c);
    name_node *n = malloc(sizeof *n + len);
    if (n == NULL) return -1;
    n->parent = parent;
    n->ino = ino;
    n->timeout = timeout;
    n->len = len;
    memcpy(n->name, name, len);
    name_node **head = &c->names[name_bucket(c, parent, name, len)];
    n->next = *head;
    *head = n;
    c->n_names++;
    return 0;
}

uint64_t ec_get_name(const ec_cache *c, uint64_t parent, const char *name, size_t len,
                     double *timeout) {
    name_node *const *at = find_name((ec_cache *)c, parent, name, len);
    if (*at == NULL) return 0;
    *timeout = (*at)->timeout;
    return (*at)->ino;
}

size_t ec_attrs(const ec_cache *c) { return c->n_attrs; }
size_t ec_names(const ec_cache *c) { return c->n_names; }
size_t ec_bare(const ec_cache *c) { return c->n_bare; }
size_t ec_complete(const ec_cache *c) { return c->n_complete; }
size_t ec_handles(const ec_cache *c) { return c->n_handles; }
