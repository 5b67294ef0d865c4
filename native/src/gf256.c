/* GF(2^8) arithmetic (polynomial 0x11d) and matrix-times-buffers coding.
 *
 * Multiplying a buffer by a constant c uses two 16-entry tables (c times the low
 * nibble, c times the high nibble), which the SSSE3/AVX2 paths apply 16 or 32
 * bytes at a time with PSHUFB, as ISA-L and klauspost/reedsolomon do.
 */
#include "dwfs_native.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DWFS_X86 1
#endif

static uint8_t gf_exp[512];
static uint8_t gf_log[256];
static uint8_t tbl_lo[256][16];
static uint8_t tbl_hi[256][16];
static int simd_level = DWFS_SIMD_PORTABLE;
static int initialised = 0;

uint8_t dwfs_gf_mul(uint8_t a, uint8_t b) {
    if (a == 0 || b == 0) return 0;
    return gf_exp[gf_log[a] + gf_log[b]];
}

static int detect_level(void) {
#ifdef DWFS_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return DWFS_SIMD_AVX2;
    if (__builtin_cpu_supports("ssse3")) return DWFS_SIMD_SSSE3;
#endif
    return DWFS_SIMD_PORTABLE;
}

void dwfs_gf_init(void) {
    if (initialised) return;
    unsigned x = 1;
    for (int i = 0; i < 255; i++) {
        gf_exp[i] = (uint8_t)x;
        gf_log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100) x ^= 0x11d;
    }
    for (int i = 255; i < 512; i++) gf_exp[i] = gf_exp[i - 255];
    for (int c = 0; c < 256; c++) {
        for (int v = 0; v < 16; v++) {
            tbl_lo[c][v] = dwfs_gf_mul((uint8_t)c, (uint8_t)v);
            tbl_hi[c][v] = dwfs_gf_mul((uint8_t)c, (uint8_t)(v << 4));
        }
    }
    simd_level = detect_level();
    initialised = 1;
}

int dwfs_gf_simd_level(void) { return simd_level; }

void dwfs_gf_force_level(int level) {
    int best = detect_level();
    simd_level = level < best ? level : best;
}

static void row_portable(const uint8_t *coef, int cols, const uint8_t *const *in,
                         uint8_t *out, size_t from, size_t len) {
    for (size_t i = from; i < len; i++) {
        uint8_t acc = 0;
        for (int c = 0; c < cols; c++) {
            uint8_t b = in[c][i];
            acc ^= tbl_lo[coef[c]][b & 15] ^ tbl_hi[coef[c]][b >> 4];
        }
        out[i] = acc;
    }
}

#ifdef DWFS_X86
__attribute__((target("ssse3")))
static size_t row_ssse3(const uint8_t *coef, int cols, const uint8_t *const *in,
                        uint8_t *out, size_t len) {
    __m128i lo[DWFS_MAX_SHARDS], hi[DWFS_MAX_SHARDS];
    const __m128i mask = _mm_set1_epi8(0x0f);
    for (int c = 0; c < cols; c++) {
        lo[c] = _mm_loadu_si128((const __m128i *)tbl_lo[coef[c]]);
        hi[c] = _mm_loadu_si128((const __m128i *)tbl_hi[coef[c]]);
    }
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        __m128i acc = _mm_setzero_si128();
        for (int c = 0; c < cols; c++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(in[c] + i));
            __m128i l = _mm_and_si128(x, mask);
            __m128i h = _mm_and_si128(_mm_srli_epi64(x, 4), mask);
            acc = _mm_xor_si128(acc, _mm_xor_si128(_mm_shuffle_epi8(lo[c], l),
                                                   _mm_shuffle_epi8(hi[c], h)));
        }
        _mm_storeu_si128((__m128i *)(out + i), acc);
    }
    return i;
}

__attribute__((target("avx2")))
static size_t row_avx2(const uint8_t *coef, int cols, const uint8_t *const *in,
                       uint8_t *out, size_t len) {
    __m256i lo[DWFS_MAX_SHARDS], hi[DWFS_MAX_SHARDS];
    const __m256i mask = _mm256_set1_epi8(0x0f);
    for (int c = 0; c < cols; c++) {
        lo[c] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tbl_lo[coef[c]]));
        hi[c] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tbl_hi[coef[c]]));
    }
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
        __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
        for (int c = 0; c < cols; c++) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(in[c] + i));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(in[c] + i + 32));
            __m256i l0 = _mm256_and_si256(x0, mask), l1 = _mm256_and_si256(x1, mask);
            __m256i h0 = _mm256_and_si256(_mm256_srli_epi64(x0, 4), mask);
            __m256i h1 = _mm256_and_si256(_mm256_srli_epi64(x1, 4), mask);
            a0 = _mm256_xor_si256(a0, _mm256_xor_si256(_mm256_shuffle_epi8(lo[c], l0),
                                                       _mm256_shuffle_epi8(hi[c], h0)));
            a1 = _mm256_xor_si256(a1, _mm256_xor_si256(_mm256_shuffle_epi8(lo[c], l1),
                                                       _mm256_shuffle_epi8(hi[c], h1)));
        }
        _mm256_storeu_si256((__m256i *)(out + i), a0);
        _mm256_storeu_si256((__m256i *)(out + i + 32), a1);
    }
    return i;
}
#endif

/* Rows are computed over blocks small enough that every input block stays in
 * L1/L2 while all output rows read it. */
#define BLOCK ((size_t)16384)

void dwfs_gf_matmul(const uint8_t *matrix, int rows, int cols,
                    const uint8_t *const *in, uint8_t *const *out, size_t len) {
    const uint8_t *blk_in[DWFS_MAX_SHARDS];
    for (size_t base = 0; base < len; base += BLOCK) {
        size_t n = len - base < BLOCK ? len - base : BLOCK;
        for (int c = 0; c < cols; c++) blk_in[c] = in[c] + base;
        for (int r = 0; r < rows; r++) {
            const uint8_t *coef = matrix + (size_t)r * (size_t)cols;
            uint8_t *dst = out[r] + base;
            size_t done = 0;
#ifdef DWFS_X86
            if (simd_level == DWFS_SIMD_AVX2) done = row_avx2(coef, cols, blk_in, dst, n);
            else if (simd_level == DWFS_SIMD_SSSE3) done = row_ssse3(coef, cols, blk_in, dst, n);
#endif
            row_portable(coef, cols, blk_in, dst, done, n);
        }
    }
}
