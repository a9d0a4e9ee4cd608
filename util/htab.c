#include "htab.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* 24 bytes, so that a probe touches few cache lines: the low 32 bits of
 * the hash are kept (the slot index comes from them, and they filter
 * compares), keys are at most UINT32_MAX bytes. */
typedef struct {
    char *key; /* NULL marks an empty slot */
    void *value;
    uint32_t len;
    uint32_t hash;
} htab_slot_t;

struct htab {
    htab_slot_t *slots;
    size_t mask; /* capacity - 1, capacity a power of two */
    size_t count;
    bool borrowed; /* keys belong to the caller */
};

/* One multiply-and-fold round: every bit of w reaches the high half of
 * the product, the shift folds it back down. */
static uint64_t htab_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

uint64_t htab_hash(const char *key, size_t len)
{
    /* Eight bytes a round (keys are addresses and domains, tens of bytes:
     * a byte a round cost a multiply each), then a final avalanche
     * (MurmurHash3's fmix64) so that the low bits used for the slot index
     * depend on every input byte.  Native byte order: hashes never leave
     * the process. */
    uint64_t h = 0xcbf29ce484222325ULL ^ len;
    uint64_t w;

    for (; len >= 8; key += 8, len -= 8) {
        memcpy(&w, key, 8);
        h = htab_mix(h, w);
    }
    if (len > 0) {
        w = 0;
        memcpy(&w, key, len);
        h = htab_mix(h, w);
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

htab_t *htab_new(size_t expected)
{
    htab_t *h = xmalloc(sizeof(*h));
    size_t cap = 16;

    while (cap < expected * 2)
        cap *= 2;
    h->slots = xcalloc(cap, sizeof(*h->slots));
    h->mask = cap - 1;
    h->count = 0;
    h->borrowed = false;
    return h;
}

htab_t *htab_new_borrowed(size_t expected)
{
    htab_t *h = htab_new(expected);

    h->borrowed = true;
    return h;
}

void htab_free(htab_t *h, void (*free_value)(void *))
{
    if (h == NULL)
        return;
    for (size_t i = 0; i <= h->mask; i++) {
        if (h->slots[i].key == NULL)
            continue;
        if (!h->borrowed)
            free(h->slots[i].key);
        if (free_value != NULL)
            free_value(h->slots[i].value);
    }
    free(h->slots);
    free(h);
}

size_t htab_count(const htab_t *h)
{
    return h->count;
}

static size_t htab_find(const htab_t *h, const char *key, size_t len, uint32_t hash)
{
    size_t i = (size_t)hash & h->mask;

    for (;;) {
        const htab_slot_t *s = &h->slots[i];
        if (s->key == NULL ||
            (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0))
            return i;
        i = (i + 1) & h->mask;
    }
}

static void htab_resize(htab_t *h)
{
    htab_slot_t *old = h->slots;
    size_t old_cap = h->mask + 1;
    size_t cap = old_cap * 2;

    h->slots = xcalloc(cap, sizeof(*h->slots));
    h->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key == NULL)
            continue;
        size_t j = (size_t)old[i].hash & h->mask;
        while (h->slots[j].key != NULL)
            j = (j + 1) & h->mask;
        h->slots[j] = old[i];
    }
    free(old);
}

void *htab_get(const htab_t *h, const char *key, size_t len)
{
    size_t i = htab_find(h, key, len, (uint32_t)htab_hash(key, len));

    return h->slots[i].key != NULL ? h->slots[i].value : NULL;
}

void *htab_put(htab_t *h, const char *key, size_t len, void *value)
{
    uint32_t hash = (uint32_t)htab_hash(key, len);
    size_t i = htab_find(h, key, len, hash);
    htab_slot_t *s = &h->slots[i];
    void *old;

    if (len > UINT32_MAX)
        abort(); /* a caller's bug: keys are names, not bulk data */

    if (s->key != NULL) {
        old = s->value;
        s->value = value;
        return old;
    }
    /* Keep the load at or under one half. */
    if ((h->count + 1) * 2 > h->mask + 1) {
        htab_resize(h);
        s = &h->slots[htab_find(h, key, len, hash)];
    }
    if (h->borrowed) {
        s->key = (char *)key;
    } else {
        s->key = xmalloc(len + 1);
        memcpy(s->key, key, len);
        s->key[len] = '\0';
    }
    s->len = (uint32_t)len;
    s->hash = hash;
    s->value = value;
    h->count++;
    return NULL;
}

void *htab_remove(htab_t *h, const char *key, size_t len)
{
    size_t i = htab_find(h, key, len, (uint32_t)htab_hash(key, len));
    size_t j;
    void *value;

    if (h->slots[i].key == NULL)
        return NULL;
    value = h->slots[i].value;
    if (!h->borrowed)
        free(h->slots[i].key);
    h->slots[i].key = NULL;
    h->count--;
    /* Backward-shift: move later entries of the probe run into the hole
     * when their home slot is at or before it. */
    j = i;
    for (;;) {
        j = (j + 1) & h->mask;
        if (h->slots[j].key == NULL)
            break;
        size_t home = (size_t)h->slots[j].hash & h->mask;
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            h->slots[i] = h->slots[j];
            h->slots[j].key = NULL;
            i = j;
        }
    }
    return value;
}

bool htab_next(const htab_t *h, size_t *pos, const char **key, size_t *len, void **value)
{
    while (*pos <= h->mask) {
        const htab_slot_t *s = &h->slots[(*pos)++];
        if (s->key != NULL) {
            if (key != NULL)
                *key = s->key;
            if (len != NULL)
                *len = s->len;
            if (value != NULL)
                *value = s->value;
            return true;
        }
    }
    return false;
}
