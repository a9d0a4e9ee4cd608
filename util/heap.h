/*
 * heap - an intrusive binary min-heap of timed entries.
 *
 * The caller embeds a heap_node_t in each object it schedules and keys it
 * with a time (or any int64_t); the heap keeps pointers to the nodes, and
 * each node knows its own slot, so moving or removing an entry is
 * O(log n) without a search.  Entries with equal keys come out in the
 * order they were last set, so work due at the same moment is first come,
 * first served.  The heap allocates only its array of pointers; nodes
 * belong to the caller and must stay put while they are in the heap.
 */
#ifndef MXFWD_HEAP_H
#define MXFWD_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t key;
    uint64_t seq; /* tie-break: order of heap_set() calls */
    size_t slot;  /* index + 1 in the heap; 0 when not in it */
} heap_node_t;

typedef struct {
    heap_node_t **a;
    size_t n;
    size_t cap;
    uint64_t seq;
} heap_t;

void heap_init(heap_t *h);
/* Release the array; the nodes are the caller's. */
void heap_free(heap_t *h);

static inline size_t heap_count(const heap_t *h)
{
    return h->n;
}
static inline bool heap_contains(const heap_node_t *node)
{
    return node->slot != 0;
}
/* The node with the smallest key, or NULL when empty. */
static inline heap_node_t *heap_min(const heap_t *h)
{
    return h->n > 0 ? h->a[0] : NULL;
}

/* Insert node with key, or move it there if it is in the heap already. */
void heap_set(heap_t *h, heap_node_t *node, int64_t key);
/* Take node out (nothing when it is not in). */
void heap_remove(heap_t *h, heap_node_t *node);

#endif
