/* The FUSE floor for `make bench`: the least a filesystem can do per request
 * on this machine. An in-memory tree (lookup, create, mkdir, unlink, rmdir,
 * getattr, setattr, readdir, symlink) whose files hold no bytes: writes are
 * counted into the size and dropped, reads return zeros. It runs libfuse3's
 * multi-threaded loop with the writeback cache, as dwfs's native front end
 * does, so what dwfs costs above it is what dwfs does per request.
 *
 *     floorfs MOUNTPOINT      (foreground; fusermount3 -u MOUNTPOINT stops it)
 *
 * Not part of dwfs: scripts/bench_mount.py builds and runs it. */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct node {
    fuse_ino_t parent;
    char *name;    /* NULL once unlinked */
    char *target;  /* a symlink's */
    struct stat st;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes;
static size_t used, cap;
static fuse_ino_t *slots; /* (parent, name) -> ino, open addressing; 0 empty, -1 deleted */
static size_t nslots;
#define GONE ((fuse_ino_t)-1)

static size_t hash(fuse_ino_t parent, const char *name) {
    size_t h = 1469598103934665603ULL ^ parent;
    for (; *name; name++) h = (h ^ (unsigned char)*name) * 1099511628211ULL;
    return h;
}

static size_t *find_slot(fuse_ino_t parent, const char *name, int for_insert) {
    static size_t at;
    size_t free_at = (size_t)-1;
    for (size_t i = hash(parent, name) & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
        fuse_ino_t ino = slots[i];
        if (ino == 0) {
            at = for_insert && free_at != (size_t)-1 ? free_at : i;
            return for_insert ? &at : NULL;
        }
        if (ino == GONE) {
            if (free_at == (size_t)-1) free_at = i;
            continue;
        }
        if (nodes[ino].parent == parent && strcmp(nodes[ino].name, name) == 0) {
            at = i;
            return &at;
        }
    }
}

static void grow_slots(void) {
    size_t old = nslots;
    fuse_ino_t *was = slots;
    nslots = old ? old * 2 : 1024;
    slots = calloc(nslots, sizeof *slots);
    for (size_t i = 0; i < old; i++)
        if (was[i] && was[i] != GONE) slots[*find_slot(nodes[was[i]].parent, nodes[was[i]].name, 1)] = was[i];
    free(was);
}

static fuse_ino_t new_node(fuse_ino_t parent, const char *name, mode_t mode, const struct fuse_ctx *who) {
    if (used == cap) {
        cap = cap ? cap * 2 : 1024;
        nodes = realloc(nodes, cap * sizeof *nodes);
    }
    if ((used + 1) * 2 > nslots) grow_slots();
    fuse_ino_t ino = used++;
    struct node *n = &nodes[ino];
    memset(n, 0, sizeof *n);
    n->parent = parent;
    n->name = strdup(name);
    n->st.st_ino = ino;
    n->st.st_mode = mode;
    n->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
    n->st.st_uid = who ? who->uid : getuid();
    n->st.st_gid = who ? who->gid : getgid();
    n->st.st_blksize = 4096;
    clock_gettime(CLOCK_REALTIME, &n->st.st_mtim);
    n->st.st_atim = n->st.st_ctim = n->st.st_mtim;
    if (name[0]) slots[*find_slot(parent, name, 1)] = ino;
    return ino;
}

static void entry_of(fuse_ino_t ino, struct fuse_entry_param *e) {
    memset(e, 0, sizeof *e);
    e->ino = ino;
    e->attr = nodes[ino].st;
    e->attr_timeout = e->entry_timeout = 10.0;
}

static int known(fuse_ino_t ino) { return ino >= 1 && ino < used; }

static void fl_init(void *data, struct fuse_conn_info *conn) {
    (void)data;
    if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
}

static void fl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    pthread_mutex_lock(&lock);
    size_t *at = find_slot(parent, name, 0);
    struct fuse_entry_param e;
    if (at) entry_of(slots[*at], &e);
    pthread_mutex_unlock(&lock);
    if (at) fuse_reply_entry(req, &e);
    else fuse_reply_err(req, ENOENT);
}

static void fl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    pthread_mutex_lock(&lock);
    int ok = known(ino);
    struct stat st;
    if (ok) st = nodes[ino].st;
    pthread_mutex_unlock(&lock);
    if (ok) fuse_reply_attr(req, &st, 10.0);
    else fuse_reply_err(req, ENOENT);
}

static void fl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
    (void)fi;
    pthread_mutex_lock(&lock);
    if (!known(ino)) {
        pthread_mutex_unlock(&lock);
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat *st = &nodes[ino].st;
    if (to_set & FUSE_SET_ATTR_MODE) st->st_mode = (st->st_mode & S_IFMT) | (attr->st_mode & 07777);
    if (to_set & FUSE_SET_ATTR_UID) st->st_uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) st->st_gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) st->st_size = attr->st_size;
    if (to_set & FUSE_SET_ATTR_ATIME) st->st_atim = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME) st->st_mtim = attr->st_mtim;
    if (to_set & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (to_set & FUSE_SET_ATTR_ATIME_NOW) st->st_atim = now;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW) st->st_mtim = now;
    }
    if (to_set & FUSE_SET_ATTR_CTIME) st->st_ctim = attr->st_ctim;
    struct stat out = *st;
    pthread_mutex_unlock(&lock);
    fuse_reply_attr(req, &out, 10.0);
}

static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                 const char *target, struct fuse_file_info *fi) {
    const struct fuse_ctx *who = fuse_req_ctx(req);
    pthread_mutex_lock(&lock);
    if (find_slot(parent, name, 0)) {
        pthread_mutex_unlock(&lock);
        fuse_reply_err(req, EEXIST);
        return;
    }
    fuse_ino_t ino = new_node(parent, name, mode, who);
    if (target) {
        nodes[ino].target = strdup(target);
        nodes[ino].st.st_size = (off_t)strlen(target);
    }
    if (S_ISDIR(mode)) nodes[parent].st.st_nlink++;
    struct fuse_entry_param e;
    entry_of(ino, &e);
    pthread_mutex_unlock(&lock);
    if (fi) fuse_reply_create(req, &e, fi);
    else fuse_reply_entry(req, &e);
}

static void fl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
    (void)rdev;
    make(req, parent, name, mode, NULL, NULL);
}

static void fl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
    make(req, parent, name, S_IFDIR | (mode & 07777), NULL, NULL);
}

static void fl_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
    make(req, parent, name, S_IFLNK | 0777, target, NULL);
}

static void fl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
    make(req, parent, name, S_IFREG | (mode & 07777), NULL, fi);
}

static void fl_readlink(fuse_req_t req, fuse_ino_t ino) {
    pthread_mutex_lock(&lock);
    char *target = known(ino) && nodes[ino].target ? strdup(nodes[ino].target) : NULL;
    pthread_mutex_unlock(&lock);
    if (target) fuse_reply_readlink(req, target);
    else fuse_reply_err(req, EINVAL);
    free(target);
}

static void drop(fuse_req_t req, fuse_ino_t parent, const char *name, int dir) {
    pthread_mutex_lock(&lock);
    size_t *at = find_slot(parent, name, 0);
    int err = at ? 0 : ENOENT;
    if (at) {
        fuse_ino_t ino = slots[*at];
        if (dir != S_ISDIR(nodes[ino].st.st_mode)) {
            err = dir ? ENOTDIR : EISDIR;
        } else if (dir) {
            for (size_t i = 0; i < nslots && !err; i++)
                if (slots[i] && slots[i] != GONE && nodes[slots[i]].parent == ino) err = ENOTEMPTY;
        }
        if (!err) {
            slots[*at] = GONE;
            free(nodes[ino].name);
            nodes[ino].name = NULL;
            nodes[ino].st.st_nlink = 0;
            if (dir) nodes[parent].st.st_nlink--;
        }
    }
    pthread_mutex_unlock(&lock);
    fuse_reply_err(req, err);
}

static void fl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { drop(req, parent, name, 0); }

static void fl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { drop(req, parent, name, 1); }

static void fl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)ino;
    fuse_reply_open(req, fi);
}

static void fl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)fi;
    static char zeros[1 << 20];
    pthread_mutex_lock(&lock);
    off_t end = known(ino) ? nodes[ino].st.st_size : 0;
    pthread_mutex_unlock(&lock);
    size_t n = off >= end ? 0 : (size_t)(end - off) < size ? (size_t)(end - off) : size;
    fuse_reply_buf(req, zeros, n < sizeof zeros ? n : sizeof zeros);
}

static void fl_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
    (void)buf;
    (void)fi;
    pthread_mutex_lock(&lock);
    if (known(ino) && off + (off_t)size > nodes[ino].st.st_size) nodes[ino].st.st_size = off + (off_t)size;
    pthread_mutex_unlock(&lock);
    fuse_reply_write(req, size);
}

static void fl_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

static void fl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
    (void)datasync;
    fl_ok(req, ino, fi);
}

static void fl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)fi;
    char *buf = calloc(1, size);
    size_t pos = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = (size_t)off; i < nslots; i++) {
        fuse_ino_t child = slots[i];
        if (!child || child == GONE || nodes[child].parent != ino) continue;
        size_t need = fuse_add_direntry(req, buf + pos, size - pos, nodes[child].name, &nodes[child].st,
                                        (off_t)i + 1);
        if (need > size - pos) break;
        pos += need;
    }
    pthread_mutex_unlock(&lock);
    fuse_reply_buf(req, buf, pos);
    free(buf);
}

static void fl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
    (void)ino;
    (void)name;
    (void)size;
    fuse_reply_err(req, ENODATA);
}

static void fl_statfs(fuse_req_t req, fuse_ino_t ino) {
    (void)ino;
    struct statvfs st = {.f_bsize = 4096, .f_frsize = 4096, .f_blocks = 1 << 26, .f_bfree = 1 << 26,
                         .f_bavail = 1 << 26, .f_files = 1 << 24, .f_ffree = 1 << 24, .f_namemax = 255};
    fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ops = {
    .init = fl_init, .lookup = fl_lookup, .getattr = fl_getattr, .setattr = fl_setattr,
    .mknod = fl_mknod, .mkdir = fl_mkdir, .symlink = fl_symlink, .readlink = fl_readlink,
    .create = fl_create, .unlink = fl_unlink, .rmdir = fl_rmdir, .open = fl_open,
    .read = fl_read, .write = fl_write, .flush = fl_ok, .release = fl_ok, .fsync = fl_fsync,
    .opendir = fl_open, .readdir = fl_readdir, .releasedir = fl_ok, .fsyncdir = fl_fsync,
    .getxattr = fl_getxattr, .statfs = fl_statfs,
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: floorfs MOUNTPOINT\n");
        return 2;
    }
    new_node(0, "", 0, NULL);              /* ino 0: unused */
    new_node(1, "", S_IFDIR | 0755, NULL); /* ino 1: the root */
    char *args[] = {argv[0], "-o", "default_permissions", NULL};
    struct fuse_args fargs = FUSE_ARGS_INIT(3, args);
    struct fuse_session *se = fuse_session_new(&fargs, &ops, sizeof ops, NULL);
    if (se == NULL || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0) return 1;
    struct fuse_loop_config config = {.clone_fd = 0, .max_idle_threads = 10};
    int rc = fuse_session_loop_mt(se, &config);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc ? 1 : 0;
}
