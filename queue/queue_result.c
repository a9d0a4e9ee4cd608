/*
 * queue_result.c - what the queue does with a delivery's results: the log
 * lines, the state records in the spool, DSNs for bounces, and removing a
 * message whose recipients are all final.
 */
#include "queue_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsn.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

/* Delay as Postfix writes it: two significant digits or so. */
static void queue_result_fmt_delay(int64_t us, char *dst, size_t size)
{
    double s = us > 0 ? (double)us / QUEUE_US_PER_S : 0;

    if (s < 0.1)
        snprintf(dst, size, "%.2f", s);
    else if (s < 10)
        snprintf(dst, size, "%.1f", s);
    else
        snprintf(dst, size, "%.0f", s);
}

/*
 * "ID: to=<b@y>, orig_to=<alice@alias.test>, relay=mx.y[5.6.7.8]:25,
 * delay=0.4, delays=0/0.01/0.2/0.19, dsn=2.0.0, status=sent (250 2.0.0 Ok),
 * tls=TLSv1.3": Postfix's delivery line, which pflogsumm reads, from the
 * smtp service; then whether the session was encrypted.  delays= is the
 * time before the queue (none in mxfwd), in the queue, setting up the
 * connection (DNS, connect, greeting, EHLO, TLS) and sending.
 */
static void queue_result_log_result(const queue__msg_t *qm, size_t idx, const delivery_rcpt_t *d,
                                    const char *status, const char *reply, int64_t now)
{
    const spool_rcpt_t *r = &qm->m->rcpts[idx];
    int64_t total = now - qm->m->arrival_us;
    int64_t setup = (int64_t)d->setup_ms * 1000, xmit = (int64_t)d->xmit_ms * 1000;
    int64_t queued = total - setup - xmit;
    char delay[32], in_queue[32], conn[32], sending[32], dsn[DELIVERY_DSN_MAX];

    queue_result_fmt_delay(total, delay, sizeof(delay));
    queue_result_fmt_delay(queued > 0 ? queued : 0, in_queue, sizeof(in_queue));
    queue_result_fmt_delay(setup, conn, sizeof(conn));
    queue_result_fmt_delay(xmit, sending, sizeof(sending));
    if (d->dsn[0] != '\0')
        str_lcpy(dsn, d->dsn, sizeof(dsn));
    else
        snprintf(dsn, sizeof(dsn), "%c.0.0", strcmp(status, "sent") == 0       ? '2'
                                             : strcmp(status, "deferred") == 0 ? '4'
                                                                               : '5');
    log_svc("smtp", LOG_LEVEL_INFO,
            "%s: to=<%s>, %s%s%srelay=%s, delay=%s, delays=0/%s/%s/%s, dsn=%s, status=%s (%s), tls=%s",
            qm->m->id, r->addr, r->orig[0] != '\0' ? "orig_to=<" : "", r->orig,
            r->orig[0] != '\0' ? ">, " : "", d->relay[0] != '\0' ? d->relay : "none", delay,
            in_queue, conn, sending, dsn, status, reply, d->tls[0] != '\0' ? d->tls : "none");
}

void queue__free_bounce(queue__rcpt_t *r)
{
    if (r->bounce == NULL)
        return;
    free(r->bounce->reply);
    free(r->bounce->relay);
    free(r->bounce);
    r->bounce = NULL;
}

/* ---- State records ---- */

static void queue_result_recorded(void *arg, int status)
{
    queue__msg_t *qm = arg;
    queue_t *q = qm->q;

    if (status < 0)
        log_error("%s: cannot record delivery state: %s; after a restart its recipients may be "
                  "tried again",
                  qm->m->id, spool_strerror(status));
    qm->io--;
    q->io--;
    queue__settle(qm);
    queue__maybe_closed(q);
}

/*
 * Whether the changes u[0..n) leave every recipient of qm final with
 * nothing else of it under way.  Then they are not recorded: the removal
 * that follows is the record.  A crash before it is durable brings the
 * message back as it was, just as a crash before the record would, and
 * the message is spared an append and an fsync.
 */
static bool queue_result_finishes(const queue__msg_t *qm, const spool_update_t *u, size_t n)
{
    const spool_msg_t *m = qm->m;
    size_t final = 0;

    if (qm->jobs > 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!spool_rcpt_final(u[i].state))
            return false;
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (qm->r[i].st == QUEUE__ACTIVE || qm->r[i].st == QUEUE__BOUNCING)
            return false;
        final += spool_rcpt_final(m->rcpts[i].state);
    }
    /* The updates name recipients not final yet, each once. */
    return final + n == m->nrcpts;
}

void queue__record(queue__msg_t *qm, const spool_update_t *u, size_t n)
{
    queue_t *q = qm->q;
    int rc;

    if (queue_result_finishes(qm, u, n)) {
        qm->finished = true;
        return;
    }

    /* Applied to qm->m at once; durable when queue_result_recorded() runs. */
    rc = spool_update(q->spool, qm->m, u, n, queue_result_recorded, qm);
    if (rc < 0) {
        log_error("%s: cannot record delivery state: %s", qm->m->id, spool_strerror(rc));
        return;
    }
    qm->io++;
    q->io++;
}

/* ---- Bounces and DSNs ---- */

/* Record the recipients in state `from` as bounced. */
static void queue_result_record_bounces(queue__msg_t *qm, queue__rstate_t from)
{
    spool_msg_t *m = qm->m;
    spool_update_t *u = xcalloc(m->nrcpts, sizeof(*u));
    size_t n = 0;

    for (size_t i = 0; i < m->nrcpts; i++) {
        queue__bounce_t *b = qm->r[i].bounce;

        if (qm->r[i].st != from)
            continue;
        u[n++] = (spool_update_t){
            .index = i,
            .state = SPOOL_RCPT_BOUNCED,
            .attempts = m->rcpts[i].attempts + 1,
            .reply = b->reply,
            .relay = b->relay,
            .remote_reply = b->remote_reply,
        };
        qm->r[i].st = QUEUE__IDLE;
    }
    /* A deleted message's file is going: nothing to record. */
    if (n > 0 && !qm->deleted) {
        queue__record(qm, u, n);
        *qm->q->n_bounced += n;
    }
    /* The texts are copied into the record: free only now. */
    for (size_t i = 0; i < n; i++)
        queue__free_bounce(&qm->r[u[i].index]);
    free(u);
}

/* The original's header section: the prepended headers, then its own,
 * from the body still in memory after a first attempt, or read from the
 * spool file.  The read is small and the file recent, so it is done here
 * on the loop thread, like the spool's own writes. */
static char *queue_result_dsn_headers(const spool_msg_t *m, size_t *len)
{
    /* As sent: a rewritten header section ends the prepended headers and
     * the message's own is skipped (docs/spool.md). */
    uint64_t sent = m->body_length - m->body_skip;
    size_t want = sent < DSN_HEADERS_MAX ? (size_t)sent : DSN_HEADERS_MAX;
    char *h = xmalloc(m->prepend_len + want + 1);
    ssize_t got = 0;
    int fd;

    memcpy(h, m->prepend, m->prepend_len);
    if (m->body != NULL) {
        memcpy(h + m->prepend_len, m->body + m->body_skip, want);
        got = (ssize_t)want;
    } else if ((fd = open(m->path, O_RDONLY | O_CLOEXEC)) >= 0) {
        while ((got = pread(fd, h + m->prepend_len, want, (off_t)(m->body_offset + m->body_skip))) <
                   0 &&
               errno == EINTR)
            ;
        close(fd);
    }
    /* Unreadable: the DSN still goes, with the headers mxfwd added. */
    if (got < 0)
        got = 0;
    *len = m->prepend_len + dsn_header_section(h + m->prepend_len, (size_t)got);
    return h;
}

/* The whole message as sent (RET=FULL), when it is at most DSN_FULL_MAX;
 * NULL when it is bigger or cannot be read. */
static char *queue_result_dsn_full(const spool_msg_t *m, size_t *len)
{
    uint64_t sent = m->body_length - m->body_skip;
    char *h;
    ssize_t got = -1;
    int fd;

    if (m->prepend_len + sent > DSN_FULL_MAX)
        return NULL;
    h = xmalloc(m->prepend_len + (size_t)sent + 1);
    memcpy(h, m->prepend, m->prepend_len);
    if (m->body != NULL) {
        memcpy(h + m->prepend_len, m->body + m->body_skip, (size_t)sent);
        got = (ssize_t)sent;
    } else if ((fd = open(m->path, O_RDONLY | O_CLOEXEC)) >= 0) {
        while ((got = pread(fd, h + m->prepend_len, (size_t)sent,
                            (off_t)(m->body_offset + m->body_skip))) < 0 &&
               errno == EINTR)
            ;
        close(fd);
    }
    if (got != (ssize_t)sent) {
        free(h);
        return NULL;
    }
    *len = m->prepend_len + (size_t)sent;
    return h;
}

/* Whether recipient r's sender asked for a notice of this kind (RFC 3461
 * 4.1): bit is SPOOL_NOTIFY_FAILURE, _DELAY or _SUCCESS.  Without NOTIFY=
 * only failures are reported; never about a message from <>. */
static bool queue_result_wants(const queue_t *q, const spool_msg_t *m, const spool_rcpt_t *r,
                               unsigned bit)
{
    if (m->sender[0] == '\0' || str_eq_ci(m->sender, q->double_bounce))
        return false;
    return r->notify == 0 ? bit == SPOOL_NOTIFY_FAILURE : (r->notify & bit) != 0;
}

static void queue_result_unbounce(queue__msg_t *qm, int64_t now)
{
    for (size_t i = 0; i < qm->m->nrcpts; i++) {
        if (qm->r[i].st != QUEUE__IN_DSN)
            continue;
        qm->r[i].st = QUEUE__IDLE;
        qm->r[i].due = now + (int64_t)qm->q->retry[0] * QUEUE_US_PER_S;
        queue__free_bounce(&qm->r[i]);
    }
}

static void queue_result_dsn_done(queue__msg_t *qm, int status, spool_msg_t *dsn, bool pm)
{
    queue_t *q = qm->q;

    qm->io--;
    q->io--;
    if (status < 0) {
        /* Nothing was recorded: the recipients are tried again later,
         * and bounce again, and the DSN is tried again. */
        log_error("%s: cannot queue a non-delivery notification: %s; its recipients are tried "
                  "again later",
                  qm->m->id, spool_strerror(status));
        queue_result_unbounce(qm, queue_now(q));
    } else {
        log_svc("bounce", LOG_LEVEL_INFO, "%s: %s non-delivery notification: %s", qm->m->id,
                pm ? "postmaster" : "sender", dsn->id);
        (*q->n_dsn)++;
        queue_result_record_bounces(qm, QUEUE__IN_DSN);
        queue_add(q, dsn);
    }
    queue__settle(qm);
    queue__maybe_closed(q);
}

static void queue_result_dsn_committed(void *arg, int status, spool_msg_t *dsn)
{
    queue_result_dsn_done(arg, status, dsn, false);
}

static void queue_result_dsn_committed_pm(void *arg, int status, spool_msg_t *dsn)
{
    queue_result_dsn_done(arg, status, dsn, true);
}

/* A DSN on its way to the spool, its signature being made. */
typedef struct {
    queue__msg_t *qm;
    int64_t now;
    buf_t text;
    unsigned flags;
    bool to_postmaster; /* a double bounce's report */
} queue_result_dsn_t;

/* Queue the DSN with fields[0..n) on top (n 0: none), then record its
 * recipients once it is durable (queue_result_dsn_committed()).  false
 * when it could not be: its recipients are tried again later. */
static bool queue_result_dsn_submit(queue_result_dsn_t *d, const char *fields, size_t n)
{
    queue__msg_t *qm = d->qm;
    queue_t *q = qm->q;
    spool_env_rcpt_t to = {d->to_postmaster ? q->postmaster : qm->m->sender, NULL, 0, NULL};
    /* A report to the postmaster comes from double-bounce@: if it bounces
     * in turn, nothing more is sent (queue_result_wants()). */
    const char *from = d->to_postmaster ? q->double_bounce : "";
    spool_envelope_t env = {
        .arrival_us = d->now,
        .sender = from,
        .srs_sender = from,
        .flags = d->flags,
        .prepend = fields,
        .prepend_len = n,
        .rcpts = &to,
        .nrcpts = 1,
    };
    int rc = spool_submit(q->spool, &env, buf_ptr(&d->text), buf_used(&d->text),
                          d->to_postmaster ? queue_result_dsn_committed_pm
                                           : queue_result_dsn_committed,
                          qm, NULL);

    buf_free(&d->text);
    free(d);
    if (rc < 0) {
        log_error("%s: cannot queue a non-delivery notification: %s; its recipients are tried "
                  "again later",
                  qm->m->id, spool_strerror(rc));
        qm->io--;
        q->io--;
        queue_result_unbounce(qm, queue_now(q));
        return false;
    }
    return true;
}

/* The signer's callback: the DSN's signature fields are made. */
static void queue_result_dsn_signed(void *arg, const char *fields, size_t n)
{
    queue_result_dsn_t *d = arg;
    queue__msg_t *qm = d->qm;

    if (!queue_result_dsn_submit(d, fields, n)) {
        queue__settle(qm);
        queue__maybe_closed(qm->q);
    }
}

/* One DSN for every bouncing recipient of qm that asked for one, committed
 * before they (and the ones that did not) are recorded as bounced. */
static void queue_result_bounce(queue__msg_t *qm, bool to_postmaster)
{
    queue_t *q = qm->q;
    spool_msg_t *m = qm->m;
    dsn_rcpt_t *rcpts = xcalloc(m->nrcpts, sizeof(*rcpts));
    int64_t now = queue_now(q);
    dsn_report_t report = {
        .action = DSN_FAILED,
        .hostname = q->hostname,
        .envid = m->envid,
        .queue_id = m->id,
        .sender = to_postmaster ? q->postmaster : m->sender,
        .arrival = m->arrival_us / QUEUE_US_PER_S,
        .now = now / QUEUE_US_PER_S,
        .lifetime = q->lifetime,
        /* The postmaster may read the mailboxes: they are the site's. */
        .hide_destinations = q->hide_destinations && !to_postmaster,
        .postmaster_copy = to_postmaster,
        .rcpts = rcpts,
    };
    queue_result_dsn_t *d;
    char *headers, *full = NULL;
    dsn_needs_t needs;

    for (size_t i = 0; i < m->nrcpts; i++) {
        queue__bounce_t *b = qm->r[i].bounce;

        if (qm->r[i].st != QUEUE__BOUNCING)
            continue;
        /* In the DSN's commit either way; in its text only if asked. */
        qm->r[i].st = QUEUE__IN_DSN;
        if (!to_postmaster && !queue_result_wants(q, m, &m->rcpts[i], SPOOL_NOTIFY_FAILURE))
            continue;
        rcpts[report.nrcpts++] = (dsn_rcpt_t){
            .addr = m->rcpts[i].addr,
            .orig = m->rcpts[i].orig,
            .orcpt = m->rcpts[i].orcpt,
            .status = b->status,
            .reply = b->reply,
            .remote_reply = b->remote_reply,
            .relay = b->relay,
            .last_attempt = b->when / QUEUE_US_PER_S,
            .expired = b->expired,
        };
    }
    headers = queue_result_dsn_headers(m, &report.headers_len);
    report.headers = headers;
    if (m->ret == SPOOL_RET_FULL) {
        report.full = full = queue_result_dsn_full(m, &report.full_len);
        report.full_too_big = full == NULL;
    }
    d = xcalloc(1, sizeof(*d));
    d->qm = qm;
    d->now = now;
    d->to_postmaster = to_postmaster;
    buf_init(&d->text, SIZE_MAX);
    dsn_build(&report, &d->text, &needs);
    d->flags = (needs.body_8bit ? SPOOL_F_8BITMIME : 0) | (needs.smtputf8 ? SPOOL_F_SMTPUTF8 : 0);
    free(headers);
    free(full);
    free(rcpts);
    /* Signed first, off the loop, when a signer is set (it counts as the
     * message's I/O meanwhile). */
    qm->io++;
    q->io++;
    if (q->signer.sign == NULL ||
        q->signer.sign(q->signer.impl, buf_ptr(&d->text), buf_used(&d->text),
                       queue_result_dsn_signed, d) != 0)
        queue_result_dsn_submit(d, NULL, 0);
}

/* Whether some bouncing recipient of qm asked for a DSN. */
static bool queue_result_bounce_wanted(const queue__msg_t *qm)
{
    for (size_t i = 0; i < qm->m->nrcpts; i++)
        if (qm->r[i].st == QUEUE__BOUNCING &&
            queue_result_wants(qm->q, qm->m, &qm->m->rcpts[i], SPOOL_NOTIFY_FAILURE))
            return true;
    return false;
}

/* ---- Notices the sender asked for: delayed, relayed ---- */

/* A notice on its way to the spool.  It needs nothing of the message once
 * built: the message may be gone by the time it is committed. */
typedef struct {
    queue_t *q;
    char id[SPOOL_ID_SIZE]; /* the original's */
    char *sender;
    dsn_action_t action;
    int64_t now;
    buf_t text;
    unsigned flags;
} queue_result_notice_t;

static const char *queue_result_notice_name(dsn_action_t action)
{
    return action == DSN_DELAYED ? "delay" : "delivery status";
}

static void queue_result_notice_free(queue_result_notice_t *n)
{
    buf_free(&n->text);
    free(n->sender);
    free(n);
}

static void queue_result_notice_committed(void *arg, int status, spool_msg_t *dsn)
{
    queue_result_notice_t *n = arg;
    queue_t *q = n->q;

    q->io--;
    if (status < 0) {
        log_error("%s: cannot queue a %s notification: %s", n->id,
                  queue_result_notice_name(n->action), spool_strerror(status));
    } else {
        log_svc("bounce", LOG_LEVEL_INFO, "%s: sender %s notification: %s", n->id,
                queue_result_notice_name(n->action), dsn->id);
        (*q->n_dsn)++;
        queue_add(q, dsn);
    }
    queue_result_notice_free(n);
    queue__maybe_closed(q);
}

static void queue_result_notice_signed(void *arg, const char *fields, size_t len)
{
    queue_result_notice_t *n = arg;
    queue_t *q = n->q;
    spool_env_rcpt_t to = {n->sender, NULL, 0, NULL};
    spool_envelope_t env = {
        .arrival_us = n->now,
        .sender = "",
        .srs_sender = "",
        .flags = n->flags,
        .prepend = fields,
        .prepend_len = len,
        .rcpts = &to,
        .nrcpts = 1,
    };
    int rc = spool_submit(q->spool, &env, buf_ptr(&n->text), buf_used(&n->text),
                          queue_result_notice_committed, n, NULL);

    if (rc < 0) {
        log_error("%s: cannot queue a %s notification: %s", n->id,
                  queue_result_notice_name(n->action), spool_strerror(rc));
        q->io--;
        queue_result_notice_free(n);
        queue__maybe_closed(q);
    }
}

/* One notice to the sender of qm about its recipients idx[0..n), whose
 * latest results are in d[0..n). */
static void queue_result_notice(queue__msg_t *qm, dsn_action_t action, const size_t *idx,
                                const delivery_rcpt_t *const *d, size_t n, int64_t now)
{
    queue_t *q = qm->q;
    spool_msg_t *m = qm->m;
    dsn_rcpt_t *rcpts = xcalloc(n, sizeof(*rcpts));
    dsn_report_t report = {
        .action = action,
        .hostname = q->hostname,
        .envid = m->envid,
        .queue_id = m->id,
        .sender = m->sender,
        .arrival = m->arrival_us / QUEUE_US_PER_S,
        .now = now / QUEUE_US_PER_S,
        .lifetime = q->lifetime,
        .retry_until = m->arrival_us / QUEUE_US_PER_S + (int64_t)q->lifetime,
        .hide_destinations = q->hide_destinations,
        .rcpts = rcpts,
        .nrcpts = n,
    };
    queue_result_notice_t *nt = xcalloc(1, sizeof(*nt));
    dsn_needs_t needs;
    char *headers;

    for (size_t i = 0; i < n; i++) {
        const spool_rcpt_t *r = &m->rcpts[idx[i]];

        rcpts[i] = (dsn_rcpt_t){
            .addr = r->addr,
            .orig = r->orig,
            .orcpt = r->orcpt,
            .status = d[i]->dsn,
            .reply = d[i]->reply,
            .remote_reply = d[i]->remote_reply,
            .relay = d[i]->relay,
            .last_attempt = now / QUEUE_US_PER_S,
        };
    }
    headers = queue_result_dsn_headers(m, &report.headers_len);
    report.headers = headers;
    nt->q = q;
    str_lcpy(nt->id, m->id, sizeof(nt->id));
    nt->sender = xstrdup(m->sender);
    nt->action = action;
    nt->now = now;
    buf_init(&nt->text, SIZE_MAX);
    dsn_build(&report, &nt->text, &needs);
    nt->flags = (needs.body_8bit ? SPOOL_F_8BITMIME : 0) | (needs.smtputf8 ? SPOOL_F_SMTPUTF8 : 0);
    free(headers);
    free(rcpts);
    q->io++;
    if (q->signer.sign == NULL ||
        q->signer.sign(q->signer.impl, buf_ptr(&nt->text), buf_used(&nt->text),
                       queue_result_notice_signed, nt) != 0)
        queue_result_notice_signed(nt, NULL, 0);
}

static bool queue_result_bouncing(const queue__msg_t *qm)
{
    for (size_t i = 0; i < qm->m->nrcpts; i++)
        if (qm->r[i].st == QUEUE__BOUNCING)
            return true;
    return false;
}

void queue__settle(queue__msg_t *qm)
{
    /* Nothing reads it through its path now: a message that moved from
     * the journal to a file of its own is read from there from now on,
     * and its segment's space can go (docs/spool.md, The commit
     * journal). */
    if (qm->jobs == 0)
        spool_msg_relocate(qm->q->spool, qm->m);
    if (qm->jobs > 0 || qm->io > 0) {
        queue__schedule(qm);
        return;
    }
    if (queue_result_bouncing(qm) && !qm->deleted) {
        /* Every job of this attempt is back: one DSN for all of them. */
        if (queue_result_bounce_wanted(qm)) {
            queue_result_bounce(qm, false);
        } else if (qm->m->sender[0] == '\0' && qm->q->postmaster != NULL) {
            /* A message from <> that bounces (a double bounce): never a
             * DSN to <> (RFC 3464 2.2, and the loops it prevents), but
             * a report to the postmaster, as Postfix sends. */
            queue_result_bounce(qm, true);
        } else {
            /* NOTIFY=NEVER, or NOTIFY= without FAILURE (RFC 3461 4.1), or
             * a double bounce with no postmaster set, or a postmaster
             * report that bounced: only logged and recorded. */
            queue_result_record_bounces(qm, QUEUE__BOUNCING);
        }
        queue__drop_body(qm); /* the DSN has the headers it needs */
        if (qm->io > 0) {
            queue__schedule(qm);
            return;
        }
    }
    if (qm->deleted || qm->finished || spool_msg_done(qm->m))
        queue__remove(qm);
    else
        queue__schedule(qm);
}

/* ---- Results ---- */

static void queue_result_set_bounce(queue__rcpt_t *r, const delivery_rcpt_t *d, bool expired,
                                    int64_t now)
{
    queue__free_bounce(r);
    r->bounce = xcalloc(1, sizeof(*r->bounce));
    str_lcpy(r->bounce->status, d->dsn, sizeof(r->bounce->status));
    r->bounce->reply = xstrdup(d->reply);
    r->bounce->relay = xstrdup(d->relay);
    r->bounce->remote_reply = d->remote_reply;
    r->bounce->expired = expired;
    r->bounce->when = now;
    r->st = QUEUE__BOUNCING;
}

void queue__job_done(delivery_job_t *job, void *arg)
{
    queue__job_t *j = arg;
    queue__msg_t *qm = j->qm;
    queue_t *q = qm->q;
    spool_msg_t *m = qm->m;
    spool_update_t *u = xcalloc(job->nrcpts, sizeof(*u));
    int64_t now = queue_now(q);
    int64_t expiry = m->arrival_us + (int64_t)q->lifetime * QUEUE_US_PER_S;
    int64_t warn = m->arrival_us + (int64_t)q->delay_warning * QUEUE_US_PER_S;
    size_t n = 0, nrelayed = 0, ndelayed = 0;
    /* Recipients whose sender asked to hear of this result (NOTIFY=). */
    size_t *relayed = xcalloc(job->nrcpts, sizeof(*relayed));
    size_t *delayed = xcalloc(job->nrcpts, sizeof(*delayed));
    const delivery_rcpt_t **relayed_d = xcalloc(job->nrcpts, sizeof(*relayed_d));
    const delivery_rcpt_t **delayed_d = xcalloc(job->nrcpts, sizeof(*delayed_d));

    qm->jobs--;
    queue__dom_job_done(q, j->dom);
    for (size_t i = 0; i < job->nrcpts; i++) {
        delivery_rcpt_t *d = &job->rcpts[i];
        size_t idx = j->index[i];
        queue__rcpt_t *r = &qm->r[idx];
        uint32_t attempts = m->rcpts[idx].attempts + 1;
        char text[DELIVERY_REPLY_MAX + 128], lifetime[32];

        r->st = QUEUE__IDLE;
        if (d->status != DELIVERY_OK && d->status != DELIVERY_PERMFAIL &&
            d->status != DELIVERY_TEMPFAIL) {
            /* The implementation's bug: retrying is the safe reading. */
            d->status = DELIVERY_TEMPFAIL;
            str_lcpy(d->reply, "the delivery agent reported no result", sizeof(d->reply));
            d->remote_reply = false;
        }
        if (d->status == DELIVERY_OK) {
            queue_result_log_result(qm, idx, d, "sent", d->reply, now);
            (*q->n_delivered)++;
            /* A next hop that took NOTIFY= reports success itself
             * (RFC 3461 5.2.2); for one that did not, mxfwd says
             * "relayed". */
            if (!d->dsn_passed && queue_result_wants(q, m, &m->rcpts[idx], SPOOL_NOTIFY_SUCCESS)) {
                relayed_d[nrelayed] = d;
                relayed[nrelayed++] = idx;
            }
            stats_observe(q->delay, (double)(now - qm->m->arrival_us) / QUEUE_US_PER_S);
            u[n++] = (spool_update_t){.index = idx,
                                      .state = SPOOL_RCPT_SENT,
                                      .attempts = attempts,
                                      .reply = d->reply,
                                      .relay = d->relay,
                                      .remote_reply = d->remote_reply};
        } else if (d->status == DELIVERY_TEMPFAIL && q->closing) {
            /* Cut short by the shutdown, most likely: not recorded, so
             * the next start tries at once. */
            queue_result_log_result(qm, idx, d, "deferred", d->reply, now);
        } else if (d->status == DELIVERY_TEMPFAIL && now < expiry) {
            r->due = queue__next_attempt(q, qm, attempts, now);
            queue_result_log_result(qm, idx, d, "deferred", d->reply, now);
            (*q->n_deferred)++;
            if (q->delay_warning > 0 && now >= warn && !r->delay_noticed &&
                queue_result_wants(q, m, &m->rcpts[idx], SPOOL_NOTIFY_DELAY)) {
                r->delay_noticed = true;
                delayed_d[ndelayed] = d;
                delayed[ndelayed++] = idx;
            }
            u[n++] =
                (spool_update_t){.index = idx,
                                 .state = SPOOL_RCPT_DEFERRED,
                                 .attempts = attempts,
                                 .next_attempt = (r->due + QUEUE_US_PER_S - 1) / QUEUE_US_PER_S,
                                 .reply = d->reply,
                                 .relay = d->relay,
                                 .remote_reply = d->remote_reply};
        } else if (d->status == DELIVERY_TEMPFAIL) {
            dsn_duration(q->lifetime, false, lifetime, sizeof(lifetime));
            snprintf(text, sizeof(text), "expired after %s in the queue; the last attempt: %s",
                     lifetime, d->reply);
            queue_result_set_bounce(r, d, true, now);
            queue_result_log_result(qm, idx, d, "bounced", text, now);
            stats_observe(q->delay, (double)(now - qm->m->arrival_us) / QUEUE_US_PER_S);
        } else {
            queue_result_set_bounce(r, d, false, now);
            queue_result_log_result(qm, idx, d, "bounced", d->reply, now);
            stats_observe(q->delay, (double)(now - qm->m->arrival_us) / QUEUE_US_PER_S);
        }
    }
    /* Before the body in memory goes: the notices copy its headers. */
    if (nrelayed > 0 && !qm->deleted)
        queue_result_notice(qm, DSN_RELAYED, relayed, relayed_d, nrelayed, now);
    if (ndelayed > 0 && !qm->deleted)
        queue_result_notice(qm, DSN_DELAYED, delayed, delayed_d, ndelayed, now);
    free(relayed);
    free(delayed);
    free(relayed_d);
    free(delayed_d);
    /* The body in memory served the first attempt; a bounce's DSN copies
     * its headers from it (queue__settle()). */
    if (qm->jobs == 0 && !queue_result_bouncing(qm))
        queue__drop_body(qm);
    /* A deleted message's file is going; its results are only logged. */
    if (n > 0 && !qm->deleted)
        queue__record(qm, u, n);
    free(u);
    queue__job_free(j);
    queue__settle(qm);
    queue__maybe_closed(q);
}
