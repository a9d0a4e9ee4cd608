#include "heap.h"

#include <stdlib.h>

#include "xalloc.h"

void heap_init(heap_t *h)
{
    *h = (heap_t){NULL, 0, 0, 0};
}

void heap_free(heap_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->a[i]->slot = 0;
    free(h->a);
    heap_init(h);
}

static bool heap_less(const heap_node_t *x, const heap_node_t *y)
{
    return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static void heap_place(heap_t *h, size_t i, heap_node_t *node)
{
    h->a[i] = node;
    node->slot = i + 1;
}

static void heap_up(heap_t *h, size_t i)
{
    heap_node_t *node = h->a[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(node, h->a[parent]))
            break;
        heap_place(h, i, h->a[parent]);
        i = parent;
    }
    heap_place(h, i, node);
}

static void heap_down(heap_t *h, size_t i)
{
    heap_node_t *node = h->a[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && heap_less(h->a[child + 1], h->a[child]))
            child++;
        if (!heap_less(h->a[child], node))
            break;
        heap_place(h, i, h->a[child]);
        i = child;
    }
    heap_place(h, i, node);
}

void heap_set(heap_t *h, heap_node_t *node, int64_t key)
{
    node->key = key;
    node->seq = h->seq++;
    if (node->slot == 0) {
        h->a = xgrow(h->a, &h->cap, h->n + 1, sizeof(*h->a));
        heap_place(h, h->n++, node);
        heap_up(h, h->n - 1);
        return;
    }
    /* A later seq can only push it down among equal keys; a smaller key
     * pulls it up.  Trying both is cheaper than working out which. */
    heap_up(h, node->slot - 1);
    heap_down(h, node->slot - 1);
}

void heap_remove(heap_t *h, heap_node_t *node)
{
    size_t i = node->slot;
    heap_node_t *last;

    if (i == 0)
        return;
    i--;
    node->slot = 0;
    last = h->a[--h->n];
    if (last == node)
        return;
    heap_place(h, i, last);
    heap_up(h, i);
    heap_down(h, last->slot - 1);
}
