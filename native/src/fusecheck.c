/* Request shapes (dwfs_fusecheck.h): for each opcode libfuse 3.14 parses, the
 * argument struct it reads and how many NUL-terminated names follow it; a few
 * opcodes also declare data whose size is checked against what came. */
#include "dwfs_fusecheck.h"

#include <linux/fuse.h>
#include <string.h>

typedef struct {
    uint32_t args; /* bytes of argument struct after the header */
    uint8_t names; /* NUL-terminated strings after the struct */
    uint8_t known;
} shape;

#define S(op, type, n) [op] = {sizeof(struct type), n, 1}
#define BARE(op, n) [op] = {0, n, 1}

static const shape SHAPES[] = {
    BARE(FUSE_LOOKUP, 1),
    S(FUSE_FORGET, fuse_forget_in, 0),
    S(FUSE_GETATTR, fuse_getattr_in, 0),
    S(FUSE_SETATTR, fuse_setattr_in, 0),
    BARE(FUSE_READLINK, 0),
    BARE(FUSE_SYMLINK, 2),
    S(FUSE_MKNOD, fuse_mknod_in, 1),
    S(FUSE_MKDIR, fuse_mkdir_in, 1),
    BARE(FUSE_UNLINK, 1),
    BARE(FUSE_RMDIR, 1),
    S(FUSE_RENAME, fuse_rename_in, 2),
    S(FUSE_LINK, fuse_link_in, 1),
    S(FUSE_OPEN, fuse_open_in, 0),
    S(FUSE_READ, fuse_read_in, 0),
    S(FUSE_WRITE, fuse_write_in, 0),
    BARE(FUSE_STATFS, 0),
    S(FUSE_RELEASE, fuse_release_in, 0),
    S(FUSE_FSYNC, fuse_fsync_in, 0),
    /* without FUSE_SETXATTR_EXT (not asked for) the struct is its old 8 bytes */
    [FUSE_SETXATTR] = {FUSE_COMPAT_SETXATTR_IN_SIZE, 1, 1},
    S(FUSE_GETXATTR, fuse_getxattr_in, 1),
    S(FUSE_LISTXATTR, fuse_getxattr_in, 0),
    BARE(FUSE_REMOVEXATTR, 1),
    S(FUSE_FLUSH, fuse_flush_in, 0),
    [FUSE_INIT] = {16, 0, 1}, /* major, minor, max_readahead, flags */
    S(FUSE_OPENDIR, fuse_open_in, 0),
    S(FUSE_READDIR, fuse_read_in, 0),
    S(FUSE_RELEASEDIR, fuse_release_in, 0),
    S(FUSE_FSYNCDIR, fuse_fsync_in, 0),
    S(FUSE_GETLK, fuse_lk_in, 0),
    S(FUSE_SETLK, fuse_lk_in, 0),
    S(FUSE_SETLKW, fuse_lk_in, 0),
    S(FUSE_ACCESS, fuse_access_in, 0),
    S(FUSE_CREATE, fuse_create_in, 1),
    S(FUSE_INTERRUPT, fuse_interrupt_in, 0),
    S(FUSE_BMAP, fuse_bmap_in, 0),
    BARE(FUSE_DESTROY, 0),
    S(FUSE_IOCTL, fuse_ioctl_in, 0),
    S(FUSE_POLL, fuse_poll_in, 0),
    S(FUSE_NOTIFY_REPLY, fuse_notify_retrieve_in, 0),
    S(FUSE_BATCH_FORGET, fuse_batch_forget_in, 0),
    S(FUSE_FALLOCATE, fuse_fallocate_in, 0),
    S(FUSE_READDIRPLUS, fuse_read_in, 0),
    S(FUSE_RENAME2, fuse_rename2_in, 2),
    S(FUSE_LSEEK, fuse_lseek_in, 0),
    S(FUSE_COPY_FILE_RANGE, fuse_copy_file_range_in, 0),
    S(FUSE_SETUPMAPPING, fuse_setupmapping_in, 0),
    S(FUSE_REMOVEMAPPING, fuse_removemapping_in, 0),
    S(FUSE_SYNCFS, fuse_syncfs_in, 0),
    S(FUSE_TMPFILE, fuse_create_in, 0),
};

#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* Data an opcode's struct says follows it (in the `left` bytes after its
 * struct and names): whether it is all there. room: all bytes after the header. */
static int data_fits(uint32_t opcode, const unsigned char *args, size_t room, size_t left) {
    switch (opcode) {
    case FUSE_WRITE: {
        struct fuse_write_in w;
        memcpy(&w, args, sizeof w);
        return w.size <= left;
    }
    case FUSE_SETXATTR: {
        struct fuse_setxattr_in x = {0};
        memcpy(&x, args, FUSE_COMPAT_SETXATTR_IN_SIZE);
        return x.size <= left;
    }
    case FUSE_BATCH_FORGET: {
        struct fuse_batch_forget_in b;
        memcpy(&b, args, sizeof b);
        return (uint64_t)b.count * sizeof(struct fuse_forget_one) <= left;
    }
    case FUSE_IOCTL: {
        struct fuse_ioctl_in io;
        memcpy(&io, args, sizeof io);
        return io.in_size <= left;
    }
    case FUSE_INIT: {
        struct fuse_init_in init = {0};
        memcpy(&init, args, 16);
        return !(init.flags & FUSE_INIT_EXT) || room >= sizeof init;
    }
    default:
        return 1;
    }
}

int dwfs_fuse_request_ok(const void *msg, size_t len) {
    struct fuse_in_header in;
    if (len < sizeof in) return 0;
    memcpy(&in, msg, sizeof in);
    if (in.len != len) return 0;
    if (in.opcode >= N_SHAPES || !SHAPES[in.opcode].known) return 1;
    const shape *sh = &SHAPES[in.opcode];
    const unsigned char *args = (const unsigned char *)msg + sizeof in;
    size_t room = len - sizeof in;
    if (room < sh->args) return 0;
    size_t pos = sh->args;
    for (int i = 0; i < sh->names; i++) {
        const unsigned char *nul = memchr(args + pos, 0, room - pos);
        if (nul == NULL) return 0;
        pos = (size_t)(nul - args) + 1;
    }
    return data_fits(in.opcode, args, room, room - pos);
}

int dwfs_fuse_no_reply(uint32_t opcode) {
    return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT;
}
