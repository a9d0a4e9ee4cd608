/*
 * htab - a hash table from byte-string keys to pointers.
 *
 * Open addressing with linear probing; lookups are O(1) on average and
 * deletion shifts entries back instead of leaving tombstones.  By default
 * the table copies and owns its keys; a table made with htab_new_borrowed()
 * keeps the caller's key pointers instead, which must then live as long as
 * their entries (a caller that stores the key inside the value saves a
 * cache miss per lookup).  Values belong to the caller (htab_free() can
 * release them through a callback).  Keys are compared byte for byte:
 * callers that want case-insensitive keys fold them first.  Keys are at
 * most UINT32_MAX bytes long (they are names and addresses).
 */
#ifndef MXFWD_HTAB_H
#define MXFWD_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct htab htab_t;

htab_t *htab_new(size_t expected);
htab_t *htab_new_borrowed(size_t expected);
/* free_value (may be NULL) gets every value; a borrowed key is not read
 * once its value has been handed to it, so it may free the key's owner. */
void htab_free(htab_t *h, void (*free_value)(void *));
size_t htab_count(const htab_t *h);

void *htab_get(const htab_t *h, const char *key, size_t len);
/* Insert or replace.  Returns the value replaced, or NULL. */
void *htab_put(htab_t *h, const char *key, size_t len, void *value);
/* Remove.  Returns the value removed, or NULL. */
void *htab_remove(htab_t *h, const char *key, size_t len);

/* Visit every entry: start with *pos = 0; returns false at the end.  The
 * table must not change during the walk. */
bool htab_next(const htab_t *h, size_t *pos, const char **key, size_t *len, void **value);

uint64_t htab_hash(const char *key, size_t len);

#endif
