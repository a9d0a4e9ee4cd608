/* Test helper: collect "FILE:LINE: problem" messages from a loader. */
#ifndef MXFWD_TEST_DIAG_H
#define MXFWD_TEST_DIAG_H

#include <stdio.h>
#include <string.h>

#define DIAG_MAX 64

typedef struct {
    int n;
    char msg[DIAG_MAX][1024];
} diag_t;

static inline void diag_collect(void *ctx, const char *message)
{
    diag_t *d = ctx;

    if (d->n < DIAG_MAX)
        snprintf(d->msg[d->n], sizeof(d->msg[0]), "%s", message);
    d->n++;
}

/* Whether some collected message starts with prefix and contains needle. */
static inline int diag_has(const diag_t *d, const char *prefix, const char *needle)
{
    for (int i = 0; i < d->n && i < DIAG_MAX; i++)
        if (strncmp(d->msg[i], prefix, strlen(prefix)) == 0 && strstr(d->msg[i], needle) != NULL)
            return 1;
    return 0;
}

#endif
