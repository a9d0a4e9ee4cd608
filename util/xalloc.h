/*
 * xalloc - allocation that never returns NULL.
 *
 * Running out of memory is not a per-session condition mxfwd can recover
 * from in a useful way; these functions log and abort instead, so callers
 * need no NULL checks.  Memory is released with free(3).
 */
#ifndef MXFWD_XALLOC_H
#define MXFWD_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Grow an array of n elements of size bytes to at least want elements,
 * doubling; *n is updated.  Aborts on overflow. */
void *xgrow(void *p, size_t *n, size_t want, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

#endif
