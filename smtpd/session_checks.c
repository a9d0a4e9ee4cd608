/*
 * session_checks.c - the sender checks of a transaction (auth/auth.h): begun
 * at its first accepted recipient (SPF starts in the pool then), fed the
 * message as the spool gets it, and asked for a verdict at the end of the
 * data, before the commit.  The verdict decides the reply: a refusal or a
 * deferral aborts the spool file, an acceptance prepends the results as
 * Authentication-Results: and puts them in the log line.
 *
 * The filters' word on the message (session_milter.c) is awaited beside
 * it: the checks' refusal comes first, then the filters', then a
 * message a filter discarded is dropped, and the rest is committed.
 *
 * While the verdict is out the session waits as it does for a commit:
 * nothing more is read, so pipelined commands behind the message wait
 * their turn.  The checks are cancelled with their transaction (RSET, a
 * new greeting, the end of the session) and dropped, with the message,
 * when the client leaves or the shutdown grace ends while they run.
 */
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"

int session__auth_begin(session_t *s)
{
    int rc;

    if (s->auth != NULL)
        return 0;
    rc = auth_msg_new(s->smtpd->opts.auth, &s->peer_sa.sa, s->helo, &s->auth);
    /* SPF is on the envelope sender as the client gave it (the HELO name
     * for <>), not on the SRS address it is forwarded with. */
    if (rc == 0 && (rc = auth_msg_mail_from(s->auth, txn_sender(s->txn))) < 0) {
        auth_msg_cancel(s->auth);
        s->auth = NULL;
    }
    if (rc < 0) {
        s->auth = NULL;
        log_error("%s: cannot start the sender checks: %s", s->peer, auth_strerror(rc));
        return -1;
    }
    return 0;
}

void session__auth_feed(session_t *s, const char *p, size_t n)
{
    if (s->auth != NULL)
        auth_msg_feed(s->auth, p, n);
}

void session__auth_cancel(session_t *s)
{
    auth_msg_cancel(s->auth);
    s->auth = NULL;
}

void session__auth_abandon(session_t *s)
{
    if (!s->auth_waiting && !s->milter_waiting)
        return;
    s->auth_waiting = false;
    s->milter_waiting = false;
    s->waiting = false;
    session__end_txn(s);
}

static reply_id_t session_checks_reason(const authres_decision_t *d)
{
    if (d->why != NULL && strcmp(d->why, "spf") == 0)
        return REPLY_AUTH_SPF;
    if (d->why != NULL && strcmp(d->why, "dmarc") == 0)
        return REPLY_AUTH_DMARC;
    if (d->why != NULL && strcmp(d->why, "from") == 0)
        return REPLY_AUTH_NO_FROM;
    return REPLY_AUTH_DNS;
}

/* Send the verdict's reply, "CODE X.Y.Z text", as it is worded. */
static void session_checks_reply(session_t *s, const char *reply)
{
    char esc[16] = "";
    const char *text = "";
    int code = 0, used = 0;

    /* authres_decide() writes it; a malformed one is a broken invariant,
     * answered safely rather than passed on. */
    if (sscanf(reply, "%3d %15s %n", &code, esc, &used) < 2 || code < 400 || code > 599) {
        session__reply(s, REPLY_AUTH_FAILED);
        return;
    }
    text = reply + used;
    session__replyf(s, code, esc, "%s", text);
}

/* An accepted message DMARC asked to quarantine: a forwarder has no junk
 * folder, so it is recorded (header, this line) and passed on. */
static void session_checks_note_quarantine(session_t *s, const authres_t *res)
{
    for (size_t i = 0; i < res->ndmarc; i++) {
        const dmarc_result_t *m = &res->dmarc[i];

        if (m->status == DMARC_FAIL && m->applied != DMARC_P_NONE) {
            log_info("%s: DMARC fail, %s asks for p=%s: accepted and marked in "
                     "Authentication-Results",
                     s->writer != NULL ? spool_writer_id(s->writer) : "NOQUEUE", m->domain,
                     dmarc_policy_name(m->applied));
            return;
        }
    }
}

/* A message a filter discarded: the client is told it was taken, and
 * nothing is queued (docs/milter.md). */
static void session_checks_discard(session_t *s)
{
    const char *id = spool_writer_id(s->writer);

    log_info("%s: discard: END-OF-MESSAGE from %s: a filter discarded the message; from=<%s> "
             "helo=<%s>",
             id, s->peer, txn_sender(s->txn), s->helo != NULL ? s->helo : "");
    smtpd__count_rejected(s->smtpd, REPLY_MILTER_DISCARD);
    session__replyf(s, 250, "2.0.0", "Ok: queued as %s", id);
    session__end_txn(s);
}

/* Both verdicts are in: the checks', then the filters'.  The checks stay
 * with the transaction until its end: the log line of the commit reads
 * their results. */
static void session_checks_decide(session_t *s)
{
    const authres_t *res = s->auth != NULL ? auth_msg_result(s->auth) : NULL;
    const char *what = s->data.mode == DATA_DOT ? "DATA" : "BDAT";
    bool waited = s->waiting; /* not when nothing had to be awaited */
    session_milter_act_t act;

    s->waiting = false;
    if (res != NULL && res->decision.verdict != AUTHRES_ACCEPT) {
        const authres_decision_t *d = &res->decision;
        session__log_reject_reply(s, what, session_checks_reason(d), d->reply);
        session_checks_reply(s, d->reply);
        session__end_txn(s); /* the checks, the filters' part and the spool file go */
        goto resume;
    }
    act = session__milter_verdict(s, what);
    if (act == SESSION_MILTER_DISCARD)
        session_checks_discard(s);
    if (act != SESSION_MILTER_CONTINUE) {
        if (s->state != SESSION_CLOSING)
            session__end_txn(s);
        goto resume;
    }
    if (res != NULL && res->decision.quarantine)
        session_checks_note_quarantine(s, res);
    if (session__commit(s, res) == 0)
        return; /* the commit is awaited */
resume:
    if (waited)
        session__resume(s);
}

static void session_checks_done(auth_msg_t *m, const authres_t *res, void *arg)
{
    session_t *s = arg;

    (void)m, (void)res;
    s->auth_waiting = false;
    if (!s->milter_waiting)
        session_checks_decide(s);
}

void session__checks_milters_done(session_t *s)
{
    s->milter_waiting = false;
    if (!s->auth_waiting)
        session_checks_decide(s);
}

void session__auth_end(session_t *s)
{
    int rc;

    if (s->auth != NULL && (rc = auth_msg_end(s->auth, session_checks_done, s)) < 0) {
        log_error("%s: cannot finish the sender checks: %s", s->peer, auth_strerror(rc));
        session__log_reject(s, s->data.mode == DATA_DOT ? "DATA" : "BDAT", REPLY_AUTH_FAILED, NULL,
                            0);
        session__reply(s, REPLY_AUTH_FAILED);
        session__end_txn(s);
        return;
    }
    /* Every transaction with a recipient has its checks; without them
     * (if that ever changes) nothing is checked. */
    s->auth_waiting = s->auth != NULL;
    s->milter_waiting = session__milter_eom(s);
    if (!s->auth_waiting && !s->milter_waiting) {
        session_checks_decide(s);
        return;
    }
    session__wait(s);
}
