/*
 * session_cmd.c - the command table of the inbound session and the
 * commands: which state allows each verb, what its arguments must look
 * like (check), and what it does (proceed).
 */
#include "session_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rcpt.h"
#include "srs.h"
#include "srs_store.h"
#include "str.h"
#include "xalloc.h"

typedef struct {
    proto_cmd_t cmd;
    union {
        proto_mail_t mail;
        struct {
            proto_path_t path;
            proto_rcpt_dsn_t dsn;
        } rcpt;
        struct {
            uint64_t size;
            bool last;
        } bdat;
    } u;
} session_cmd_t;

#define CMD_ARG_NONE 0x01   /* takes no argument */
#define CMD_ARG_NEEDED 0x02 /* takes one */
#define CMD_ANY_STATE 0x04  /* checks the state itself */

typedef struct {
    proto_verb_t verb;
    unsigned states; /* SESSION_S() of the states that allow it */
    unsigned flags;
    /* Look at the arguments; on a problem, reply and return -1. */
    int (*check)(session_t *s, session_cmd_t *c);
    void (*proceed)(session_t *s, session_cmd_t *c);
} session_command_t;

#define S_GREETED (SESSION_S(SESSION_HELO) | SESSION_S(SESSION_MAIL) | SESSION_S(SESSION_RCPT))
#define S_TALK (SESSION_S(SESSION_INIT) | S_GREETED)
#define S_ALL (S_TALK | SESSION_S(SESSION_CHUNKING))

/* ---- helpers ---------------------------------------------------------------- */

/* A refusal the client caused: the reply, and a count toward max_errors. */
static int session_cmd_refuse(session_t *s, reply_id_t id)
{
    session__reply(s, id);
    session__error(s);
    return -1;
}

void session__end_txn(session_t *s)
{
    session__auth_cancel(s);
    session__milter_end_txn(s);
    session__data_abort(s);
    txn_free(s->txn);
    s->txn = NULL;
    s->stored = s->store_sync = false;
    s->held = false;
    if (s->state == SESSION_MAIL || s->state == SESSION_RCPT || s->state == SESSION_CHUNKING)
        s->state = SESSION_HELO;
}

static void session_cmd_bad_sequence(session_t *s, proto_verb_t verb)
{
    const char *need = NULL;

    switch (verb) {
    case PROTO_MAIL:
        need = s->state == SESSION_INIT       ? "send HELO/EHLO first"
               : s->state == SESSION_CHUNKING ? "BDAT transaction in progress"
                                              : "nested MAIL command";
        break;
    case PROTO_RCPT:
        need = s->state == SESSION_CHUNKING ? "BDAT transaction in progress" : "need MAIL command";
        break;
    case PROTO_DATA:
        if (s->state == SESSION_MAIL && txn_rcpt_tried(s->txn)) {
            session_cmd_refuse(s, REPLY_NO_RCPTS);
            return;
        }
        need = s->state == SESSION_MAIL       ? "need RCPT command"
               : s->state == SESSION_CHUNKING ? "DATA after BDAT"
                                              : "need MAIL command";
        break;
    case PROTO_STARTTLS:
        need = "STARTTLS in a mail transaction";
        break;
    default:
        need = s->state == SESSION_CHUNKING ? "BDAT transaction in progress"
                                            : "bad sequence of commands";
        break;
    }
    session__replyf(s, 503, "5.5.1", "Error: %s", need);
    session__error(s);
}

/* ---- EHLO, HELO ----------------------------------------------------------------- */

static int session_cmd_check_helo(session_t *s, session_cmd_t *c)
{
    if (!proto_helo_valid(c->cmd.arg, c->cmd.arg_len)) {
        session__replyf(s, 501, "5.5.4", "Syntax: %s hostname", proto_verb_name(c->cmd.verb));
        session__error(s);
        return -1;
    }
    return 0;
}

/* The reply to HELO or EHLO, once the filters had their say. */
static void session_cmd_helo_reply(session_t *s)
{
    const smtpd_options_t *opts = &s->smtpd->opts;

    if (session__milter_refused(s, s->esmtp ? "EHLO" : "HELO", NULL)) {
        if (s->state != SESSION_CLOSING)
            s->state = SESSION_INIT;
        return;
    }
    if (!s->esmtp) {
        session__replyf(s, 250, NULL, "%s", opts->hostname);
        return;
    }
    /* No enhanced status code in the EHLO reply (RFC 2034 3). */
    session__replyf(s, 250, NULL,
                    "%s\nPIPELINING\nSIZE %llu\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8\n"
                    "DSN\nCHUNKING%s",
                    opts->hostname, (unsigned long long)opts->max_message_size,
                    smtpd_has_tls(s->smtpd) && s->tls == NULL ? "\nSTARTTLS" : "");
}

static void session_cmd_proceed_helo(session_t *s, session_cmd_t *c)
{
    /* A new greeting resets the transaction (RFC 5321 4.1.4). */
    session__end_txn(s);
    free(s->helo);
    s->helo = xstrndup(c->cmd.arg, c->cmd.arg_len);
    s->esmtp = c->cmd.verb == PROTO_EHLO;
    s->state = SESSION_HELO;
    if (!session__milter_helo(s, session_cmd_helo_reply))
        session_cmd_helo_reply(s);
}

/* ---- MAIL ---------------------------------------------------------------------- */

static int session_cmd_check_mail(session_t *s, session_cmd_t *c)
{
    proto_mail_t *m = &c->u.mail;

    switch (proto_parse_mail(c->cmd.arg, c->cmd.arg_len, m)) {
    case 0:
        break;
    case PROTO_EADDR:
        return session_cmd_refuse(s, REPLY_BAD_SENDER);
    case PROTO_EPARAM:
        return session_cmd_refuse(s, REPLY_UNSUPPORTED_PARAM);
    case PROTO_EVALUE:
        return session_cmd_refuse(s, REPLY_BAD_PARAM);
    default:
        session__replyf(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
        session__error(s);
        return -1;
    }
    /* ESMTP parameters only after EHLO (RFC 5321 4.1.1.11 via 2.2.1). */
    if (!s->esmtp && (m->has_size || m->body != PROTO_BODY_NONE || m->smtputf8 ||
                      m->ret != PROTO_RET_NONE || m->envid[0] != '\0'))
        return session_cmd_refuse(s, REPLY_UNSUPPORTED_PARAM);
    if (m->path.addr_len > 0 && m->path.parsed.utf8 && !m->smtputf8)
        return session_cmd_refuse(s, REPLY_NEED_SMTPUTF8);
    if (m->has_size && m->size > s->smtpd->opts.max_message_size) {
        session__reply(s, REPLY_SIZE_DECLARED);
        session__log_reject(s, "MAIL", REPLY_SIZE_DECLARED, m->path.addr, m->path.addr_len);
        return -1;
    }
    return 0;
}

/* The sender is accepted once the filters agree. */
static void session_cmd_mail_done(session_t *s)
{
    if (session__milter_refused(s, "MAIL", NULL)) {
        txn_free(s->txn);
        s->txn = NULL;
        return;
    }
    s->state = SESSION_MAIL;
    session__reply(s, REPLY_MAIL_OK);
}

/* The sender's domain checked (or not to be): the filters' turn. */
static void session_cmd_mail_checked(session_t *s)
{
    if (!session__milter_mail(s, session_cmd_mail_done))
        session_cmd_mail_done(s);
}

static void session_cmd_proceed_mail(session_t *s, session_cmd_t *c)
{
    const proto_path_t *path = &c->u.mail.path;
    const smtpd_options_t *opts = &s->smtpd->opts;
    srs_long_t mode = opts->long_senders;
    char srs[SRS_ADDR_SIZE] = "", key[SRS_KEY_SIZE] = "";
    int rc = 0;

    /* A client over its message rate is told to come back later. */
    if (session__rate_refused(s, ANVIL_MESSAGES, "MAIL", NULL, 0))
        return;
    /* Without a store to keep it in, a long sender is refused. */
    if (mode == SRS_LONG_STORE && opts->store == NULL)
        mode = SRS_LONG_REJECT;
    /* The sender is rewritten once, here, for every copy of the message;
     * one that cannot be is refused now, never forwarded unrewritten.  A
     * long one may get a keyed address: the store takes it at the end of
     * the data (docs/srs.md, "Long senders"). */
    if (path->addr_len > 0) {
        rc = srs_forward_long(s->smtpd->srs, mode, path->addr, path->addr_len,
                              smtpd__now(s->smtpd), srs, sizeof(srs), key);
        if (rc < 0) {
            reply_id_t id = reply_for_srs_forward_err(rc);
            session__reply_addr(s, id, path->addr, path->addr_len);
            session__log_reject(s, "MAIL", id, path->addr, path->addr_len);
            if (reply_get(id)->code >= 500)
                session__error(s);
            return;
        }
    }
    /* The transaction holds the sender while its checks run; MAIL is
     * accepted (the state moves on) only once they are done. */
    s->txn = txn_new(path->addr, path->addr_len, &c->u.mail);
    txn_set_forward_sender(s->txn, srs);
    if (rc == SRS_KEYED)
        txn_set_store_key(s->txn, key);
    rc = session__sender_check(s, path, session_cmd_mail_checked);
    if (rc < 0)
        session__error(s);
    else if (rc == 0)
        session_cmd_mail_checked(s);
}

/* ---- RCPT ---------------------------------------------------------------------- */

static int session_cmd_check_rcpt(session_t *s, session_cmd_t *c)
{
    proto_path_t *p = &c->u.rcpt.path;

    txn_note_rcpt_tried(s->txn);
    switch (proto_parse_rcpt(c->cmd.arg, c->cmd.arg_len, p, &c->u.rcpt.dsn)) {
    case 0:
        break;
    case PROTO_EADDR:
    case PROTO_ENULLRCPT:
        return session_cmd_refuse(s, REPLY_BAD_RCPT);
    case PROTO_EPARAM:
        return session_cmd_refuse(s, REPLY_UNSUPPORTED_PARAM);
    case PROTO_EVALUE:
        return session_cmd_refuse(s, REPLY_BAD_PARAM);
    default:
        session__replyf(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
        session__error(s);
        return -1;
    }
    if (p->parsed.utf8 && !txn_smtputf8(s->txn))
        return session_cmd_refuse(s, REPLY_NEED_SMTPUTF8);
    if (!s->esmtp && (c->u.rcpt.dsn.notify != 0 || c->u.rcpt.dsn.orcpt[0] != '\0'))
        return session_cmd_refuse(s, REPLY_UNSUPPORTED_PARAM);
    return 0;
}

/* Refuse a recipient: reply, one log line, and an error unless the refusal
 * is a temporary one the client is expected to act on. */
static void session_cmd_refuse_rcpt(session_t *s, reply_id_t id, const char *addr, size_t len)
{
    session__reply_addr(s, id, addr, len);
    session__log_reject(s, "RCPT", id, addr, len);
    if (reply_get(id)->code >= 500)
        session__error(s);
}

static void session_cmd_pending_free(session_t *s)
{
    for (size_t i = 0; i < s->pend_ndests; i++)
        free(s->pend_dests[i]);
    free(s->pend_dests);
    free(s->pend_rcpt);
    s->pend_dests = NULL;
    s->pend_ndests = 0;
    s->pend_rcpt = NULL;
    s->pend_hold = false;
}

/* The recipient waiting for the filters is accepted, or refused. */
static void session_cmd_rcpt_done(session_t *s)
{
    const char *rcpt = s->pend_rcpt;

    if (!session__milter_refused(s, "RCPT", rcpt)) {
        txn_add_rcpt(s->txn, rcpt, strlen(rcpt), &s->pend_dsn,
                     (const char *const *)s->pend_dests, s->pend_ndests);
        if (s->pend_hold)
            s->held = true;
        s->state = SESSION_RCPT;
        session__reply(s, REPLY_RCPT_OK);
    }
    session_cmd_pending_free(s);
}

/* Accept a recipient and its destinations, once the filters agree.  The
 * sender checks start with the first one: a transaction whose every
 * recipient is refused (a relay probe, a dictionary attack) costs no DNS
 * work. */
static void session_cmd_accept_rcpt(session_t *s, const char *addr, size_t len,
                                    const proto_rcpt_dsn_t *dsn, const char *const *dests, size_t n,
                                    bool hold)
{
    if (session__auth_begin(s) < 0) {
        session__reply_addr(s, REPLY_AUTH_FAILED, addr, len);
        session__log_reject(s, "RCPT", REPLY_AUTH_FAILED, addr, len);
        return;
    }
    /* Copied: the command's bytes may be gone when the filters answer. */
    session_cmd_pending_free(s);
    s->pend_rcpt = xstrndup(addr, len);
    s->pend_dests = xcalloc(n + 1, sizeof(*s->pend_dests));
    for (size_t i = 0; i < n; i++)
        s->pend_dests[i] = xstrdup(dests[i]);
    s->pend_ndests = n;
    s->pend_dsn = *dsn;
    s->pend_hold = hold;
    if (!session__milter_rcpt(s, s->pend_rcpt, session_cmd_rcpt_done))
        session_cmd_rcpt_done(s);
}

/* The envelope store's answer for the recipient waiting at RCPT: the
 * sender behind its key, or a refusal. */
static void session_cmd_rcpt_found(void *arg, int status, const char *sender)
{
    session_t *s = arg;
    char *addr = s->rcpt_waiting;

    s->rcpt_waiting = NULL;
    /* The accept may start a wait of its own (a filter's word on the
     * recipient): the input stays held until that one ends too. */
    s->waiting = false;
    if (!s->close_after && status == 0)
        session_cmd_accept_rcpt(s, addr, strlen(addr), &s->rcpt_waiting_dsn, &sender, 1,
                                false);
    else if (!s->close_after)
        session_cmd_refuse_rcpt(s,
                                status == SRS_STORE_ENOTFOUND ? REPLY_SRS_UNKNOWN_KEY
                                                              : REPLY_SRS_STORE_READ,
                                addr, strlen(addr));
    if (status < 0 && status != SRS_STORE_ENOTFOUND)
        log_warning("%s: envelope store: %s", s->peer, srs_store_strerror(status));
    free(addr);
    if (!s->waiting)
        session__resume(s);
}

/* A keyed SRS address, its hash and stamp good: the store says whom the
 * bounce goes to; the session waits for it. */
static void session_cmd_rcpt_lookup(session_t *s, const proto_path_t *p,
                                    const proto_rcpt_dsn_t *dsn, const char *key)
{
    srs_store_t *store = s->smtpd->opts.store;
    int rc = store != NULL ? srs_store_get(store, key, session_cmd_rcpt_found, s)
                           : SRS_STORE_ENOTFOUND;

    if (rc < 0) {
        session_cmd_refuse_rcpt(s,
                                rc == SRS_STORE_ENOTFOUND ? REPLY_SRS_UNKNOWN_KEY
                                                          : REPLY_SRS_STORE_READ,
                                p->addr, p->addr_len);
        return;
    }
    s->rcpt_waiting = xstrndup(p->addr, p->addr_len);
    s->rcpt_waiting_dsn = *dsn;
    session__wait(s);
}

/* postmaster@ hostname or srs_domain, held: its destination is itself
 * (<postmaster> as postmaster@hostname), never tried until released. */
static void session_cmd_hold_postmaster(session_t *s, const proto_path_t *p,
                                        const proto_rcpt_dsn_t *dsn)
{
    char addr[ADDR_MAX + 1];
    const char *dest = addr;

    if (p->postmaster)
        snprintf(addr, sizeof(addr), "postmaster@%s", s->smtpd->opts.hostname);
    else
        snprintf(addr, sizeof(addr), "%.*s", (int)p->addr_len, p->addr);
    log_info("NOQUEUE: hold: RCPT from %s: <%.*s>: postmaster is not set: held for the admin; "
             "from=<%s> to=<%.*s> proto=%s helo=<%s> session=%s",
             s->peer, (int)p->addr_len, p->addr, txn_sender(s->txn), (int)p->addr_len, p->addr,
             session__proto(s), s->helo != NULL ? s->helo : "", s->sid);
    session_cmd_accept_rcpt(s, p->addr, p->addr_len, dsn, &dest, 1, true);
}

static void session_cmd_proceed_rcpt(session_t *s, session_cmd_t *c)
{
    const proto_path_t *p = &c->u.rcpt.path;
    const smtpd_options_t *opts = &s->smtpd->opts;
    rcpt_ctx_t ctx;
    rcpt_route_t route;
    const char *dest;

    /* Every recipient counts toward the rate, accepted or not. */
    if (session__rate_refused(s, ANVIL_RECIPIENTS, "RCPT", p->addr, p->addr_len))
        return;
    if (txn_nrcpts(s->txn) >= opts->max_recipients) {
        session_cmd_refuse_rcpt(s, REPLY_TOO_MANY_RCPTS, p->addr, p->addr_len);
        return;
    }
    /* A source route asks us to relay onwards: refused like any relaying. */
    if (p->source_route) {
        session_cmd_refuse_rcpt(s, REPLY_RELAY_DENIED, p->addr, p->addr_len);
        return;
    }
    /* The table the session started with; the address as the command's
     * parser took it (one parse per RCPT). */
    smtpd_rcpt_ctx(s->smtpd, &ctx);
    ctx.table = s->table;
    rcpt_route(&ctx, p->addr, p->addr_len, &p->parsed, p->postmaster, txn_sender(s->txn), &route);
    switch (route.kind) {
    case RCPT_REFUSE:
        session__replyf(s, route.words.code, route.words.esc, "<%.*s>: %s", (int)p->addr_len,
                        p->addr, route.words.text);
        session__log_reject_text(s, "RCPT", route.reason, &route.words, p->addr, p->addr_len);
        if (route.words.code >= 500)
            session__error(s);
        break;
    case RCPT_BOUNCE:
        dest = route.orig;
        session_cmd_accept_rcpt(s, p->addr, p->addr_len, &c->u.rcpt.dsn, &dest, 1, false);
        break;
    case RCPT_KEYED:
        /* A long sender's bounce: the envelope store knows whom to. */
        session_cmd_rcpt_lookup(s, p, &c->u.rcpt.dsn, route.orig);
        break;
    case RCPT_DISCARD:
        /* Accepted, with nothing to forward to: a message with no other
         * recipient is dropped at its end (session_data.c). */
        log_info("NOQUEUE: discard: RCPT from %s: <%.*s>: Recipient address triggers DISCARD "
                 "action (forward table line %u); from=<%s> to=<%.*s> proto=%s helo=<%s> "
                 "session=%s",
                 s->peer, (int)p->addr_len, p->addr, route.dests.line, txn_sender(s->txn),
                 (int)p->addr_len, p->addr, session__proto(s), s->helo != NULL ? s->helo : "",
                 s->sid);
        session_cmd_accept_rcpt(s, p->addr, p->addr_len, &c->u.rcpt.dsn, NULL, 0, false);
        break;
    case RCPT_FORWARD:
        session_cmd_accept_rcpt(s, p->addr, p->addr_len, &c->u.rcpt.dsn, route.dests.addr,
                                route.dests.n, false);
        break;
    case RCPT_HOLD:
        /* postmaster@ with no postmaster set: accepted (RFC 5321 4.5.1)
         * and held for the admin to read (mxfwd queue show). */
        session_cmd_hold_postmaster(s, p, &c->u.rcpt.dsn);
        break;
    }
}

/* ---- DATA, BDAT -------------------------------------------------------------------- */

static void session_cmd_proceed_data(session_t *s, session_cmd_t *c)
{
    (void)c;
    session__data_begin(s, DATA_DOT);
}

static int session_cmd_check_bdat(session_t *s, session_cmd_t *c)
{
    const char *a = c->cmd.arg;
    size_t n = c->cmd.arg_len, i = 0;
    uint64_t size = 0;

    for (; i < n && a[i] >= '0' && a[i] <= '9'; i++) {
        if (size > (UINT64_MAX - 9) / 10)
            goto syntax;
        size = size * 10 + (uint64_t)(a[i] - '0');
    }
    if (i == 0)
        goto syntax;
    c->u.bdat.size = size;
    c->u.bdat.last = false;
    if (i < n) {
        if (a[i] != ' ')
            goto syntax;
        while (i < n && a[i] == ' ')
            i++;
        if (!str_eq_ci_n(a + i, n - i, "LAST"))
            goto syntax;
        c->u.bdat.last = true;
    }
    return 0;
syntax:
    /* Without a size the chunk cannot be skipped: its bytes will read as
     * bad commands and end the session through max_errors. */
    session__replyf(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
    session__error(s);
    return -1;
}

void session__bdat_read(session_t *s, bool refused)
{
    if (s->state == SESSION_CLOSING)
        return;
    s->bdat_discard = refused;
    /* The chunk follows the command whatever the reply (RFC 3030 2): a
     * refused one is read and dropped, so the session stays in step. */
    s->bdat_return = s->state;
    s->state = SESSION_BDAT;
    if (s->bdat_left == 0)
        session__data_input(s, NULL, 0);
}

static void session_cmd_proceed_bdat(session_t *s, session_cmd_t *c)
{
    s->bdat_left = c->u.bdat.size;
    s->bdat_last = c->u.bdat.last;
    s->bdat_discard = true;
    if (!s->esmtp) {
        session__replyf(s, 503, "5.5.1", "Error: BDAT needs EHLO");
        session__error(s);
    } else if (s->state == SESSION_CHUNKING) {
        session__bdat_read(s, false);
        return;
    } else if (s->state == SESSION_RCPT) {
        /* The chunk is read once the message has begun (or was refused). */
        if (session__data_begin(s, DATA_RAW) < 0)
            session__bdat_read(s, true);
        return;
    } else {
        session_cmd_bad_sequence(s, PROTO_BDAT);
    }
    session__bdat_read(s, true);
}

/* ---- the rest ------------------------------------------------------------------------ */

static void session_cmd_proceed_rset(session_t *s, session_cmd_t *c)
{
    (void)c;
    session__end_txn(s);
    session__reply(s, REPLY_OK);
}

static void session_cmd_proceed_noop(session_t *s, session_cmd_t *c)
{
    (void)c;
    session__reply(s, REPLY_OK);
}

static void session_cmd_proceed_quit(session_t *s, session_cmd_t *c)
{
    (void)c;
    session__reply(s, REPLY_BYE);
    session__close_quit(s);
}

static void session_cmd_proceed_help(session_t *s, session_cmd_t *c)
{
    (void)c;
    session__replyf(s, 214, "2.0.0",
                    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY%s",
                    smtpd_has_tls(s->smtpd) ? " STARTTLS" : "");
}

static void session_cmd_proceed_vrfy(session_t *s, session_cmd_t *c)
{
    (void)c;
    /* Recipients are not disclosed (RFC 5321 3.5.3). */
    session__reply(s, REPLY_VRFY);
}

static void session_cmd_proceed_unimplemented(session_t *s, session_cmd_t *c)
{
    (void)c;
    session_cmd_refuse(s, REPLY_NOT_IMPLEMENTED);
}

static int session_cmd_check_starttls(session_t *s, session_cmd_t *c)
{
    (void)c;
    if (!smtpd_has_tls(s->smtpd))
        return session_cmd_refuse(s, REPLY_NOT_IMPLEMENTED);
    if (s->tls != NULL)
        return session_cmd_refuse(s, REPLY_TLS_ACTIVE);
    return 0;
}

static void session_cmd_proceed_starttls(session_t *s, session_cmd_t *c)
{
    (void)c;
    session__reply(s, REPLY_TLS_GO);
    session__start_tls(s);
}

static void session_cmd_proceed_http(session_t *s, session_cmd_t *c)
{
    (void)c;
    log_info("non-SMTP command from %s: %s session=%s", s->peer, "HTTP request", s->sid);
    session__reply(s, REPLY_NOT_SMTP);
    session__close(s);
}

static const session_command_t session_cmd_commands[] = {
    {PROTO_EHLO, S_TALK, CMD_ARG_NEEDED, session_cmd_check_helo, session_cmd_proceed_helo},
    {PROTO_HELO, S_TALK, CMD_ARG_NEEDED, session_cmd_check_helo, session_cmd_proceed_helo},
    {PROTO_MAIL, SESSION_S(SESSION_HELO), CMD_ARG_NEEDED, session_cmd_check_mail,
     session_cmd_proceed_mail},
    {PROTO_RCPT, SESSION_S(SESSION_MAIL) | SESSION_S(SESSION_RCPT), CMD_ARG_NEEDED,
     session_cmd_check_rcpt, session_cmd_proceed_rcpt},
    {PROTO_DATA, SESSION_S(SESSION_RCPT), CMD_ARG_NONE, NULL, session_cmd_proceed_data},
    {PROTO_BDAT, S_ALL, CMD_ARG_NEEDED, session_cmd_check_bdat, session_cmd_proceed_bdat},
    {PROTO_RSET, S_ALL, CMD_ARG_NONE, NULL, session_cmd_proceed_rset},
    {PROTO_NOOP, S_ALL, 0, NULL, session_cmd_proceed_noop},
    {PROTO_QUIT, S_ALL, CMD_ARG_NONE, NULL, session_cmd_proceed_quit},
    {PROTO_HELP, S_TALK, 0, NULL, session_cmd_proceed_help},
    {PROTO_VRFY, S_TALK, CMD_ARG_NEEDED, NULL, session_cmd_proceed_vrfy},
    {PROTO_EXPN, S_ALL, CMD_ANY_STATE, NULL, session_cmd_proceed_unimplemented},
    {PROTO_AUTH, S_ALL, CMD_ANY_STATE, NULL, session_cmd_proceed_unimplemented},
    {PROTO_ETRN, S_ALL, CMD_ANY_STATE, NULL, session_cmd_proceed_unimplemented},
    {PROTO_TURN, S_ALL, CMD_ANY_STATE, NULL, session_cmd_proceed_unimplemented},
    {PROTO_STARTTLS, SESSION_S(SESSION_INIT) | SESSION_S(SESSION_HELO), CMD_ARG_NONE,
     session_cmd_check_starttls, session_cmd_proceed_starttls},
    {PROTO_HTTP, S_ALL, CMD_ANY_STATE, NULL, session_cmd_proceed_http},
};

static const session_command_t *session_cmd_find(proto_verb_t verb)
{
    for (size_t i = 0; i < sizeof(session_cmd_commands) / sizeof(session_cmd_commands[0]); i++)
        if (session_cmd_commands[i].verb == verb)
            return &session_cmd_commands[i];
    return NULL;
}

void session__command(session_t *s, const char *line, size_t len)
{
    const session_command_t *e;
    session_cmd_t c;

    proto_parse_command(line, len, &c.cmd);
    s->commands++;
    s->last = c.cmd.verb;
    if (log_min_level() <= LOG_LEVEL_DEBUG)
        log_debug("%s: < %.*s", s->peer, (int)(len > 200 ? 200 : len), line);
    /* A stopping server takes no new transaction. */
    if (s->stop && session__idle(s)) {
        session__reply(s, REPLY_SHUTDOWN);
        session__close(s);
        return;
    }
    /* Refused at connect (a DNS list, a filter): every command but QUIT
     * hears it, the first one after the greeting included. */
    if (session__conn_refused(s, c.cmd.verb))
        return;
    e = session_cmd_find(c.cmd.verb);
    if (e == NULL) {
        session_cmd_refuse(s, REPLY_UNKNOWN_COMMAND);
        return;
    }
    if (!(e->flags & CMD_ANY_STATE) && !(e->states & SESSION_S(s->state))) {
        session_cmd_bad_sequence(s, c.cmd.verb);
        return;
    }
    if (((e->flags & CMD_ARG_NONE) && c.cmd.arg_len > 0) ||
        ((e->flags & CMD_ARG_NEEDED) && c.cmd.arg_len == 0)) {
        session__replyf(s, 501, "5.5.4", "Syntax: %s%s", proto_verb_name(c.cmd.verb),
                        (e->flags & CMD_ARG_NEEDED) ? " argument" : "");
        session__error(s);
        return;
    }
    if (e->check != NULL && e->check(s, &c) < 0)
        return;
    e->proceed(s, &c);
}
