#include "stats.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct stats {
    stats_entry_t **e; /* each entry its own allocation: counter pointers stay put */
    size_t n;
    size_t cap;
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
        free(s->e[i]->name);
        free(s->e[i]->label);
        free(s->e[i]->label_value);
        free(s->e[i]->help);
        free(s->e[i]);
    }
    free(s->e);
    free(s);
}

static bool stats_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static stats_entry_t *stats_find(const stats_t *s, const char *name, const char *label_value)
{
    /* A linear search: registration happens a few dozen times at start. */
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i]->name, name) == 0 && stats_same(s->e[i]->label_value, label_value))
            return s->e[i];
    return NULL;
}

static stats_entry_t *stats_add(stats_t *s, stats_kind_t kind, const char *name,
                                const char *label, const char *label_value, const char *help)
{
    stats_entry_t *e = xcalloc(1, sizeof(*e));
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
        if (strcmp(s->e[i]->name, name) == 0) {
            at = i + 1;
            break;
        }
    }
    memmove(&s->e[at + 1], &s->e[at], (s->n - at) * sizeof(*s->e));
    s->e[at] = e;
    s->n++;
    return e;
}

uint64_t *stats_register(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                         const char *label_value, const char *help)
{
    stats_entry_t *e = stats_find(s, name, label_value);

    if (e == NULL)
        e = stats_add(s, kind, name, label, label_value, help);
    return &e->value;
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
    return i < s->n ? s->e[i] : NULL;
}

uint64_t stats_get(const stats_t *s, const char *name, const char *label_value)
{
    const stats_entry_t *e = stats_find(s, name, label_value);

    return e != NULL ? e->value : 0;
}
