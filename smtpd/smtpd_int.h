/*
 * smtpd_int - the server structure and what the session files ask of it
 * (smtpd__*).  Only smtpd/'s own files include this.
 */
#ifndef MXFWD_SMTPD_INT_H
#define MXFWD_SMTPD_INT_H

#include "anvil.h"
#include "htab.h"
#include "list.h"
#include "reply.h"
#include "smtpd.h"

/* Bytes read from a socket at once; one buffer serves every session,
 * since a read is handled before the next one starts. */
#define SMTPD_READ_SIZE 65536

/* The inbound server's counters in the daemon's stats registry. */
typedef struct {
    uint64_t *connections;
    uint64_t *refused_connections;
    uint64_t *accepted;
    uint64_t *discarded;
    uint64_t *rejected[REPLY_NREPLIES]; /* registered at the first rejection of each */
    uint64_t *tls;                      /* STARTTLS handshakes completed */
} smtpd_stats_t;

struct smtpd {
    uv_loop_t *loop;
    smtpd_options_t opts; /* hostname and srs_domain are copies */
    smtpd_hooks_t hooks;
    spool_t *spool;
    table_t *table;   /* the current forward table */
    srs_t *srs;       /* the current SRS secrets (used synchronously only) */
    SSL_CTX *tls_ctx; /* NULL without tls_cert */
    sign_ctx_t *signer; /* NULL without signing_key */

    uv_tcp_t **listeners; /* each freed in its close callback */
    size_t nlisteners;
    uv_timer_t grace; /* shutdown_grace after smtpd_stop() */
    unsigned handles; /* open handles of the server itself */

    list_t sessions;              /* every open session, for shutdown */
    unsigned nadmitted;           /* sessions counted against max_connections */
    htab_t *per_ip;               /* client IP text -> (uintptr_t) sessions from it */
    uint64_t last_accept_warning; /* uv_now() of the last accept error logged */
    uint64_t sessions_made;       /* for the sessions' log tags */

    anvil_t *anvil; /* the rate limits' counts; NULL without limits */

    bool stopping; /* smtpd_stop(): no new sessions or transactions */
    bool forcing;  /* grace over: sessions end now */
    bool drained;  /* drained() called */
    bool closing;  /* smtpd_close() */
    smtpd_stats_t stats;
    char rbuf[SMTPD_READ_SIZE];
};

/* Count a new connection from ip against the connection limits: REPLY_OK,
 * or the reply that refuses it. */
reply_id_t smtpd__admit(smtpd_t *d, const char *ip);
/* A session admitted from ip no longer counts against the limits: its
 * client closed, or its last reply (221, 421) is on its way. */
void smtpd__release(smtpd_t *d, const char *ip);
/* A session has closed and left the list. */
void smtpd__session_closed(smtpd_t *d);
/* Count a message refused with reply id ("rejected", reason = its name). */
void smtpd__count_rejected(smtpd_t *d, reply_id_t id);
/* Seconds since the epoch, by the clock hook. */
time_t smtpd__now(const smtpd_t *d);
/* Monotonic milliseconds, by the clock_ms hook or the loop. */
uint64_t smtpd__clock_ms(const smtpd_t *d);

#endif
