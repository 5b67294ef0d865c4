/* dwfs's native FUSE front end: the trio thread receives requests from
 * /dev/fuse through libfuse3's low-level API (Session.receive, without the GIL
 * and without blocking), libfuse's callbacks queue them, and Python takes the
 * queue (Session.fetch) and answers each through its Request object, which
 * sends the reply with the GIL released. The only importer is dwfs.fuse.native.
 *
 * C threads that read /dev/fuse and hand requests over were measured first:
 * the hand-over between threads cost more per request (about half the
 * lookups per second) than it saved (docs/performance.md).
 *
 * The C side never touches the pool: it copies request arguments (names, write
 * data) out of libfuse's buffers, and sends back what Python gives it. A
 * Request that Python drops without answering is answered EIO, so no kernel
 * request is left waiting; one answered twice is refused (libfuse frees a
 * request when it is answered).
 *
 * Reads of spans Python handed over (Session.keep: stored plaintext, with no
 * unstored write over it) are answered here from the read cache
 * (dwfs_readcache.h), the reply sent from Python's own buffers. A file's spans
 * go when a request that can change its content arrives (write, setattr,
 * fallocate, copy_file_range into it, an open with O_TRUNC) and again when
 * that request is answered, so no span kept before the change outlives its
 * reply; and when the kernel forgets the inode. Inode numbers are never
 * reused, and nothing else changes a live file's bytes (docs/design.md).
 *
 * Read-ahead promises spans (Session.promise) before it loads their chunks.
 * A read of bytes promised or cached waits here, not in Python: when the
 * chunks are in, Python fills the promises (Session.fulfil, which takes only
 * a promise that still stands, by its ticket, so a change of the file since
 * makes it refuse, even when the same range was promised again after it)
 * and the waiting reads are answered from them, or handed to Python when what
 * they wait for is no longer promised. The first read of bytes read ahead is
 * told to Python (a read_seen item) so its read-ahead keeps going. */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define FUSE_USE_VERSION 312
#define MAX_WAIT_US 1000 /* the most one receive() waits in all, so trio's other tasks run */
#define READ_IOV 32 /* the most spans one read answered in C is made of */
#include <fuse_lowlevel.h>

#include "dwfs_entrycache.h"
#include "dwfs_fusecheck.h"
#include "dwfs_readcache.h"

#include <linux/fuse.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


enum kind {
    K_INIT, K_LOOKUP, K_FORGET, K_GETATTR, K_SETATTR, K_READLINK, K_MKNOD,
    K_MKDIR, K_UNLINK, K_RMDIR, K_SYMLINK, K_RENAME, K_LINK, K_OPEN, K_READ,
    K_WRITE, K_FLUSH, K_RELEASE, K_FSYNC, K_OPENDIR, K_READDIRPLUS,
    K_RELEASEDIR, K_FSYNCDIR, K_STATFS, K_SETXATTR, K_GETXATTR, K_LISTXATTR,
    K_REMOVEXATTR, K_CREATE, K_FALLOCATE, K_LSEEK, K_COPY_FILE_RANGE, K_READ_SEEN,
    K_SETATTR_SEEN, K_FLUSH_SEEN, K_WRITE_SEEN, K_COUNT
};

static const char *const KIND_NAMES[K_COUNT] = {
    "init", "lookup", "forget", "getattr", "setattr", "readlink", "mknod",
    "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open", "read",
    "write", "flush", "release", "fsync", "opendir", "readdirplus",
    "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr",
    "removexattr", "create", "fallocate", "lseek", "copy_file_range", "read_seen",
    "setattr_seen", "flush_seen", "write_seen",
};

/* One request as the kernel sent it, owned by the queue until Python takes it. */
typedef struct item {
    struct item *next;
    int kind;
    fuse_req_t req;
    uint64_t ino, ino2, fh, fh2, size, rdev;
    int64_t off, off2;
    int flags, to_set, has_fh;
    uint32_t mode, uid, gid, pid, umask;
    struct stat st;
    struct fuse_file_info fi;
    char *name, *name2, *data;
    size_t data_len;
    /* the receive buffer a large write's data lies in, taken instead of
     * copying the data out of it (data then points into it); NULL: data is
     * its own allocation */
    char *block;
    uint64_t *forgets; /* pairs of (ino, nlookup) */
    size_t nforgets;
} item;

#define ADDING_MAX 64

/* A request adding a name to a complete directory, while it is unanswered. The
 * request is only its key, never read through: a request freed unanswered (out
 * of memory, the session closing) leaves a note that ends no completeness. */
typedef struct {
    const void *key;
    uint64_t dir;
    size_t len;
    char name[256];
} adding;

typedef struct notice {
    struct notice *next;
    uint64_t parent;
    char *name;
} notice;

typedef struct {
    PyObject_HEAD
    struct fuse_session *se;
    pthread_mutex_t lock;
    item *head, *tail;
    int mounted, started, ended;
    /* invalidations of entries, sent by their own thread: the kernel may wait
     * for a request we have not answered before it takes one */
    pthread_t notifier;
    pthread_cond_t notice_cond;
    notice *notices_head, *notices_tail;
    int notifier_stop;
    int writeback, acl, dot_lookup;
    /* No inode carries security.capability (Python says so at mount, and
     * clears it before any is set): its getxattr, which the kernel asks before
     * every write, is answered ENODATA here without reaching Python. */
    int no_capabilities;
    unsigned long long answered_in_c, reads_in_c, reads_waited, rejected, setattrs_merged,
        writes_in_c;
    /* what INIT settled with the kernel, for status */
    unsigned wanted, max_write, max_readahead, max_background, congestion_threshold;
    rc_cache *reads; /* spans of plaintext reads are answered from; NULL: none */
    item *waiting; /* reads waiting for promised spans (linked by next) */
    Py_ssize_t n_waiting;
    size_t n_urgent; /* queued items but changes answered in C: Python must see them now */
    /* until when (CLOCK_MONOTONIC seconds) flushes of open files are answered
     * here: Python says no flush could fail before then (Session.answer_flushes) */
    double flush_until;
    /* bytes of writes still to be answered here before Python says again how
     * many its budget has room for (Session.answer_writes) */
    size_t write_room;
    /* attributes and names lookup and getattr are answered from (NULL: none),
     * of inodes below cache_below only (the snapshots' are derived, not stored) */
    ec_cache *entries;
    uint64_t cache_below;
    /* xattr names Python computes rather than stores (the remote tier's): an
     * inode without stored xattrs may still answer them */
    char computed_xattrs[32];
    /* inodes whose lookups were answered here since Python last asked: the
     * kernel took a reference that Python must count (Session.looked) */
    uint64_t *looked;
    size_t n_looked, cap_looked;
    /* unanswered requests that add a name to a directory noted complete: the
     * drop Python's tree sends as it adds that name leaves it complete */
    adding adding[ADDING_MAX];
    size_t n_adding;
    struct fuse_buf buf; /* the receive buffer */
} Session;

/* A request handed to Python. It holds its Session, so libfuse's session
 * (which an unanswered request points into) outlives every Request. */
typedef struct {
    PyObject_HEAD
    item *it;
    PyObject *session;
    int answered;
} Request;

static PyTypeObject RequestType;

/* ---- the queue (any thread) ---------------------------------------------- */

static void item_free(item *it) {
    free(it->name);
    free(it->name2);
    free(it->block ? it->block : it->data);
    free(it->forgets);
    free(it);
}

/* The inode whose content a request may change, or 0. */
static uint64_t changes_content(const item *it) {
    switch (it->kind) {
    case K_WRITE: case K_SETATTR: case K_FALLOCATE: return it->ino;
    case K_COPY_FILE_RANGE: return it->ino2;
    case K_OPEN: return (it->flags & O_TRUNC) ? it->ino : 0;
    default: return 0;
    }
}

static int is_dot(const char *name) {
    return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static void drop_name(ec_cache *c, uint64_t parent, const char *name) {
    uint64_t ino = ec_drop_name(c, parent, name, strlen(name));
    if (ino) ec_drop_attr(c, ino);
}

/* Drops what a request may change of the entry cache (lock held): the
 * attributes of the inodes it names and the names it removes or replaces.
 * Called when the request arrives and again when it is answered, so nothing
 * Python answered before the change outlives the reply. Changes Python makes
 * on its own (the write-behind storing a file, a snapshot restored) are
 * dropped through Session.drop_attr, drop_name and drop_all. */
static void drop_entries(Session *s, const item *it) {
    ec_cache *c = s->entries;
    if (c == NULL) return;
    switch (it->kind) {
    case K_INIT: case K_FORGET: case K_LOOKUP: case K_GETATTR: case K_READ: case K_READLINK:
    case K_OPENDIR: case K_READDIRPLUS: case K_RELEASEDIR: case K_STATFS: case K_GETXATTR:
    case K_LISTXATTR: case K_READ_SEEN:
        return;
    case K_RENAME:
        drop_name(c, it->ino2, it->name2);
        ec_drop_attr(c, it->ino2);
        /* fall through */
    case K_UNLINK: case K_RMDIR: case K_MKNOD: case K_MKDIR: case K_SYMLINK: case K_CREATE:
        drop_name(c, it->ino, it->name);
        break;
    case K_LINK:
        drop_name(c, it->ino2, it->name);
        ec_drop_attr(c, it->ino2);
        break;
    case K_COPY_FILE_RANGE:
        ec_drop_attr(c, it->ino2);
        break;
    case K_SETXATTR: case K_REMOVEXATTR:
        ec_drop_bare(c, it->ino);
        break;
    case K_RELEASE:
        ec_drop_handle(c, it->fh);
        break;
    default:
        break;
    }
    ec_drop_attr(c, it->ino);
}

/* The directory a request adds a name to (it->name), or 0. */
static uint64_t adds_to(const item *it) {
    switch (it->kind) {
    case K_CREATE: case K_MKNOD: case K_MKDIR: case K_SYMLINK: return it->ino;
    case K_LINK: return it->ino2;
    default: return 0;
    }
}

/* A request arrived (lock held, before drop_entries): the directories it may
 * change in a way C will not see stop being complete; one it adds a name to
 * stays complete while it runs, its reply caching the name. */
static void arrive_in_complete(Session *s, const item *it) {
    ec_cache *c = s->entries;
    switch (it->kind) {
    case K_RENAME:
        ec_drop_complete(c, it->ino2);
        /* fall through */
    case K_UNLINK: case K_RMDIR:
        ec_drop_complete(c, it->ino);
        return;
    default:
        break;
    }
    uint64_t dir = adds_to(it);
    if (dir == 0 || !ec_is_complete(c, dir)) return;
    double timeout;
    size_t len = strlen(it->name);
    if (ec_get_name(c, dir, it->name, len, &timeout) != 0 || s->n_adding == ADDING_MAX ||
        len >= sizeof s->adding[0].name) {
        ec_drop_complete(c, dir);
        return;
    }
    adding *a = &s->adding[s->n_adding++];
    a->key = it;
    a->dir = dir;
    a->len = len;
    memcpy(a->name, it->name, len);
}

/* A request is answered (lock held); `entered`: with the entry it made, which
 * remember() then caches. */
static void depart_from_complete(Session *s, const item *it, int entered) {
    uint64_t dir = adds_to(it);
    if (dir == 0) return;
    for (size_t i = 0; i < s->n_adding; i++) {
        if (s->adding[i].key == (const void *)it) {
            s->adding[i] = s->adding[--s->n_adding];
            break;
        }
    }
    if (!entered) ec_drop_complete(s->entries, dir);
}

/* Whether a request that adds `name` to dir is unanswered (lock held). */
static int being_added(const Session *s, uint64_t dir, const char *name, size_t len) {
    for (size_t i = 0; i < s->n_adding; i++) {
        const adding *a = &s->adding[i];
        if (a->dir == dir && a->len == len && memcmp(a->name, name, len) == 0) return 1;
    }
    return 0;
}

/* Whether an item is a change C answered, which Python applies in order but
 * need not see at once: the inode or file is held or flushed as C answered.
 * Not a write answered here: Python takes it at once, while the kernel goes
 * on, or the fsync the kernel sends right after it would wait for it. */
static int answered_here(const item *it) {
    return it->kind == K_SETATTR_SEEN || it->kind == K_FLUSH_SEEN;
}

/* Whether an item holds its inode in the entry cache until Python applies it. */
static int holds(const item *it) { return it->kind == K_SETATTR_SEEN || it->kind == K_WRITE_SEEN; }

/* Appends to the queue for Python (lock held). */
static void enqueue(Session *s, item *it) {
    if (!answered_here(it)) s->n_urgent++;
    it->next = NULL;
    if (s->tail) s->tail->next = it; else s->head = it;
    s->tail = it;
}

static void push(Session *s, item *it) {
    pthread_mutex_lock(&s->lock);
    uint64_t changed = s->reads ? changes_content(it) : 0;
    if (changed) rc_drop(s->reads, changed);
    if (s->entries != NULL) arrive_in_complete(s, it);
    drop_entries(s, it);
    enqueue(s, it);
    pthread_mutex_unlock(&s->lock);
}

static item *new_item(fuse_req_t req, int kind) {
    item *it = calloc(1, sizeof *it);
    if (it == NULL) {
        if (req) fuse_reply_err(req, ENOMEM);
        return NULL;
    }
    it->req = req;
    it->kind = kind;
    if (req) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        it->uid = ctx->uid;
        it->gid = ctx->gid;
        it->pid = (uint32_t)ctx->pid;
        it->umask = ctx->umask;
    }
    return it;
}

static Session *of(fuse_req_t req) { return (Session *)fuse_req_userdata(req); }

/* ---- the read cache (its spans' buffers are released with the GIL) -------- */

static void drop_reads(Session *s, uint64_t ino) {
    if (s->reads == NULL) return;
    pthread_mutex_lock(&s->lock);
    rc_drop(s->reads, ino);
    pthread_mutex_unlock(&s->lock);
}

/* Gives back a span's buffer; needs the GIL. */
static void drop_view(Py_buffer *view) {
    PyBuffer_Release(view);
    PyMem_RawFree(view);
}

/* Releases the buffers of spans that went; needs the GIL. */
static void release_dead(Session *s) {
    if (s->reads == NULL) return;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        Py_buffer *view = rc_next_dead(s->reads);
        pthread_mutex_unlock(&s->lock);
        if (view == NULL) return;
        drop_view(view);
    }
}

static int copy_name(item *it, char **to, const char *name) {
    *to = strdup(name);
    if (*to == NULL) {
        fuse_reply_err(it->req, ENOMEM);
        item_free(it);
        return -1;
    }
    return 0;
}

/* ---- libfuse's callbacks (in Session.receive, without the GIL) ------------ */

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
    Session *s = userdata;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    if (s->dot_lookup && (conn->capable & FUSE_CAP_EXPORT_SUPPORT))
        conn->want |= FUSE_CAP_EXPORT_SUPPORT;
    if (s->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    if (s->acl && (conn->capable & FUSE_CAP_POSIX_ACL))
        conn->want |= FUSE_CAP_POSIX_ACL;
    s->wanted = conn->want;
    s->max_write = conn->max_write;
    s->max_readahead = conn->max_readahead;
    s->max_background = conn->max_background;
    s->congestion_threshold = conn->congestion_threshold;
    item *it = new_item(NULL, K_INIT);
    if (it) push(s, it);
}

#define WITH_FH(it, fi)                       \
    if (fi) { it->fh = fi->fh; it->has_fh = 1; it->fi = *fi; }

/* Answers a lookup from the entry cache; whether it did. The reference the
 * kernel takes is counted for Python (looked). */
static int lookup_in_c(Session *s, fuse_req_t req, fuse_ino_t parent, const char *name) {
    if (s->entries == NULL || parent >= s->cache_below || is_dot(name)) return 0;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    pthread_mutex_lock(&s->lock);
    uint64_t ino = ec_get_name(s->entries, parent, name, strlen(name), &e.entry_timeout);
    int hit = ino != 0 && ec_get_attr(s->entries, ino, &e.attr, &e.attr_timeout);
    if (ino == 0 && ec_is_complete(s->entries, parent)) {
        s->answered_in_c++;
        pthread_mutex_unlock(&s->lock);
        fuse_reply_err(req, ENOENT); /* not cached by the kernel: C's answer may change */
        return 1;
    }
    if (hit && s->n_looked == s->cap_looked) {
        size_t cap = s->cap_looked ? 2 * s->cap_looked : 256;
        uint64_t *grown = realloc(s->looked, cap * sizeof *grown);
        if (grown == NULL) hit = 0;
        else { s->looked = grown; s->cap_looked = cap; }
    }
    if (hit) {
        s->looked[s->n_looked++] = ino;
        s->answered_in_c++;
    }
    pthread_mutex_unlock(&s->lock);
    if (!hit) return 0;
    e.ino = ino;
    fuse_reply_entry(req, &e);
    return 1;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    if (lookup_in_c(of(req), req, parent, name)) return;
    item *it = new_item(req, K_LOOKUP);
    if (!it) return;
    it->ino = parent;
    if (copy_name(it, &it->name, name)) return;
    push(of(req), it);
}

static void queue_forgets(fuse_req_t req, size_t count, const uint64_t *pairs) {
    Session *s = of(req);
    item *it = new_item(NULL, K_FORGET);
    fuse_reply_none(req);
    if (!it) return;
    it->forgets = malloc(count * 2 * sizeof(uint64_t));
    if (it->forgets == NULL) { item_free(it); return; }
    memcpy(it->forgets, pairs, count * 2 * sizeof(uint64_t));
    it->nforgets = count;
    for (size_t i = 0; i < count; i++) drop_reads(s, pairs[2 * i]);
    push(s, it);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    uint64_t pair[2] = {ino, nlookup};
    queue_forgets(req, 1, pair);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
    uint64_t *pairs = malloc((count ? count : 1) * 2 * sizeof(uint64_t));
    if (pairs == NULL) { fuse_reply_none(req); return; }
    for (size_t i = 0; i < count; i++) {
        pairs[2 * i] = forgets[i].ino;
        pairs[2 * i + 1] = forgets[i].nlookup;
    }
    queue_forgets(req, count, pairs);
    free(pairs);
}

static void of_inode(fuse_req_t req, int kind, fuse_ino_t ino) {
    item *it = new_item(req, kind);
    if (!it) return;
    it->ino = ino;
    push(of(req), it);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    Session *s = of(req);
    if (s->entries != NULL && ino < s->cache_below) {
        struct stat st;
        double timeout;
        pthread_mutex_lock(&s->lock);
        int hit = ec_get_attr(s->entries, ino, &st, &timeout);
        if (hit) s->answered_in_c++;
        pthread_mutex_unlock(&s->lock);
        if (hit) {
            fuse_reply_attr(req, &st, timeout);
            return;
        }
    }
    of_inode(req, K_GETATTR, ino);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) { of_inode(req, K_READLINK, ino); }

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) { of_inode(req, K_STATFS, ino); }

/* The changes a setattr answered in C may make: all but a size, which Python
 * must apply to the file's data first. */
#define SET_IN_C                                                                          \
    (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_ATIME |    \
     FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)

/* Makes a setattr's changes to st, at `now`, and writes them into the item
 * for Python with every time explicit (no _NOW, and the ctime set), so that
 * Python's row ends as st does. */
static void change_attr(struct stat *st, item *it, const struct stat *to, int to_set,
                        struct timespec now) {
    it->st = *to;
    it->to_set = to_set & ~(FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        it->st.st_atim = now;
        it->to_set |= FUSE_SET_ATTR_ATIME;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        it->st.st_mtim = now;
        it->to_set |= FUSE_SET_ATTR_MTIME;
    }
    if (!(to_set & FUSE_SET_ATTR_CTIME)) it->st.st_ctim = now;
    it->to_set |= FUSE_SET_ATTR_CTIME;
    if (to_set & FUSE_SET_ATTR_MODE) st->st_mode = (st->st_mode & S_IFMT) | (to->st_mode & 07777);
    if (to_set & FUSE_SET_ATTR_UID) st->st_uid = to->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) st->st_gid = to->st_gid;
    if (it->to_set & FUSE_SET_ATTR_ATIME) st->st_atim = it->st.st_atim;
    if (it->to_set & FUSE_SET_ATTR_MTIME) st->st_mtim = it->st.st_mtim;
    st->st_ctim = it->st.st_ctim;
}

/* Folds a later change of the same inode into one queued for Python with
 * nothing between them (an untar's futimens, fchown and fchmod), so Python
 * applies them as one: what each sets, the later one's value. */
static void merge_change(item *into, const item *it) {
    if (it->to_set & FUSE_SET_ATTR_MODE) into->st.st_mode = it->st.st_mode;
    if (it->to_set & FUSE_SET_ATTR_UID) into->st.st_uid = it->st.st_uid;
    if (it->to_set & FUSE_SET_ATTR_GID) into->st.st_gid = it->st.st_gid;
    if (it->to_set & FUSE_SET_ATTR_ATIME) into->st.st_atim = it->st.st_atim;
    if (it->to_set & FUSE_SET_ATTR_MTIME) into->st.st_mtim = it->st.st_mtim;
    into->st.st_ctim = it->st.st_ctim;
    into->to_set |= it->to_set;
}

/* Queues a change answered in C (lock held); whether it was merged into the
 * last one queued instead, whose hold it then shares. */
static int queue_change(Session *s, item *it) {
    item *last = s->tail;
    if (last == NULL || last->kind != K_SETATTR_SEEN || last->ino != it->ino) {
        enqueue(s, it);
        return 0;
    }
    merge_change(last, it);
    ec_unhold(s->entries, it->ino);
    s->setattrs_merged++;
    return 1;
}

/* Answers a setattr in C; whether it did. Only of an inode whose attributes
 * are cached, with no size to set, and a mode only where no ACL can follow it
 * (no stored xattr): the new attributes are cached, held against Python's
 * older ones until Python has applied the change, which is queued for it in
 * order with the requests that follow (docs/design.md). */
static int setattr_in_c(Session *s, fuse_req_t req, fuse_ino_t ino, const struct stat *to,
                        int to_set) {
    if (s->entries == NULL || ino >= s->cache_below || (to_set & ~SET_IN_C)) return 0;
    item *it = new_item(NULL, K_SETATTR_SEEN);
    if (it == NULL) return 0;
    it->ino = ino;
    /* the clock the kernel stamps a cached file's times with, as Python's
     * now_ns: a finer one may read past its next stamp, and a ctime go back */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    struct stat st;
    double timeout;
    pthread_mutex_lock(&s->lock);
    int done = ec_get_attr(s->entries, ino, &st, &timeout) &&
               (!(to_set & FUSE_SET_ATTR_MODE) || ec_is_bare(s->entries, ino));
    if (done) {
        change_attr(&st, it, to, to_set, now);
        done = ec_change_attr(s->entries, &st, timeout) == 0;
    }
    int merged = 0;
    if (done) {
        merged = queue_change(s, it);
        s->answered_in_c++;
    }
    pthread_mutex_unlock(&s->lock);
    if (!done || merged) item_free(it);
    if (!done) return 0;
    fuse_reply_attr(req, &st, timeout);
    return 1;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
    if (setattr_in_c(of(req), req, ino, attr, to_set)) return;
    item *it = new_item(req, K_SETATTR);
    if (!it) return;
    it->ino = ino;
    it->st = *attr;
    it->to_set = to_set;
    WITH_FH(it, fi)
    push(of(req), it);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev) {
    item *it = new_item(req, K_MKNOD);
    if (!it) return;
    it->ino = parent;
    it->mode = mode;
    it->rdev = rdev;
    if (copy_name(it, &it->name, name)) return;
    push(of(req), it);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
    item *it = new_item(req, K_MKDIR);
    if (!it) return;
    it->ino = parent;
    it->mode = (mode & 07777) | S_IFDIR;
    if (copy_name(it, &it->name, name)) return;
    push(of(req), it);
}

static void named(fuse_req_t req, int kind, fuse_ino_t parent, const char *name) {
    item *it = new_item(req, kind);
    if (!it) return;
    it->ino = parent;
    if (copy_name(it, &it->name, name)) return;
    push(of(req), it);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
    named(req, K_UNLINK, parent, name);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
    named(req, K_RMDIR, parent, name);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
    item *it = new_item(req, K_SYMLINK);
    if (!it) return;
    it->ino = parent;
    if (copy_name(it, &it->name, name)) return;
    if (copy_name(it, &it->name2, link)) return;
    push(of(req), it);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
    item *it = new_item(req, K_RENAME);
    if (!it) return;
    it->ino = parent;
    it->ino2 = newparent;
    it->flags = (int)flags;
    if (copy_name(it, &it->name, name)) return;
    if (copy_name(it, &it->name2, newname)) return;
    push(of(req), it);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
    item *it = new_item(req, K_LINK);
    if (!it) return;
    it->ino = ino;
    it->ino2 = newparent;
    if (copy_name(it, &it->name, newname)) return;
    push(of(req), it);
}

static void with_fi(fuse_req_t req, int kind, fuse_ino_t ino, struct fuse_file_info *fi) {
    item *it = new_item(req, kind);
    if (!it) return;
    it->ino = ino;
    WITH_FH(it, fi)
    if (fi) it->flags = fi->flags;
    push(of(req), it);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    with_fi(req, K_OPEN, ino, fi);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    with_fi(req, K_OPENDIR, ino, fi);
}

/* Answers a flush (close) in C; whether it did. Only of a handle Python
 * opened and has not released, and only while Python says no flush could fail
 * (the pool has room for every unstored write, and no store failed): the flush
 * is queued for Python to make in order, as a setattr answered here is. */
static int flush_in_c(Session *s, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    if (s->entries == NULL || fi == NULL) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    item *it = new_item(NULL, K_FLUSH_SEEN);
    if (it == NULL) return 0;
    it->ino = ino;
    WITH_FH(it, fi)
    pthread_mutex_lock(&s->lock);
    int done = (double)now.tv_sec + (double)now.tv_nsec / 1e9 < s->flush_until &&
               ec_has_handle(s->entries, fi->fh);
    if (done) {
        drop_entries(s, it);
        enqueue(s, it);
        s->answered_in_c++;
    }
    pthread_mutex_unlock(&s->lock);
    if (!done) {
        item_free(it);
        return 0;
    }
    fuse_reply_err(req, 0);
    return 1;
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    if (flush_in_c(of(req), req, ino, fi)) return;
    with_fi(req, K_FLUSH, ino, fi);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    with_fi(req, K_RELEASE, ino, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    with_fi(req, K_RELEASEDIR, ino, fi);
}

static void sized(fuse_req_t req, int kind, fuse_ino_t ino, size_t size, off_t off,
                  struct fuse_file_info *fi) {
    item *it = new_item(req, kind);
    if (!it) return;
    it->ino = ino;
    it->size = size;
    it->off = off;
    WITH_FH(it, fi)
    push(of(req), it);
}

/* A read's item, for the waiting list or a read_seen note (lock held); NULL
 * when out of memory (nothing is answered: the caller falls back). */
static item *read_item(int kind, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       const struct fuse_file_info *fi) {
    item *it = calloc(1, sizeof *it);
    if (it == NULL) return NULL;
    it->kind = kind;
    it->req = req;
    it->ino = ino;
    it->size = size;
    it->off = off;
    it->fh = fi->fh;
    it->has_fh = 1;
    return it;
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
    Session *s = of(req);
    if (s->reads != NULL && size > 0 && off >= 0 && fi != NULL) {
        struct iovec iov[READ_IOV];
        int fresh = 0, done = 0;
        pthread_mutex_lock(&s->lock);
        int n = rc_get(s->reads, ino, (uint64_t)off, size, iov, READ_IOV, &fresh);
        if (n > 0) {
            /* under the lock: the spans' buffers cannot be released meanwhile */
            fuse_reply_iov(req, iov, n);
            s->reads_in_c++;
            done = 1;
        } else if (rc_covered(s->reads, ino, (uint64_t)off, size)) {
            item *it = read_item(K_READ, req, ino, size, off, fi);
            if (it != NULL) {
                it->next = s->waiting;
                s->waiting = it;
                s->n_waiting++;
                done = fresh = 1;
            }
        }
        item *seen = fresh ? read_item(K_READ_SEEN, NULL, ino, size, off, fi) : NULL;
        if (seen) enqueue(s, seen);
        pthread_mutex_unlock(&s->lock);
        if (done) return;
    }
    sized(req, K_READ, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi) {
    sized(req, K_READDIRPLUS, ino, size, off, fi);
}

/* Whether a write's data should stay in the receive buffer it arrived in, the
 * item taking the buffer: a large write's copy cost the trio thread about a
 * tenth of a millisecond per MB. Only writes of at least TAKE_MIN, so a held
 * buffer (about max_write) is at least half data; only buffers libfuse read
 * into memory, and only data inside what it read. */
#define TAKE_MIN (512 * 1024)
static int takes_buffer(const Session *s, const char *data, size_t size) {
    const char *mem = s->buf.mem;
    return size >= TAKE_MIN && mem != NULL && !(s->buf.flags & FUSE_BUF_IS_FD) &&
           data >= mem && size <= s->buf.size && (size_t)(data - mem) <= s->buf.size - size;
}

/* Answers a write whose data `it` holds in C; whether it did. Only of a handle
 * Python opened and has not released, of a regular file whose attributes are
 * cached, within the bytes Python's budget has room for (write_room): the
 * write is queued for Python to take in order, as a setattr answered here is,
 * and the inode held with its new size until Python has taken it. */
static int write_in_c(Session *s, item *it) {
    if (s->entries == NULL || !it->has_fh || it->ino >= s->cache_below || it->off < 0 ||
        it->data_len == 0 || (uint64_t)it->off > (uint64_t)INT64_MAX - it->data_len)
        return 0;
    size_t size = it->data_len;
    struct stat st;
    double timeout;
    pthread_mutex_lock(&s->lock);
    int done = size <= s->write_room && ec_has_handle(s->entries, it->fh) &&
               ec_get_attr(s->entries, it->ino, &st, &timeout) && S_ISREG(st.st_mode);
    if (done) {
        uint64_t end = (uint64_t)it->off + size;
        if (end > (uint64_t)st.st_size) {
            st.st_size = (off_t)end;
            st.st_blocks = (blkcnt_t)((end + 511) / 512);
        }
        done = ec_change_attr(s->entries, &st, timeout) == 0;
    }
    fuse_req_t req = it->req;
    if (done) {
        if (s->reads) rc_drop(s->reads, it->ino);
        it->kind = K_WRITE_SEEN;
        it->req = NULL;
        enqueue(s, it);
        s->write_room -= size;
        s->answered_in_c++;
        s->writes_in_c++;
    }
    pthread_mutex_unlock(&s->lock);
    if (done) fuse_reply_write(req, size);
    return done;
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
    item *it = new_item(req, K_WRITE);
    if (!it) return;
    it->ino = ino;
    it->off = off;
    WITH_FH(it, fi)
    it->data_len = size;
    Session *s = of(req);
    if (takes_buffer(s, buf, size)) {
        it->block = s->buf.mem;
        it->data = (char *)buf;
        s->buf.mem = NULL; /* libfuse allocates the next receive's */
        push(s, it);
        return;
    }
    it->data = malloc(size ? size : 1);
    if (it->data == NULL) { fuse_reply_err(req, ENOMEM); item_free(it); return; }
    memcpy(it->data, buf, size);
    if (write_in_c(s, it)) return;
    push(s, it);
}

static void synced(fuse_req_t req, int kind, fuse_ino_t ino, int datasync,
                   struct fuse_file_info *fi) {
    item *it = new_item(req, kind);
    if (!it) return;
    it->ino = ino;
    it->flags = datasync;
    WITH_FH(it, fi)
    push(of(req), it);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
    synced(req, K_FSYNC, ino, datasync, fi);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi) {
    synced(req, K_FSYNCDIR, ino, datasync, fi);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags) {
    item *it = new_item(req, K_SETXATTR);
    if (!it) return;
    it->ino = ino;
    it->flags = flags;
    if (copy_name(it, &it->name, name)) return;
    it->data = malloc(size ? size : 1);
    if (it->data == NULL) { fuse_reply_err(req, ENOMEM); item_free(it); return; }
    memcpy(it->data, value, size);
    it->data_len = size;
    push(of(req), it);
}

/* Whether ino is known to have no stored xattr (so any name but a computed
 * one has no value), from the entry cache. */
static int is_bare(Session *s, fuse_ino_t ino) {
    if (s->entries == NULL || ino >= s->cache_below) return 0;
    pthread_mutex_lock(&s->lock);
    int bare = ec_is_bare(s->entries, ino);
    if (bare) s->answered_in_c++;
    pthread_mutex_unlock(&s->lock);
    return bare;
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
    Session *s = of(req);
    if (s->no_capabilities && strcmp(name, "security.capability") == 0) {
        s->answered_in_c++;
        fuse_reply_err(req, ENODATA);
        return;
    }
    size_t computed = strlen(s->computed_xattrs);
    if ((computed == 0 || strncmp(name, s->computed_xattrs, computed) != 0) && is_bare(s, ino)) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    item *it = new_item(req, K_GETXATTR);
    if (!it) return;
    it->ino = ino;
    it->size = size;
    if (copy_name(it, &it->name, name)) return;
    push(of(req), it);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    if (is_bare(of(req), ino)) {
        if (size == 0) fuse_reply_xattr(req, 0);
        else fuse_reply_buf(req, NULL, 0);
        return;
    }
    item *it = new_item(req, K_LISTXATTR);
    if (!it) return;
    it->ino = ino;
    it->size = size;
    push(of(req), it);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
    named(req, K_REMOVEXATTR, ino, name);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
    item *it = new_item(req, K_CREATE);
    if (!it) return;
    it->ino = parent;
    it->mode = mode;
    it->fi = *fi;
    it->flags = fi->flags;
    if (copy_name(it, &it->name, name)) return;
    push(of(req), it);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
    item *it = new_item(req, K_FALLOCATE);
    if (!it) return;
    it->ino = ino;
    it->flags = mode;
    it->off = offset;
    it->off2 = length;
    WITH_FH(it, fi)
    push(of(req), it);
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi) {
    item *it = new_item(req, K_LSEEK);
    if (!it) return;
    it->ino = ino;
    it->off = off;
    it->flags = whence;
    WITH_FH(it, fi)
    push(of(req), it);
}

static void ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags) {
    item *it = new_item(req, K_COPY_FILE_RANGE);
    if (!it) return;
    it->ino = ino_in;
    it->ino2 = ino_out;
    it->off = off_in;
    it->off2 = off_out;
    it->fh = fi_in->fh;
    it->fh2 = fi_out->fh;
    it->size = len;
    it->flags = flags;
    push(of(req), it);
}

static const struct fuse_lowlevel_ops OPS = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .symlink = ll_symlink,
    .rename = ll_rename,
    .link = ll_link,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .fsync = ll_fsync,
    .opendir = ll_opendir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .fsyncdir = ll_fsyncdir,
    .statfs = ll_statfs,
    .setxattr = ll_setxattr,
    .getxattr = ll_getxattr,
    .listxattr = ll_listxattr,
    .removexattr = ll_removexattr,
    .create = ll_create,
    .fallocate = ll_fallocate,
    .lseek = ll_lseek,
    .copy_file_range = ll_copy_file_range,
};

/* ---- threads ------------------------------------------------------------- */

static void *notifier_main(void *arg) {
    Session *s = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->notices_head == NULL && !s->notifier_stop)
            pthread_cond_wait(&s->notice_cond, &s->lock);
        notice *n = s->notices_head;
        if (n == NULL) break;
        s->notices_head = n->next;
        if (s->notices_head == NULL) s->notices_tail = NULL;
        pthread_mutex_unlock(&s->lock);
        fuse_lowlevel_notify_inval_entry(s->se, n->parent, n->name, strlen(n->name));
        free(n->name);
        free(n);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- Session (Python) ---------------------------------------------------- */

static PyObject *Session_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    (void)args; (void)kw;
    Session *s = (Session *)type->tp_alloc(type, 0);
    if (s == NULL) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->notice_cond, NULL);
    return (PyObject *)s;
}

static int Session_init(Session *s, PyObject *args, PyObject *kw) {
    static char *names[] = {"mountpoint", "options", "writeback", "acl", "dot_lookup",
                            "read_cache", "entry_cache", "cache_below", "computed_xattrs", NULL};
    const char *mountpoint, *options, *computed = "";
    Py_ssize_t read_cache = 0, entry_cache = 0, computed_len = 0;
    unsigned long long cache_below = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ssppp|nnKy#", names, &mountpoint, &options,
                                     &s->writeback, &s->acl, &s->dot_lookup, &read_cache,
                                     &entry_cache, &cache_below, &computed, &computed_len))
        return -1;
    if ((size_t)computed_len >= sizeof s->computed_xattrs || strlen(computed) != (size_t)computed_len) {
        PyErr_SetString(PyExc_ValueError, "computed_xattrs: a short prefix without NUL");
        return -1;
    }
    memcpy(s->computed_xattrs, computed, (size_t)computed_len + 1);
    if (s->se != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "session already made");
        return -1;
    }
    if (read_cache > 0 && (s->reads = rc_new((size_t)read_cache)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (entry_cache > 0 && (s->entries = ec_new((size_t)entry_cache)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->cache_below = cache_below;
    char *argv[] = {"dwfs", "-o", (char *)options, NULL};
    struct fuse_args fargs = FUSE_ARGS_INIT(3, argv);
    s->se = fuse_session_new(&fargs, &OPS, sizeof OPS, s);
    if (s->se == NULL) {
        PyErr_SetString(PyExc_OSError, "libfuse refused the mount options");
        return -1;
    }
    int res;
    Py_BEGIN_ALLOW_THREADS
    res = fuse_session_mount(s->se, mountpoint);
    Py_END_ALLOW_THREADS
    if (res != 0) {
        fuse_session_destroy(s->se);
        s->se = NULL;
        PyErr_Format(PyExc_OSError, "cannot mount at %s", mountpoint);
        return -1;
    }
    s->mounted = 1;
    return 0;
}

static PyObject *Session_start(Session *s, PyObject *noargs) {
    (void)noargs;
    if (s->se == NULL || s->started) {
        PyErr_SetString(PyExc_ValueError, "cannot start: no session, or started");
        return NULL;
    }
    int fd = fuse_session_fd(s->se);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (pthread_create(&s->notifier, NULL, notifier_main, s) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    s->started = 1;
    Py_RETURN_NONE;
}

/* Answers a malformed request EINVAL (unless it is one the kernel expects no
 * answer to) without handing it to libfuse. */
static void reject(Session *s, const void *msg) {
    struct fuse_in_header in;
    memcpy(&in, msg, sizeof in);
    s->rejected++;
    if (dwfs_fuse_no_reply(in.opcode)) return;
    struct fuse_out_header out = {.len = sizeof out, .error = -EINVAL, .unique = in.unique};
    ssize_t written = write(fuse_session_fd(s->se), &out, sizeof out);
    (void)written; /* the kernel refusing it is all that could happen */
}

/* Retries a receive that found nothing for up to spin_ns: a lone caller's
 * next request usually comes soon after our reply, and sleeping in ppoll
 * until then costs more than the wait (a timer armed and cancelled, a
 * context switch each way, and on a virtual machine a wake-up of an idle
 * vCPU). The caller chooses how long (docs/performance.md). */
static int spin(Session *s, long long spin_ns) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int res = fuse_session_receive_buf(s->se, &s->buf);
        if (res != -EAGAIN) return res;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long ns = (now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec);
        if (ns > spin_ns) return res;
    }
}

/* Receive and queue up to `limit` requests on the calling (Python) thread,
 * without blocking and without the GIL; how many. Sets ended when the kernel
 * ends the session. */
static PyObject *Session_receive(Session *s, PyObject *args) {
    long limit, wait_us = 0, spin_us = 0;
    if (!PyArg_ParseTuple(args, "l|ll", &limit, &wait_us, &spin_us)) return NULL;
    if (s->se == NULL || !s->started) return PyLong_FromLong(0);
    long got = 0, waited_us = 0;
    int ended = 0, spun = 0;
    Py_BEGIN_ALLOW_THREADS
    while (got < limit && !fuse_session_exited(s->se)) {
        int res = fuse_session_receive_buf(s->se, &s->buf);
        if (res == -EAGAIN && wait_us > 0 && spin_us > 0 && s->n_urgent == 0 && !spun) {
            spun = 1; /* once per request received: a mount gone quiet spins once */
            res = spin(s, spin_us * 1000LL);
        }
        if (res == -EINTR) continue;
        if (res == -EAGAIN && wait_us > 0 && s->n_urgent == 0 && waited_us + wait_us <= MAX_WAIT_US) {
            /* nothing for Python yet (or only requests answered here, whose
             * changes can wait for the next one, as they are held): a lone
             * caller's next request usually comes within microseconds of our
             * reply, and waiting for it here is cheaper than parking the trio
             * thread in epoll and waking it again */
            struct pollfd pfd = {.fd = fuse_session_fd(s->se), .events = POLLIN};
            struct timespec ts = {.tv_sec = 0, .tv_nsec = wait_us * 1000};
            waited_us += wait_us;
            if (ppoll(&pfd, 1, &ts, NULL) > 0) continue;
            break;
        }
        if (res == -EAGAIN) break;
        if (res <= 0) { ended = 1; break; }
        got++;
        spun = 0;
        if (!(s->buf.flags & FUSE_BUF_IS_FD) && !dwfs_fuse_request_ok(s->buf.mem, (size_t)res)) {
            reject(s, s->buf.mem);
            continue;
        }
        fuse_session_process_buf(s->se, &s->buf);
    }
    if (fuse_session_exited(s->se)) ended = 1;
    Py_END_ALLOW_THREADS
    if (ended) {
        pthread_mutex_lock(&s->lock);
        s->ended = 1;
        pthread_mutex_unlock(&s->lock);
    }
    return PyLong_FromLong(got);
}

/* Nanoseconds since the epoch, saturated to what 64 bits hold (the years
 * 1678 to 2262, the range the vfs keeps times in). */
static long long ns_of(const struct timespec *t) {
    long long ns;
    if (__builtin_mul_overflow((long long)t->tv_sec, 1000000000LL, &ns) ||
        __builtin_add_overflow(ns, (long long)t->tv_nsec, &ns))
        return t->tv_sec < 0 ? LLONG_MIN : LLONG_MAX;
    return ns;
}

/* A time in nanoseconds as the kernel takes it: nanoseconds within 0..1e9-1,
 * also before 1970. */
static struct timespec timespec_of(long long ns) {
    long long sec = ns / 1000000000LL, rem = ns % 1000000000LL;
    if (rem < 0) {
        rem += 1000000000LL;
        sec -= 1;
    }
    return (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = (long)rem};
}

static PyObject *attr_or_none(uint64_t has, uint64_t fh) {
    if (!has) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(fh);
}

/* Answers err to a request that will not reach Python (out of memory), and
 * frees it: what C counted on its reply or its change being applied ends. */
static void abandon(Session *s, item *it, int err) {
    if (s->entries != NULL) {
        pthread_mutex_lock(&s->lock);
        depart_from_complete(s, it, 0);
        if (holds(it)) {
            ec_unhold(s->entries, it->ino);
            ec_drop_attr(s->entries, it->ino);
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (it->req) fuse_reply_err(it->req, err);
    item_free(it);
}

/* The Python tuple for one request: (Request, kind, *arguments). */
static PyObject *as_tuple(Session *s, item *it) {
    Request *r = PyObject_New(Request, &RequestType);
    if (r == NULL) {
        abandon(s, it, ENOMEM);
        return NULL;
    }
    r->it = it;
    r->answered = it->req == NULL;
    Py_INCREF(s);
    r->session = (PyObject *)s;
    PyObject *req = (PyObject *)r;
    const char *kind = KIND_NAMES[it->kind];
    switch (it->kind) {
    case K_INIT:
        return Py_BuildValue("(Ns)", req, kind);
    case K_FORGET: {
        PyObject *pairs = PyList_New((Py_ssize_t)it->nforgets);
        if (pairs == NULL) { Py_DECREF(req); return NULL; }
        for (size_t i = 0; i < it->nforgets; i++) {
            PyObject *p = Py_BuildValue("(KK)", (unsigned long long)it->forgets[2 * i],
                                        (unsigned long long)it->forgets[2 * i + 1]);
            if (p == NULL) { Py_DECREF(pairs); Py_DECREF(req); return NULL; }
            PyList_SET_ITEM(pairs, (Py_ssize_t)i, p);
        }
        return Py_BuildValue("(NsN)", req, kind, pairs);
    }
    case K_LOOKUP: case K_UNLINK: case K_RMDIR: case K_REMOVEXATTR:
        return Py_BuildValue("(NsKy)", req, kind, (unsigned long long)it->ino, it->name);
    case K_GETATTR: case K_READLINK: case K_STATFS:
        return Py_BuildValue("(NsK)", req, kind, (unsigned long long)it->ino);
    case K_SETATTR: case K_SETATTR_SEEN: {
        PyObject *fh = attr_or_none((uint64_t)it->has_fh, it->fh);
        if (fh == NULL) { Py_DECREF(req); return NULL; }
        return Py_BuildValue(
            "(NsKiIIIKLLLN)", req, kind, (unsigned long long)it->ino, it->to_set,
            (unsigned)it->st.st_mode, (unsigned)it->st.st_uid, (unsigned)it->st.st_gid,
            (unsigned long long)it->st.st_size,
            ns_of(&it->st.st_atim), ns_of(&it->st.st_mtim), ns_of(&it->st.st_ctim), fh);
    }
    case K_MKNOD: case K_MKDIR:
        return Py_BuildValue("(NsKyIKIII)", req, kind, (unsigned long long)it->ino, it->name,
                             it->mode, (unsigned long long)it->rdev, it->uid, it->gid, it->umask);
    case K_SYMLINK:
        return Py_BuildValue("(NsKyyII)", req, kind, (unsigned long long)it->ino, it->name,
                             it->name2, it->uid, it->gid);
    case K_RENAME:
        return Py_BuildValue("(NsKyKyi)", req, kind, (unsigned long long)it->ino, it->name,
                             (unsigned long long)it->ino2, it->name2, it->flags);
    case K_LINK:
        return Py_BuildValue("(NsKKy)", req, kind, (unsigned long long)it->ino,
                             (unsigned long long)it->ino2, it->name);
    case K_OPEN: case K_OPENDIR:
        return Py_BuildValue("(NsKi)", req, kind, (unsigned long long)it->ino, it->flags);
    case K_CREATE:
        return Py_BuildValue("(NsKyIiIII)", req, kind, (unsigned long long)it->ino, it->name,
                             it->mode, it->flags, it->uid, it->gid, it->umask);
    case K_READ:
        return Py_BuildValue("(NsKLKK)", req, kind, (unsigned long long)it->fh,
                             (long long)it->off, (unsigned long long)it->size,
                             (unsigned long long)it->ino);
    case K_READ_SEEN:
        return Py_BuildValue("(NsKLK)", req, kind, (unsigned long long)it->fh,
                             (long long)it->off, (unsigned long long)it->size);
    case K_READDIRPLUS:
        return Py_BuildValue("(NsKLK)", req, kind, (unsigned long long)it->fh,
                             (long long)it->off, (unsigned long long)it->size);
    case K_WRITE: case K_WRITE_SEEN: {
        PyObject *view = PyMemoryView_FromObject(req);
        if (view == NULL) { Py_DECREF(req); return NULL; }
        if (it->kind == K_WRITE)
            return Py_BuildValue("(NsKLN)", req, kind, (unsigned long long)it->fh,
                                 (long long)it->off, view);
        return Py_BuildValue("(NsKLNK)", req, kind, (unsigned long long)it->fh,
                             (long long)it->off, view, (unsigned long long)it->ino);
    }
    case K_FLUSH: case K_RELEASE: case K_RELEASEDIR: case K_FLUSH_SEEN:
        return Py_BuildValue("(NsK)", req, kind, (unsigned long long)it->fh);
    case K_FSYNC: case K_FSYNCDIR:
        return Py_BuildValue("(NsKi)", req, kind, (unsigned long long)it->fh, it->flags);
    case K_SETXATTR:
        return Py_BuildValue("(NsKyy#i)", req, kind, (unsigned long long)it->ino, it->name,
                             it->data, (Py_ssize_t)it->data_len, it->flags);
    case K_GETXATTR:
        return Py_BuildValue("(NsKy)", req, kind, (unsigned long long)it->ino, it->name);
    case K_LISTXATTR:
        return Py_BuildValue("(NsK)", req, kind, (unsigned long long)it->ino);
    case K_FALLOCATE:
        return Py_BuildValue("(NsKiLL)", req, kind, (unsigned long long)it->fh, it->flags,
                             (long long)it->off, (long long)it->off2);
    case K_LSEEK:
        return Py_BuildValue("(NsKLi)", req, kind, (unsigned long long)it->fh,
                             (long long)it->off, it->flags);
    case K_COPY_FILE_RANGE:
        return Py_BuildValue("(NsKLKLKi)", req, kind, (unsigned long long)it->fh,
                             (long long)it->off, (unsigned long long)it->fh2, (long long)it->off2,
                             (unsigned long long)it->size, it->flags);
    default:
        Py_DECREF(req);
        PyErr_SetString(PyExc_RuntimeError, "unknown request kind");
        return NULL;
    }
}

/* The inodes of the lookups answered in C since the last call, one per
 * lookup: Python counts them before it handles the requests received with
 * them, since a forget among those may be of a reference one took. */
static PyObject *Session_looked(Session *s, PyObject *noargs) {
    (void)noargs;
    pthread_mutex_lock(&s->lock);
    PyObject *inos = PyList_New((Py_ssize_t)s->n_looked);
    for (size_t i = 0; inos != NULL && i < s->n_looked; i++) {
        PyObject *ino = PyLong_FromUnsignedLongLong(s->looked[i]);
        if (ino == NULL) { Py_CLEAR(inos); break; }
        PyList_SET_ITEM(inos, (Py_ssize_t)i, ino);
    }
    if (inos != NULL) s->n_looked = 0;
    pthread_mutex_unlock(&s->lock);
    return inos;
}

static PyObject *Session_fetch(Session *s, PyObject *noargs) {
    (void)noargs;
    release_dead(s);
    pthread_mutex_lock(&s->lock);
    item *it = s->head;
    s->head = s->tail = NULL;
    s->n_urgent = 0;
    pthread_mutex_unlock(&s->lock);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    while (it != NULL) {
        item *next = it->next;
        it->next = NULL;
        PyObject *t = as_tuple(s, it); /* owns it from here, even when it fails */
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            while (next) { item *n = next->next; abandon(s, next, EIO); next = n; }
            return NULL;
        }
        Py_DECREF(t);
        it = next;
    }
    return out;
}

/* Python's tree changed a name, or the kernel invalidated one: a complete
 * directory stays so only when a request under way adds that name (its
 * reply caches it). */
static void forget_name_in_c(Session *s, uint64_t parent, const char *name, size_t len) {
    if (s->entries == NULL) return;
    pthread_mutex_lock(&s->lock);
    uint64_t ino = ec_drop_name(s->entries, parent, name, len);
    if (ino != 0 || !being_added(s, parent, name, len)) ec_drop_complete(s->entries, parent);
    if (ino) ec_drop_attr(s->entries, ino);
    pthread_mutex_unlock(&s->lock);
}

static void forget_attr_in_c(Session *s, uint64_t ino, int xattrs) {
    if (s->entries == NULL) return;
    pthread_mutex_lock(&s->lock);
    ec_drop_attr(s->entries, ino);
    if (xattrs) ec_drop_bare(s->entries, ino);
    pthread_mutex_unlock(&s->lock);
}

static PyObject *Session_drop_attr(Session *s, PyObject *arg) {
    unsigned long long ino = PyLong_AsUnsignedLongLong(arg);
    if (ino == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    forget_attr_in_c(s, ino, 0);
    Py_RETURN_NONE;
}

static PyObject *Session_drop_name(Session *s, PyObject *args) {
    unsigned long long parent;
    const char *name;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "Ky#", &parent, &name, &len)) return NULL;
    forget_name_in_c(s, parent, name, (size_t)len);
    Py_RETURN_NONE;
}

static PyObject *Session_bare(Session *s, PyObject *arg) {
    unsigned long long ino = PyLong_AsUnsignedLongLong(arg);
    if (ino == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    int noted = 0;
    if (s->entries != NULL && ino < s->cache_below) {
        pthread_mutex_lock(&s->lock);
        noted = ec_set_bare(s->entries, ino) == 0;
        pthread_mutex_unlock(&s->lock);
    }
    return PyBool_FromLong(noted);
}

static PyObject *Session_drop_xattrs(Session *s, PyObject *arg) {
    unsigned long long ino = PyLong_AsUnsignedLongLong(arg);
    if (ino == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    forget_attr_in_c(s, ino, 1);
    Py_RETURN_NONE;
}

static int parse_attr(PyObject *t, struct stat *st, double *timeout);

/* Session.applied(ino, attr): Python applied a setattr or write C answered, and attr
 * (None: it could not) is the inode's as they stand. Once every change C
 * answered is applied, they are what C answers from. */
static PyObject *Session_applied(Session *s, PyObject *args) {
    unsigned long long ino;
    PyObject *attr;
    if (!PyArg_ParseTuple(args, "KO", &ino, &attr)) return NULL;
    struct stat st;
    double timeout;
    if (attr != Py_None && parse_attr(attr, &st, &timeout) < 0) return NULL;
    if (s->entries != NULL) {
        pthread_mutex_lock(&s->lock);
        if (ec_unhold(s->entries, ino) == 0) {
            if (attr == Py_None || (uint64_t)st.st_ino != ino) ec_drop_attr(s->entries, ino);
            else ec_put_attr(s->entries, &st, timeout);
        }
        pthread_mutex_unlock(&s->lock);
    }
    Py_RETURN_NONE;
}

/* Session.answer_flushes(until): flushes of open files are answered in C
 * until then (time.monotonic(); 0: no more). */
static PyObject *Session_answer_flushes(Session *s, PyObject *arg) {
    double until = PyFloat_AsDouble(arg);
    if (until == -1.0 && PyErr_Occurred()) return NULL;
    pthread_mutex_lock(&s->lock);
    s->flush_until = until;
    pthread_mutex_unlock(&s->lock);
    Py_RETURN_NONE;
}

/* Session.answer_writes(nbytes): writes of open files are answered in C until
 * they add up to nbytes, or Python says again. */
static PyObject *Session_answer_writes(Session *s, PyObject *arg) {
    Py_ssize_t nbytes = PyLong_AsSsize_t(arg);
    if (nbytes == -1 && PyErr_Occurred()) return NULL;
    if (nbytes < 0) {
        PyErr_SetString(PyExc_ValueError, "a negative number of bytes");
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    s->write_room = (size_t)nbytes;
    pthread_mutex_unlock(&s->lock);
    Py_RETURN_NONE;
}

/* Session.put_attr(attr): getattr and lookups of the inode may be answered from
 * these attributes (Python's, as of now) until something drops them. */
static PyObject *Session_put_attr(Session *s, PyObject *arg) {
    struct stat st;
    double timeout;
    if (parse_attr(arg, &st, &timeout) < 0) return NULL;
    if (s->entries != NULL && (uint64_t)st.st_ino != 0 && (uint64_t)st.st_ino < s->cache_below) {
        pthread_mutex_lock(&s->lock);
        ec_put_attr(s->entries, &st, timeout);
        pthread_mutex_unlock(&s->lock);
    }
    Py_RETURN_NONE;
}

static PyObject *Session_drop_all(Session *s, PyObject *noargs) {
    (void)noargs;
    if (s->entries != NULL) {
        pthread_mutex_lock(&s->lock);
        ec_clear(s->entries);
        pthread_mutex_unlock(&s->lock);
    }
    Py_RETURN_NONE;
}

static PyObject *Session_inval_entry(Session *s, PyObject *args) {
    unsigned long long parent;
    const char *name;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "Ky#", &parent, &name, &len)) return NULL;
    forget_name_in_c(s, parent, name, (size_t)len);
    if (s->se == NULL || !s->started || s->notifier_stop) Py_RETURN_NONE;
    notice *n = calloc(1, sizeof *n);
    if (n == NULL) return PyErr_NoMemory();
    n->parent = parent;
    n->name = strndup(name, (size_t)len);
    if (n->name == NULL) { free(n); return PyErr_NoMemory(); }
    pthread_mutex_lock(&s->lock);
    if (s->notices_tail) s->notices_tail->next = n; else s->notices_head = n;
    s->notices_tail = n;
    pthread_cond_signal(&s->notice_cond);
    pthread_mutex_unlock(&s->lock);
    Py_RETURN_NONE;
}

/* Session.keep(ino, off, data, start, length): reads of [off, off + length)
 * of ino may be answered from data[start:start + length] until the file
 * changes. data is held (not copied) meanwhile. */
/* A held buffer of data, whose [start, start + length) a span will point
 * into; NULL with an exception set when that is not inside it. The read
 * cache owns it once it takes the span (release_dead gives it back). */
static Py_buffer *span_view(PyObject *data, Py_ssize_t start, Py_ssize_t length) {
    Py_buffer *view = PyMem_RawMalloc(sizeof *view);
    if (view == NULL) { PyErr_NoMemory(); return NULL; }
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) < 0) { PyMem_RawFree(view); return NULL; }
    if (start < 0 || length <= 0 || start > view->len || length > view->len - start) {
        drop_view(view);
        PyErr_SetString(PyExc_ValueError, "the span is not inside data");
        return NULL;
    }
    return view;
}

static PyObject *Session_keep(Session *s, PyObject *args) {
    unsigned long long ino, off;
    PyObject *data;
    Py_ssize_t start, length;
    if (!PyArg_ParseTuple(args, "KKOnn", &ino, &off, &data, &start, &length)) return NULL;
    if (s->reads == NULL) Py_RETURN_FALSE;
    Py_buffer *view = span_view(data, start, length);
    if (view == NULL) return NULL;
    pthread_mutex_lock(&s->lock);
    int kept = rc_put(s->reads, ino, off, (const char *)view->buf + start, (size_t)length, view);
    pthread_mutex_unlock(&s->lock);
    if (!kept) drop_view(view);
    release_dead(s);
    return PyBool_FromLong(kept);
}

/* Session.promise(ino, ranges): read-ahead is loading the bytes of each
 * (off, length) of ino, which will come through fulfil (or be taken back);
 * reads of them meanwhile wait here. For each range, the ticket its bytes
 * must come back with (0: no promise was made, nothing is to come back). */
static PyObject *Session_promise(Session *s, PyObject *args) {
    unsigned long long ino;
    PyObject *ranges;
    if (!PyArg_ParseTuple(args, "KO!", &ino, &PyList_Type, &ranges)) return NULL;
    PyObject *tickets = PyList_New(PyList_GET_SIZE(ranges));
    if (tickets == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ranges); i++) {
        unsigned long long off;
        Py_ssize_t length;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(ranges, i), "Kn;a range is (off, length)", &off,
                              &length)) {
            Py_DECREF(tickets);
            return NULL;
        }
        uint64_t ticket = 0;
        if (s->reads != NULL && length > 0) {
            pthread_mutex_lock(&s->lock);
            ticket = rc_promise(s->reads, ino, off, (size_t)length);
            pthread_mutex_unlock(&s->lock);
        }
        PyObject *t = PyLong_FromUnsignedLongLong(ticket);
        if (t == NULL) {
            Py_DECREF(tickets);
            return NULL;
        }
        PyList_SET_ITEM(tickets, i, t);
    }
    release_dead(s);
    return tickets;
}

/* Fills (or, data None, takes back) the promise `ticket` of [off, off +
 * length) of ino with data[start:start + length]; whether it stood. */
static int fulfil_one(Session *s, unsigned long long ino, PyObject *span) {
    unsigned long long off, ticket;
    PyObject *data;
    Py_ssize_t start, length;
    if (!PyArg_ParseTuple(span, "KOnnK;a span is (off, data, start, length, ticket)", &off, &data,
                          &start, &length, &ticket))
        return -1;
    if (length <= 0 || ticket == 0) return 0;
    if (data == Py_None) {
        pthread_mutex_lock(&s->lock);
        rc_unpromise(s->reads, ino, off, (size_t)length, ticket);
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    Py_buffer *view = span_view(data, start, length);
    if (view == NULL) return -1;
    pthread_mutex_lock(&s->lock);
    int filled = rc_fulfil(s->reads, ino, off, (size_t)length, ticket,
                           (const char *)view->buf + start, view);
    pthread_mutex_unlock(&s->lock);
    if (!filled) drop_view(view);
    return filled;
}

/* Answers the waiting reads that promises filled, and hands to Python those
 * whose bytes are no longer all promised or cached (lock held); how many went
 * either way. */
static long settle_waiting(Session *s) {
    long settled = 0;
    item **at = &s->waiting;
    while (*at) {
        item *it = *at;
        struct iovec iov[READ_IOV];
        int n = rc_get(s->reads, it->ino, (uint64_t)it->off, it->size, iov, READ_IOV, NULL);
        if (n == 0 && rc_covered(s->reads, it->ino, (uint64_t)it->off, it->size)) {
            at = &it->next;
            continue;
        }
        *at = it->next;
        s->n_waiting--;
        settled++;
        if (n > 0) {
            fuse_reply_iov(it->req, iov, n);
            s->reads_waited++;
            item_free(it);
        } else {
            enqueue(s, it);
        }
    }
    return settled;
}

/* Session.fulfil(ino, spans): the read-ahead of ino is in; each (off, data,
 * start, length, ticket) fills the promise `ticket` of [off, off + length), or
 * takes it back when data is None. A promise that no longer stands (the file
 * changed) is left unfilled. Python may call it from any thread. Then the waiting reads are answered, or handed to Python
 * (Session.fetch) when what they wait for is gone: how many were. */
static PyObject *Session_fulfil(Session *s, PyObject *args) {
    unsigned long long ino;
    PyObject *spans;
    if (!PyArg_ParseTuple(args, "KO!", &ino, &PyList_Type, &spans)) return NULL;
    if (s->reads == NULL) return PyLong_FromLong(0);
    int failed = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(spans) && !failed; i++)
        failed = fulfil_one(s, ino, PyList_GET_ITEM(spans, i)) < 0;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    long settled;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&s->lock);
    /* a span Python got wrong: no read may wait for promises left standing */
    if (failed) rc_drop(s->reads, ino);
    settled = settle_waiting(s);
    pthread_mutex_unlock(&s->lock);
    Py_END_ALLOW_THREADS
    release_dead(s);
    if (failed) {
        PyErr_Restore(type, value, traceback);
        return NULL;
    }
    return PyLong_FromLong(settled);
}

static PyObject *Session_inval_inode(Session *s, PyObject *arg) {
    unsigned long long ino = PyLong_AsUnsignedLongLong(arg);
    if (ino == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    forget_attr_in_c(s, ino, 1);
    if (s->se == NULL || !s->started) Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    fuse_lowlevel_notify_inval_inode(s->se, ino, -1, 0);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* Stop serving, unmounting first if asked; answer EIO to what is still
 * queued. Idempotent. The session itself is destroyed with the Session object,
 * after every Request (which may still answer) is gone. */
static void session_stop(Session *s, int unmount) {
    if (s->se == NULL) return;
    if (unmount && s->mounted) fuse_session_unmount(s->se);
    s->mounted = 0;
    fuse_session_exit(s->se);
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->notifier_stop = 1;
        notice *n = s->notices_head;
        s->notices_head = s->notices_tail = NULL;
        pthread_cond_signal(&s->notice_cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->notifier, NULL);
        while (n) { notice *next = n->next; free(n->name); free(n); n = next; }
        s->started = 0;
    }
    pthread_mutex_lock(&s->lock);
    item *it = s->head;
    s->head = s->tail = NULL;
    s->n_urgent = 0;
    if (s->waiting) {
        item *last = s->waiting;
        while (last->next) last = last->next;
        last->next = it;
        it = s->waiting;
        s->waiting = NULL;
        s->n_waiting = 0;
    }
    pthread_mutex_unlock(&s->lock);
    while (it) {
        item *next = it->next;
        if (it->req) fuse_reply_err(it->req, EIO);
        item_free(it);
        it = next;
    }
}

static void clear_reads(Session *s) {
    if (s->reads == NULL) return;
    pthread_mutex_lock(&s->lock);
    rc_clear(s->reads);
    pthread_mutex_unlock(&s->lock);
    release_dead(s);
}

static PyObject *Session_close(Session *s, PyObject *args) {
    int unmount = 1;
    if (!PyArg_ParseTuple(args, "|p", &unmount)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    session_stop(s, unmount);
    Py_END_ALLOW_THREADS
    clear_reads(s);
    Py_RETURN_NONE;
}

static PyObject *Session_set_no_capabilities(Session *s, PyObject *arg) {
    int none = PyObject_IsTrue(arg);
    if (none < 0) return NULL;
    s->no_capabilities = none;
    Py_RETURN_NONE;
}

static const struct { unsigned bit; const char *name; } CAPABILITIES[] = {
    {FUSE_CAP_ASYNC_READ, "async_read"}, {FUSE_CAP_POSIX_LOCKS, "posix_locks"},
    {FUSE_CAP_ATOMIC_O_TRUNC, "atomic_o_trunc"}, {FUSE_CAP_EXPORT_SUPPORT, "export_support"},
    {FUSE_CAP_DONT_MASK, "dont_mask"}, {FUSE_CAP_SPLICE_WRITE, "splice_write"},
    {FUSE_CAP_SPLICE_MOVE, "splice_move"}, {FUSE_CAP_SPLICE_READ, "splice_read"},
    {FUSE_CAP_FLOCK_LOCKS, "flock_locks"}, {FUSE_CAP_IOCTL_DIR, "ioctl_dir"},
    {FUSE_CAP_AUTO_INVAL_DATA, "auto_inval_data"}, {FUSE_CAP_READDIRPLUS, "readdirplus"},
    {FUSE_CAP_READDIRPLUS_AUTO, "readdirplus_auto"}, {FUSE_CAP_ASYNC_DIO, "async_dio"},
    {FUSE_CAP_WRITEBACK_CACHE, "writeback_cache"}, {FUSE_CAP_NO_OPEN_SUPPORT, "no_open_support"},
    {FUSE_CAP_PARALLEL_DIROPS, "parallel_dirops"}, {FUSE_CAP_POSIX_ACL, "posix_acl"},
    {FUSE_CAP_HANDLE_KILLPRIV, "handle_killpriv"}, {FUSE_CAP_CACHE_SYMLINKS, "cache_symlinks"},
    {FUSE_CAP_NO_OPENDIR_SUPPORT, "no_opendir_support"},
    {FUSE_CAP_EXPLICIT_INVAL_DATA, "explicit_inval_data"}, {FUSE_CAP_EXPIRE_ONLY, "expire_only"},
};

/* What INIT settled: the capabilities asked for, by name, and the limits. */
static PyObject *Session_get_kernel(Session *s, void *c) {
    (void)c;
    PyObject *names = PyList_New(0);
    if (names == NULL) return NULL;
    for (size_t i = 0; i < sizeof CAPABILITIES / sizeof CAPABILITIES[0]; i++) {
        if (!(s->wanted & CAPABILITIES[i].bit)) continue;
        PyObject *name = PyUnicode_FromString(CAPABILITIES[i].name);
        if (name == NULL || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(names);
            return NULL;
        }
        Py_DECREF(name);
    }
    return Py_BuildValue("{sNsIsIsIsI}", "capabilities", names, "max_write", s->max_write,
                         "max_readahead", s->max_readahead, "max_background",
                         s->max_background, "congestion_threshold", s->congestion_threshold);
}

static PyObject *Session_get_fuse_fd(Session *s, void *c) {
    (void)c;
    return PyLong_FromLong(s->se ? fuse_session_fd(s->se) : -1);
}

static PyObject *Session_get_ended(Session *s, void *c) {
    (void)c;
    pthread_mutex_lock(&s->lock);
    int ended = s->ended;
    pthread_mutex_unlock(&s->lock);
    return PyBool_FromLong(ended);
}

static void Session_dealloc(Session *s) {
    Py_BEGIN_ALLOW_THREADS
    session_stop(s, 1);
    if (s->se != NULL) fuse_session_destroy(s->se);
    s->se = NULL;
    Py_END_ALLOW_THREADS
    clear_reads(s);
    rc_free(s->reads);
    ec_free(s->entries);
    free(s->looked);
    free(s->buf.mem);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->notice_cond);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Session_methods[] = {
    {"start", (PyCFunction)Session_start, METH_NOARGS, "Start serving (and invalidating)."},
    {"set_no_capabilities", (PyCFunction)Session_set_no_capabilities, METH_O,
     "Whether getxattr of security.capability may be answered ENODATA in C."},
    {"receive", (PyCFunction)Session_receive, METH_VARARGS,
     "Receive up to n requests on this thread; if none is there, wait up to\n"
     "wait_us microseconds for one (GIL released); how many."},
    {"looked", (PyCFunction)Session_looked, METH_NOARGS,
     "The inodes of the lookups answered in C since the last call (the kernel\n"
     "took a reference to each)."},
    {"fetch", (PyCFunction)Session_fetch, METH_NOARGS,
     "The requests queued since the last fetch, as (Request, kind, *args) tuples."},
    {"inval_entry", (PyCFunction)Session_inval_entry, METH_VARARGS,
     "Have the kernel forget a name (sent from another thread, in order)."},
    {"keep", (PyCFunction)Session_keep, METH_VARARGS,
     "keep(ino, off, data, start, length): answer reads of that span in C\n"
     "until the file changes; whether it was kept."},
    {"promise", (PyCFunction)Session_promise, METH_VARARGS,
     "promise(ino, ranges): read-ahead is loading these (off, length) of ino;\n"
     "reads of them wait in C for fulfil. The ticket of each (0: none made)."},
    {"fulfil", (PyCFunction)Session_fulfil, METH_VARARGS,
     "fulfil(ino, spans): fill each standing promise (off, data, start, length, ticket),\n"
     "or take it back (data None); answer the reads waiting, or hand them to\n"
     "fetch; how many went either way."},
    {"inval_inode", (PyCFunction)Session_inval_inode, METH_O,
     "Have the kernel forget an inode's attributes."},
    {"drop_attr", (PyCFunction)Session_drop_attr, METH_O,
     "Stop answering getattr and lookups of an inode in C (its attributes changed)."},
    {"drop_name", (PyCFunction)Session_drop_name, METH_VARARGS,
     "drop_name(parent, name): stop answering lookups of that name in C."},
    {"bare", (PyCFunction)Session_bare, METH_O,
     "Note that an inode has no stored xattr: its getxattrs (but of computed names)\n"
     "and listxattrs are answered in C until its xattrs change; whether noted."},
    {"drop_xattrs", (PyCFunction)Session_drop_xattrs, METH_O,
     "An inode's xattrs changed: drop its attributes, and that it had none."},
    {"put_attr", (PyCFunction)Session_put_attr, METH_O,
     "Answer getattr and lookups of an inode from these attributes (as now) until\n"
     "something drops them."},
    {"applied", (PyCFunction)Session_applied, METH_VARARGS,
     "applied(ino, attr): Python applied a setattr or write C answered; attr (None:\n"
     "it could not) is the inode's now."},
    {"answer_flushes", (PyCFunction)Session_answer_flushes, METH_O,
     "answer_flushes(until): answer flushes of open files in C until then (a\n"
     "time.monotonic(); 0: from now on, none), queueing each for Python."},
    {"answer_writes", (PyCFunction)Session_answer_writes, METH_O,
     "answer_writes(nbytes): answer writes of open files in C until they add up\n"
     "to nbytes (0: none), queueing each for Python with its data."},
    {"drop_all", (PyCFunction)Session_drop_all, METH_NOARGS,
     "Stop answering lookups and getattr in C until Python answers them again."},
    {"close", (PyCFunction)Session_close, METH_VARARGS,
     "Stop serving, unmount (unless told not to) and free the session."},
    {NULL, NULL, 0, NULL},
};

/* Counters Python reads as they stand (the trio thread, which alone changes
 * them, is the one reading). */
static PyMemberDef Session_members[] = {
    {"answered_in_c", T_ULONGLONG, offsetof(Session, answered_in_c), READONLY,
     "requests answered in C without Python"},
    {"reads_in_c", T_ULONGLONG, offsetof(Session, reads_in_c), READONLY,
     "reads answered in C from the read cache"},
    {"reads_waited", T_ULONGLONG, offsetof(Session, reads_waited), READONLY,
     "reads answered in C after waiting for read-ahead"},
    {"setattrs_merged", T_ULONGLONG, offsetof(Session, setattrs_merged), READONLY,
     "setattrs answered in C and applied by Python with the one queued before"},
    {"writes_in_c", T_ULONGLONG, offsetof(Session, writes_in_c), READONLY,
     "writes answered in C and taken by Python after"},
    {"waiting", T_PYSSIZET, offsetof(Session, n_waiting), READONLY,
     "reads waiting in C for read-ahead now"},
    {"rejected", T_ULONGLONG, offsetof(Session, rejected), READONLY,
     "malformed requests answered EINVAL before libfuse saw them"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Session_getset[] = {
    {"kernel", (getter)Session_get_kernel, NULL,
     "what INIT settled: capabilities asked for, max_write, max_readahead, max_background",
     NULL},
    {"fuse_fd", (getter)Session_get_fuse_fd, NULL, "the /dev/fuse descriptor", NULL},
    {"ended", (getter)Session_get_ended, NULL, "the kernel ended the session", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SessionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dwfs._fuse.Session",
    .tp_basicsize = sizeof(Session),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Session_new,
    .tp_init = (initproc)Session_init,
    .tp_dealloc = (destructor)Session_dealloc,
    .tp_methods = Session_methods,
    .tp_getset = Session_getset,
    .tp_members = Session_members,
};

/* ---- Request (Python) ---------------------------------------------------- */

/* Before the reply to a request that may have changed a file's content: what
 * the read cache kept of it meanwhile goes. */
static void settle(Request *r, int entered) {
    Session *s = (Session *)r->session;
    uint64_t ino = changes_content(r->it);
    if (ino) {
        drop_reads(s, ino);
        release_dead(s);
    }
    if (s->entries != NULL) {
        pthread_mutex_lock(&s->lock);
        depart_from_complete(s, r->it, entered);
        drop_entries(s, r->it);
        pthread_mutex_unlock(&s->lock);
    }
}

/* After a reply Python gave (and settle()): the attributes it carried, and for
 * an entry the name, are cached for lookup and getattr to be answered in C. */
static void remember(Request *r, const struct stat *st, double timeout, int with_name) {
    Session *s = (Session *)r->session;
    const item *it = r->it;
    uint64_t ino = (uint64_t)st->st_ino;
    if (s->entries == NULL) return;
    uint64_t added_to = adds_to(it), parent = added_to ? added_to : it->ino;
    int cacheable = ino != 0 && ino < s->cache_below &&
                    !(with_name && (parent >= s->cache_below || it->name == NULL || is_dot(it->name)));
    pthread_mutex_lock(&s->lock);
    int kept = cacheable && ec_put_attr(s->entries, st, timeout) == 0 &&
               (!with_name || ec_put_name(s->entries, parent, it->name, strlen(it->name), ino,
                                          timeout) == 0);
    if (with_name && added_to) {
        /* the directory is complete only with the name cached; a new one is */
        if (!kept) ec_drop_complete(s->entries, added_to);
        else if (it->kind == K_MKDIR) ec_set_complete(s->entries, ino);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Whether a reply of this kind carries the entry of (it->ino or ino2, name). */
static int names_entry(int kind) {
    switch (kind) {
    case K_LOOKUP: case K_MKNOD: case K_MKDIR: case K_SYMLINK: case K_LINK: case K_CREATE:
        return 1;
    default:
        return 0;
    }
}

/* Marks a request answered, before its reply goes out (settle); `entered`:
 * the reply carries the entry the request made. */
static int claim_as(Request *r, int entered) {
    if (r->answered) {
        PyErr_SetString(PyExc_RuntimeError, "request already answered");
        return -1;
    }
    r->answered = 1;
    settle(r, entered);
    return 0;
}

static int claim(Request *r) { return claim_as(r, 0); }

static int parse_attr(PyObject *t, struct stat *st, double *timeout) {
    unsigned long long ino, nlink, rdev, size, blocks;
    unsigned int mode, uid, gid;
    long long at, mt, ct;
    if (!PyArg_ParseTuple(t, "KIKIIKKKLLLd", &ino, &mode, &nlink, &uid, &gid, &rdev, &size,
                          &blocks, &at, &mt, &ct, timeout))
        return -1;
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = mode;
    st->st_nlink = nlink;
    st->st_uid = uid;
    st->st_gid = gid;
    st->st_rdev = rdev;
    st->st_size = (off_t)size;
    st->st_blocks = (blkcnt_t)blocks;
    st->st_blksize = 4096;
    st->st_atim = timespec_of(at);
    st->st_mtim = timespec_of(mt);
    st->st_ctim = timespec_of(ct);
    return 0;
}

static int parse_entry(PyObject *t, struct fuse_entry_param *e) {
    memset(e, 0, sizeof *e);
    double timeout;
    if (parse_attr(t, &e->attr, &timeout) < 0) return -1;
    e->ino = e->attr.st_ino;
    e->attr_timeout = e->entry_timeout = timeout;
    return 0;
}

#define SEND(r, call)                   \
    do {                                \
        int res_;                       \
        Py_BEGIN_ALLOW_THREADS          \
        res_ = (call);                  \
        Py_END_ALLOW_THREADS            \
        return PyLong_FromLong(res_);   \
    } while (0)

static PyObject *Request_err(Request *r, PyObject *arg) {
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred()) return NULL;
    if (code < 0 || code > 4095) { PyErr_SetString(PyExc_ValueError, "bad errno"); return NULL; }
    if (claim(r) < 0) return NULL;
    SEND(r, fuse_reply_err(r->it->req, (int)code));
}

static PyObject *Request_entry(Request *r, PyObject *arg) {
    struct fuse_entry_param e;
    if (parse_entry(arg, &e) < 0) return NULL;
    if (claim_as(r, 1) < 0) return NULL;
    if (names_entry(r->it->kind)) remember(r, &e.attr, e.attr_timeout, 1);
    SEND(r, fuse_reply_entry(r->it->req, &e));
}

static PyObject *Request_negative(Request *r, PyObject *arg) {
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred()) return NULL;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.entry_timeout = timeout;
    if (claim(r) < 0) return NULL;
    SEND(r, fuse_reply_entry(r->it->req, &e));
}

static PyObject *Request_attr(Request *r, PyObject *arg) {
    struct stat st;
    double timeout;
    if (parse_attr(arg, &st, &timeout) < 0) return NULL;
    if (claim(r) < 0) return NULL;
    if (r->it->kind == K_GETATTR || r->it->kind == K_SETATTR) remember(r, &st, timeout, 0);
    SEND(r, fuse_reply_attr(r->it->req, &st, timeout));
}

/* A file's handle is opened: its flushes may be answered in C, until its
 * release arrives. */
static void note_handle(Request *r, uint64_t fh) {
    Session *s = (Session *)r->session;
    if (s->entries == NULL) return;
    pthread_mutex_lock(&s->lock);
    ec_add_handle(s->entries, fh);
    pthread_mutex_unlock(&s->lock);
}

static PyObject *Request_open(Request *r, PyObject *args) {
    unsigned long long fh;
    int keep_cache;
    if (!PyArg_ParseTuple(args, "Kp", &fh, &keep_cache)) return NULL;
    struct fuse_file_info fi = r->it->fi;
    fi.fh = fh;
    fi.keep_cache = keep_cache ? 1 : 0;
    fi.direct_io = 0;
    if (claim(r) < 0) return NULL;
    if (r->it->kind == K_OPEN) note_handle(r, fh);
    SEND(r, fuse_reply_open(r->it->req, &fi));
}

static PyObject *Request_create(Request *r, PyObject *args) {
    unsigned long long fh;
    PyObject *attr;
    struct fuse_entry_param e;
    if (!PyArg_ParseTuple(args, "KO", &fh, &attr)) return NULL;
    if (parse_entry(attr, &e) < 0) return NULL;
    struct fuse_file_info fi = r->it->fi;
    fi.fh = fh;
    fi.keep_cache = 1;
    fi.direct_io = 0;
    if (claim_as(r, 1) < 0) return NULL;
    remember(r, &e.attr, e.attr_timeout, 1);
    note_handle(r, fh);
    SEND(r, fuse_reply_create(r->it->req, &e, &fi));
}

/* Pieces a read reply is sent in as a vector; more (a read across many small
 * extents) are copied into one buffer first, well below writev's IOV_MAX. */
#define DATA_PIECES_MAX 64

static int send_pieces(fuse_req_t req, const Py_buffer *views, Py_ssize_t n) {
    struct iovec iov[DATA_PIECES_MAX];
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += (size_t)views[i].len;
    if (n <= DATA_PIECES_MAX) {
        for (Py_ssize_t i = 0; i < n; i++) {
            iov[i].iov_base = views[i].buf;
            iov[i].iov_len = (size_t)views[i].len;
        }
        return fuse_reply_iov(req, iov, (int)n);
    }
    char *joined = malloc(total ? total : 1);
    if (joined == NULL) return fuse_reply_err(req, ENOMEM);
    char *at = joined;
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(at, views[i].buf, (size_t)views[i].len);
        at += views[i].len;
    }
    int res = fuse_reply_buf(req, joined, total);
    free(joined);
    return res;
}

/* A read's reply: one buffer, or a sequence of them sent as one, so a read
 * that spans cached chunks reaches the kernel without being joined in Python. */
static PyObject *Request_data(Request *r, PyObject *arg) {
    if (PyObject_CheckBuffer(arg)) {
        Py_buffer view;
        if (PyObject_GetBuffer(arg, &view, PyBUF_CONTIG_RO) < 0) return NULL;
        if (claim(r) < 0) { PyBuffer_Release(&view); return NULL; }
        int res;
        Py_BEGIN_ALLOW_THREADS
        res = fuse_reply_buf(r->it->req, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&view);
        return PyLong_FromLong(res);
    }
    PyObject *seq = PySequence_Fast(arg, "data must be a buffer or a sequence of buffers");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0;
    PyObject *result = NULL;
    Py_buffer *views = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    if (views == NULL) { PyErr_NoMemory(); goto done; }
    for (; got < n; got++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got], PyBUF_CONTIG_RO) < 0)
            goto done;
    if (claim(r) < 0) goto done;
    int res;
    Py_BEGIN_ALLOW_THREADS
    res = send_pieces(r->it->req, views, n);
    Py_END_ALLOW_THREADS
    result = PyLong_FromLong(res);
done:
    if (views != NULL) {
        for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&views[i]);
        PyMem_Free(views);
    }
    Py_DECREF(seq);
    return result;
}

static PyObject *Request_written(Request *r, PyObject *arg) {
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if (claim(r) < 0) return NULL;
    SEND(r, fuse_reply_write(r->it->req, (size_t)n));
}

static PyObject *Request_offset(Request *r, PyObject *arg) {
    long long off = PyLong_AsLongLong(arg);
    if (off == -1 && PyErr_Occurred()) return NULL;
    if (claim(r) < 0) return NULL;
    SEND(r, fuse_reply_lseek(r->it->req, (off_t)off));
}

static PyObject *Request_readlink(Request *r, PyObject *arg) {
    const char *target;
    Py_ssize_t len;
    if (!PyArg_Parse(arg, "y#", &target, &len)) return NULL;
    if ((size_t)len != strlen(target)) { PyErr_SetString(PyExc_ValueError, "NUL in target"); return NULL; }
    if (claim(r) < 0) return NULL;
    SEND(r, fuse_reply_readlink(r->it->req, target));
}

static PyObject *Request_statfs(Request *r, PyObject *arg) {
    struct statvfs st;
    memset(&st, 0, sizeof st);
    unsigned long long blocks, bfree, files, ffree;
    if (!PyArg_ParseTuple(arg, "KKKK", &blocks, &bfree, &files, &ffree)) return NULL;
    st.f_bsize = st.f_frsize = 4096;
    st.f_blocks = blocks;
    st.f_bfree = st.f_bavail = bfree;
    st.f_files = files;
    st.f_ffree = st.f_favail = ffree;
    st.f_namemax = 255;
    if (claim(r) < 0) return NULL;
    SEND(r, fuse_reply_statfs(r->it->req, &st));
}

/* An xattr's value or a list of names: its size when asked size 0, ERANGE
 * when it does not fit the caller's buffer. */
static PyObject *Request_xattr(Request *r, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_CONTIG_RO) < 0) return NULL;
    if (claim(r) < 0) { PyBuffer_Release(&view); return NULL; }
    size_t want = (size_t)r->it->size, len = (size_t)view.len;
    int res;
    Py_BEGIN_ALLOW_THREADS
    if (want == 0) res = fuse_reply_xattr(r->it->req, len);
    else if (len <= want) res = fuse_reply_buf(r->it->req, view.buf, len);
    else res = fuse_reply_err(r->it->req, ERANGE);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromLong(res);
}

/* A readdirplus reply from (name, attr, cookie) entries, as many as fit;
 * returns how many went in (the kernel counts a lookup for each of those). */
static PyObject *Request_entries(Request *r, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "entries must be a sequence");
    if (seq == NULL) return NULL;
    size_t cap = (size_t)r->it->size, used = 0;
    char *buf = malloc(cap ? cap : 1);
    if (buf == NULL) { Py_DECREF(seq); return PyErr_NoMemory(); }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), taken = 0;
    for (; taken < n; taken++) {
        PyObject *entry = PySequence_Fast_GET_ITEM(seq, taken);
        const char *name;
        PyObject *attr;
        long long cookie;
        struct fuse_entry_param e;
        if (!PyArg_ParseTuple(entry, "yOL", &name, &attr, &cookie) || parse_entry(attr, &e) < 0) {
            free(buf);
            Py_DECREF(seq);
            return NULL;
        }
        size_t need = fuse_add_direntry_plus(r->it->req, buf + used, cap - used, name, &e, cookie);
        if (need > cap - used) break;
        used += need;
    }
    Py_DECREF(seq);
    if (claim(r) < 0) { free(buf); return NULL; }
    Py_BEGIN_ALLOW_THREADS
    fuse_reply_buf(r->it->req, buf, used);
    Py_END_ALLOW_THREADS
    free(buf);
    return PyLong_FromSsize_t(taken);
}

static int Request_getbuffer(Request *r, Py_buffer *view, int flags) {
    if (r->it == NULL || r->it->data == NULL) {
        PyErr_SetString(PyExc_BufferError, "this request carries no data");
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)r, r->it->data, (Py_ssize_t)r->it->data_len, 1, flags);
}

static void Request_dealloc(Request *r) {
    if (r->it != NULL) {
        if (!r->answered) { settle(r, 0); fuse_reply_err(r->it->req, EIO); }
        item_free(r->it);
    }
    Py_XDECREF(r->session);
    PyObject_Free(r);
}

static PyObject *Request_get_answered(Request *r, void *c) {
    (void)c;
    return PyBool_FromLong(r->answered);
}

static PyBufferProcs Request_as_buffer = {
    (getbufferproc)Request_getbuffer,
    NULL,
};

static PyMethodDef Request_methods[] = {
    {"err", (PyCFunction)Request_err, METH_O, "Answer with an errno (0: success)."},
    {"entry", (PyCFunction)Request_entry, METH_O, "Answer with an entry (attr tuple)."},
    {"negative", (PyCFunction)Request_negative, METH_O, "Answer: no such name, cache it."},
    {"attr", (PyCFunction)Request_attr, METH_O, "Answer with attributes."},
    {"open", (PyCFunction)Request_open, METH_VARARGS, "Answer an open: (fh, keep_cache)."},
    {"create", (PyCFunction)Request_create, METH_VARARGS, "Answer a create: (fh, attr)."},
    {"data", (PyCFunction)Request_data, METH_O, "Answer a read with bytes, or a sequence of buffers sent as one."},
    {"written", (PyCFunction)Request_written, METH_O, "Answer a write: bytes taken."},
    {"readlink", (PyCFunction)Request_readlink, METH_O, "Answer with a link target."},
    {"offset", (PyCFunction)Request_offset, METH_O, "Answer an lseek with an offset."},
    {"statfs", (PyCFunction)Request_statfs, METH_O, "Answer: (blocks, free, files, free files)."},
    {"xattr", (PyCFunction)Request_xattr, METH_O, "Answer with an xattr value or name list."},
    {"entries", (PyCFunction)Request_entries, METH_O, "Answer a readdirplus; how many fit."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Request_getset[] = {
    {"answered", (getter)Request_get_answered, NULL, "whether it was answered", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RequestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dwfs._fuse.Request",
    .tp_basicsize = sizeof(Request),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Request_dealloc,
    .tp_methods = Request_methods,
    .tp_getset = Request_getset,
    .tp_as_buffer = &Request_as_buffer,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dwfs._fuse",
    "dwfs's native FUSE front end (libfuse3's low-level API); imported only by dwfs.fuse.native.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fuse(void) {
    if (PyType_Ready(&SessionType) < 0 || PyType_Ready(&RequestType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&SessionType);
    Py_INCREF(&RequestType);
    if (PyModule_AddObject(m, "Session", (PyObject *)&SessionType) < 0 ||
        PyModule_AddObject(m, "Request", (PyObject *)&RequestType) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_MODE", FUSE_SET_ATTR_MODE) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_UID", FUSE_SET_ATTR_UID) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_GID", FUSE_SET_ATTR_GID) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_SIZE", FUSE_SET_ATTR_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_ATIME", FUSE_SET_ATTR_ATIME) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_MTIME", FUSE_SET_ATTR_MTIME) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_ATIME_NOW", FUSE_SET_ATTR_ATIME_NOW) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_MTIME_NOW", FUSE_SET_ATTR_MTIME_NOW) < 0 ||
        PyModule_AddIntConstant(m, "SET_ATTR_CTIME", FUSE_SET_ATTR_CTIME) < 0)
        return NULL;
    return m;
}
