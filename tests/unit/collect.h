/* Test helper: collect "FILE:LINE: problem" messages from a loader. */
#ifndef MXFWD_TEST_COLLECT_H
#define MXFWD_TEST_COLLECT_H

#include <stdio.h>
#include <string.h>

#define COLLECT_MAX 64

typedef struct {
    int n;
    char msg[COLLECT_MAX][1024];
} collect_t;

static inline void collect_message(void *ctx, const char *message)
{
    collect_t *d = ctx;

    if (d->n < COLLECT_MAX)
        snprintf(d->msg[d->n], sizeof(d->msg[0]), "%s", message);
    d->n++;
}

/* Whether some collected message starts with prefix and contains needle. */
static inline int collect_has(const collect_t *d, const char *prefix, const char *needle)
{
    for (int i = 0; i < d->n && i < COLLECT_MAX; i++)
        if (strncmp(d->msg[i], prefix, strlen(prefix)) == 0 && strstr(d->msg[i], needle) != NULL)
            return 1;
    return 0;
}

#endif
