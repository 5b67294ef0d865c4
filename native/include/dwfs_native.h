/* dwfs native kernels: GF(2^8) matrix coding, the FastCDC cut loop,
 * writing and flushing several files at once, and direct reads at any offset.
 *
 * Pure C with no Python.h, so the C tests and any other binding can reuse it
 * (the zfec pattern). Every function is reentrant after dwfs_gf_init().
 */
#ifndef DWFS_NATIVE_H
#define DWFS_NATIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DWFS_MAX_SHARDS 64

enum dwfs_simd { DWFS_SIMD_PORTABLE = 0, DWFS_SIMD_SSSE3 = 1, DWFS_SIMD_AVX2 = 2 };

/* Builds the multiplication tables and picks the vector path from CPU flags. */
void dwfs_gf_init(void);

/* The vector path in use (after dwfs_gf_init), and a way to force a lower one. */
int dwfs_gf_simd_level(void);
void dwfs_gf_force_level(int level);

uint8_t dwfs_gf_mul(uint8_t a, uint8_t b);

/* out[r][i] = XOR over c of M[r*cols + c] * in[c][i], for i in [0, len).
 * rows, cols <= DWFS_MAX_SHARDS. Outputs must not alias inputs. */
void dwfs_gf_matmul(const uint8_t *matrix, int rows, int cols,
                    const uint8_t *const *in, uint8_t *const *out, size_t len);

/* FastCDC (normalized chunking): the length of the first chunk of p[0..n).
 * If the buffer ends before a cut point is found and max is not reached,
 * returns n. gear is a table of 256 64-bit values. */
size_t dwfs_cdc_cut(const uint8_t *p, size_t n, size_t min_size, size_t avg_size,
                    size_t max_size, uint64_t mask_small, uint64_t mask_large,
                    const uint64_t *gear);

/* fdatasync of fds[0..n), all in flight at once where the kernel can (Linux
 * AIO), else one after another; errs[i] gets fds[i]'s errno or 0. Returns 1
 * when they went together, 0 when one by one. Safe from any thread. */
int dwfs_flush_together(const int *fds, int n, int *errs);

/* One write of a batch: len bytes at offset of fd, flushed if flush is set. */
struct dwfs_write {
    int fd;
    const void *data;
    size_t len;
    int64_t offset;
    int flush;
};

/* Each write in order (whole: short writes go on, one that takes nothing is
 * ENOSPC), then the flushes of those marked and written, all at once
 * (dwfs_flush_together); errs[i] gets write i's errno (its write's or its
 * flush's) or 0. Returns what dwfs_flush_together returned. Safe from any
 * thread. */
int dwfs_write_flush(const struct dwfs_write *writes, int n, int *errs);

/* The alignment a direct read's offset, length and buffer are given: the
 * largest logical block size in common use. */
#define DWFS_DIRECT_ALIGN 4096

/* One place a read fills. */
struct dwfs_part {
    void *data;
    size_t len;
};

/* One read of a batch: [offset, offset + the parts' total length) of fd,
 * opened with O_DIRECT, into parts in order; its result is how many bytes were
 * read (fewer where the file ends), or -errno (EINVAL when the file wants a
 * larger alignment than DWFS_DIRECT_ALIGN). */
struct dwfs_read {
    int fd;
    uint64_t offset;
    const struct dwfs_part *parts;
    int n;
    ssize_t result;
};

/* Every read of reads[0..n), all in flight at once where the kernel can
 * (Linux AIO), else one after another; each result set. The aligned range
 * around each read goes into a scratch buffer this thread keeps, and the
 * bytes asked for are copied out. Returns 1 when they went together. Safe
 * from any thread. */
int dwfs_read_direct_many(struct dwfs_read *reads, int n);

#endif
