/*
 * list - an intrusive doubly linked list with a head, a tail and a length.
 * A struct on a list embeds a list_node_t per list it may be on; pushing
 * at either end, popping the first and removing any node are O(1) and
 * allocate nothing.  A list_t is empty when zeroed.  The list owns
 * nothing: a node must be removed before its struct is freed, and is on
 * at most one list at a time.  Header only.
 */
#ifndef MXFWD_LIST_H
#define MXFWD_LIST_H

#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node_t;

typedef struct {
    list_node_t *head, *tail;
    size_t n;
} list_t;

static inline void *list__item(list_node_t *node, size_t offset)
{
    return node != NULL ? (char *)node - offset : NULL;
}

/* The struct of type that holds node as its member; NULL for NULL. */
#define LIST_ITEM(node, type, member) ((type *)list__item((node), offsetof(type, member)))

/* Every node from the head on; node may be removed (or freed) in the
 * body, as next is read before it runs. */
#define LIST_FOREACH(node, next, l)                                                                \
    for ((node) = (l)->head; (node) != NULL && ((next) = (node)->next, 1); (node) = (next))

static inline list_node_t *list_first(const list_t *l)
{
    return l->head;
}

static inline list_node_t *list_last(const list_t *l)
{
    return l->tail;
}

static inline size_t list_len(const list_t *l)
{
    return l->n;
}

/* node between prev and next (NULL: the end of the list). */
static inline void list__link(list_t *l, list_node_t *prev, list_node_t *node, list_node_t *next)
{
    node->prev = prev;
    node->next = next;
    if (prev != NULL)
        prev->next = node;
    else
        l->head = node;
    if (next != NULL)
        next->prev = node;
    else
        l->tail = node;
    l->n++;
}

static inline void list_push_front(list_t *l, list_node_t *node)
{
    list__link(l, NULL, node, l->head);
}

static inline void list_push_back(list_t *l, list_node_t *node)
{
    list__link(l, l->tail, node, NULL);
}

static inline void list_remove(list_t *l, list_node_t *node)
{
    if (node->prev != NULL)
        node->prev->next = node->next;
    else
        l->head = node->next;
    if (node->next != NULL)
        node->next->prev = node->prev;
    else
        l->tail = node->prev;
    node->prev = node->next = NULL;
    l->n--;
}

/* The first node, taken off the list; NULL when it is empty. */
static inline list_node_t *list_pop_front(list_t *l)
{
    list_node_t *node = l->head;

    if (node != NULL)
        list_remove(l, node);
    return node;
}

#endif
