/*
 * anvil.c - per-client event counts in fixed windows (docs/smtp.md, Rate
 * limits).
 */
#include "anvil.h"

#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "xalloc.h"

typedef struct {
    uint64_t start[ANVIL_NKINDS]; /* when each window began */
    unsigned count[ANVIL_NKINDS];
    uint64_t last; /* the latest event, of any kind */
} anvil_entry_t;

struct anvil {
    htab_t *clients; /* address text -> anvil_entry_t */
    uint64_t window;
    uint64_t swept; /* the last sweep */
};

anvil_t *anvil_new(uint64_t window_ms)
{
    anvil_t *a = xcalloc(1, sizeof(*a));

    a->clients = htab_new(256);
    a->window = window_ms > 0 ? window_ms : 1;
    return a;
}

void anvil_free(anvil_t *a)
{
    if (a == NULL)
        return;
    htab_free(a->clients, free);
    free(a);
}

/* Drop the clients whose every window is over: found in one walk, then
 * removed (the table may not change during a walk). */
static void anvil_sweep(anvil_t *a, uint64_t now)
{
    size_t pos = 0, len, n = 0, cap = 0;
    const char *key;
    void *value;
    char **gone = NULL;

    a->swept = now;
    while (htab_next(a->clients, &pos, &key, &len, &value)) {
        if (now - ((anvil_entry_t *)value)->last < a->window)
            continue;
        gone = xgrow(gone, &cap, n + 1, sizeof(*gone));
        gone[n++] = xstrndup(key, len);
    }
    for (size_t i = 0; i < n; i++) {
        free(htab_remove(a->clients, gone[i], strlen(gone[i])));
        free(gone[i]);
    }
    free(gone);
}

unsigned anvil_count(anvil_t *a, const char *client, anvil_kind_t kind, uint64_t now)
{
    size_t len = strlen(client);
    anvil_entry_t *e;

    if (now - a->swept >= a->window)
        anvil_sweep(a, now);
    e = htab_get(a->clients, client, len);
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        htab_put(a->clients, client, len, e);
    }
    if (e->count[kind] == 0 || now - e->start[kind] >= a->window) {
        e->start[kind] = now;
        e->count[kind] = 0;
    }
    e->last = now;
    if (e->count[kind] < UINT32_MAX)
        e->count[kind]++;
    return e->count[kind];
}

size_t anvil_clients(const anvil_t *a)
{
    return htab_count(a->clients);
}
