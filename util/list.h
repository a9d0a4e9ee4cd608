/*
 * list - an intrusive doubly linked list that knows its length, for the
 * clients a listener keeps so that it can close them all.  A struct on a
 * list embeds a list_node_t; pushing and removing are O(1) and allocate
 * nothing.  Header only.
 */
#ifndef MXFWD_LIST_H
#define MXFWD_LIST_H

#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node_t;

typedef struct {
    list_node_t *head;
    size_t n;
} list_t;

/* The struct of type that holds node as its member. */
#define LIST_ITEM(node, type, member) ((type *)((char *)(node) - offsetof(type, member)))

static inline void list_push(list_t *l, list_node_t *node)
{
    node->prev = NULL;
    node->next = l->head;
    if (l->head != NULL)
        l->head->prev = node;
    l->head = node;
    l->n++;
}

static inline void list_remove(list_t *l, list_node_t *node)
{
    if (node->prev != NULL)
        node->prev->next = node->next;
    else
        l->head = node->next;
    if (node->next != NULL)
        node->next->prev = node->prev;
    node->prev = node->next = NULL;
    l->n--;
}

#endif
