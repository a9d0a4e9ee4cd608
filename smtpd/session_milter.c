/*
 * session_milter.c - the session's filters (docs/milter.md): one
 * connection to each milter per session, opened at the greeting, and the
 * steps of the session (CONNECT, HELO, MAIL, RCPT, DATA) sent to every
 * filter at once with the macros Postfix sends; the session waits for
 * their word like for any asynchronous step.  Their words are read in the
 * order the filters are configured: the first that is not "continue"
 * decides.  A filter that cannot be reached, times out or breaks the
 * protocol is closed, and milter_default_action stands in for it from
 * then on.  The message itself goes to them in session_milter_msg.c.
 */
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

/* ---- words ---- */

static void session_milter_reply_of(reply_id_t id, session_reply_t *r)
{
    const reply_t *t = reply_get(id);

    r->code = t->code;
    str_lcpy(r->esc, t->esc, sizeof(r->esc));
    str_lcpy(r->text, t->text, sizeof(r->text));
}

/* What a filter that failed amounts to (milter_default_action). */
static session_milter_act_t session_milter_default(session_milter_one_t *f)
{
    switch (f->s->smtpd->opts.milter_default_action) {
    case SMTPD_MILTER_ACCEPT:
        return SESSION_MILTER_ACCEPT;
    case SMTPD_MILTER_REJECT:
        session_milter_reply_of(REPLY_MILTER_REJECT, &f->reply);
        return SESSION_MILTER_REJECT;
    case SMTPD_MILTER_TEMPFAIL:
        break;
    }
    session_milter_reply_of(REPLY_MILTER_TEMPFAIL, &f->reply);
    return SESSION_MILTER_TEMPFAIL;
}

/* A filter's final reply as a word; -1 for a reply code that is none. */
static int session_milter_word(session_milter_one_t *f, const milter_reply_t *r)
{
    int code;

    switch (r->type) {
    case MILTER_R_ACCEPT:
        return SESSION_MILTER_ACCEPT;
    case MILTER_R_DISCARD:
        return SESSION_MILTER_DISCARD;
    case MILTER_R_REJECT:
        session_milter_reply_of(REPLY_MILTER_REJECT, &f->reply);
        return SESSION_MILTER_REJECT;
    case MILTER_R_TEMPFAIL:
        session_milter_reply_of(REPLY_MILTER_TEMPFAIL, &f->reply);
        return SESSION_MILTER_TEMPFAIL;
    case MILTER_R_CONN_FAIL:
        session_milter_reply_of(REPLY_MILTER_CLOSE, &f->reply);
        return SESSION_MILTER_CLOSE;
    case MILTER_R_REPLYCODE:
        if (milter_proto_reply_text(r->text, &code, f->reply.esc, f->reply.text,
                                    sizeof(f->reply.text)) < 0)
            return -1;
        f->reply.code = code;
        if (f->reply.esc[0] == '\0')
            str_lcpy(f->reply.esc, code >= 500 ? "5.7.1" : "4.7.1", sizeof(f->reply.esc));
        /* 421 ends the session, as an SMTP server's own 421 does. */
        return code == 421 ? SESSION_MILTER_CLOSE
               : code >= 500 ? SESSION_MILTER_REJECT
                             : SESSION_MILTER_TEMPFAIL;
    }
    return SESSION_MILTER_CONTINUE;
}

/* ---- steps ---- */

/* Every filter the step waited for has answered: the verdict, read in
 * the filters' order, and what follows. */
static void session_milter_step_end(session_t *s)
{
    session_milters_t *sm = s->milters;

    sm->act = SESSION_MILTER_CONTINUE;
    sm->who = NULL;
    for (size_t i = 0; i < sm->n; i++) {
        session_milter_one_t *f = &sm->f[i];

        if (f->act == SESSION_MILTER_CONTINUE || f->act == SESSION_MILTER_ACCEPT)
            continue;
        sm->act = f->act;
        sm->reply = f->reply;
        sm->who = f->conf->name;
        break;
    }
    if (sm->done != NULL)
        sm->done(s);
}

static void session_milter_answered(session_milter_one_t *f)
{
    session_milters_t *sm = f->s->milters;

    f->waited = false;
    if (--sm->waiting == 0)
        session_milter_step_end(f->s);
}

/* A filter's word that settles the message, or the connection. */
static void session_milter_settled(session_milter_one_t *f, session_milter_act_t act, int cmd)
{
    if (cmd == MILTER_C_CONNECT || cmd == MILTER_C_HELO) {
        /* No message to discard yet: as good as accepted. */
        f->done_conn = act == SESSION_MILTER_ACCEPT || act == SESSION_MILTER_DISCARD;
        return;
    }
    if (act == SESSION_MILTER_ACCEPT || act == SESSION_MILTER_DISCARD || cmd == MILTER_C_HEADER ||
        cmd == MILTER_C_EOH || cmd == MILTER_C_BODY) {
        f->done_msg = true;
        f->msg_act = act;
        if (act == SESSION_MILTER_DISCARD)
            f->s->milters->discard = true;
        /* What is queued of the message for it is not needed now. */
        if (f->m != NULL && cmd != MILTER_C_BODYEOB)
            milter_drop(f->m);
    }
}

static void session_milter_failed(session_milter_one_t *f, int status)
{
    session_t *s = f->s;

    log_warning("%s: milter %s: %s; milter_default_action applies session=%s", s->peer,
                f->conf->name,
                status <= MILTER_EBASE ? milter_proto_strerror(status) : uv_strerror(status),
                s->sid);
    if (f->m != NULL)
        milter_close(f->m);
    f->m = NULL;
    f->act = session_milter_default(f);
    if (f->act == SESSION_MILTER_ACCEPT) {
        f->done_conn = true;
    } else if (f->in_msg) {
        /* Mid-message: its default is its word on the message. */
        f->done_msg = true;
        f->msg_act = f->act;
    }
    if (f->waited)
        session_milter_answered(f);
}

static void session_milter_event(void *arg, milter_t *m, const milter_event_info_t *e)
{
    session_milter_one_t *f = arg;
    int act;

    (void)m;
    switch (e->ev) {
    case MILTER_EV_DRAINED:
        session__milter_drained(f->s);
        return;
    case MILTER_EV_FAILED:
        session_milter_failed(f, e->status);
        return;
    case MILTER_EV_DONE:
        if (f->waited && e->notify)
            session_milter_answered(f);
        return;
    case MILTER_EV_REPLY:
        break;
    }
    if (!e->final) {
        session__milter_change(f, e->reply);
        return;
    }
    if ((act = session_milter_word(f, e->reply)) < 0) {
        log_warning("%s: milter %s: a reply code that is none: %.100s", f->s->peer,
                    f->conf->name, e->reply->text);
        session_milter_failed(f, MILTER_EPROTO);
        return;
    }
    if (e->cmd == MILTER_C_BODYEOB)
        f->eom_done = true;
    session_milter_settled(f, (session_milter_act_t)act, e->cmd);
    if (!e->notify)
        return; /* its word on the message, before the end */
    f->act = (session_milter_act_t)act;
    if (f->waited)
        session_milter_answered(f);
}

bool session__milter_step(session_t *s, int cmd, const void *data, size_t len,
                          const char *const *nv, size_t n, session_cont_fn done)
{
    session_milters_t *sm = s->milters;
    bool message = cmd != MILTER_C_CONNECT && cmd != MILTER_C_HELO;

    sm->waiting = 0;
    sm->done = NULL;
    for (size_t i = 0; i < sm->n; i++) {
        session_milter_one_t *f = &sm->f[i];

        f->act = SESSION_MILTER_CONTINUE;
        f->waited = false;
        if (f->m == NULL) {
            f->act = f->done_conn ? SESSION_MILTER_CONTINUE : session_milter_default(f);
            continue;
        }
        if (f->done_conn)
            continue;
        if (message && f->done_msg) {
            f->act = f->msg_act;
            continue;
        }
        if (cmd == MILTER_C_MAIL)
            f->in_msg = true;
        /* A step the filter leaves unanswered (rspamd answers only the
         * end of the message) is sent without waiting for it. */
        if (milter_ready(f->m) && !milter_answers(f->m, cmd)) {
            milter_step(f->m, cmd, data, len, nv, n, false);
            continue;
        }
        if (milter_step(f->m, cmd, data, len, nv, n, true) < 0)
            continue; /* failed: its event is on its way */
        f->waited = true;
        sm->waiting++;
    }
    if (sm->waiting == 0) {
        session_milter_step_end(s);
        return false;
    }
    sm->done = done;
    return true;
}

/* A command's step: the session waits, cont follows. */
static bool session_milter_command(session_t *s, int cmd, const void *data, size_t len,
                                   const char *const *nv, size_t n, session_cont_fn cont)
{
    if (s->milters == NULL || !session__milter_step(s, cmd, data, len, nv, n, session__step_done))
        return false;
    session__step_wait(s, cont);
    return true;
}

/* ---- the session's steps ---- */

static void session_milter_connected(session_t *s)
{
    session_milters_t *sm = s->milters;
    reply_id_t id = sm->act == SESSION_MILTER_REJECT     ? REPLY_MILTER_REJECT
                    : sm->act == SESSION_MILTER_TEMPFAIL ? REPLY_MILTER_TEMPFAIL
                                                         : REPLY_MILTER_CLOSE;

    if (sm->act != SESSION_MILTER_CONTINUE && sm->act != SESSION_MILTER_DISCARD &&
        s->refusal == NULL) {
        s->refusal = xmemdup(&sm->reply, sizeof(sm->reply));
        s->refusal_id = id;
        s->refusal_close = sm->act == SESSION_MILTER_CLOSE;
    }
    session__conn_check_done(s);
}

void session__milter_connect(session_t *s)
{
    const smtpd_options_t *o = &s->smtpd->opts;
    session_milters_t *sm;
    char host[DNS_NAME_MAX + 1], port[8], underscore[DNS_NAME_MAX + 64];
    const char *nv[] = {"j", o->hostname, "{daemon_name}", "mxfwd", "v", "mxfwd", "_",
                        underscore, "{client_addr}", s->peer_ip, "{client_name}", host,
                        "{client_ptr}", host, "{client_port}", port};
    int family = s->peer_sa.sa.sa_family;
    buf_t b;

    if (o->nmilters == 0)
        return;
    sm = s->milters = xcalloc(1, sizeof(*sm));
    sm->f = xcalloc(o->nmilters, sizeof(*sm->f));
    sm->n = o->nmilters;
    buf_init(&sm->chunk, MILTER_CHUNK_MAX);
    for (size_t i = 0; i < sm->n; i++) {
        sm->f[i].s = s;
        sm->f[i].conf = &o->milters[i];
        sm->f[i].m = milter_open(s->smtpd->loop, (const struct sockaddr *)&o->milters[i].addr,
                                 o->milter_timeout * 1000, session_milter_event, &sm->f[i]);
    }
    session__host(s, host, sizeof(host));
    snprintf(underscore, sizeof(underscore), "%s [%s]", host, s->peer_ip);
    snprintf(port, sizeof(port), "%u",
             family == AF_INET    ? ntohs(s->peer_sa.in.sin_port)
             : family == AF_INET6 ? ntohs(s->peer_sa.in6.sin6_port)
                                  : 0);
    buf_init(&b, SIZE_MAX);
    milter_proto_connect(&b, host, family == AF_INET ? '4' : family == AF_INET6 ? '6' : 'U',
                         (uint16_t)atoi(port), s->peer_ip);
    /* The packet's data: after its length and command byte. */
    s->conn_pending++;
    if (!session__milter_step(s, MILTER_C_CONNECT, buf_ptr(&b) + 5, buf_used(&b) - 5, nv,
                              sizeof(nv) / sizeof(nv[0]) / 2, session_milter_connected))
        session_milter_connected(s);
    buf_free(&b);
}

bool session__milter_helo(session_t *s, session_cont_fn cont)
{
    char bits[16];
    const char *nv[] = {"{tls_version}", s->tls != NULL ? tls_version(s->tls) : "",
                        "{cipher}",      s->tls != NULL ? tls_cipher(s->tls) : "",
                        "{cipher_bits}", bits};

    snprintf(bits, sizeof(bits), "%d", s->tls != NULL ? tls_bits(s->tls) : 0);
    return session_milter_command(s, MILTER_C_HELO, s->helo, strlen(s->helo) + 1, nv,
                                  s->tls != NULL ? 3 : 0, cont);
}

/* "<addr>" and the ESMTP arguments mxfwd keeps, as MAIL and RCPT data. */
static void session_milter_path(buf_t *b, const char *addr, const txn_t *t)
{
    buf_printf(b, "<%s>", addr);
    buf_append(b, "", 1);
    if (t != NULL && txn_8bitmime(t))
        buf_append(b, "BODY=8BITMIME", strlen("BODY=8BITMIME") + 1);
    if (t != NULL && txn_smtputf8(t))
        buf_append(b, "SMTPUTF8", strlen("SMTPUTF8") + 1);
}

bool session__milter_mail(session_t *s, session_cont_fn cont)
{
    const char *sender = txn_sender(s->txn);
    const char *nv[] = {"{mail_addr}", sender, "{auth_authen}", ""};
    buf_t b;
    bool waiting;

    if (s->milters == NULL)
        return false;
    buf_init(&b, SIZE_MAX);
    session_milter_path(&b, sender, s->txn);
    waiting = session_milter_command(s, MILTER_C_MAIL, buf_ptr(&b), buf_used(&b), nv, 2, cont);
    buf_free(&b);
    return waiting;
}

bool session__milter_rcpt(session_t *s, const char *rcpt, session_cont_fn cont)
{
    const char *nv[] = {"{rcpt_addr}", rcpt};
    buf_t b;
    bool waiting;

    if (s->milters == NULL)
        return false;
    buf_init(&b, SIZE_MAX);
    session_milter_path(&b, rcpt, NULL);
    waiting = session_milter_command(s, MILTER_C_RCPT, buf_ptr(&b), buf_used(&b), nv, 1, cont);
    buf_free(&b);
    return waiting;
}

bool session__milter_data(session_t *s, session_cont_fn cont)
{
    const char *nv[] = {"i", spool_writer_id(s->writer)};

    return session_milter_command(s, MILTER_C_DATA, NULL, 0, nv, 1, cont);
}

/* "NOQUEUE: milter-reject: ...", as Postfix logs a filter's refusal. */
static void session_milter_log(session_t *s, const char *what, const char *rcpt, reply_id_t id)
{
    session_milters_t *sm = s->milters;
    char line[600];

    smtpd__count_rejected(s->smtpd, id);
    log_info("%s: milter-reject: %s from %s: %s; from=<%s>%s%s%s proto=%s helo=<%s> session=%s "
             "milter=%s",
             s->writer != NULL ? spool_writer_id(s->writer) : "NOQUEUE", what, s->peer,
             session__reply_line(&sm->reply, line, sizeof(line)),
             s->txn != NULL ? txn_sender(s->txn) : "", rcpt != NULL ? " to=<" : "",
             rcpt != NULL ? rcpt : "", rcpt != NULL ? ">" : "", session__proto(s),
             s->helo != NULL ? s->helo : "", s->sid, sm->who != NULL ? sm->who : "");
}

bool session__milter_refused(session_t *s, const char *what, const char *rcpt)
{
    session_milters_t *sm = s->milters;

    if (sm == NULL)
        return false;
    switch (sm->act) {
    case SESSION_MILTER_CONTINUE:
    case SESSION_MILTER_ACCEPT:
        return false;
    case SESSION_MILTER_DISCARD:
        /* The message is taken and dropped at its end. */
        sm->discard = s->txn != NULL;
        return false;
    case SESSION_MILTER_REJECT:
    case SESSION_MILTER_TEMPFAIL:
        session_milter_log(s, what, rcpt,
                           sm->act == SESSION_MILTER_REJECT ? REPLY_MILTER_REJECT
                                                            : REPLY_MILTER_TEMPFAIL);
        session__reply_given(s, &sm->reply);
        return true;
    case SESSION_MILTER_CLOSE:
        session_milter_log(s, what, rcpt, REPLY_MILTER_CLOSE);
        session__reply_given(s, &sm->reply);
        session__close(s);
        return true;
    }
    return false;
}

session_milter_act_t session__milter_verdict(session_t *s, const char *what)
{
    session_milters_t *sm = s->milters;

    if (sm == NULL)
        return SESSION_MILTER_CONTINUE;
    if (sm->discard)
        return SESSION_MILTER_DISCARD;
    session__milter_refused(s, what, NULL);
    return sm->act == SESSION_MILTER_ACCEPT ? SESSION_MILTER_CONTINUE : sm->act;
}

void session__milter_abandon(session_t *s)
{
    session_milters_t *sm = s->milters;

    if (sm == NULL || (sm->waiting == 0 && !sm->paused))
        return;
    /* Nobody is left to tell their word: their connections go. */
    for (size_t i = 0; i < sm->n; i++) {
        if (sm->f[i].m != NULL)
            milter_close(sm->f[i].m);
        sm->f[i].m = NULL;
        sm->f[i].waited = false;
    }
    sm->waiting = 0;
    sm->paused = false;
    sm->done = NULL;
}

void session__milter_free(session_t *s)
{
    session_milters_t *sm = s->milters;

    if (sm == NULL)
        return;
    session__milter_end_txn(s);
    for (size_t i = 0; i < sm->n; i++)
        if (sm->f[i].m != NULL)
            milter_close(sm->f[i].m);
    buf_free(&sm->chunk);
    free(sm->f);
    free(sm);
    s->milters = NULL;
}
