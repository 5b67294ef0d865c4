/* C tests of the entry cache: random operations against a model, with a
 * bound small enough that putting into a full cache (which empties it) is
 * exercised too, and names that share prefixes, lengths and directories. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwfs_entrycache.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define INODES 80
#define DIRS 4
#define NAMES 12
#define MAX 40
#define STEPS 200000

static const char *const NAME_OF[NAMES] = {"a", "b", "ab", "ba", "abc", "a\xff", "long-name-0",
                                           "long-name-1", "x", "y", "..", "z z"};

/* The model: an inode's size (-1: not cached); a name's inode (0: not cached). */
static long long attr_model[INODES];
static int bare_model[INODES];
static unsigned hold_model[INODES];
static int complete_model[INODES];
static int handle_model[INODES];
static uint64_t name_model[DIRS][NAMES];

static size_t model_attrs(void) {
    size_t n = 0;
    for (int i = 0; i < INODES; i++) n += attr_model[i] >= 0;
    return n;
}

/* Members of a modelled set of inodes (bare, complete, handles). */
static size_t model_count(const int *model) {
    size_t n = 0;
    for (int i = 0; i < INODES; i++) n += model[i];
    return n;
}

static size_t model_names(void) {
    size_t n = 0;
    for (int d = 0; d < DIRS; d++)
        for (int k = 0; k < NAMES; k++) n += name_model[d][k] != 0;
    return n;
}


/* held changes are kept by a clear, and nothing else is */
static size_t model_holds(void) {
    size_t n = 0;
    for (int i = 0; i < INODES; i++) n += hold_model[i] > 0;
    return n;
}

static void model_clear(void) {
    for (int i = 0; i < INODES; i++) attr_model[i] = -1;
    memset(bare_model, 0, sizeof bare_model);
    memset(complete_model, 0, sizeof complete_model);
    memset(handle_model, 0, sizeof handle_model);
    memset(name_model, 0, sizeof name_model);
}

/* One of the cache's sets of inodes, with its model. */
typedef struct {
    const char *name;
    int (*add)(ec_cache *, uint64_t);
    int (*has)(const ec_cache *, uint64_t);
    void (*drop)(ec_cache *, uint64_t);
    int *model;
} set_ops;

/* A random drop or add of ino in a set, then its membership against the model. */
static void set_step(ec_cache *c, const set_ops *set, int ino, int step) {
    if (rand() % 3 == 0) {
        set->drop(c, (uint64_t)ino);
        set->model[ino] = 0;
    } else if (rand() % 2) {
        if (!set->model[ino] && model_count(set->model) >= MAX) model_clear();
        CHECK(set->add(c, (uint64_t)ino) == 0, "step %d: add to %s", step, set->name);
        set->model[ino] = 1;
    }
    CHECK(set->has(c, (uint64_t)ino) == set->model[ino], "step %d: %d in %s %d, model %d", step,
          ino, set->name, set->has(c, (uint64_t)ino), set->model[ino]);
}

int main(void) {
    const set_ops completes = {"complete", ec_set_complete, ec_is_complete, ec_drop_complete,
                               complete_model};
    const set_ops handles = {"handles", ec_add_handle, ec_has_handle, ec_drop_handle, handle_model};
    ec_cache *c = ec_new(MAX);
    CHECK(c != NULL, "ec_new failed");
    CHECK(ec_new(0) == NULL, "a cache of nothing was made");
    model_clear();
    srand(12345);
    for (int step = 0; step < STEPS; step++) {
        int op = rand() % 15, ino = rand() % INODES, d = rand() % DIRS, k = rand() % NAMES;
        const char *name = NAME_OF[k];
        size_t len = strlen(name);
        struct stat st;
        double timeout = 0;
        switch (op) {
        case 0: {
            memset(&st, 0, sizeof st);
            st.st_ino = (ino_t)ino;
            st.st_size = rand();
            if (hold_model[ino]) {
                CHECK(ec_put_attr(c, &st, 1.5) == 1, "step %d: put_attr of held %d", step, ino);
                break;
            }
            if (attr_model[ino] < 0 && model_attrs() >= MAX) model_clear();
            CHECK(ec_put_attr(c, &st, 1.5) == 0, "put_attr failed");
            attr_model[ino] = st.st_size;
            break;
        }
        case 10: {
            memset(&st, 0, sizeof st);
            st.st_ino = (ino_t)ino;
            st.st_size = rand();
            if (!hold_model[ino] && model_holds() == EC_HOLDS_MAX) {
                CHECK(ec_change_attr(c, &st, 1.5) == -1, "step %d: a hold past the most", step);
                break;
            }
            if (attr_model[ino] < 0 && model_attrs() >= MAX) model_clear();
            CHECK(ec_change_attr(c, &st, 1.5) == 0, "step %d: change_attr of %d", step, ino);
            attr_model[ino] = st.st_size;
            hold_model[ino]++;
            break;
        }
        case 11: {
            unsigned left = ec_unhold(c, (uint64_t)ino);
            if (hold_model[ino]) hold_model[ino]--;
            CHECK(left == hold_model[ino], "step %d: %d left %u held, model %u", step, ino, left,
                  hold_model[ino]);
            break;
        }
        case 13:
            set_step(c, &completes, ino, step);
            break;
        case 14:
            set_step(c, &handles, ino, step);
            break;
        case 12:
            CHECK(ec_held(c, (uint64_t)ino) == hold_model[ino], "step %d: %d held %u, model %u",
                  step, ino, ec_held(c, (uint64_t)ino), hold_model[ino]);
            break;
        case 1:
            ec_drop_attr(c, (uint64_t)ino);
            attr_model[ino] = -1;
            break;
        case 7:
            if (rand() % 3 == 0) {
                ec_drop_bare(c, (uint64_t)ino);
                bare_model[ino] = 0;
                break;
            }
            if (!bare_model[ino] && model_count(bare_model) >= MAX) model_clear();
            CHECK(ec_set_bare(c, (uint64_t)ino) == 0, "step %d: set_bare of %d", step, ino);
            bare_model[ino] = 1;
            break;
        case 8:
            CHECK(ec_is_bare(c, (uint64_t)ino) == bare_model[ino], "step %d: %d bare %d, model %d",
                  step, ino, ec_is_bare(c, (uint64_t)ino), bare_model[ino]);
            break;
        case 2: case 3: {
            int got = ec_get_attr(c, (uint64_t)ino, &st, &timeout);
            CHECK(got == (attr_model[ino] >= 0), "step %d: attr of %d cached %d, model %lld", step,
                  ino, got, attr_model[ino]);
            if (got) {
                CHECK(st.st_size == attr_model[ino] && (int)st.st_ino == ino && timeout == 1.5,
                      "step %d: wrong attributes of %d", step, ino);
            }
            break;
        }
        case 4: {
            uint64_t to = (uint64_t)(ino + 1);
            if (name_model[d][k] == 0 && model_names() >= MAX) model_clear();
            CHECK(ec_put_name(c, (uint64_t)d, name, len, to, 2.5) == 0, "put_name failed");
            name_model[d][k] = to;
            break;
        }
        case 5: {
            uint64_t was = ec_drop_name(c, (uint64_t)d, name, len);
            CHECK(was == name_model[d][k], "step %d: drop of %d/%s gave %llu, model %llu", step,
                  d, name, (unsigned long long)was, (unsigned long long)name_model[d][k]);
            name_model[d][k] = 0;
            break;
        }
        case 6: {
            uint64_t got = ec_get_name(c, (uint64_t)d, name, len, &timeout);
            CHECK(got == name_model[d][k], "step %d: %d/%s is %llu, model %llu", step, d, name,
                  (unsigned long long)got, (unsigned long long)name_model[d][k]);
            CHECK(got == 0 || timeout == 2.5, "step %d: wrong timeout", step);
            /* a prefix of the name, or the name in another directory, is another entry */
            if (len > 1) {
                uint64_t prefix = ec_get_name(c, (uint64_t)d, name, len - 1, &timeout);
                int expect_k = -1;
                for (int j = 0; j < NAMES; j++)
                    if (strlen(NAME_OF[j]) == len - 1 && memcmp(NAME_OF[j], name, len - 1) == 0) expect_k = j;
                CHECK(prefix == (expect_k < 0 ? 0 : name_model[d][expect_k]),
                      "step %d: the prefix of %s answered", step, name);
            }
            break;
        }
        default:
            if (rand() % 100 == 0) {
                ec_clear(c);
                model_clear();
            }
        }
        CHECK(ec_attrs(c) == model_attrs() && ec_names(c) == model_names() &&
                  ec_bare(c) == model_count(bare_model) && ec_complete(c) == model_count(complete_model) &&
                  ec_handles(c) == model_count(handle_model),
              "step %d: counts %zu/%zu/%zu, model %zu/%zu/%zu", step, ec_attrs(c), ec_names(c),
              ec_bare(c), model_attrs(), model_names(), model_count(bare_model));
        if (failures > 10) break;
    }
    ec_free(c);
    if (failures) {
        fprintf(stderr, "entrycache: %d failures\n", failures);
        return 1;
    }
    printf("entrycache: ok\n");
    return 0;
}
