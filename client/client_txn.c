/*
 * client_txn.c - one mail transaction on an open session: the checks
 * against what the server offers, MAIL, RCPT and DATA (in one write with
 * PIPELINING, else one at a time), each reply's effect on the recipients,
 * and the message streamed from the spool file, dot-stuffed, with one
 * file read and one socket write in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "default.h"
#include "str.h"
#include "xalloc.h"

static void client_txn_cmd_push(client_conn_t *conn, client_cmd_kind_t kind, size_t rcpt)
{
    if (conn->ncmds == conn->cmds_cap)
        conn->cmds = xgrow(conn->cmds, &conn->cmds_cap, conn->ncmds + 1, sizeof(*conn->cmds));
    conn->cmds[conn->ncmds].kind = kind;
    conn->cmds[conn->ncmds].rcpt = rcpt;
    conn->ncmds++;
}

static uint64_t client_txn_cmd_timeout(const client_conn_t *conn, client_cmd_kind_t kind)
{
    const client_timeouts_t *t = &conn->c->t;

    switch (kind) {
    case CLIENT_CMD_RSET:
        return t->rset;
    case CLIENT_CMD_MAIL:
        return t->mail;
    case CLIENT_CMD_RCPT:
        return t->rcpt;
    case CLIENT_CMD_DATA:
    default:
        return t->data;
    }
}

/* RCPT TO for recipient i of the job: with NOTIFY= and ORCPT= when the
 * server offers DSN (RFC 3461 5.2.2: then success notices are its to
 * send).  ORCPT is the client's, or the alias the destination came
 * through, as Postfix offers it; an address that is not ASCII gets none
 * (RFC 6533's utf-8 type is not written). */
static int client_txn_rcpt_format(client_conn_t *conn, buf_t *b, size_t i)
{
    client_job_t *j = conn->job;
    const delivery_rcpt_t *r = &j->job->rcpts[i];
    client_rcpt_params_t p = {r->notify, r->orcpt};
    char orcpt[DELIVERY_RELAY_MAX + 8];

    j->rflags[i] &= (uint8_t)~CLIENT_R_DSN;
    if (!(conn->ext & CLIENT_EXT_DSN))
        return client_rcpt_cmd(b, r->addr, NULL);
    if ((p.orcpt == NULL || p.orcpt[0] == '\0') && r->orig_addr != NULL &&
        r->orig_addr[0] != '\0' && strlen(r->orig_addr) < sizeof(orcpt) - 8) {
        snprintf(orcpt, sizeof(orcpt), "rfc822;%s", r->orig_addr);
        p.orcpt = orcpt;
    }
    if (p.orcpt != NULL && str_has_8bit(p.orcpt, strlen(p.orcpt)))
        p.orcpt = NULL;
    j->rflags[i] |= CLIENT_R_DSN;
    return client_rcpt_cmd(b, r->addr, &p);
}

/* Format command i into the stage. */
static int client_txn_cmd_format(client_conn_t *conn, size_t i, const client_mail_params_t *mp)
{
    const delivery_job_t *dj = conn->job->job;
    buf_t *b = client__conn_stage(conn);

    switch (conn->cmds[i].kind) {
    case CLIENT_CMD_RSET:
        return buf_puts(b, "RSET\r\n");
    case CLIENT_CMD_MAIL:
        return client_mail_cmd(b, dj->sender, mp);
    case CLIENT_CMD_RCPT:
        return client_txn_rcpt_format(conn, b, conn->cmds[i].rcpt);
    case CLIENT_CMD_DATA:
    default:
        return buf_puts(b, "DATA\r\n");
    }
}

static client_mail_params_t client_txn_mail_params(const client_conn_t *conn)
{
    const delivery_job_t *dj = conn->job->job;
    client_mail_params_t mp = {0};

    if (conn->ext & CLIENT_EXT_SIZE)
        mp.size = dj->size;
    mp.body_8bitmime = dj->body_8bitmime && (conn->ext & CLIENT_EXT_8BITMIME);
    mp.smtputf8 = dj->smtputf8 && (conn->ext & CLIENT_EXT_SMTPUTF8);
    if (conn->ext & CLIENT_EXT_DSN) {
        mp.ret = dj->ret;
        mp.envid = dj->envid;
    }
    return mp;
}

/* Send the commands not sent yet: all of them with PIPELINING (one write,
 * or as many as the output buffer holds), else the next one. */
static void client_txn_send(client_conn_t *conn)
{
    client_mail_params_t mp = client_txn_mail_params(conn);
    size_t first = conn->sent;
    size_t last = conn->ext & CLIENT_EXT_PIPELINING ? conn->ncmds : conn->sent + 1;

    for (; conn->sent < last; conn->sent++) {
        if (client_txn_cmd_format(conn, conn->sent, &mp) != 0) {
            /* Thousands of recipients: the rest once these are answered. */
            if (conn->sent > first)
                break;
            client__conn_io_error(conn, UV_ENOBUFS);
            return;
        }
    }
    if (!client__conn_commit(conn)) {
        client__conn_io_error(conn, UV_EPROTO);
        return;
    }
    if (client__conn_flush(conn))
        client__conn_timer(conn, client_txn_cmd_timeout(conn, conn->cmds[conn->replied].kind));
}

/* Checks on the whole message against what the server offers, before any
 * command: size, SMTPUTF8, address syntax.  They finish recipients that
 * cannot go through this server. */
static void client_txn_checks(client_conn_t *conn)
{
    client_job_t *j = conn->job;
    const delivery_job_t *dj = j->job;
    char text[DELIVERY_REPLY_MAX];

    if ((conn->ext & CLIENT_EXT_SIZE) && conn->size_limit > 0 && dj->size > conn->size_limit) {
        str_fmt(text, sizeof(text), "message size %llu exceeds size limit %llu of server %s",
                (unsigned long long)dj->size, (unsigned long long)conn->size_limit, conn->namaddr);
        client__fail_pending(j, 5, "5.3.4", text, false, conn->relay);
        return;
    }
    if (!client_addr_ok(dj->sender, true)) {
        str_fmt(text, sizeof(text), "bad sender address syntax: <%s>", dj->sender);
        client__fail_pending(j, 5, "5.1.7", text, false, conn->relay);
        return;
    }
    /* RFC 6531 3.4: a message that needs SMTPUTF8 cannot go to a server
     * without it.  Only the addresses make it need it; UTF-8 in headers
     * goes as 8-bit data, as Postfix does. */
    if (dj->smtputf8 && !(conn->ext & CLIENT_EXT_SMTPUTF8)) {
        str_fmt(text, sizeof(text), "SMTPUTF8 is required, but was not offered by host %s",
                conn->namaddr);
        for (size_t i = 0; i < dj->nrcpts; i++)
            if (str_has_8bit(dj->sender, strlen(dj->sender)) ||
                str_has_8bit(dj->rcpts[i].addr, strlen(dj->rcpts[i].addr)))
                client__rcpt_result(j, i, 5, "5.6.7", text, false, conn->relay);
    }
    for (size_t i = 0; i < dj->nrcpts; i++) {
        if (!(j->rflags[i] & CLIENT_R_DONE) && !client_addr_ok(dj->rcpts[i].addr, false)) {
            str_fmt(text, sizeof(text), "bad recipient address syntax: <%s>", dj->rcpts[i].addr);
            client__rcpt_result(j, i, 5, "5.1.3", text, false, conn->relay);
        }
    }
}

static void client_txn_end(client_conn_t *conn);

void client__txn_begin(client_conn_t *conn)
{
    client_job_t *j = conn->job;
    size_t nrcpt = 0;

    client_txn_checks(conn);
    j->txn_ms = uv_now(conn->c->loop);
    conn->ncmds = conn->sent = conn->replied = 0;
    conn->mail_ok = false;
    conn->naccepted = 0;
    for (size_t i = 0; i < j->job->nrcpts; i++) {
        j->rflags[i] &= (uint8_t) ~(CLIENT_R_TXN | CLIENT_R_ACCEPTED);
        if (j->rflags[i] & CLIENT_R_DONE)
            continue;
        if (nrcpt++ == 0) {
            if (conn->need_rset)
                client_txn_cmd_push(conn, CLIENT_CMD_RSET, 0);
            client_txn_cmd_push(conn, CLIENT_CMD_MAIL, 0);
        }
        j->rflags[i] |= CLIENT_R_TXN;
        client_txn_cmd_push(conn, CLIENT_CMD_RCPT, i);
    }
    if (nrcpt == 0) {
        client_txn_end(conn);
        return;
    }
    client_txn_cmd_push(conn, CLIENT_CMD_DATA, 0);
    conn->state = CONN_TXN;
    conn->uses++;
    (*conn->c->count.transactions)++;
    if (conn->need_rset)
        (*conn->c->count.reused)++;
    client_reply_init(&conn->reply, false);
    client_txn_send(conn);
}

/* An idle connection keeps no message-sized buffers: a cache full of
 * connections that each sent a large message would hold megabytes. */
static void client_txn_trim(client_conn_t *conn)
{
    if (!conn->writing) {
        if (conn->wire.cap > CLIENT_IDLE_BUF)
            buf_free(&conn->wire);
        if (conn->out.cap > CLIENT_IDLE_BUF && buf_used(&conn->out) == 0)
            buf_free(&conn->out);
    }
    if (conn->plain.cap > CLIENT_IDLE_BUF && buf_used(&conn->plain) == 0)
        buf_free(&conn->plain);
    if (!conn->file_reading && conn->fbuf_cap > CLIENT_IDLE_BUF) {
        free(conn->fbuf);
        conn->fbuf = NULL;
        conn->fbuf_cap = 0;
    }
}

/* The transaction is over: the connection goes back to the cache or
 * away, and the job goes on (the next hop, if recipients are left). */
static void client_txn_end(client_conn_t *conn)
{
    client_t *c = conn->c;
    client_job_t *j = conn->job;
    uint64_t age = uv_now(c->loop) - conn->born;

    conn->need_rset = true;
    conn->job = NULL;
    if (j != NULL)
        for (size_t i = 0; i < j->job->nrcpts; i++)
            j->rflags[i] &= (uint8_t) ~(CLIENT_R_TXN | CLIENT_R_ACCEPTED);
    if (!conn->reusable) {
        client__conn_close(conn);
    } else if (c->closing || conn->uses >= DEFAULT_SMTP_REUSE_COUNT ||
               age >= (uint64_t)DEFAULT_SMTP_REUSE_TIME * 1000) {
        client__conn_quit(conn);
    } else {
        conn->state = CONN_IDLE;
        client_txn_trim(conn);
        client__conn_timer(conn, (uint64_t)DEFAULT_SMTP_CACHE_IDLE * 1000);
        client__cache_put(conn);
    }
    if (j != NULL)
        client__job_continue(j, false);
}

/* The recipients of the transaction (want: CLIENT_R_TXN), or those the
 * server accepted (CLIENT_R_ACCEPTED), get reply r as a result of class
 * cls. */
static void client_txn_result(client_conn_t *conn, const client_reply_t *r, uint8_t want, int cls)
{
    client_job_t *j = conn->job;

    for (size_t i = 0; i < j->job->nrcpts; i++)
        if (j->rflags[i] & want)
            client__rcpt_result(j, i, cls, client_reply_dsn(r), r->text, true, conn->relay);
}

static void client_txn_body_start(client_conn_t *conn);

void client__txn_reply(client_conn_t *conn)
{
    client_reply_t *r = &conn->reply;
    client_job_t *j = conn->job;
    client_cmd_t cmd = conn->cmds[conn->replied++];
    int cls = r->code / 100;

    switch (cmd.kind) {
    case CLIENT_CMD_RSET:
        if (cls != 2) {
            conn->replied--; /* still "at RSET", so the retry applies */
            client__conn_retry_if_reused(conn);
            return;
        }
        break;
    case CLIENT_CMD_MAIL:
        if (cls == 2)
            conn->mail_ok = true;
        else
            client_txn_result(conn, r, CLIENT_R_TXN, client__reply_class(r->code));
        break;
    case CLIENT_CMD_RCPT:
        if (!conn->mail_ok)
            break;
        if (cls == 2) {
            j->rflags[cmd.rcpt] |= CLIENT_R_ACCEPTED;
            conn->naccepted++;
        } else {
            client__rcpt_result(j, cmd.rcpt, client__reply_class(r->code), client_reply_dsn(r),
                                r->text, true, conn->relay);
        }
        break;
    case CLIENT_CMD_DATA:
        if (r->code == 354) {
            if (conn->mail_ok && conn->naccepted > 0) {
                client_txn_body_start(conn);
                return;
            }
            /* Go-ahead with no recipient: a broken server; do not send
             * an empty message, drop the session. */
            conn->reusable = false;
        } else if (conn->mail_ok && conn->naccepted > 0) {
            /* Anything but 354 refuses the message; even a 2xx, which
             * would be a protocol error. */
            client_txn_result(conn, r, CLIENT_R_ACCEPTED, cls == 4 ? 4 : 5);
        }
        break;
    }
    if (r->code == 421) {
        /* The server is going away: whoever is left waits for next time. */
        client__fail_pending(j, 4, client_reply_dsn(r), r->text, true, conn->relay);
        conn->reusable = false;
        client_txn_end(conn);
        return;
    }
    client_reply_init(&conn->reply, false);
    if (conn->replied == conn->ncmds) {
        client_txn_end(conn);
        return;
    }
    if (conn->sent > conn->replied) {
        client__conn_timer(conn, client_txn_cmd_timeout(conn, conn->cmds[conn->replied].kind));
        return;
    }
    /* One command at a time: stop early when the rest is pointless. */
    if ((cmd.kind == CLIENT_CMD_MAIL && !conn->mail_ok) ||
        (conn->cmds[conn->sent].kind == CLIENT_CMD_DATA && conn->naccepted == 0)) {
        client_txn_end(conn);
        return;
    }
    client_txn_send(conn);
}

/* ---- the message ---- */

/* After stuffing into the stage (rc its result): the plaintext moved to
 * the output.  false: the connection failed. */
static bool client_txn_staged(client_conn_t *conn, int rc)
{
    if (rc != 0 || !client__conn_commit(conn)) {
        client__conn_io_error(conn, UV_ENOBUFS);
        return false;
    }
    return true;
}

/* The whole message is staged: add the final dot and wait for the reply. */
static void client_txn_body_end(client_conn_t *conn)
{
    if (!client_txn_staged(conn, client_stuff_end(&conn->stuff, client__conn_stage(conn))))
        return;
    conn->state = CONN_DOT;
    if (client__conn_flush(conn))
        client__conn_timer(conn, conn->c->t.dot);
    client__conn_process(conn); /* a reply may have come early */
}

/* Stage message bytes, stuffed; with the last of them the dot, so that a
 * small message goes out in one write. */
static void client_txn_body_stage(client_conn_t *conn, const char *p, size_t n)
{
    if (!client_txn_staged(conn, client_stuff(&conn->stuff, p, n, client__conn_stage(conn))))
        return;
    if (conn->file_left == 0) {
        client_txn_body_end(conn);
        return;
    }
    if (client__conn_flush(conn))
        client__body_pump(conn);
}

static void client_txn_body_start(client_conn_t *conn)
{
    const delivery_job_t *dj = conn->job->job;

    conn->state = CONN_BODY;
    client_reply_init(&conn->reply, false);
    client_stuff_init(&conn->stuff);
    conn->file_pos = dj->offset;
    conn->file_left = dj->length;
    /* The prepended headers wait for the first block of the file, to go
     * out with it. */
    if (!client_txn_staged(conn, client_stuff(&conn->stuff, dj->prepend, dj->prepend_len,
                                              client__conn_stage(conn))))
        return;
    if (conn->file_left == 0)
        client_txn_body_end(conn);
    else
        client__body_pump(conn);
}

/* The spool file could not be read: nothing more can be sent, and the
 * message must not end with a dot now. */
static void client_txn_local_error(client_conn_t *conn, const char *what)
{
    char text[DELIVERY_REPLY_MAX];

    str_fmt(text, sizeof(text), "local data error while talking to %s: %s", conn->namaddr, what);
    if (conn->job != NULL)
        conn->job->final = true; /* another server would fare no better */
    client__conn_session_fail(conn, false, 4, "4.3.0", text, false);
}

static void client_txn_file_read_cb(uv_fs_t *req)
{
    client_conn_t *conn = req->data;
    client_job_t *rj = conn->read_job;
    ssize_t n = req->result;
    char what[128];

    uv_fs_req_cleanup(req);
    conn->file_reading = false;
    conn->read_job = NULL;
    client__job_read_done(rj);
    if (conn->closing) {
        client__conn_free(conn);
        return;
    }
    if (n <= 0) {
        str_fmt(what, sizeof(what), "%s", n < 0 ? strerror((int)-n) : "queue file too short");
        client_txn_local_error(conn, what);
        return;
    }
    if ((uint64_t)n > conn->file_left)
        n = (ssize_t)conn->file_left;
    conn->file_pos += (uint64_t)n;
    conn->file_left -= (uint64_t)n;
    client_txn_body_stage(conn, conn->fbuf, (size_t)n);
}

/* Keep one file read and one socket write in flight until the message is
 * out, and the next block staged behind the write.  Output not yet written
 * (the prepended headers, before the first block) goes with the next
 * block: a small message is one write with its headers and the dot, even
 * when the write of the commands has not called back yet. */
void client__body_pump(client_conn_t *conn)
{
    client_job_t *j = conn->job;
    uv_buf_t b;
    size_t n;
    int rc;

    if (conn->state != CONN_BODY || conn->file_reading || conn->file_left == 0 ||
        (conn->writing && buf_used(&conn->out) >= CLIENT_CHUNK))
        return;
    n = conn->file_left < CLIENT_CHUNK ? (size_t)conn->file_left : CLIENT_CHUNK;
    if (j->job->body != NULL) {
        const char *p = j->job->body + (conn->file_pos - j->job->offset);

        conn->file_pos += n;
        conn->file_left -= n;
        client_txn_body_stage(conn, p, n);
        return;
    }
    if (conn->fbuf_cap < n) {
        /* Small messages keep a small buffer, reused with the connection. */
        free(conn->fbuf);
        conn->fbuf = xmalloc(n);
        conn->fbuf_cap = n;
    }
    b = uv_buf_init(conn->fbuf, (unsigned)n);
    rc = uv_fs_read(conn->c->loop, &conn->read_req, j->fd, &b, 1, (int64_t)conn->file_pos,
                    client_txn_file_read_cb);
    if (rc < 0) {
        client_txn_local_error(conn, strerror(-rc));
        return;
    }
    conn->file_reading = true;
    conn->read_job = j;
    j->reads++;
}

void client__txn_dot(client_conn_t *conn)
{
    client_reply_t *r = &conn->reply;

    client_txn_result(conn, r, CLIENT_R_ACCEPTED, client__reply_class(r->code));
    if (r->code == 421)
        conn->reusable = false;
    client_reply_init(&conn->reply, false);
    client_txn_end(conn);
}
