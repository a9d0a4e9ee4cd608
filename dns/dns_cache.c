#include "dns_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"
#include "htab.h"
#include "xalloc.h"

typedef struct dns_cache_entry {
    struct dns_cache_entry *prev, *next; /* LRU list, most recent first */
    char key[DNS_CACHE_KEY_MAX];
    size_t key_len;
    int status;
    dns_result_t *res;
    uint64_t expires_ms;
    size_t cost; /* bytes counted against the bound */
} dns_cache_entry_t;

struct dns_cache {
    htab_t *index; /* key -> entry */
    dns_cache_entry_t *head, *tail;
    size_t count, bytes;
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

static void dns_cache_unlink(dns_cache_t *c, dns_cache_entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void dns_cache_push_front(dns_cache_t *c, dns_cache_entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void dns_cache_drop(dns_cache_t *c, dns_cache_entry_t *e)
{
    htab_remove(c->index, e->key, e->key_len);
    dns_cache_unlink(c, e);
    c->count--;
    c->bytes -= e->cost;
    dns_msg_result_unref(e->res);
    free(e);
}

void dns_cache_free(dns_cache_t *c)
{
    if (c == NULL)
        return;
    while (c->head != NULL)
        dns_cache_drop(c, c->head);
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
    dns_cache_unlink(c, e);
    dns_cache_push_front(c, e);
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
    while (c->count >= c->max_entries || c->bytes + e->cost > c->max_bytes)
        dns_cache_drop(c, c->tail);
    e->status = status;
    e->res = res != NULL ? dns_msg_result_ref(res) : NULL;
    e->expires_ms = now_ms + (uint64_t)ttl * 1000;
    htab_put(c->index, e->key, e->key_len, e);
    dns_cache_push_front(c, e);
    c->count++;
    c->bytes += e->cost;
}

size_t dns_cache_count(const dns_cache_t *c)
{
    return c->count;
}

size_t dns_cache_bytes(const dns_cache_t *c)
{
    return c->bytes;
}
