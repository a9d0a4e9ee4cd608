/*
 * table - the forward table: which aliases mxfwd accepts and where their
 * mail goes.
 *
 *     # alias             destinations (commas or spaces)
 *     alice@alias.test    alice@example.com
 *     team@alias.test     a@example.com, b@example.org
 *     @alias.test         owner@example.com      # catch-all
 *     old@alias.test      REJECT This address is no longer in use
 *     noise@alias.test    DISCARD
 *
 * An alias maps to destinations or to an action: REJECT (550 at RCPT,
 * with the admin's text when given) or DISCARD (accepted, then dropped),
 * the exceptions under a catch-all.
 * A line starting with white space continues the previous entry.  Domains
 * and local parts match case-insensitively; lookups try the exact address,
 * then the address without its "+tag" subaddress, then the domain's
 * catch-all.  A destination that is itself an alias (its domain is one of
 * the table's) is expanded when the table is loaded, at most
 * TABLE_MAX_DEPTH levels deep, with loops reported as errors; each alias
 * then resolves in O(1) to a flat, deduplicated list.
 *
 * A table is an immutable snapshot with a reference count: whoever holds
 * one calls table_unref() when done, so a reload can swap in a new table
 * while sessions finish with the old one.  Errors are reported through the
 * callback as "FILE:LINE: problem", every one of them; a table with errors
 * is not returned.
 */
#ifndef MXFWD_TABLE_H
#define MXFWD_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "default.h"
#include "diag.h"

#define TABLE_MAX_DEPTH DEFAULT_ALIAS_DEPTH

typedef struct table table_t;

typedef enum {
    TABLE_FOUND,         /* *dests is the list */
    TABLE_UNKNOWN_USER,  /* the domain is ours, the user is not */
    TABLE_RELAY_DENIED,  /* not one of our domains, or a relay trick */
    TABLE_BAD_ADDRESS,   /* not a mailbox */
} table_result_t;

typedef enum {
    TABLE_FORWARD, /* to the destinations */
    TABLE_REJECT,  /* refused at RCPT: 550 */
    TABLE_DISCARD, /* accepted and dropped */
} table_action_t;

/* Longest REJECT text. */
#define TABLE_TEXT_MAX 200

typedef struct {
    size_t n;                /* 0 for REJECT and DISCARD */
    const char *const *addr; /* as written in the table */
    table_action_t action;
    const char *esc;         /* REJECT: the enhanced status code, "5.7.1" unless the text
                              * started with one */
    const char *text;        /* REJECT: the reply's words */
    const char *key;         /* the entry that matched: "alice@alias.test", "@alias.test" */
    unsigned line;           /* and its line in the file */
} table_dests_t;

typedef diag_fn table_error_fn;

/* Load path.  Returns the number of errors reported through on_error,
 * never a negative status: 0 and *out, or a count > 0 and *out NULL. */
int table_load(const char *path, table_error_fn on_error, void *ctx, table_t **out);
/* Parse text as if it were the contents of the file named path; returns as
 * table_load() does. */
int table_parse(const char *path, const char *text, size_t len, table_error_fn on_error,
                void *ctx, table_t **out);

table_t *table_ref(table_t *t);
void table_unref(table_t *t);

/*
 * Where mail to addr[0..len) goes.  On TABLE_FOUND, dests points into the
 * table and stays valid while the caller holds its reference.
 */
table_result_t table_lookup(const table_t *t, const char *addr, size_t len, table_dests_t *dests);
/* The same for an address already parsed (the session's RCPT path). */
table_result_t table_lookup_addr(const table_t *t, const addr_t *a, table_dests_t *dests);

/* Whether domain[0..len) is one the table accepts mail for. */
bool table_has_domain(const table_t *t, const char *domain, size_t len);

/* The table's domains, each once, in the order the file names them first:
 * start with *pos = 0; false at the end.  *domain is lowercased and points
 * into the table. */
bool table_next_domain(const table_t *t, size_t *pos, const char **domain);

/* Number of alias entries (catch-alls included). */
size_t table_count(const table_t *t);

#endif
