/* dwfs attribute cache: inodes' attributes, as Python last reported them, that
 * the native FUSE front end answers getattr from without Python.
 *
 * Pure C with no Python.h and no libfuse. Bounded: when full it starts over
 * empty (an entry is only ever a shortcut). Not thread-safe: callers lock.
 */
#ifndef DWFS_ATTRCACHE_H
#define DWFS_ATTRCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct ac_table ac_table;

ac_table *ac_new(size_t max_entries);
void ac_free(ac_table *t);

/* Keeps ino's attributes (and how long the kernel may cache them); 0 when out
 * of memory, else 1. */
int ac_put(ac_table *t, uint64_t ino, const struct stat *st, double timeout);

/* 1 and the attributes when ino's are kept, else 0. */
int ac_get(const ac_table *t, uint64_t ino, struct stat *st, double *timeout);

void ac_drop(ac_table *t, uint64_t ino);
void ac_clear(ac_table *t);
size_t ac_count(const ac_table *t);

#endif
