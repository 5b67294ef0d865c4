/* C tests of the attribute cache: random operations against a model, with a
 * bound small enough that it starts over empty now and then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwfs_attrcache.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define INODES 512
#define MAX 100

static int present[INODES];
static long long size_of[INODES];

static size_t model_count(void) {
    size_t n = 0;
    for (int i = 0; i < INODES; i++) n += (size_t)present[i];
    return n;
}

int main(void) {
    ac_table *t = ac_new(MAX);
    srand(5);
    for (int round = 0; round < 200000; round++) {
        uint64_t ino = (uint64_t)(rand() % INODES);
        int op = rand() % 10;
        if (op < 4) {
            struct stat st;
            memset(&st, 0, sizeof st);
            st.st_ino = ino;
            st.st_size = rand();
            if (!present[ino] && model_count() >= MAX) memset(present, 0, sizeof present);
            CHECK(ac_put(t, ino, &st, 1.5) == 1, "put refused");
            present[ino] = 1;
            size_of[ino] = st.st_size;
        } else if (op < 8) {
            struct stat st;
            double timeout;
            int hit = ac_get(t, ino, &st, &timeout);
            CHECK(hit == present[ino], "inode %llu: hit %d, model %d", (unsigned long long)ino,
                  hit, present[ino]);
            CHECK(!hit || (st.st_size == size_of[ino] && st.st_ino == ino && timeout == 1.5),
                  "inode %llu: wrong attributes", (unsigned long long)ino);
        } else if (op < 9) {
            ac_drop(t, ino);
            present[ino] = 0;
        } else if (rand() % 100 == 0) {
            ac_clear(t);
            memset(present, 0, sizeof present);
        }
        CHECK(ac_count(t) == model_count(), "count %zu, model %zu", ac_count(t), model_count());
        CHECK(ac_count(t) <= MAX, "over the bound");
    }
    ac_free(t);
    printf("attrcache: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
