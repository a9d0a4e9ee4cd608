/*
 * smtpd - the inbound SMTP server: its listeners, admission (the
 * connection limits and per-address counts), the sessions (session.h) and
 * the snapshots they start with.
 *
 * An smtpd_t is built from smtpd_options_t: the handful of configuration
 * values the sessions read, and the services they borrow (the resolver for
 * client names, the sender checks, the counters' registry), which must
 * outlive it.  It knows nothing of the rest of the daemon: a message that
 * is durable in the spool is handed over through the "accepted" hook, the
 * clock is a hook, and the end of a shutdown is reported through
 * "drained".
 *
 * The forward table, the SRS rewriter and the TLS context are snapshots
 * swapped by the smtpd_set_*() calls (on reload); a session keeps the
 * table it started with, and calls the rewriter only synchronously.  A
 * long sender's entry in the envelope store is written at the end of the
 * data, and is durable before the 250 (docs/srs.md): a Redis's answer is
 * waited for, an embedded store is synced by the spool's commit pass
 * (spool_envelope_t.before_ack).
 * Everything runs on the loop thread.
 */
#ifndef MXFWD_SMTPD_H
#define MXFWD_SMTPD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "auth.h"
#include "cidr.h"
#include "dns.h"
#include "dnsbl.h"
#include "sign.h"
#include "spool.h"
#include "srs.h"
#include "srs_store.h"
#include "stats.h"
#include "rcpt.h"
#include "table.h"

typedef struct smtpd smtpd_t;

/* A mail filter (docs/milter.md): the milter line as written, for logs,
 * and where it listens (AF_INET, AF_INET6 or AF_UNIX). */
typedef struct {
    const char *name;
    struct sockaddr_storage addr;
} smtpd_milter_t;

/* milter_default_action: what a filter that cannot be reached, times out
 * or breaks the protocol amounts to. */
typedef enum {
    SMTPD_MILTER_TEMPFAIL,
    SMTPD_MILTER_ACCEPT,
    SMTPD_MILTER_REJECT,
} smtpd_milter_action_t;

typedef struct {
    const char *hostname;   /* greeting, EHLO, Received:, 421 replies */
    const char *srs_domain; /* recipients there are bounces to SRS addresses */
    const char *postmaster; /* postmaster@hostname and @srs_domain go there; NULL: held */
    uint64_t max_message_size;
    unsigned max_recipients;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    uint64_t timeout; /* seconds a client may be silent */
    unsigned max_line_length;
    unsigned max_errors;
    unsigned max_hops;
    uint64_t shutdown_grace; /* seconds between smtpd_stop() and the forced end */
    /* srs_long_senders: a sender too long for an SRS address is refused
     * (0), kept in the envelope store, or written long (docs/srs.md). */
    srs_long_t long_senders;

    /* Filters, in order, and how they are used (docs/milter.md). */
    const smtpd_milter_t *milters;
    size_t nmilters;
    uint64_t milter_timeout; /* seconds: connect, each reply */
    smtpd_milter_action_t milter_default_action;
    bool milter_body_changes; /* honour a body replacement */

    /* DNS lists of client addresses, checked at connect (docs/smtp.md). */
    const dnsbl_list_t *dnsbl;
    size_t ndnsbl;
    const dnsbl_list_t *dnswl;
    size_t ndnswl;

    /* The sender's domain at MAIL (docs/smtp.md). */
    bool reject_unknown_sender_domain;
    bool reject_non_fqdn_sender;

    /* Per client address and minute; 0: no limit (docs/smtp.md). */
    unsigned connection_rate_limit;
    unsigned message_rate_limit;
    unsigned recipient_rate_limit;
    const cidr_t *rate_limit_exempt;
    size_t nrate_limit_exempt;

    /* Borrowed; each must outlive the smtpd_t. */
    stats_t *stats;           /* its counters are registered here */
    dns_resolver_t *resolver; /* client names (rdns.h) */
    auth_ctx_t *auth;         /* the sender checks */
    /* The envelope store (srs_store.h): long senders go there with
     * SRS_LONG_STORE, and bounces to keyed SRS addresses are looked up
     * there; NULL: none (such a sender is refused, such a bounce 550). */
    srs_store_t *store;
} smtpd_options_t;

typedef struct {
    /* A message is durable and its 250 is on its way: msg is the
     * callee's from here on (the daemon's queue). */
    void (*accepted)(void *arg, spool_msg_t *msg);
    /* Seconds since the epoch, for SRS time stamps and Received:; NULL:
     * time(2). */
    time_t (*now)(void *arg);
    /* Milliseconds of a monotonic clock, for the rate limits; NULL: the
     * loop's. */
    uint64_t (*clock_ms)(void *arg);
    /* After smtpd_stop(): the last session is gone (called once). */
    void (*drained)(void *arg);
    void *arg;
} smtpd_hooks_t;

/* A server on loop; its counters are registered at once.  The strings and
 * lists of opts are copied. */
smtpd_t *smtpd_new(uv_loop_t *loop, const smtpd_options_t *opts, const smtpd_hooks_t *hooks);

/* The spool the sessions commit to: set before the loop runs. */
void smtpd_set_spool(smtpd_t *d, spool_t *spool);
/* The envelope store (smtpd_options_t.store), opened once the spool is:
 * set before the loop runs; NULL: none. */
void smtpd_set_store(smtpd_t *d, srs_store_t *store);
/* Replace the current forward table, SRS rewriter or TLS context (NULL:
 * no STARTTLS); the server owns what it is given and drops the old one. */
void smtpd_set_table(smtpd_t *d, table_t *table);
void smtpd_set_srs(smtpd_t *d, srs_t *srs);
void smtpd_set_tls(smtpd_t *d, SSL_CTX *ctx);
/* The signer of forwarded messages (auth/sign.h); NULL: none.  A message
 * is signed with the one that was current at its DATA. */
void smtpd_set_signer(smtpd_t *d, sign_ctx_t *ctx);

/* The current forward table (borrowed). */
const table_t *smtpd_table(const smtpd_t *d);
/* What a session's RCPT decides with now: the current table and SRS
 * rewriter (borrowed until the next reload), hostname, srs_domain. */
void smtpd_rcpt_ctx(const smtpd_t *d, rcpt_ctx_t *ctx);
/* Whether STARTTLS is offered. */
bool smtpd_has_tls(const smtpd_t *d);

/* Bind and listen on sa (an IPv6 address takes IPv6 only, so that
 * "0.0.0.0:25" and "[::]:25" can both be listed).  0, or a libuv error. */
int smtpd_listen(smtpd_t *d, const struct sockaddr *sa);

/* A connection accepted elsewhere (an inherited socket, a test's
 * socketpair), from peer: a session as for a listener's. */
void smtpd_open(smtpd_t *d, uv_os_sock_t fd, const struct sockaddr *peer);

/* Sessions open now. */
unsigned smtpd_sessions(const smtpd_t *d);

/* SIGTERM: close the listeners, tell idle sessions 421 4.4.2, let
 * running transactions finish for shutdown_grace seconds, then end the
 * rest.  drained() follows once no session is left. */
void smtpd_stop(smtpd_t *d);
/* End every session now (a second signal). */
void smtpd_force(smtpd_t *d);

/* Close the handles and free the server with its snapshots, once no
 * session is left (after drained()). */
void smtpd_close(smtpd_t *d);

#endif
