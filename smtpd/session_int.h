/*
 * session_int - what session.c, session_cmd.c and session_data.c share:
 * the session structure and their cross-file helpers (session__*).
 * Nothing outside those files includes this.
 */
#ifndef MXFWD_SESSION_INT_H
#define MXFWD_SESSION_INT_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "buf.h"
#include "data.h"
#include "proto.h"
#include "rdns.h"
#include "reply.h"
#include "session.h"
#include "smtpd_int.h"
#include "spool.h"
#include "table.h"
#include "tls.h"
#include "txn.h"

typedef enum {
    SESSION_INIT,     /* greeting sent, no HELO/EHLO yet */
    SESSION_HELO,     /* greeted, no transaction */
    SESSION_MAIL,     /* MAIL accepted, no recipient yet */
    SESSION_RCPT,     /* at least one recipient accepted */
    SESSION_DATA,     /* reading the message after DATA */
    SESSION_BDAT,     /* reading a BDAT chunk */
    SESSION_CHUNKING, /* between BDAT chunks: only BDAT, RSET, NOOP, QUIT */
    SESSION_TLS,      /* TLS handshake after STARTTLS */
    SESSION_CLOSING,  /* the last reply is out or going: nothing more is read */
    SESSION_NSTATES
} session_state_t;

#define SESSION_S(state) (1u << (state))

struct session {
    uv_tcp_t tcp; /* first: the handle's data pointer is not needed */
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    smtpd_t *smtpd;
    list_node_t node; /* the server's list */
    table_t *table;   /* the forward table at connect */

    session_state_t state;
    tls_t *tls;             /* after STARTTLS */
    txn_t *txn;             /* from MAIL to the end of data */
    spool_writer_t *writer; /* from DATA (or the first BDAT) to the commit */
    data_reader_t data;
    uint64_t bdat_left;          /* bytes of the current BDAT chunk still to read */
    session_state_t bdat_return; /* where a refused chunk leads back to */

    auth_msg_t *auth; /* the sender checks: first accepted RCPT to txn end */
    sign_msg_t *sign; /* with a signer: the message's signing, DATA to txn end */
    uv_work_t sign_work; /* the signatures on the pool */

    buf_t in;  /* input not yet handled (plaintext) */
    buf_t out; /* replies not yet written (plaintext) */
    char *helo;
    /* The remote peer: its address (an IPv4-mapped one as IPv4), as text,
     * and "name[192.0.2.1]" for logs, the name forward-confirmed or
     * "unknown" (session__host() gives it alone): peer_unnamed, or a copy
     * once named. */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer_sa;
    char peer_ip[INET6_ADDRSTRLEN];
    char *peer;
    char peer_unnamed[INET6_ADDRSTRLEN + 16]; /* "unknown[192.0.2.1]" */
    /* The session's tag in the log: every line of it ends "session=SID"
     * (docs/admin-guide.md, "Reading the logs"), where Postfix has a
     * process per session to tell them apart. */
    char sid[24];
    rdns_req_t *rdns;                         /* the peer's name, being looked up */

    unsigned errors;   /* counted toward max_errors */
    unsigned commands; /* for the disconnect line */
    unsigned messages;
    unsigned handles;  /* open libuv handles; freed when 0 */
    unsigned writes;   /* uv_write requests in flight */
    proto_verb_t last; /* the last command, for "lost connection after" */

    bool esmtp;        /* EHLO, not HELO */
    bool reading;      /* uv_read_start in effect */
    bool waiting;      /* asynchronous work holds the input */
    bool greeting_due; /* waiting (briefly) for the client's name to greet */
    bool auth_waiting; /* the end of data waits for the sender checks' verdict */
    bool skip_line;    /* discarding the rest of a too long line */
    bool bdat_last;    /* the current BDAT chunk is the last */
    bool bdat_discard; /* the current BDAT chunk was refused: read and drop */
    bool stop;         /* the server is stopping: 421 once idle */
    bool close_after;  /* close once the waiting is over */
    bool counted;      /* counted in the server's connection limits */
    bool stored;       /* the envelope store has the transaction's long sender */
    bool store_sync;   /* ...once the spool's commit pass syncs it */
    const authres_t *store_res; /* the verdict, while the store takes the sender */
    char *rcpt_waiting;         /* a RCPT whose key the store is looking up */
    proto_rcpt_dsn_t rcpt_waiting_dsn; /* and its DSN parameters */
    bool hold_msg;              /* the transaction's message is held (postmaster@, no postmaster) */
};

/* session.c */
void session__reply(session_t *s, reply_id_t id);
void session__reply_addr(session_t *s, reply_id_t id, const char *addr, size_t len);
void session__replyf(session_t *s, int code, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A client mistake: counts toward max_errors, closing with 421 at it. */
void session__error(session_t *s);
/* Send what is queued, then close (gracefully, reading out the rest). */
void session__close(session_t *s);
/* Write the replies queued so far. */
void session__flush(session_t *s);
/* Hold the input for asynchronous work, and let it go again. */
void session__wait(session_t *s);
void session__resume(session_t *s);
/* Start TLS: the 220 reply is written first, queued input dropped. */
void session__start_tls(session_t *s);
/* "ESMTP" or "SMTP", as the log's proto= has it. */
const char *session__proto(const session_t *s);
/* "NOQUEUE: reject: ..." for a refused command. */
void session__log_reject(session_t *s, const char *what, reply_id_t id, const char *rcpt,
                         size_t rcpt_len);
/* The same with words (code, esc, text) other than id's own. */
void session__log_reject_text(session_t *s, const char *what, reply_id_t id,
                              const reply_t *words, const char *rcpt, size_t rcpt_len);
/* The same for a message refused at its end with reply (a whole reply
 * line, "550 5.7.23 ..."); id names the reason for the counters. */
void session__log_reject_reply(session_t *s, const char *what, reply_id_t id, const char *reply);
/* The client's name (or "unknown") into dst[size]. */
void session__host(const session_t *s, char *dst, size_t size);
/* Whether no transaction is under way (SIGTERM may close now). */
bool session__idle(const session_t *s);

/* session_cmd.c */
void session__command(session_t *s, const char *line, size_t len);
void session__end_txn(session_t *s);

/* session_data.c */
/* DATA or the first BDAT accepted: start a message.  0, or -1 when it
 * could not be started (replied, transaction ended). */
int session__data_begin(session_t *s, data_mode_t mode);
/* Message bytes p[0..n) (in DATA or BDAT state); returns bytes consumed. */
size_t session__data_input(session_t *s, char *p, size_t n);
/* Drop the message being received, if any. */
void session__data_abort(session_t *s);
/* Queue the message: the sender checks' result res (NULL when none ran)
 * becomes its Authentication-Results:, then Received:.  0: the reply
 * waits for the spool (the session waits); -1: refused now (replied,
 * transaction ended). */
int session__commit(session_t *s, const authres_t *res);

/* session_checks.c */
/* Start the sender checks for the transaction (at its first accepted
 * recipient; SPF begins at once).  0, or -1 when they cannot run. */
int session__auth_begin(session_t *s);
/* Message bytes, as the spool gets them. */
void session__auth_feed(session_t *s, const char *p, size_t n);
/* The message is whole and may be kept: wait for the verdict, then refuse
 * it or commit it. */
void session__auth_end(session_t *s);
/* Drop the checks of the transaction (RSET, a new greeting, its end). */
void session__auth_cancel(session_t *s);
/* While the session waits for the verdict: stop waiting, drop the checks
 * and the message (the client left, or the shutdown grace is over). */
void session__auth_abandon(session_t *s);

#endif
