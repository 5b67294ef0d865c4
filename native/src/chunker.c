/* FastCDC with normalized chunking (Xia et al., USENIX ATC 2016; ToS 2020).
 *
 * A gear rolling hash; below the average size a stricter mask (more bits) makes a
 * cut less likely, above it a looser one makes it more likely, which narrows the
 * size distribution around the average.
 */
#include "dwfs_native.h"

/* Rolls the gear hash *h over p[*at..end) until a position where it has no bit
 * of mask set: 1 with *at just past it, or 0 with *at = end. Four bytes a
 * round: h after the fourth is (h << 4) plus a sum of the four bytes' gear
 * values that does not depend on h, so the chain from one round to the next is
 * a shift and an add, not four of each; the cuts are the byte-at-a-time
 * loop's. */
static int roll(const uint8_t *p, size_t *at, size_t end, uint64_t *h, uint64_t mask,
                const uint64_t *gear) {
    size_t i = *at;
    uint64_t x = *h;
    for (; i + 4 <= end; i += 4) {
        uint64_t g0 = gear[p[i]], g1 = gear[p[i + 1]], g2 = gear[p[i + 2]], g3 = gear[p[i + 3]];
        uint64_t pair = (g0 << 1) + g1, three = (pair << 1) + g2, four = (three << 1) + g3;
        uint64_t h0 = (x << 1) + g0, h1 = (x << 2) + pair, h2 = (x << 3) + three;
        uint64_t h3 = (x << 4) + four;
        if (!(h0 & mask) | !(h1 & mask) | !(h2 & mask) | !(h3 & mask)) {
            *at = i + (!(h0 & mask) ? 1 : !(h1 & mask) ? 2 : !(h2 & mask) ? 3 : 4);
            return 1;
        }
        x = h3;
    }
    for (; i < end; i++) {
        x = (x << 1) + gear[p[i]];
        if (!(x & mask)) {
            *at = i + 1;
            return 1;
        }
    }
    *at = end;
    *h = x;
    return 0;
}

size_t dwfs_cdc_cut(const uint8_t *p, size_t n, size_t min_size, size_t avg_size,
                    size_t max_size, uint64_t mask_small, uint64_t mask_large,
                    const uint64_t *gear) {
    if (n <= min_size) return n;
    size_t limit = n < max_size ? n : max_size;
    size_t normal = avg_size < limit ? avg_size : limit;
    uint64_t h = 0;
    size_t i = min_size;
    if (roll(p, &i, normal, &h, mask_small, gear)) return i;
    if (roll(p, &i, limit, &h, mask_large, gear)) return i;
    return limit;
}
