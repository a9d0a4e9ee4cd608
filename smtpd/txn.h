/*
 * txn - one mail transaction of an inbound session: from MAIL to the end
 * of its data (RFC 5321 3.3).
 *
 * It holds the envelope as the client gave it and as mxfwd will forward
 * it: the sender, and the destinations the forward table expanded the
 * accepted recipients to, deduplicated across all of them (ASCII case
 * ignored), each remembering the alias it came through.  The session owns
 * its transaction and frees it at RSET, HELO/EHLO, the end of the data or
 * the end of the session.  Every string is copied in and owned here.
 */
#ifndef MXFWD_TXN_H
#define MXFWD_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct {
    char *addr;       /* destination */
    const char *orig; /* the recipient the client named; owned by the txn */
    unsigned notify;  /* its RCPT's NOTIFY= (PROTO_NOTIFY_*); 0: none */
    const char *orcpt; /* its RCPT's ORCPT=, decoded; "" when none; owned by the txn */
} txn_dest_t;

typedef struct txn txn_t;

/* A transaction for MAIL FROM:<sender[0..len)> with its parameters. */
txn_t *txn_new(const char *sender, size_t len, const proto_mail_t *mail);
void txn_free(txn_t *t);

const char *txn_sender(const txn_t *t); /* "" for <> */
bool txn_smtputf8(const txn_t *t);
bool txn_8bitmime(const txn_t *t);
/* The DSN parameters of MAIL (RFC 3461): RET=, and ENVID= ("" none). */
proto_ret_t txn_ret(const txn_t *t);
const char *txn_envid(const txn_t *t);

/* A new envelope sender (a milter's change), "" for <>: the one the
 * forwarding sender is then made from.  Copied. */
void txn_set_sender(txn_t *t, const char *sender);

/* The envelope sender to forward with (SRS-rewritten); until set, the
 * original.  Copied. */
void txn_set_forward_sender(txn_t *t, const char *sender);
const char *txn_forward_sender(const txn_t *t);

/* A long sender's key in the envelope store (docs/srs.md): the SRS
 * address names it; NULL until set.  Copied. */
void txn_set_store_key(txn_t *t, const char *key);
const char *txn_store_key(const txn_t *t);

/* A RCPT command was answered, accepted or not. */
void txn_note_rcpt_tried(txn_t *t);
bool txn_rcpt_tried(const txn_t *t);

/*
 * An accepted recipient rcpt[0..len), its DSN parameters (NULL: none) and
 * the destinations it expands to.  Destinations already in the transaction
 * are not added again (the first recipient's parameters stay theirs).
 */
void txn_add_rcpt(txn_t *t, const char *rcpt, size_t len, const proto_rcpt_dsn_t *dsn,
                  const char *const *dests, size_t n);
/* Drop the destinations that are addr or came through the recipient
 * addr (ASCII case ignored): how many went. */
size_t txn_remove_rcpt(txn_t *t, const char *addr);
/* Accepted RCPT commands (what max_recipients counts). */
size_t txn_nrcpts(const txn_t *t);
/* The recipient as given when there was exactly one, else NULL. */
const char *txn_single_rcpt(const txn_t *t);

size_t txn_ndests(const txn_t *t);
const txn_dest_t *txn_dest(const txn_t *t, size_t i);

#endif
