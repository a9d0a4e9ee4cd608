#include "stats.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* An entry and, for stats_register_fn(), where its value comes from. */
typedef struct {
    stats_entry_t e; /* first: stats_at() hands out a pointer to it */
    stats_read_fn read;
    void *arg;
} stats_item_t;

struct stats_histogram {
    size_t n;           /* buckets, +Inf included */
    double *bounds;     /* n - 1 of them */
    uint64_t **buckets; /* n */
    uint64_t *sum;      /* millionths */
    uint64_t *count;
    stats_histogram_t *next; /* the registry's, to free */
};

struct stats {
    stats_item_t **e; /* each entry its own allocation: counter pointers stay put */
    size_t n;
    size_t cap;
    stats_histogram_t *histograms;
};

stats_t *stats_new(void)
{
    return xcalloc(1, sizeof(stats_t));
}

void stats_free(stats_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i]->e.name);
        free(s->e[i]->e.label);
        free(s->e[i]->e.label_value);
        free(s->e[i]->e.help);
        free(s->e[i]);
    }
    free(s->e);
    while (s->histograms != NULL) {
        stats_histogram_t *h = s->histograms;
        s->histograms = h->next;
        free(h->bounds);
        free(h->buckets);
        free(h);
    }
    free(s);
}

static bool stats_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static stats_item_t *stats_find(const stats_t *s, const char *name, const char *label_value)
{
    /* A linear search: registration happens a few dozen times at start. */
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i]->e.name, name) == 0 && stats_same(s->e[i]->e.label_value, label_value))
            return s->e[i];
    return NULL;
}

static stats_item_t *stats_add(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                               const char *label_value, const char *help)
{
    stats_item_t *item = xcalloc(1, sizeof(*item));
    stats_entry_t *e = &item->e;
    size_t at = s->n;

    e->name = xstrdup(name);
    e->label = label != NULL ? xstrdup(label) : NULL;
    e->label_value = label_value != NULL ? xstrdup(label_value) : NULL;
    e->help = xstrdup(help != NULL ? help : "");
    e->kind = kind;
    s->e = xgrow(s->e, &s->cap, s->n + 1, sizeof(*s->e));
    /* A family stays together (Prometheus's text format wants it so):
     * a new label value goes after the last entry of its name. */
    for (size_t i = s->n; i-- > 0;) {
        if (strcmp(s->e[i]->e.name, name) == 0) {
            at = i + 1;
            break;
        }
    }
    memmove(&s->e[at + 1], &s->e[at], (s->n - at) * sizeof(*s->e));
    s->e[at] = item;
    s->n++;
    return item;
}

uint64_t *stats_register(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                         const char *label_value, const char *help)
{
    stats_item_t *item = stats_find(s, name, label_value);

    if (item == NULL)
        item = stats_add(s, kind, name, label, label_value, help);
    return &item->e.value;
}

void stats_register_fn(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                       const char *label_value, const char *help, stats_read_fn read, void *arg)
{
    stats_item_t *item = stats_find(s, name, label_value);

    if (item == NULL)
        item = stats_add(s, kind, name, label, label_value, help);
    item->read = read;
    item->arg = arg;
}

void stats_detach(stats_t *s, const void *arg)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i]->read != NULL && s->e[i]->arg == arg) {
            s->e[i]->read = NULL;
            s->e[i]->arg = NULL;
        }
    }
}

void stats_refresh(stats_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i]->read != NULL)
            s->e[i]->e.value = s->e[i]->read(s->e[i]->arg);
}

void stats_family(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                  const char *help)
{
    if (stats_find(s, name, NULL) == NULL)
        stats_add(s, kind, name, label, NULL, help);
}

size_t stats_count(const stats_t *s)
{
    return s->n;
}

const stats_entry_t *stats_at(const stats_t *s, size_t i)
{
    return i < s->n ? &s->e[i]->e : NULL;
}

uint64_t stats_get(const stats_t *s, const char *name, const char *label_value)
{
    const stats_item_t *item = stats_find(s, name, label_value);

    return item != NULL ? item->e.value : 0;
}

stats_histogram_t *stats_histogram_new(stats_t *s, const char *name, const char *help,
                                       const double *bounds, size_t nbounds)
{
    stats_histogram_t *h = xcalloc(1, sizeof(*h));
    char le[32], sub[128];

    h->n = nbounds + 1;
    h->bounds = xmalloc((nbounds + 1) * sizeof(*h->bounds));
    memcpy(h->bounds, bounds, nbounds * sizeof(*bounds));
    h->buckets = xcalloc(h->n, sizeof(*h->buckets));
    for (size_t i = 0; i < h->n; i++) {
        if (i < nbounds)
            snprintf(le, sizeof(le), "%g", bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        h->buckets[i] = stats_register(s, STATS_HISTOGRAM, name, "le", le, help);
    }
    snprintf(sub, sizeof(sub), "%s_sum", name);
    h->sum = stats_register(s, STATS_HISTOGRAM, sub, NULL, NULL, help);
    snprintf(sub, sizeof(sub), "%s_count", name);
    h->count = stats_register(s, STATS_HISTOGRAM, sub, NULL, NULL, help);
    h->next = s->histograms;
    s->histograms = h;
    return h;
}

void stats_observe(stats_histogram_t *h, double value)
{
    /* Buckets are cumulative: a value counts in every bucket it fits. */
    for (size_t i = 0; i < h->n; i++)
        if (i == h->n - 1 || value <= h->bounds[i])
            (*h->buckets[i])++;
    if (value > 0)
        *h->sum += (uint64_t)(value * 1e6 + 0.5);
    (*h->count)++;
}
