/*
 * session_data.c - a message's bytes, from DATA or the first BDAT to the
 * reply after its end: the DATA reader, streaming into the spool writer,
 * the refusals that can only be made at the end (bare CR/LF, size, hops),
 * the sender checks' verdict (session_checks.c), the prepended headers, the
 * spool commit and the 250 that waits for it.
 */
#include "session_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "srs_store.h"
#include "str.h"
#include "xalloc.h"

_Static_assert(PROTO_RET_FULL == SPOOL_RET_FULL && PROTO_RET_HDRS == SPOOL_RET_HDRS &&
                   PROTO_NOTIFY_NEVER == SPOOL_NOTIFY_NEVER &&
                   PROTO_NOTIFY_SUCCESS == SPOOL_NOTIFY_SUCCESS &&
                   PROTO_NOTIFY_FAILURE == SPOOL_NOTIFY_FAILURE &&
                   PROTO_NOTIFY_DELAY == SPOOL_NOTIFY_DELAY && PROTO_ENVID_MAX == SPOOL_ENVID_MAX,
               "the DSN parameters go to the spool as they are");

/* Authentication-Results: and Received: */
#define SESSION_PREPEND_MAX 65536

/* The filters' word on DATA is in (or none was asked): the message
 * begins, or the command is refused. */
static void session_data_go(session_t *s)
{
    bool dot = s->data.mode == DATA_DOT;

    if (session__milter_refused(s, dot ? "DATA" : "BDAT", NULL)) {
        spool_writer_abort(s->writer);
        s->writer = NULL;
        if (!dot)
            session__bdat_read(s, true);
        return;
    }
    /* Signed with the signer of this moment, whatever a reload brings. */
    if (s->smtpd->signer != NULL)
        s->sign = sign_msg_new(s->smtpd->signer);
    if (dot) {
        session__reply(s, REPLY_DATA_GO);
        s->state = SESSION_DATA;
        return;
    }
    s->state = SESSION_CHUNKING;
    session__bdat_read(s, false);
}

int session__data_begin(session_t *s, data_mode_t mode)
{
    int rc = spool_writer_open(s->smtpd->spool, &s->writer);

    if (rc < 0) {
        log_error("%s: cannot queue: %s", s->peer, spool_strerror(rc));
        session__reply(s, REPLY_SPOOL_FAILED);
        session__end_txn(s);
        return -1;
    }
    data_init(&s->data, mode, s->smtpd->opts.max_message_size);
    /* The writer first: the filters hear the queue id with DATA. */
    if (!session__milter_data(s, session_data_go))
        session_data_go(s);
    return 0;
}

void session__data_abort(session_t *s)
{
    if (s->writer != NULL) {
        spool_writer_abort(s->writer);
        s->writer = NULL;
    }
    sign_msg_free(s->sign);
    s->sign = NULL;
}

/* Message bytes p[0..n) from the DATA reader. */
static void session_data_store(session_t *s, const char *p, size_t n)
{
    if (!data_ok(&s->data)) {
        /* Refused at the end whatever follows: nothing more to keep. */
        session__data_abort(s);
        return;
    }
    /* A write error sticks in the writer; the commit reports it, after the
     * end of data, as a 451. */
    if (n > 0 && s->writer != NULL) {
        spool_writer_write(s->writer, p, n);
        session__auth_feed(s, p, n);
        session__milter_feed(s, p, n);
        if (s->sign != NULL)
            sign_msg_feed(s->sign, p, n);
    }
}

/* Most header bytes read for the message's Message-ID: (the log). */
#define SESSION_MSGID_SCAN 16384
/* Longest Message-ID logged. */
#define SESSION_MSGID_MAX 250

/* The Message-ID: field's value (unfolded, trimmed) of the message's own
 * header section, from the bytes in memory or the first bytes of its file
 * (recent, in the page cache: read on the loop, as the queue reads a
 * DSN's headers); "" when it has none. */
static void session_data_msgid(const spool_msg_t *m, char *dst, size_t size)
{
    char *h = NULL, *p, *end;
    const char *src = m->body;
    size_t n = m->body_length < SESSION_MSGID_SCAN ? (size_t)m->body_length : SESSION_MSGID_SCAN;
    ssize_t got;
    int fd;

    dst[0] = '\0';
    if (src == NULL) {
        if ((fd = open(m->path, O_RDONLY | O_CLOEXEC)) < 0)
            return;
        h = xmalloc(n + 1);
        while ((got = pread(fd, h, n, (off_t)m->body_offset)) < 0 && errno == EINTR)
            ;
        close(fd);
        n = got > 0 ? (size_t)got : 0;
        src = h;
    }
    for (p = (char *)src, end = p + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

        if (len == 0 || (len == 1 && p[0] == '\r'))
            break; /* the end of the header section */
        if (len > 11 && str_ncasecmp(p, "message-id:", 11) == 0) {
            size_t k = 0;

            /* The value and its continuation lines, white space folded. */
            for (const char *q = p + 11; q < end && k + 1 < size && k < SESSION_MSGID_MAX; q++) {
                if (*q == '\r' || *q == '\n') {
                    const char *next = q + (*q == '\r' && q + 1 < end && q[1] == '\n' ? 2 : 1);
                    if (next >= end || (*next != ' ' && *next != '\t'))
                        break;
                    q = next - 1;
                    continue;
                }
                if ((*q == ' ' || *q == '\t') && (k == 0 || dst[k - 1] == ' '))
                    continue;
                dst[k++] = *q == '\t' ? ' ' : *q;
            }
            while (k > 0 && dst[k - 1] == ' ')
                k--;
            dst[k] = '\0';
            break;
        }
        p += len + (nl != NULL);
    }
    free(h);
}

/*
 * The accepted message's log lines, as Postfix's smtpd and cleanup write
 * them (docs/admin-guide.md, "Reading the logs"): the client and session
 * with the sender checks' results, then the Message-ID.  The queue
 * manager's "from=<...>, size=N, nrcpt=N" follows when it takes the
 * message.
 */
static void session_data_log_accepted(session_t *s, const spool_msg_t *msg)
{
    char results[160] = "", msgid[SESSION_MSGID_MAX + 1];

    if (s->auth != NULL) {
        memcpy(results, ", ", 3);
        authres_log(auth_msg_result(s->auth), results + 2, sizeof(results) - 2);
    }
    log_info("%s: client=%s, session=%s%s", msg->id, s->peer, s->sid, results);
    session_data_msgid(msg, msgid, sizeof(msgid));
    if (msgid[0] != '\0')
        log_svc("cleanup", LOG_LEVEL_INFO, "%s: message-id=%s", msg->id, msgid);
}

/* Whether err is the envelope store's (its band, docs/development.md). */
static bool session_data_store_err(int err)
{
    return err <= SRS_STORE_EBASE && err > SRS_STORE_EBASE - 1000;
}

/* The long sender could not be kept: 451, never a 250 for a message whose
 * bounce could not be routed (docs/srs.md). */
static void session_data_store_failed(session_t *s, const char *id, int err)
{
    log_error("%s: %s: cannot keep the sender <%s> in the envelope store: %s", id, s->peer,
              txn_sender(s->txn), srs_store_strerror(err));
    session__log_reject(s, s->data.mode == DATA_DOT ? "DATA" : "BDAT", REPLY_SRS_STORE_WRITE,
                        NULL, 0);
    session__reply(s, REPLY_SRS_STORE_WRITE);
}

static void session_data_committed(void *arg, int status, spool_msg_t *msg)
{
    session_t *s = arg;

    if (status < 0 && session_data_store_err(status)) {
        session_data_store_failed(s, "NOQUEUE", status);
    } else if (status < 0) {
        log_error("%s: cannot queue: %s", s->peer, spool_strerror(status));
        session__reply(s, REPLY_SPOOL_FAILED);
    } else {
        s->messages++;
        (*s->smtpd->stats.accepted)++;
        session_data_log_accepted(s, msg);
        session__replyf(s, 250, "2.0.0", "Ok: queued as %s", msg->id);
        /* Durable: the daemon's (its queue's) from here on. */
        s->smtpd->hooks.accepted(s->smtpd->hooks.arg, msg);
    }
    session__end_txn(s);
    session__resume(s);
}

/*
 * The headers mxfwd prepends: the sender checks' Authentication-Results:
 * (RFC 8601), then Received: (RFC 5321 4.4).  Both are trace fields of
 * this hop; the results are the last thing it learnt of the message, so
 * they go on top, as a milter's header lands above Postfix's own
 * Received:.  Read from the top, a receiver meets our verdict first and
 * our Received: right under it, which marks where our hop begins.
 */
static int session_data_prepend(session_t *s, const authres_t *res, const char *queue_id,
                                buf_t *out)
{
    char host[DNS_NAME_MAX + 1];
    int rc;
    proto_received_t r = {
        .helo = s->helo,
        .client_ptr = host,
        .client_ip = s->peer_ip,
        .hostname = s->smtpd->opts.hostname,
        .protocol = proto_with(s->esmtp, s->tls != NULL, txn_smtputf8(s->txn)),
        .queue_id = queue_id,
        .rcpt = txn_single_rcpt(s->txn),
        .now = smtpd__now(s->smtpd),
    };

    session__host(s, host, sizeof(host));
    if (s->tls != NULL) {
        r.tls_version = tls_version(s->tls);
        r.tls_cipher = tls_cipher(s->tls);
        r.tls_bits = tls_bits(s->tls);
    }
    if (res != NULL && (rc = authres_header(res, s->smtpd->opts.hostname, out)) < 0)
        return rc;
    return proto_received(out, &r);
}

/* Queue the message with prepend[0..len) on top, skip bytes of its start
 * replaced by them: 0, or -1 when refused now (replied, transaction
 * ended). */
static int session_data_commit(session_t *s, const char *prepend, size_t len, uint64_t skip)
{
    spool_writer_t *w = s->writer;
    size_t n = txn_ndests(s->txn);
    spool_env_rcpt_t *rcpts = xcalloc(n, sizeof(*rcpts));
    char id[SPOOL_ID_SIZE];
    spool_envelope_t env;
    int rc;

    str_lcpy(id, spool_writer_id(w), sizeof(id));
    for (size_t i = 0; i < n; i++) {
        const txn_dest_t *d = txn_dest(s->txn, i);

        rcpts[i] = (spool_env_rcpt_t){d->addr, d->orig, d->notify, d->orcpt};
    }
    env = (spool_envelope_t){
        .client = s->peer,
        .helo = s->helo,
        .sender = txn_sender(s->txn),
        .srs_sender = txn_forward_sender(s->txn),
        .flags = (txn_8bitmime(s->txn) ? SPOOL_F_8BITMIME : 0) |
                 (txn_smtputf8(s->txn) ? SPOOL_F_SMTPUTF8 : 0) | (s->held ? SPOOL_F_HELD : 0),
        /* proto.h's RET and NOTIFY values are the spool's. */
        .ret = (unsigned)txn_ret(s->txn),
        .envid = txn_envid(s->txn),
        .prepend = prepend,
        .prepend_len = len,
        .body_skip = skip,
        .rcpts = rcpts,
        .nrcpts = n,
        .before_ack = s->store_sync,
    };
    s->writer = NULL; /* the spool's from here on, success or not */
    rc = spool_writer_commit(w, &env, session_data_committed, s);
    free(rcpts);
    if (rc < 0) {
        log_error("%s: %s: cannot queue: %s", id, s->peer, spool_strerror(rc));
        session__reply(s, REPLY_SPOOL_FAILED);
        session__end_txn(s);
        return -1;
    }
    return 0;
}

/* On the pool: the signatures. */
static void session_data_sign_work(uv_work_t *req)
{
    session_t *s = req->data;

    sign_msg_work(s->sign);
}

/* The signatures are made: log what was done, then queue. */
static void session_data_signed(uv_work_t *req, int status)
{
    session_t *s = req->data;
    const char *id = spool_writer_id(s->writer), *why = NULL;
    const char *prepend;
    size_t len;
    int err = sign_msg_error(s->sign);

    (void)status; /* never cancelled */
    if (err != 0)
        log_warning("%s: not signed: %s", id, sign_strerror(err));
    if (sign_msg_rewrote(s->sign, &why))
        log_info("%s: From rewritten: %s", id, why);
    prepend = sign_msg_prepend(s->sign, &len);
    if (session_data_commit(s, prepend, len, sign_msg_skip(s->sign)) < 0)
        session__resume(s);
}

/* Every recipient's table entry says DISCARD: the client hears what it
 * would for a queued message, and nothing is kept. */
static void session_data_discard(session_t *s)
{
    char id[SPOOL_ID_SIZE];

    str_lcpy(id, spool_writer_id(s->writer), sizeof(id));
    /* Counted by log tools at its RCPTs' "discard:" lines, not again here. */
    log_info("%s: discarded after DATA from %s: every recipient's forward table entry says "
             "DISCARD; from=<%s> size=%llu proto=%s helo=<%s> session=%s",
             id, s->peer, txn_sender(s->txn), (unsigned long long)s->data.size, session__proto(s),
             s->helo != NULL ? s->helo : "", s->sid);
    (*s->smtpd->stats.discarded)++;
    s->messages++;
    session__replyf(s, 250, "2.0.0", "Ok: queued as %s", id);
    session__end_txn(s);
}

/* The envelope store's answer to session_data_keep_sender(). */
static void session_data_stored(void *arg, int status)
{
    session_t *s = arg;
    const authres_t *res = s->store_res;

    s->store_res = NULL;
    if (s->close_after) {
        /* The client left: the message goes with it. */
        session__end_txn(s);
    } else if (status < 0) {
        session_data_store_failed(s, spool_writer_id(s->writer), status);
        session__end_txn(s);
    } else {
        s->stored = true;
        if (session__commit(s, res) == 0)
            return;
    }
    session__resume(s);
}

/* A long sender into the envelope store, before the rest of the commit:
 * 0 go on, 1 wait (session_data_stored() goes on), -1 refused (replied,
 * transaction ended). */
static int session_data_keep_sender(session_t *s, const authres_t *res)
{
    const char *key = txn_store_key(s->txn);
    int rc;

    if (key == NULL || s->stored)
        return 0;
    rc = srs_store_put(s->smtpd->opts.store, key, txn_sender(s->txn), session_data_stored, s);
    if (rc == SRS_STORE_AT_SYNC) {
        /* Durable with the message: the spool's pass syncs it first. */
        s->stored = s->store_sync = true;
        return 0;
    }
    if (rc == SRS_STORE_PENDING) {
        s->store_res = res;
        session__wait(s);
        return 1;
    }
    session_data_store_failed(s, spool_writer_id(s->writer), rc);
    session__end_txn(s);
    return -1;
}

/* The headers to put on top do not fit: never a message with half a
 * header on top.  Replied, the transaction ended; -1. */
static int session_data_too_long(session_t *s, const char *id, const char *what, int max)
{
    log_error("%s: %s: cannot queue: %s exceed %d bytes", id, s->peer, what, max);
    session__reply(s, REPLY_SPOOL_FAILED);
    session__end_txn(s);
    return -1;
}

int session__commit(session_t *s, const authres_t *res)
{
    const txn_dest_t *first;
    char id[SPOOL_ID_SIZE];
    buf_t trace, top, section;
    uint64_t skip = 0;
    int rc = 0;

    if (txn_ndests(s->txn) == 0) {
        session_data_discard(s);
        return -1;
    }
    /* Before the filters' changes: this may wait and come back here. */
    if ((rc = session_data_keep_sender(s, res)) != 0)
        return rc < 0 ? -1 : 0;
    buf_init(&trace, SESSION_PREPEND_MAX);
    buf_init(&top, SPOOL_PREPEND_MAX);
    buf_init(&section, SPOOL_PREPEND_MAX);
    /* The filters' changes first: the message is signed as it leaves. */
    if (session__milter_changes(s, &top, &section, &skip) < 0) {
        log_info("%s: discarded: the filters removed every recipient", spool_writer_id(s->writer));
        session__replyf(s, 250, "2.0.0", "Ok: queued as %s", spool_writer_id(s->writer));
        session__end_txn(s);
        rc = -1;
        goto out;
    }
    first = txn_dest(s->txn, 0);
    str_lcpy(id, spool_writer_id(s->writer), sizeof(id));
    if (session_data_prepend(s, res, id, &trace) < 0) {
        rc = session_data_too_long(s, id, "the trace headers", SESSION_PREPEND_MAX);
        goto out;
    }
    /* Fields a filter put on top go above this hop's trace fields, as
     * above Postfix's own Received: (docs/milter.md). */
    buf_append(&top, buf_ptr(&trace), buf_used(&trace));
    if (s->sign != NULL && res != NULL) {
        /* Signed off the loop (RSA takes a while); the 250 waits for the
         * signatures and the commit, and the message keeps them. */
        if (skip > 0)
            sign_msg_set_headers(s->sign, buf_ptr(&section), buf_used(&section), skip);
        /* A message that cannot be signed goes as it came: said then. */
        sign_msg_prepare(s->sign, res, buf_ptr(&top), buf_used(&top),
                         first != NULL ? first->orig : NULL, smtpd__now(s->smtpd));
        s->sign_work.data = s;
        uv_queue_work(s->smtpd->loop, &s->sign_work, session_data_sign_work, session_data_signed);
        session__wait(s);
        goto out;
    }
    if (buf_used(&section) > 0 && buf_append(&top, buf_ptr(&section), buf_used(&section)) < 0) {
        rc = session_data_too_long(s, id, "the headers", SPOOL_PREPEND_MAX);
        goto out;
    }
    if ((rc = session_data_commit(s, buf_ptr(&top), buf_used(&top), skip)) == 0)
        session__wait(s);
out:
    buf_free(&trace);
    buf_free(&top);
    buf_free(&section);
    return rc;
}

/* The message is whole: refuse it for what could only be seen at its end,
 * or queue it. */
static void session_data_end(session_t *s, const char *what)
{
    const smtpd_options_t *opts = &s->smtpd->opts;
    reply_id_t refusal = REPLY_OK;

    if (s->data.bare)
        refusal = REPLY_BARE_EOL;
    else if (s->data.too_big)
        refusal = REPLY_TOO_BIG;
    else if (s->data.received > opts->max_hops)
        refusal = REPLY_HOPS;
    if (refusal != REPLY_OK) {
        session__log_reject(s, what, refusal, NULL, 0);
        session__reply(s, refusal);
        session__end_txn(s);
        if (refusal == REPLY_BARE_EOL)
            session__error(s);
        return;
    }
    /* The sender checks (SPF, DKIM, DMARC) decide before the commit. */
    session__auth_end(s);
}

/* A BDAT chunk has been read. */
static void session_data_bdat_end(session_t *s)
{
    if (s->bdat_discard) {
        s->state = s->bdat_return;
        return;
    }
    s->state = SESSION_CHUNKING;
    if (s->bdat_last) {
        data_finish(&s->data);
        session_data_end(s, "BDAT");
        return;
    }
    session__replyf(s, 250, "2.0.0", "Ok: %llu octets", (unsigned long long)s->data.size);
}

size_t session__data_input(session_t *s, char *p, size_t n)
{
    size_t used, out;
    bool done;

    if (s->state == SESSION_DATA) {
        used = data_feed(&s->data, p, n, &out, &done);
        session_data_store(s, p, out);
        if (done) {
            s->state = SESSION_RCPT;
            session_data_end(s, "DATA");
        }
        return used;
    }
    used = n < s->bdat_left ? n : (size_t)s->bdat_left;
    if (!s->bdat_discard) {
        data_feed(&s->data, p, used, &out, &done);
        session_data_store(s, p, out);
    }
    s->bdat_left -= used;
    if (s->bdat_left == 0)
        session_data_bdat_end(s);
    return used;
}
