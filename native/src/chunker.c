/* FastCDC with normalized chunking (Xia et al., USENIX ATC 2016; ToS 2020).
 *
 * A gear rolling hash; below the average size a stricter mask (more bits) makes a
 * cut less likely, above it a looser one makes it more likely, which narrows the
 * size distribution around the average.
 */
#include "dwfs_native.h"

size_t dwfs_cdc_cut(const uint8_t *p, size_t n, size_t min_size, size_t avg_size,
                    size_t max_size, uint64_t mask_small, uint64_t mask_large,
                    const uint64_t *gear) {
    if (n <= min_size) return n;
    size_t limit = n < max_size ? n : max_size;
    size_t normal = avg_size < limit ? avg_size : limit;
    uint64_t h = 0;
    size_t i = min_size;
    for (; i < normal; i++) {
        h = (h << 1) + gear[p[i]];
        if (!(h & mask_small)) return i + 1;
    }
    for (; i < limit; i++) {
        h = (h << 1) + gear[p[i]];
        if (!(h & mask_large)) return i + 1;
    }
    return limit;
}
