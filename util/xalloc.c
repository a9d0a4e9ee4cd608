#include "xalloc.h"

#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void xalloc_die(size_t size)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "mxfwd: fatal: out of memory (%zu bytes)\n", size);

    /* The loop thread's waiting log lines first: they tell what led here
     * (util/log.h; the flush allocates nothing). */
    log_batch_flush();
    if (n > 0 && (size_t)n < sizeof(msg) && write(STDERR_FILENO, msg, (size_t)n) < 0) {
        /* Nothing more can be done. */
    }
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        xalloc_die(size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        xalloc_die(n * size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (q == NULL)
        xalloc_die(size);
    return q;
}

void *xgrow(void *p, size_t *n, size_t want, size_t size)
{
    size_t cap = *n ? *n : 8;

    if (want <= *n)
        return p;
    while (cap < want) {
        if (cap > SIZE_MAX / 2)
            xalloc_die(SIZE_MAX);
        cap *= 2;
    }
    if (size && cap > SIZE_MAX / size)
        xalloc_die(SIZE_MAX);
    p = xrealloc(p, cap * size);
    *n = cap;
    return p;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);

    if (n)
        memcpy(q, p, n);
    return q;
}
