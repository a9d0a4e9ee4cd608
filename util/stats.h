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
 * Some values are not counted by `(*c)++` but read when someone looks:
 * the age of the oldest queued message, or counters another part keeps
 * in its own struct (the DNS resolver's).  stats_register_fn() gives such
 * an entry a function, and a reader calls stats_refresh() before it reads
 * the entries, which asks each function for its value.
 *
 * The registry owns its entries and their strings (copies); pointers stay
 * valid until stats_free().  Loop thread only.
 */
#ifndef MXFWD_STATS_H
#define MXFWD_STATS_H

#include <stddef.h>
#include <stdint.h>

/* STATS_HISTOGRAM: the entries of a histogram (stats_histogram_new()):
 * its buckets, name{le=bound}, each the count of values up to its bound,
 * then name_sum (in millionths) and name_count. */
typedef enum { STATS_COUNTER, STATS_GAUGE, STATS_HISTOGRAM } stats_kind_t;

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

/* What an entry of stats_register_fn() reads: its value now. */
typedef uint64_t (*stats_read_fn)(void *arg);

/* The entry name{label=label_value} (created as stats_register() does),
 * its value read from read(arg) by stats_refresh().  Registering it again
 * replaces read and arg; read NULL detaches the entry (before arg goes
 * away), which then keeps the last value read. */
void stats_register_fn(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                       const char *label_value, const char *help, stats_read_fn read, void *arg);

/* Detach every entry whose function reads arg (before arg goes away): they
 * keep the last value read. */
void stats_detach(stats_t *s, const void *arg);

/* Read the value of every entry that has a function.  Readers call it
 * before they look at the entries. */
void stats_refresh(stats_t *s);

/* Declare the family name{label=...} before any of its values. */
void stats_family(stats_t *s, stats_kind_t kind, const char *name, const char *label,
                  const char *help);

/* A histogram of values in units (seconds, say) with the buckets'
 * upper bounds (ascending; a +Inf bucket is added), registered as its
 * entries (STATS_HISTOGRAM).  Owned by the registry. */
typedef struct stats_histogram stats_histogram_t;
stats_histogram_t *stats_histogram_new(stats_t *s, const char *name, const char *help,
                                       const double *bounds, size_t nbounds);
/* Count one value. */
void stats_observe(stats_histogram_t *h, double value);

/* Entries in registration order, except that a family (one name, several
 * label values) stays together where its first entry was registered:
 * i from 0 to stats_count() - 1. */
size_t stats_count(const stats_t *s);
const stats_entry_t *stats_at(const stats_t *s, size_t i);
/* The value of name{label_value}, or 0 when it is not registered. */
uint64_t stats_get(const stats_t *s, const char *name, const char *label_value);

#endif
