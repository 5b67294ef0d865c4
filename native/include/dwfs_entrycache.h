/* dwfs entry cache: inodes' attributes and directories' names, from which the
 * native FUSE front end answers getattr and lookup without Python.
 *
 * Pure C with no Python.h and no libfuse, so the C tests can drive it. It
 * holds what Python last answered; the binding drops what a request or a
 * change of the tree may have made stale (docs/design.md, "Attributes and
 * names answered in C"). Bounded: a put into a full cache empties it first,
 * as the tree's own row cache does. Not thread-safe: callers lock.
 */
#ifndef DWFS_ENTRYCACHE_H
#define DWFS_ENTRYCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct ec_cache ec_cache;

/* A cache of at most `max` attributes, `max` names and `max` inodes noted as
 * having no xattr (max >= 1). */
ec_cache *ec_new(size_t max);
void ec_free(ec_cache *c);

/* Drops everything. */
void ec_clear(ec_cache *c);

/* Caches the attributes of inode st->st_ino, replacing any. 0; 1 when the
 * inode is held (its attributes stay as they are: the caller's are older); or
 * -1 when out of memory (then the inode has none cached). */
int ec_put_attr(ec_cache *c, const struct stat *st, double timeout);

/* How many inodes may be held at once. */
#define EC_HOLDS_MAX 64

/* Caches st as a change made here that the attributes' source has not made
 * yet (a setattr answered in C, for Python to apply), and holds the inode:
 * until as many ec_unhold as changes, ec_put_attr leaves its attributes as
 * they are. 0, or -1 (and nothing changes) when out of memory or
 * EC_HOLDS_MAX other inodes are held. Holds outlast ec_clear and
 * ec_drop_attr, which may still drop the attributes. */
int ec_change_attr(ec_cache *c, const struct stat *st, double timeout);

/* The source made one of ino's held changes; how many remain. */
unsigned ec_unhold(ec_cache *c, uint64_t ino);

/* How many changes of ino are held. */
unsigned ec_held(const ec_cache *c, uint64_t ino);

/* 1 and the attributes of ino (and how long the kernel may keep them) when
 * cached, else 0. */
int ec_get_attr(const ec_cache *c, uint64_t ino, struct stat *st, double *timeout);

/* Drops the attributes of ino. */
void ec_drop_attr(ec_cache *c, uint64_t ino);

/* Notes that ino has no stored xattr, until ec_drop_bare (its attributes may
 * come and go meanwhile). 0, or -1 when out of memory (then it is not noted). */
int ec_set_bare(ec_cache *c, uint64_t ino);

/* Whether ino is noted as having no stored xattr. */
int ec_is_bare(const ec_cache *c, uint64_t ino);

/* Ends what ec_set_bare noted of ino. */
void ec_drop_bare(ec_cache *c, uint64_t ino);

/* Notes that every name directory `dir` has is cached (it was made empty, and
 * every name added since was cached), so a lookup of any other name there
 * finds nothing; until ec_drop_complete or ec_clear. 0, or -1 when out of
 * memory (then it is not noted). */
int ec_set_complete(ec_cache *c, uint64_t dir);

/* Whether dir is noted as complete. */
int ec_is_complete(const ec_cache *c, uint64_t dir);

/* Ends what ec_set_complete noted of dir. */
void ec_drop_complete(ec_cache *c, uint64_t dir);

/* Notes that fh is a regular file's open handle, until ec_drop_handle or
 * ec_clear. 0, or -1 when out of memory (then it is not noted). */
int ec_add_handle(ec_cache *c, uint64_t fh);

/* Whether fh is noted as an open handle. */
int ec_has_handle(const ec_cache *c, uint64_t fh);

/* Ends what ec_add_handle noted of fh. */
void ec_drop_handle(ec_cache *c, uint64_t fh);

/* Caches that `name` (len bytes) in directory `parent` is inode ino, replacing
 * any. 0, or -1 when out of memory (then the name has none cached). */
int ec_put_name(ec_cache *c, uint64_t parent, const char *name, size_t len, uint64_t ino,
                double timeout);

/* The inode a cached name is (and how long the kernel may keep the entry), or 0. */
uint64_t ec_get_name(const ec_cache *c, uint64_t parent, const char *name, size_t len,
                     double *timeout);

/* Drops a name; the inode it was, or 0 when it was not cached. */
uint64_t ec_drop_name(ec_cache *c, uint64_t parent, const char *name, size_t len);

/* Attributes, names, inodes without xattrs, complete directories and open
 * handles cached now. */
size_t ec_attrs(const ec_cache *c);
size_t ec_names(const ec_cache *c);
size_t ec_bare(const ec_cache *c);
size_t ec_complete(const ec_cache *c);
size_t ec_handles(const ec_cache *c);

#endif
