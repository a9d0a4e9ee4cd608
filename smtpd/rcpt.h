/*
 * rcpt - what becomes of mail to a recipient: the decision the inbound
 * session makes at RCPT, in one place, so that `mxfwd resolve` (mxfwd/)
 * says exactly what the session does.
 *
 * In order: an address in srs_domain is an SRS address when its local part
 * is one (a bounce to a sender mxfwd rewrote: accepted from <> only, to
 * the original sender); then the forward table (docs/forward-table.md),
 * srs_domain being ours whether the table lists it or not; an entry may
 * forward, REJECT or DISCARD.  <postmaster> without a domain is the
 * postmaster of hostname (RFC 5321 4.5.1).  postmaster@ hostname or
 * srs_domain that the table does not name goes to the postmaster key's
 * address, or, without one, is accepted and held (RFC 5321 4.5.1: it must
 * be accepted).
 *
 * Nothing here logs or replies; the caller does both.
 */
#ifndef MXFWD_RCPT_H
#define MXFWD_RCPT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "reply.h"
#include "srs.h"
#include "table.h"

typedef struct {
    const table_t *table;
    const srs_t *srs;
    const char *hostname;
    const char *srs_domain;
    const char *postmaster; /* the postmaster key's address; NULL: not set */
    int64_t now; /* unix seconds, for SRS timestamps */
} rcpt_ctx_t;

typedef enum {
    RCPT_FORWARD, /* to dests */
    RCPT_BOUNCE,  /* an SRS address: to orig, for a bounce (MAIL FROM:<>) only */
    RCPT_KEYED,   /* a keyed SRS address (a long sender's), signature and age good:
                   * orig is the key, whose sender the envelope store knows */
    RCPT_DISCARD, /* accepted and dropped (the table's DISCARD) */
    RCPT_HOLD,    /* accepted and held in the queue for the admin to read: postmaster@
                   * with no postmaster set */
    RCPT_REFUSE,  /* reply and words say how */
} rcpt_kind_t;

typedef struct {
    rcpt_kind_t kind;
    /* RCPT_REFUSE: the reason (counters, logs) and the reply's code, esc
     * and text (a REJECT entry's own). */
    reply_id_t reason;
    reply_t words;
    /* RCPT_FORWARD, RCPT_DISCARD, and a REJECT entry: the entry. */
    bool from_table;
    table_dests_t dests;
    /* RCPT_BOUNCE: the original address; RCPT_KEYED: the key. */
    char orig[SRS_ADDR_SIZE];
} rcpt_route_t;

/*
 * Decide for the address raw[0..len) as the client wrote it, a its parse
 * (both ignored when bare_postmaster).
 * sender is the transaction's ("" for <>), or NULL when there is none (a
 * question from `mxfwd resolve`): then an SRS address is RCPT_BOUNCE
 * whoever would send.
 */
void rcpt_route(const rcpt_ctx_t *ctx, const char *raw, size_t len, const addr_t *a,
                bool bare_postmaster, const char *sender, rcpt_route_t *out);

#endif
