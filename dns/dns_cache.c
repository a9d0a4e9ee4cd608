#include "dns_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"
#include "htab.h"
#include "list.h"
#include "xalloc.h"

typedef struct dns_cache_entry {
    list_node_t node; /* in the LRU list */
    char key[DNS_CACHE_KEY_MAX];
    size_t key_len;
    int status;
    dns_result_t *res;
    uint64_t expires_ms;
    size_t cost; /* bytes counted against the bound */
} dns_cache_entry_t;

struct dns_cache {
    htab_t *index; /* key -> entry */
    list_t lru;    /* every entry, most recently used first */
    size_t bytes;
    size_t max_entries, max_bytes;
};

dns_cache_t *dns_cache_new(size_t max_entries, size_t max_bytes)
{
    dns_cache_t *c = xcalloc(1, sizeof(*c));

    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    c->index = htab_new(max_entries < 1024 ? max_entries : 1024);
    return c;
}

size_t dns_cache_key(char *key, dns_type_t type, const char *name)
{
    int n = snprintf(key, DNS_CACHE_KEY_MAX, "%u %s", (unsigned)type, name);

    return n < 0 ? 0 : (size_t)n < DNS_CACHE_KEY_MAX ? (size_t)n : DNS_CACHE_KEY_MAX - 1;
}

static void dns_cache_drop(dns_cache_t *c, dns_cache_entry_t *e)
{
    htab_remove(c->index, e->key, e->key_len);
    list_remove(&c->lru, &e->node);
    c->bytes -= e->cost;
    dns_msg_result_unref(e->res);
    free(e);
}

void dns_cache_free(dns_cache_t *c)
{
    dns_cache_entry_t *e;

    if (c == NULL)
        return;
    while ((e = LIST_ITEM(list_first(&c->lru), dns_cache_entry_t, node)) != NULL)
        dns_cache_drop(c, e);
    htab_free(c->index, NULL);
    free(c);
}

bool dns_cache_get(dns_cache_t *c, dns_type_t type, const char *name, uint64_t now_ms, int *status,
                   dns_result_t **res)
{
    char key[DNS_CACHE_KEY_MAX];
    size_t len = dns_cache_key(key, type, name);
    dns_cache_entry_t *e = htab_get(c->index, key, len);

    *res = NULL;
    if (e == NULL)
        return false;
    if (now_ms >= e->expires_ms) {
        dns_cache_drop(c, e);
        return false;
    }
    list_remove(&c->lru, &e->node);
    list_push_front(&c->lru, &e->node);
    *status = e->status;
    if (e->res != NULL)
        *res = dns_msg_result_ref(e->res);
    return true;
}

void dns_cache_put(dns_cache_t *c, dns_type_t type, const char *name, int status, dns_result_t *res,
                   uint32_t ttl, uint64_t now_ms)
{
    dns_cache_entry_t *e = xcalloc(1, sizeof(*e)), *old;

    e->key_len = dns_cache_key(e->key, type, name);
    e->cost = sizeof(*e) + (res != NULL ? res->bytes : 0);
    if ((old = htab_get(c->index, e->key, e->key_len)) != NULL)
        dns_cache_drop(c, old);
    if (ttl == 0 || e->cost > c->max_bytes || c->max_entries == 0) {
        free(e);
        return;
    }
    while (list_len(&c->lru) >= c->max_entries || c->bytes + e->cost > c->max_bytes)
        dns_cache_drop(c, LIST_ITEM(list_last(&c->lru), dns_cache_entry_t, node));
    e->status = status;
    e->res = res != NULL ? dns_msg_result_ref(res) : NULL;
    e->expires_ms = now_ms + (uint64_t)ttl * 1000;
    htab_put(c->index, e->key, e->key_len, e);
    list_push_front(&c->lru, &e->node);
    c->bytes += e->cost;
}

size_t dns_cache_count(const dns_cache_t *c)
{
    return list_len(&c->lru);
}

size_t dns_cache_bytes(const dns_cache_t *c)
{
    return c->bytes;
}
