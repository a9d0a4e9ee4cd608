/* Unit tests for util/list.h: the intrusive list with a head, a tail and
 * a length. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"

typedef struct {
    char name;
    list_node_t node;
} item_t;

#define ITEMS 5

/* The list front to back as item names, checked against its length and
 * against a walk from the tail back. */
static void spell(const list_t *l, char *out)
{
    size_t n = 0, back = 0;

    for (list_node_t *node = list_first(l); node != NULL; node = node->next) {
        cr_assert_lt(n, ITEMS);
        cr_assert_eq(node->prev == NULL, node == list_first(l));
        out[n++] = LIST_ITEM(node, item_t, node)->name;
    }
    out[n] = '\0';
    cr_assert_eq(list_len(l), n);
    for (list_node_t *node = list_last(l); node != NULL; node = node->prev, back++) {
        cr_assert_lt(back, n);
        cr_assert_eq(LIST_ITEM(node, item_t, node)->name, out[n - 1 - back]);
    }
    cr_assert_eq(back, n);
}

/* Operations: F<i> push item i at the front, B<i> at the back, R<i>
 * remove item i, P pop the first (which must be item i: P<i>), E pop from
 * the empty list. */
/* The list after ops: F<i> pushes item i at the front, B<i> at the back,
 * R<i> removes it, P<i> pops the first (which must be item i), E pops
 * from the empty list. */
static void run_ops(const char *ops, char *got)
{
    item_t it[ITEMS];
    list_t l = {0};

    for (int i = 0; i < ITEMS; i++)
        it[i].name = (char)('a' + i);
    for (const char *op = ops; *op != '\0'; op += *op == 'E' ? 1 : 2) {
        list_node_t *node = *op == 'E' ? NULL : &it[op[1] - '0'].node;
        switch (*op) {
        case 'F':
            list_push_front(&l, node);
            break;
        case 'B':
            list_push_back(&l, node);
            break;
        case 'R':
            list_remove(&l, node);
            cr_assert(node->prev == NULL && node->next == NULL);
            break;
        case 'P':
            cr_assert_eq(list_pop_front(&l), node, "%s: popped the first", ops);
            break;
        case 'E':
            cr_assert_null(list_pop_front(&l));
            break;
        }
    }
    spell(&l, got);
    cr_assert_eq(list_first(&l) == NULL, list_last(&l) == NULL);
}

Test(list, push_remove_pop)
{
    static const struct {
        const char *ops, *want;
    } cases[] = {
        {"", ""},
        {"F0F1F2", "cba"},
        {"B0B1B2", "abc"},
        {"B0F1B2F3", "dbac"},
        {"B0B1B2R1", "ac"},          /* the middle */
        {"B0B1B2R0", "bc"},          /* the head */
        {"B0B1B2R2B3", "abd"},       /* the tail, then the new tail */
        {"B0R0", ""},                /* the only one */
        {"B0R0F1B2", "bc"},          /* an emptied list is as new */
        {"B0B1B2P0P1", "c"},         /* back and pop: FIFO */
        {"F0F1F2P2", "ba"},          /* front and pop: newest first */
        {"B0P0E", ""},               /* popping the empty list */
        {"B0B1R1B1R0F0", "ab"},      /* a removed node goes on again */
        {"B0B1B2B3B4R4R0P1R3", "c"}, /* down to one, from both ends */
    };
    char got[ITEMS + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_ops(cases[i].ops, got);
        cr_assert_str_eq(got, cases[i].want, "%s", cases[i].ops);
    }
}

Test(list, item_of_no_node_is_null)
{
    cr_assert_null(LIST_ITEM(NULL, item_t, node));
    cr_assert_null(LIST_ITEM(list_first(&(list_t){0}), item_t, node));
}

/* The loop body may take its node off the list, and free it. */
Test(list, foreach_survives_removing_the_current_node)
{
    list_t l = {0};
    list_node_t *node, *next;
    char got[ITEMS + 1];
    size_t visited = 0;

    for (int i = 0; i < ITEMS; i++) {
        item_t *it = calloc(1, sizeof(*it));
        it->name = (char)('a' + i);
        list_push_back(&l, &it->node);
    }
    LIST_FOREACH (node, next, &l) {
        item_t *it = LIST_ITEM(node, item_t, node);
        visited++;
        if (strchr("ace", it->name) != NULL) {
            list_remove(&l, node);
            free(it);
        }
    }
    cr_assert_eq(visited, ITEMS);
    spell(&l, got);
    cr_assert_str_eq(got, "bd");
    LIST_FOREACH (node, next, &l) {
        list_remove(&l, node);
        free(LIST_ITEM(node, item_t, node));
    }
    cr_assert(list_first(&l) == NULL && list_last(&l) == NULL && list_len(&l) == 0);
}
