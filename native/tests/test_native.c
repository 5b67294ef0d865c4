/* C tests of the native kernels: field axioms, every vector path against
 * the portable one on random shapes and lengths, flushes, and direct reads
 * against buffered ones. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "dwfs_native.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static void test_field(void) {
    for (int a = 1; a < 256; a++) {
        int inverse = 0;
        for (int b = 1; b < 256; b++) {
            if (dwfs_gf_mul((uint8_t)a, (uint8_t)b) == 1) inverse++;
            CHECK(dwfs_gf_mul((uint8_t)a, (uint8_t)b) == dwfs_gf_mul((uint8_t)b, (uint8_t)a),
                  "mul not commutative at %d,%d", a, b);
        }
        CHECK(inverse == 1, "%d has %d inverses", a, inverse);
        CHECK(dwfs_gf_mul((uint8_t)a, 1) == a, "1 is not the identity for %d", a);
    }
}

static void test_paths_agree(void) {
    srand(1234);
    int best = dwfs_gf_simd_level();
    for (int round = 0; round < 200; round++) {
        int rows = 1 + rand() % 6, cols = 1 + rand() % 10;
        size_t len = (size_t)(rand() % 70000);
        uint8_t matrix[64 * 64];
        uint8_t *in[DWFS_MAX_SHARDS], *ref[DWFS_MAX_SHARDS], *got[DWFS_MAX_SHARDS];
        for (int i = 0; i < rows * cols; i++) matrix[i] = (uint8_t)rand();
        for (int c = 0; c < cols; c++) {
            in[c] = malloc(len + 1);
            for (size_t i = 0; i < len; i++) in[c][i] = (uint8_t)rand();
        }
        for (int r = 0; r < rows; r++) { ref[r] = malloc(len + 1); got[r] = malloc(len + 1); }
        dwfs_gf_force_level(DWFS_SIMD_PORTABLE);
        dwfs_gf_matmul(matrix, rows, cols, (const uint8_t *const *)in, ref, len);
        for (int level = 1; level <= best; level++) {
            dwfs_gf_force_level(level);
            dwfs_gf_matmul(matrix, rows, cols, (const uint8_t *const *)in, got, len);
            for (int r = 0; r < rows; r++)
                CHECK(memcmp(ref[r], got[r], len) == 0, "level %d differs (round %d)", level, round);
        }
        for (int c = 0; c < cols; c++) free(in[c]);
        for (int r = 0; r < rows; r++) { free(ref[r]); free(got[r]); }
    }
    dwfs_gf_force_level(best);
}

static void test_chunker_bounds(void) {
    uint64_t gear[256];
    for (int i = 0; i < 256; i++) gear[i] = (uint64_t)rand() * 2654435761u ^ ((uint64_t)rand() << 32);
    size_t n = 1 << 22;
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rand();
    size_t pos = 0;
    while (pos < n) {
        size_t cut = dwfs_cdc_cut(p + pos, n - pos, 4096, 16384, 65536, 0x3fffULL << 8, 0xfffULL << 8, gear);
        CHECK(cut >= 1 && cut <= 65536, "cut %zu out of bounds", cut);
        CHECK(cut >= 4096 || pos + cut == n, "short cut %zu mid-buffer", cut);
        pos += cut;
    }
    free(p);
}

/* Flushing files together: written bytes survive in the files, every flush
 * reports success, and a descriptor that is not open reports EBADF without
 * failing the others (and more files than one AIO batch holds). */
static void test_flush_together(void) {
    int fds[70], errs[70];
    char name[] = "/tmp/dwfs-flush-XXXXXX";
    for (int i = 0; i < 70; i++) {
        fds[i] = mkstemp(name);
        CHECK(fds[i] >= 0, "mkstemp failed");
        unlink(name);
        strcpy(name + strlen(name) - 6, "XXXXXX");
        CHECK(write(fds[i], "record", 6) == 6, "write failed");
    }
    int together = dwfs_flush_together(fds, 70, errs);
    for (int i = 0; i < 70; i++) CHECK(errs[i] == 0, "flush %d failed: %d", i, errs[i]);
    printf("native: flushes went %s\n", together ? "together (AIO)" : "one by one");
    int broken[3] = {fds[0], 100000, fds[1]};
    dwfs_flush_together(broken, 3, errs);
    CHECK(errs[0] == 0 && errs[1] == EBADF && errs[2] == 0,
          "a closed descriptor among open ones: %d %d %d", errs[0], errs[1], errs[2]);
    for (int i = 0; i < 70; i++) close(fds[i]);
}

/* Writing and flushing together: each write lands whole at its offset, the
 * unmarked one is written but not flushed, a bad descriptor fails alone. */
static void test_write_flush(void) {
    char name[] = "/tmp/dwfs-wflush-XXXXXX";
    int fd = mkstemp(name);
    CHECK(fd >= 0, "mkstemp failed");
    unlink(name);
    struct dwfs_write writes[3] = {
        {fd, "head", 4, 10, 1}, {100000, "lost", 4, 0, 1}, {fd, "record", 6, 0, 0}};
    int errs[3];
    dwfs_write_flush(writes, 3, errs);
    CHECK(errs[0] == 0 && errs[1] == EBADF && errs[2] == 0, "results %d %d %d", errs[0], errs[1], errs[2]);
    char back[14] = {0};
    CHECK(pread(fd, back, sizeof back, 0) == 14, "short file");
    CHECK(memcmp(back, "record\0\0\0\0head", 14) == 0, "bytes not where they were written");
    close(fd);
}

/* One direct read, as a batch of one. */
static ssize_t read_direct(int fd, uint64_t offset, const struct dwfs_part *parts, int n) {
    struct dwfs_read r = {fd, offset, parts, n, 0};
    dwfs_read_direct_many(&r, 1);
    return r.result;
}

/* Direct reads of random ranges, split in random parts, give what pread gives,
 * short at the end of the file; a bad descriptor is -EBADF. */
static void test_read_direct(void) {
    char name[] = "/tmp/dwfs-direct-XXXXXX";
    int fd = mkstemp(name);
    CHECK(fd >= 0, "mkstemp failed");
    enum { SIZE = 3 * 1024 * 1024 + 777 };
    unsigned char *data = malloc(SIZE), *got = malloc(SIZE + 9000);
    for (size_t i = 0; i < SIZE; i++) data[i] = (unsigned char)rand();
    CHECK(pwrite(fd, data, SIZE, 0) == SIZE, "short write");
    fsync(fd);
    int direct = open(name, O_RDONLY | O_DIRECT);
    unlink(name);
    CHECK(direct >= 0, "no O_DIRECT on /tmp: %d", errno);
    for (int round = 0; round < 300 && direct >= 0; round++) {
        uint64_t offset = (uint64_t)rand() % (SIZE + 5000);
        struct dwfs_part parts[3];
        size_t total = 0;
        for (int i = 0; i < 3; i++) {
            parts[i].len = (size_t)rand() % 3000;
            parts[i].data = got + total;
            total += parts[i].len;
        }
        memset(got, 0xee, total);
        size_t want = offset >= SIZE ? 0 : (SIZE - offset < total ? SIZE - offset : total);
        ssize_t n = read_direct(direct, offset, parts, 3);
        CHECK(n == (ssize_t)want, "read %zd of %zu at %llu", n, want, (unsigned long long)offset);
        CHECK(want == 0 || memcmp(got, data + offset, want) == 0, "bytes differ at %llu", (unsigned long long)offset);
        for (size_t i = want; i < total; i++) CHECK(got[i] == 0xee, "written past the end at %zu", i);
    }
    struct dwfs_part one = {got, 10};
    CHECK(read_direct(100000, 0, &one, 1) == -EBADF, "a bad descriptor read");
    /* A batch larger than one AIO submission, each read into its own place,
     * with a bad descriptor failing alone. */
    enum { MANY = 100, PIECE = 5000 };
    unsigned char *many = malloc(MANY * PIECE);
    struct dwfs_part pieces[MANY];
    struct dwfs_read reads[MANY + 1];
    for (int i = 0; i < MANY; i++) {
        pieces[i] = (struct dwfs_part){many + i * PIECE, PIECE};
        reads[i] = (struct dwfs_read){direct, (uint64_t)rand() % SIZE, &pieces[i], 1, 0};
    }
    reads[MANY] = (struct dwfs_read){100000, 0, &one, 1, 0};
    dwfs_read_direct_many(reads, MANY + 1);
    for (int i = 0; i < MANY && direct >= 0; i++) {
        size_t want = SIZE - reads[i].offset < PIECE ? SIZE - reads[i].offset : PIECE;
        CHECK(reads[i].result == (ssize_t)want, "batch read %d: %zd of %zu", i, reads[i].result, want);
        CHECK(memcmp(many + i * PIECE, data + reads[i].offset, want) == 0, "batch read %d differs", i);
    }
    CHECK(reads[MANY].result == -EBADF, "a bad descriptor in a batch: %zd", reads[MANY].result);
    free(many);
    close(direct);
    close(fd);
    free(data);
    free(got);
}

int main(void) {
    dwfs_gf_init();
    test_field();
    test_paths_agree();
    test_chunker_bounds();
    test_flush_together();
    test_write_flush();
    test_read_direct();
    printf("native: simd level %d, %s\n", dwfs_gf_simd_level(), failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
