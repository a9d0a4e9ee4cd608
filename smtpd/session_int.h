/*
 * session_int - what the session's files (session*.c) share: the session
 * structure, the filters' state, and their cross-file helpers
 * (session__*).  Nothing outside those files includes this.
 */
#ifndef MXFWD_SESSION_INT_H
#define MXFWD_SESSION_INT_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "anvil.h"
#include "auth.h"
#include "buf.h"
#include "data.h"
#include "dnsbl.h"
#include "milter.h"
#include "milter_edit.h"
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

typedef struct session session_t;
/* What carries a command on once an asynchronous step of it is done. */
typedef void (*session_cont_fn)(session_t *s);

/* A reply mxfwd composed or was given (a filter's, a DNS list's): text
 * may hold several lines, joined by '\n'; esc "" when none. */
typedef struct {
    int code;
    char esc[16];
    char text[512];
} session_reply_t;

/* A filter's word on a step (docs/milter.md, "Replies"). */
typedef enum {
    SESSION_MILTER_CONTINUE,
    SESSION_MILTER_ACCEPT,
    SESSION_MILTER_REJECT,
    SESSION_MILTER_TEMPFAIL,
    SESSION_MILTER_DISCARD,
    SESSION_MILTER_CLOSE,
} session_milter_act_t;

/* A change a filter asked for at the end of the message. */
typedef struct {
    int type; /* MILTER_R_* */
    uint32_t index;
    char *a, *b;  /* name and value, or address and arguments */
    bool leadspc; /* a value with its own leading space */
} session_milter_mod_t;

/* One filter of the session (session_milter.c). */
typedef struct {
    session_t *s;
    const smtpd_milter_t *conf;
    milter_t *m;         /* NULL once it failed (its default action applies) */
    bool done_conn;      /* it accepted the connection: no more steps */
    bool done_msg;       /* it has had its say on the message */
    bool in_msg;         /* it has been told of a message it has not finished */
    bool waited;         /* the current step waits for its word */
    bool eom_done;       /* it answered the message's end */
    session_milter_act_t act;     /* its word on the current step */
    session_milter_act_t msg_act; /* its word on the message, when done_msg */
    session_reply_t reply;        /* its reply for REJECT, TEMPFAIL, CLOSE */
    session_milter_mod_t *mods;   /* asked at the end of the message */
    size_t nmods;
    char *quarantine; /* the reason it gave, when it asked for a hold */
} session_milter_one_t;

/* The session's filters. */
typedef struct {
    session_milter_one_t *f;
    size_t n;
    unsigned waiting;       /* filters the current step waits for */
    session_cont_fn done;   /* what follows the step */
    bool connect_step;      /* the current step is the connection's */
    /* the verdict of the step */
    session_milter_act_t act;
    session_reply_t reply;
    const char *who;
    /* the message */
    bool discard;        /* a filter discarded it */
    bool paused;         /* the client waits for the filters to read */
    bool head_done, head_long;
    buf_t head;          /* the header section as it arrived */
    size_t body_from;    /* where the body starts in head */
    milter_edit_t edit;  /* the fields, edited at the end */
    buf_t chunk;         /* body bytes for the next BODY packet */
    buf_t body;          /* a replacement body */
    bool body_refused;   /* a replacement was refused (said once) */
    const char *body_by; /* who replaced it */
} session_milters_t;

/* Replies queued beyond this are written before the batch ends. */
#define SESSION_OUT_FLUSH 16384

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
    bool peer_eof;     /* the client's EOF came while the input was held */
    bool stored;       /* the envelope store has the transaction's long sender */
    bool store_sync;   /* ...once the spool's commit pass syncs it */
    const authres_t *store_res; /* the verdict, while the store takes the sender */
    char *rcpt_waiting;         /* a RCPT whose key the store is looking up */
    proto_rcpt_dsn_t rcpt_waiting_dsn; /* and its DSN parameters */

    /* Asynchronous steps of a command (a filter's word, the sender's
     * domain): the command goes on with cont once the step is done. */
    session_cont_fn cont;
    session_milters_t *milters; /* NULL without filters */
    dnsbl_req_t *dnsbl;         /* the DNS lists' lookups, from connect */
    dns_req_t *sender_dns;      /* the sender's domain, at MAIL */
    unsigned conn_pending;      /* connect checks out: DNS lists, the filters' CONNECT */
    bool conn_hold;             /* a command waits for them */
    session_reply_t *refusal;   /* every command's reply after them */
    reply_id_t refusal_id;      /* its reason, for the counters */
    bool refusal_close;         /* close after giving it */
    bool refusal_logged;
    bool milter_waiting; /* the end of data waits for the filters */
    bool held;           /* the message is held: a filter quarantined it, or it is for
                          * postmaster@ with no postmaster set (docs/queue.md) */
    char *pend_rcpt;     /* a recipient waiting for the filters' word */
    char **pend_dests;   /* and its destinations */
    size_t pend_ndests;
    proto_rcpt_dsn_t pend_dsn; /* its DSN parameters */
    bool pend_hold;            /* accepted, its message is held (postmaster@) */
};

/* session_reply.c */
void session__reply(session_t *s, reply_id_t id);
void session__reply_addr(session_t *s, reply_id_t id, const char *addr, size_t len);
void session__replyf(session_t *s, int code, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A composed reply; and as one line for the log ("CODE X.Y.Z text"). */
void session__reply_given(session_t *s, const session_reply_t *r);
const char *session__reply_line(const session_reply_t *r, char *dst, size_t size);
/* A client mistake: counts toward max_errors, closing with 421 at it. */
void session__error(session_t *s);
/* "NOQUEUE: reject: ..." for a refused command. */
void session__log_reject(session_t *s, const char *what, reply_id_t id, const char *rcpt,
                         size_t rcpt_len);
/* The same with words (code, esc, text) other than id's own. */
void session__log_reject_text(session_t *s, const char *what, reply_id_t id,
                              const reply_t *words, const char *rcpt, size_t rcpt_len);
/* The same for a message refused at its end with reply (a whole reply
 * line, "550 5.7.23 ..."); id names the reason for the counters. */
void session__log_reject_reply(session_t *s, const char *what, reply_id_t id, const char *reply);
/* Whether no transaction is under way (SIGTERM may close now). */
bool session__idle(const session_t *s);

/* session.c */
/* Send what is queued, then close (gracefully, reading out the rest). */
void session__close(session_t *s);
/* The same after QUIT's 221: a plain session whose reply left closes at once. */
void session__close_quit(session_t *s);
/* Write the replies queued so far. */
void session__flush(session_t *s);
/* Hold the input for asynchronous work, and let it go again. */
void session__wait(session_t *s);
void session__resume(session_t *s);
/* A command's asynchronous step: wait, then (step_done) go on with cont,
 * unless the client left meanwhile.  abandon: drop every step and wait
 * in flight (the client left, or the shutdown grace is over). */
void session__step_wait(session_t *s, session_cont_fn cont);
void session__step_done(session_t *s);
void session__abandon(session_t *s);
/* Start TLS: the 220 reply is written first, queued input dropped. */
void session__start_tls(session_t *s);
/* "ESMTP" or "SMTP", as the log's proto= has it. */
const char *session__proto(const session_t *s);
/* The client's name (or "unknown") into dst[size]. */
void session__host(const session_t *s, char *dst, size_t size);

/* session_cmd.c */
void session__command(session_t *s, const char *line, size_t len);
void session__end_txn(session_t *s);
/* The BDAT chunk that follows the command is read (and dropped when
 * refused). */
void session__bdat_read(session_t *s, bool refused);

/* session_data.c */
/* DATA or the first BDAT accepted: start a message (the filters' word on
 * DATA may be awaited first; a BDAT chunk is read on then).  0, or -1
 * when it could not be started (replied, transaction ended). */
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
/* The message is whole and may be kept: wait for the verdicts of the
 * checks and the filters, then refuse it or commit it. */
void session__auth_end(session_t *s);
/* The filters' word on the message is in (session_milter.c). */
void session__checks_milters_done(session_t *s);
/* Drop the checks of the transaction (RSET, a new greeting, its end). */
void session__auth_cancel(session_t *s);
/* While the session waits for the verdict: stop waiting, drop the checks
 * and the message (the client left, or the shutdown grace is over). */
void session__auth_abandon(session_t *s);

/* session_policy.c: DNS lists, rate limits, the sender's domain */
/* At connect: start the DNS lists' lookups. */
void session__policy_connect(session_t *s);
/* A connect check is done; a command waiting for them goes on. */
void session__conn_check_done(session_t *s);
/* Before a command: whether the connect checks hold it (the session
 * waits), and whether a refusal of them answered it. */
bool session__conn_hold(session_t *s);
bool session__conn_refused(session_t *s, proto_verb_t verb);
/* One event of kind from the client (for a command what, about address
 * addr[0..len) or none); over its rate limit: the refusal is given and
 * logged, and true. */
bool session__rate_refused(session_t *s, anvil_kind_t kind, const char *what, const char *addr,
                           size_t len);
/* At MAIL, the sender's domain: 0 when nothing more is to be checked,
 * 1 when its lookup is out (cont follows unless it refuses: replied),
 * -1 when refused now (replied). */
int session__sender_check(session_t *s, const proto_path_t *path, session_cont_fn cont);
void session__policy_abandon(session_t *s);
void session__policy_free(session_t *s);

/* session_milter.c: the filters' steps (docs/milter.md) */
/* A step to every filter that is to hear it: true when some word is
 * awaited (done follows), false when the verdict is in now. */
bool session__milter_step(session_t *s, int cmd, const void *data, size_t len,
                          const char *const *nv, size_t n, session_cont_fn done);
void session__milter_connect(session_t *s);
/* Each step: true when the session waits for the filters (cont
 * follows), false when none has to be asked (go on at once). */
bool session__milter_helo(session_t *s, session_cont_fn cont);
bool session__milter_mail(session_t *s, session_cont_fn cont);
bool session__milter_rcpt(session_t *s, const char *rcpt, session_cont_fn cont);
bool session__milter_data(session_t *s, session_cont_fn cont);
/* After a step: when the filters refused it, the reply is given (and
 * logged, for what, with rcpt), and true. */
bool session__milter_refused(session_t *s, const char *what, const char *rcpt);
/* session_milter_msg.c: the message to the filters, their changes */
/* Message bytes as the spool gets them. */
void session__milter_feed(session_t *s, const char *p, size_t n);
/* A change a filter asked for before its word on the message's end. */
void session__milter_change(session_milter_one_t *f, const milter_reply_t *r);
/* A filter took what was queued for it: the client may go on. */
void session__milter_drained(session_t *s);
/* The end of the message: true when their word is awaited
 * (session__checks_milters_done() follows). */
bool session__milter_eom(session_t *s);
/* The message's verdict: SESSION_MILTER_CONTINUE to accept it, or the
 * act (the reply given and logged for REJECT, TEMPFAIL and CLOSE). */
session_milter_act_t session__milter_verdict(session_t *s, const char *what);
/* The filters' changes, at the commit: envelope changes applied to the
 * transaction, a body replaced (a new writer), the message held; header
 * fields to put on top into top, a whole new header section into section
 * with the bytes it replaces in *skip.  -1: nothing is left to deliver
 * (every recipient removed): drop the message. */
int session__milter_changes(session_t *s, buf_t *top, buf_t *section, uint64_t *skip);
void session__milter_end_txn(session_t *s);
void session__milter_abandon(session_t *s);
void session__milter_free(session_t *s);

#endif
