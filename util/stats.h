/*
 * stats - the daemon's counters, in one registry that every part of it
 * increments and that the control socket (`mxfwd stats`) and a metrics
 * endpoint read.
 *
 * A part registers each of its counters once, at start, and keeps the
 * pointer it gets back; counting is then `(*c)++` on the loop thread, with
 * no lookup and no lock.  Each entry has a name ("rejected"), an optional
 * label ("reason" = "relay_denied") that splits one family of counters,
 * a kind and a one-line description for people.  Registering a name and
 * label value again returns the same counter, so a part that is built
 * twice (a reload) keeps counting where it was.
 *
 * Counters only go up; gauges are set to what they measure now (queue
 * size).  Entries keep their registration order, which is the order
 * readers show them in; a family stays together.  A family whose label
 * values appear as they happen (rejection reasons) can be declared first
 * with stats_family(), which holds its place and says it exists while it
 * has no values yet.
 *
 * The registry owns its entries and their strings (copies); pointers stay
 * valid until stats_free().  Loop thread only.
 */
#ifndef MXFWD_STATS_H
#define MXFWD_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { STATS_COUNTER, STATS_GAUGE } stats_kind_t;

typedef struct {
    char *name;        /* "delivered"; [a-z0-9_] */
    char *label;       /* "reason", or NULL */
    char *label_value; /* "relay_denied"; NULL without a label, and in a
                        * family's declaration (no value of its own) */
    char *help;        /* "recipients delivered" */
    stats_kind_t kind;
    uint64_t value;
} stats_entry_t;

typedef struct stats stats_t;

stats_t *stats_new(void);
void stats_free(stats_t *s);

/* The counter (or gauge) name{label=label_value}, created at 0 the first
 * time.  label and label_value are both NULL or both set. */
uint64_t *stats_register(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                         const char *label_value, const char *help);

/* Declare the family name{label=...} before any of its values. */
void stats_family(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                  const char *help);

/* Entries in registration order, except that a family (one name, several
 * label values) stays together where its first entry was registered:
 * i from 0 to stats_count() - 1. */
size_t stats_count(const stats_t *s);
const stats_entry_t *stats_at(const stats_t *s, size_t i);
/* The value of name{label_value}, or 0 when it is not registered. */
uint64_t stats_get(const stats_t *s, const char *name, const char *label_value);

#endif
