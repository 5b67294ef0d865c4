/* C tests of the request check: well-formed requests of each shape pass, every
 * shorter cut of them and every name without its NUL fails, declared data
 * must be there, and random bytes never read out of bounds (run under ASan). */
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwfs_fusecheck.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* A request of opcode with args (n bytes) and then tail (m bytes), its header's
 * length set to the whole; malloc'd to exactly its size so ASan sees overreads. */
static unsigned char *request(uint32_t opcode, const void *args, size_t n, const void *tail,
                              size_t m, size_t *len) {
    *len = sizeof(struct fuse_in_header) + n + m;
    unsigned char *msg = malloc(*len);
    struct fuse_in_header in = {.len = (uint32_t)*len, .opcode = opcode, .unique = 7, .nodeid = 1};
    memcpy(msg, &in, sizeof in);
    memcpy(msg + sizeof in, args, n);
    memcpy(msg + sizeof in + n, tail, m);
    return msg;
}

/* The same request cut to `keep` bytes, its header's length saying so. */
static int cut_ok(const unsigned char *msg, size_t keep) {
    unsigned char *copy = malloc(keep ? keep : 1);
    memcpy(copy, msg, keep);
    if (keep >= sizeof(struct fuse_in_header)) ((struct fuse_in_header *)copy)->len = (uint32_t)keep;
    int ok = dwfs_fuse_request_ok(copy, keep);
    free(copy);
    return ok;
}

static void expect_shape(const char *what, uint32_t opcode, const void *args, size_t n,
                         const void *tail, size_t m) {
    size_t len;
    unsigned char *msg = request(opcode, args, n, tail, m, &len);
    CHECK(dwfs_fuse_request_ok(msg, len), "%s: a well-formed request was refused", what);
    for (size_t keep = 0; keep < len; keep++)
        CHECK(!cut_ok(msg, keep), "%s cut to %zu of %zu bytes passed", what, keep, len);
    CHECK(!dwfs_fuse_request_ok(msg, len - 1), "%s: a length not matching the header passed", what);
    free(msg);
}

static void test_shapes(void) {
    struct fuse_read_in read = {.fh = 1, .size = 4096};
    expect_shape("read", FUSE_READ, &read, sizeof read, "", 0);
    expect_shape("lookup", FUSE_LOOKUP, "name", 5, "", 0);
    expect_shape("symlink", FUSE_SYMLINK, "name\0target", 12, "", 0);
    struct fuse_rename2_in rename = {.newdir = 1};
    expect_shape("rename2", FUSE_RENAME2, &rename, sizeof rename, "a\0b", 4);
    struct fuse_write_in write = {.fh = 1, .size = 10};
    expect_shape("write", FUSE_WRITE, &write, sizeof write, "0123456789", 10);
    struct fuse_setxattr_in set = {.size = 3};
    expect_shape("setxattr", FUSE_SETXATTR, &set, FUSE_COMPAT_SETXATTR_IN_SIZE, "user.x\0abc", 10);
    struct fuse_batch_forget_in batch = {.count = 2};
    struct fuse_forget_one two[2] = {{.nodeid = 5, .nlookup = 1}, {.nodeid = 6, .nlookup = 1}};
    expect_shape("batch_forget", FUSE_BATCH_FORGET, &batch, sizeof batch, two, sizeof two);
    struct fuse_create_in create = {.mode = 0644};
    expect_shape("create", FUSE_CREATE, &create, sizeof create, "f", 2);

    size_t len;
    unsigned char *msg = request(FUSE_LOOKUP, "name", 4, "", 0, &len);
    CHECK(!dwfs_fuse_request_ok(msg, len), "a name without its NUL passed");
    free(msg);
    msg = request(4242, "", 0, "", 0, &len);
    CHECK(dwfs_fuse_request_ok(msg, len), "an unknown opcode was refused (libfuse answers ENOSYS)");
    free(msg);
    batch.count = 0x40000000;
    msg = request(FUSE_BATCH_FORGET, &batch, sizeof batch, two, sizeof two, &len);
    CHECK(!dwfs_fuse_request_ok(msg, len), "a forget batch longer than its request passed");
    free(msg);
    CHECK(dwfs_fuse_no_reply(FUSE_FORGET) && !dwfs_fuse_no_reply(FUSE_READ), "no-reply opcodes");
}

static void test_random_bytes(void) {
    srand(7);
    for (int round = 0; round < 200000; round++) {
        size_t len = (size_t)(rand() % 200);
        unsigned char *msg = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) msg[i] = (unsigned char)rand();
        if (len >= sizeof(struct fuse_in_header)) {
            struct fuse_in_header *in = (struct fuse_in_header *)msg;
            in->len = (uint32_t)len;
            in->opcode = (uint32_t)(rand() % 60);
        }
        (void)dwfs_fuse_request_ok(msg, len);
        free(msg);
    }
}

int main(void) {
    test_shapes();
    test_random_bytes();
    printf("fusecheck: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
