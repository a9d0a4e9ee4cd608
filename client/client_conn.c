/*
 * client_conn.c - one outbound SMTP connection: connecting, the socket's
 * reads and writes, STARTTLS over the memory-BIO TLS layer, the session
 * (greeting, EHLO or HELO, TLS), timeouts and the ways a session ends.
 * The transaction on it is client_txn.c's.
 *
 * Every entry point is a libuv callback (connect, read, write, timer, file
 * read) or client__conn_attach().  A connection that ends is closed at
 * once but freed only in its handles' close callbacks (and after a file
 * read in flight), so code that just ended it may still look at its
 * fields; it checks `closing` and returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "default.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

static void client_conn_tls_failed(client_conn_t *conn, const char *why);

/* ---- small helpers ---- */

size_t client__endpoint_key(const struct sockaddr_storage *ss, char key[CLIENT_KEY_MAX])
{
    size_t n = 0;

    memset(key, 0, CLIENT_KEY_MAX);
    key[n++] = (char)ss->ss_family;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        memcpy(key + n, &s6->sin6_port, 2);
        memcpy(key + n + 2, &s6->sin6_addr, 16);
        n += 18;
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        memcpy(key + n, &s4->sin_port, 2);
        memcpy(key + n + 2, &s4->sin_addr, 4);
        n += 6;
    }
    return n;
}

static uint16_t client_conn_port(const client_conn_t *conn)
{
    if (conn->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&conn->addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&conn->addr)->sin_port);
}

/* What the connection was doing, for "timed out while ..." reasons. */
static const char *client_conn_doing(const client_conn_t *conn)
{
    switch (conn->state) {
    case CONN_GREETING:
        return "receiving the initial server greeting";
    case CONN_EHLO:
        return "performing the EHLO handshake";
    case CONN_HELO:
        return "performing the HELO handshake";
    case CONN_STARTTLS:
    case CONN_TLS:
        return "performing the STARTTLS handshake";
    case CONN_TXN:
        if (conn->replied < conn->ncmds) {
            switch (conn->cmds[conn->replied].kind) {
            case CLIENT_CMD_RSET:
                return "sending RSET";
            case CLIENT_CMD_MAIL:
                return "sending MAIL FROM";
            case CLIENT_CMD_RCPT:
                return "sending RCPT TO";
            case CLIENT_CMD_DATA:
                return "sending DATA command";
            }
        }
        return "sending MAIL FROM";
    case CONN_BODY:
        return "sending message body";
    case CONN_DOT:
        return "sending end of data -- message may be sent more than once";
    default:
        return "talking";
    }
}

static void client_conn_timer_cb(uv_timer_t *timer);

void client__conn_timer(client_conn_t *conn, uint64_t ms)
{
    uv_timer_start(&conn->timer, client_conn_timer_cb, ms, 0);
}

/* ---- output ---- */

/* Where to format plaintext: straight into the output, or staged for TLS. */
buf_t *client__conn_stage(client_conn_t *conn)
{
    return conn->tls != NULL ? &conn->plain : &conn->out;
}

/* Move staged plaintext into the output, encrypted.  false: TLS failed. */
bool client__conn_commit(client_conn_t *conn)
{
    if (conn->tls == NULL)
        return true;
    if (buf_used(&conn->plain) > 0 &&
        tls_write(conn->tls, buf_ptr(&conn->plain), buf_used(&conn->plain)) != TLS_OK)
        return false;
    buf_reset(&conn->plain);
    return tls_drain(conn->tls, &conn->out) >= 0;
}

static void client_conn_write_cb(uv_write_t *req, int status);

/* Write what is in the output, unless a write is in flight (its callback
 * writes the rest).  Straight to the socket when it takes it all, as it
 * mostly does: then nothing is in flight when this returns (a uv_write()
 * would call back on the next loop turn, and re-arm the socket's poll on
 * the way, an epoll_ctl(2) per write).  What it does not take, or an
 * error, goes through uv_write(), whose callback reports errors as
 * always.  false when the connection failed. */
bool client__conn_flush(client_conn_t *conn)
{
    size_t done = 0;
    buf_t tmp;
    uv_buf_t b;
    int rc;

    if (conn->writing || conn->closing || buf_used(&conn->out) == 0)
        return !conn->closing;
    b = uv_buf_init((char *)buf_ptr(&conn->out), (unsigned)buf_used(&conn->out));
    rc = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
    if (rc == (int)b.len) {
        buf_reset(&conn->out);
        if (conn->state == CONN_BODY)
            client__conn_timer(conn, conn->c->t.block); /* the body moves */
        return true;
    }
    if (rc > 0)
        done = (size_t)rc;
    tmp = conn->wire;
    conn->wire = conn->out;
    conn->out = tmp;
    b = uv_buf_init((char *)buf_ptr(&conn->wire) + done, (unsigned)(buf_used(&conn->wire) - done));
    rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &b, 1, client_conn_write_cb);
    if (rc < 0) {
        buf_reset(&conn->wire);
        client__conn_io_error(conn, rc);
        return false;
    }
    conn->writing = true;
    if (conn->state == CONN_BODY)
        client__conn_timer(conn, conn->c->t.block);
    return true;
}

/* Send one command line formatted into the stage. */
static bool client_conn_send(client_conn_t *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool client_conn_send(client_conn_t *conn, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(client__conn_stage(conn), fmt, ap);
    va_end(ap);
    if (rc != 0 || !client__conn_commit(conn)) {
        client__conn_io_error(conn, UV_ENOBUFS);
        return false;
    }
    return client__conn_flush(conn);
}

/* ---- ending ---- */

void client__conn_free(client_conn_t *conn)
{
    client_t *c = conn->c;

    if (conn->handles > 0 || conn->file_reading)
        return;
    list_remove(&c->conns, &conn->node);
    (*c->count.open)--;
    tls_free(conn->tls);
    buf_free(&conn->in);
    buf_free(&conn->out);
    buf_free(&conn->wire);
    buf_free(&conn->plain);
    free(conn->cmds);
    free(conn->fbuf);
    free(conn);
    client__unbusy(c);
}

static void client_conn_handle_closed(uv_handle_t *h)
{
    client_conn_t *conn = h->data;

    conn->handles--;
    client__conn_free(conn);
}

/* Close the socket now.  The caller has taken it out of the cache. */
void client__conn_close(client_conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    conn->state = CONN_CLOSED;
    log_debug("client: closing connection to %s", conn->relay);
    uv_close((uv_handle_t *)&conn->tcp, client_conn_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, client_conn_handle_closed);
}

void client__conn_abort(client_conn_t *conn)
{
    if (conn->job != NULL)
        conn->job->conn = NULL;
    conn->job = NULL;
    client__conn_close(conn);
}

void client__conn_quit(client_conn_t *conn)
{
    if (conn->closing)
        return;
    if (conn->job != NULL)
        conn->job->conn = NULL;
    conn->job = NULL;
    /* QUIT only where a command may go: not inside a TLS handshake, a
     * message, or ahead of replies still due. */
    switch (conn->state) {
    case CONN_CONNECT:
    case CONN_TLS:
    case CONN_BODY:
    case CONN_DOT:
    case CONN_QUIT:
    case CONN_CLOSED:
        client__conn_close(conn);
        return;
    case CONN_TXN:
        if (conn->replied < conn->sent) {
            client__conn_close(conn);
            return;
        }
        break;
    default:
        break;
    }
    conn->state = CONN_QUIT;
    client_reply_init(&conn->reply, false);
    if (client_conn_send(conn, "QUIT\r\n"))
        client__conn_timer(conn, conn->c->t.quit);
}

/* The session failed for every recipient still open (cls 4 or 5); then
 * QUIT (quit) or drop the connection, and try the next hop. */
void client__conn_session_fail(client_conn_t *conn, bool quit, int cls, const char *dsn,
                               const char *text, bool remote)
{
    client_job_t *j = conn->job;

    if (j != NULL)
        client__fail_pending(j, cls, dsn, text, remote, conn->relay);
    conn->job = NULL;
    if (quit)
        client__conn_quit(conn);
    else
        client__conn_close(conn);
    if (j != NULL)
        client__job_continue(j, false);
}

/* A reused connection that was dead: a fresh one to the same place, and
 * this session does not count. */
bool client__conn_retry_if_reused(client_conn_t *conn)
{
    client_job_t *j = conn->job;

    if (j == NULL || conn->state != CONN_TXN || conn->replied >= conn->ncmds ||
        conn->cmds[conn->replied].kind != CLIENT_CMD_RSET)
        return false;
    log_debug("client: cached connection to %s is gone; reconnecting", conn->relay);
    for (size_t i = 0; i < j->job->nrcpts; i++)
        j->rflags[i] &= (uint8_t) ~(CLIENT_R_TXN | CLIENT_R_ACCEPTED);
    j->sessions--;
    conn->job = NULL;
    client__conn_close(conn);
    client__job_continue(j, true);
    return true;
}

/* The session broke (a lost connection, a timeout): a reused connection
 * is replaced, a TLS handshake failed (tls_why), or the recipients not
 * finished fail temporarily with text. */
static void client_conn_broken(client_conn_t *conn, const char *tls_why, const char *text)
{
    if (client__conn_retry_if_reused(conn))
        return;
    if (conn->state == CONN_TLS) {
        client_conn_tls_failed(conn, tls_why);
        return;
    }
    client__conn_session_fail(conn, false, 4, "4.4.2", text, false);
}

/* The connect failed (err < 0, or CLIENT_ESELF): the next hop;
 * go_on: the job tries it now. */
static void client_conn_connect_failed(client_conn_t *conn, int err, bool go_on)
{
    client_job_t *j = conn->job;

    (*conn->c->count.connect_failures)++;
    client__job_error(j, "4.4.1", "connect to %s: %s", conn->relay,
                      err == CLIENT_ESELF ? "Connection refused (connected to itself)"
                                               : strerror(-err));
    j->conn = NULL;
    conn->job = NULL;
    client__conn_close(conn);
    if (go_on)
        client__job_continue(j, false);
}

/* The connection broke (err < 0, UV_EOF when the server closed it). */
void client__conn_io_error(client_conn_t *conn, int err)
{
    char text[DELIVERY_REPLY_MAX];

    if (conn->closing)
        return;
    switch (conn->state) {
    case CONN_IDLE:
        client__cache_remove(conn);
        client__conn_close(conn);
        return;
    case CONN_QUIT:
    case CONN_CONNECT:
    case CONN_CLOSED:
        client__conn_close(conn);
        return;
    default:
        break;
    }
    if (err == UV_EOF)
        str_fmt(text, sizeof(text), "lost connection with %s while %s", conn->namaddr,
                client_conn_doing(conn));
    else
        str_fmt(text, sizeof(text), "lost connection with %s while %s: %s", conn->namaddr,
                client_conn_doing(conn), strerror(-err));
    client_conn_broken(conn, err == UV_EOF ? "lost connection" : strerror(-err), text);
}

static void client_conn_timer_cb(uv_timer_t *timer)
{
    client_conn_t *conn = timer->data;
    char text[DELIVERY_REPLY_MAX];

    switch (conn->state) {
    case CONN_CONNECT:
        client_conn_connect_failed(conn, -ETIMEDOUT, true);
        return;
    case CONN_IDLE:
        client__cache_remove(conn);
        client__conn_quit(conn);
        return;
    case CONN_QUIT:
    case CONN_CLOSED:
        client__conn_close(conn);
        return;
    default:
        break;
    }
    str_fmt(text, sizeof(text), "conversation with %s timed out while %s", conn->namaddr,
            client_conn_doing(conn));
    client_conn_broken(conn, "timed out", text);
}

/* ---- connecting ---- */

static bool client_conn_same_addr(const struct sockaddr_storage *a,
                                  const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

bool client_self_connected(const uv_tcp_t *tcp)
{
    struct sockaddr_storage local, peer;
    int nl = sizeof(local), np = sizeof(peer);

    memset(&local, 0, sizeof(local));
    memset(&peer, 0, sizeof(peer));
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&local, &nl) != 0 ||
        uv_tcp_getpeername(tcp, (struct sockaddr *)&peer, &np) != 0)
        return false;
    return client_conn_same_addr(&local, &peer);
}

static void client_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    client_conn_t *conn = h->data;

    (void)suggested;
    *b = uv_buf_init(conn->rbuf, sizeof(conn->rbuf));
}

static void client_conn_tls_ready(client_conn_t *conn);
static void client_conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    client_conn_t *conn = s->data;
    char text[DELIVERY_REPLY_MAX];

    if (nread == 0 || conn->closing)
        return;
    if (nread < 0) {
        client__conn_io_error(conn, (int)nread);
        return;
    }
    if (conn->state == CONN_IDLE) {
        /* Unasked for: a server closing an idle session says 421. */
        log_debug("client: cached connection to %s spoke up; closing it", conn->relay);
        client__cache_remove(conn);
        client__conn_close(conn);
        return;
    }
    if (conn->tls == NULL) {
        if (buf_append(&conn->in, b->base, (size_t)nread) != 0)
            goto too_long;
    } else {
        bool handshaking = conn->state == CONN_TLS;
        int rc = TLS_EWANT;
        tls_feed(conn->tls, b->base, (size_t)nread);
        for (;;) {
            if (buf_room(&conn->in) == 0)
                goto too_long;
            rc = tls_read(conn->tls, &conn->in);
            if (rc != TLS_OK)
                break;
        }
        if (tls_drain(conn->tls, &conn->out) < 0)
            rc = TLS_EFAIL;
        if ((rc == TLS_EFAIL || rc == TLS_ECLOSED) && handshaking) {
            client_conn_tls_failed(conn, NULL);
            return;
        }
        if (rc == TLS_EFAIL || rc == TLS_ECLOSED) {
            client__conn_io_error(conn, rc == TLS_ECLOSED ? UV_EOF : UV_EPROTO);
            return;
        }
        if (!client__conn_flush(conn))
            return;
        if (handshaking && tls_established(conn->tls)) {
            client_conn_tls_ready(conn);
            if (conn->closing)
                return;
        }
    }
    client__conn_process(conn);
    return;

too_long:
    str_fmt(text, sizeof(text), "reply from %s too long while %s", conn->namaddr,
            client_conn_doing(conn));
    client__conn_session_fail(conn, false, 4, "4.5.0", text, false);
}

static void client_conn_connect_cb(uv_connect_t *req, int status)
{
    client_conn_t *conn = req->data;
    client_job_t *j = conn->job;

    if (conn->closing)
        return;
    if (status < 0) {
        client_conn_connect_failed(conn, status, true);
        return;
    }
    if (client_self_connected(&conn->tcp)) {
        /* Nobody will greet: a closed port, taken for a failed connect. */
        client_conn_connect_failed(conn, CLIENT_ESELF, true);
        return;
    }
    (*conn->c->count.connections)++;
    conn->born = uv_now(conn->c->loop);
    if (j != NULL)
        j->sessions++;
    log_debug("client: connected to %s", conn->relay);
    conn->state = CONN_GREETING;
    client_reply_init(&conn->reply, false);
    client__conn_timer(conn, conn->c->t.greeting);
    uv_read_start((uv_stream_t *)&conn->tcp, client_conn_alloc_cb, client_conn_read_cb);
}

client_conn_t *client__conn_open(client_t *c, client_job_t *j, const route_hop_t *hop, bool no_tls)
{
    client_conn_t *conn = xcalloc(1, sizeof(*conn));
    char ip[INET6_ADDRSTRLEN] = "?";
    const void *a;
    int rc;

    conn->c = c;
    str_lcpy(conn->host, hop->host, sizeof(conn->host));
    conn->addr = hop->addr;
    conn->pref = hop->pref;
    conn->no_tls = no_tls || c->tls_mode == CLIENT_TLS_OFF;
    conn->reusable = true;
    a = hop->addr.ss_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)&hop->addr)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)&hop->addr)->sin_addr;
    inet_ntop(hop->addr.ss_family, a, ip, sizeof(ip));
    str_fmt(conn->namaddr, sizeof(conn->namaddr), "%s[%s]", conn->host, ip);
    str_fmt(conn->relay, sizeof(conn->relay), "%s:%u", conn->namaddr, client_conn_port(conn));
    conn->keylen = client__endpoint_key(&conn->addr, conn->key);
    buf_init(&conn->in, CLIENT_IN_MAX);
    buf_init(&conn->out, CLIENT_OUT_MAX);
    buf_init(&conn->wire, CLIENT_OUT_MAX);
    buf_init(&conn->plain, CLIENT_OUT_MAX);

    uv_tcp_init(c->loop, &conn->tcp);
    uv_timer_init(c->loop, &conn->timer);
    conn->handles = 2;
    conn->tcp.data = conn->timer.data = conn;
    conn->connect_req.data = conn->write_req.data = conn->read_req.data = conn;
    list_push_front(&c->conns, &conn->node);
    (*c->count.open)++;
    client__busy(c);

    conn->job = j;
    j->conn = conn;
    conn->state = CONN_CONNECT;
    rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, (const struct sockaddr *)&conn->addr,
                        client_conn_connect_cb);
    if (rc < 0) {
        client_conn_connect_failed(conn, rc, false);
        return NULL;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    client__conn_timer(conn, c->t.connect);
    return conn;
}

/* ---- the session: greeting, EHLO/HELO, STARTTLS ---- */

static void client_conn_send_ehlo(client_conn_t *conn)
{
    conn->state = CONN_EHLO;
    client_reply_init(&conn->reply, true);
    if (client_conn_send(conn, "EHLO %s\r\n", conn->c->hostname))
        client__conn_timer(conn, conn->c->t.helo);
}

/* The session is open: run the job's transaction. */
static void client_conn_ready(client_conn_t *conn)
{
    conn->state = CONN_READY;
    uv_timer_stop(&conn->timer);
    if (conn->job != NULL)
        client__txn_begin(conn);
    else
        client__conn_quit(conn);
}

/* Whether the server greeted us with our own name: a loop (Postfix's
 * check).  Permanent at the best MX, else temporary. */
static bool client_conn_loops(client_conn_t *conn)
{
    client_job_t *j = conn->job;
    char host[DNS_NAME_MAX + 1], text[DELIVERY_REPLY_MAX];
    bool best;

    client_reply_host(&conn->reply, host, sizeof(host));
    if (j == NULL || !str_eq_ci(host, conn->c->hostname))
        return false;
    best = j->route == NULL || j->route->nhops == 0 || conn->pref <= j->route->hops[0].pref;
    str_fmt(text, sizeof(text), "mail for %s loops back to myself", j->job->domain);
    client__conn_session_fail(conn, true, best ? 5 : 4, best ? "5.4.6" : "4.4.6", text, false);
    return true;
}

static void client_conn_on_greeting(client_conn_t *conn)
{
    client_reply_t *r = &conn->reply;
    char dsn[CLIENT_DSN_MAX];

    if (r->code == 220) {
        client_conn_send_ehlo(conn);
        return;
    }
    /* A server that will not talk to us is skipped, even with a 5xx: the
     * next MX may take the mail (Postfix's smtp_skip_5xx_greeting). */
    str_lcpy(dsn, client_reply_dsn(r), sizeof(dsn));
    dsn[0] = '4';
    client__conn_session_fail(conn, r->code != 421, 4, dsn, r->text, true);
}

/* EHLO or HELO succeeded (a HELO offers no extensions): STARTTLS as the
 * policy says, or the transaction. */
static void client_conn_hello_done(client_conn_t *conn, unsigned ext, uint64_t size_limit)
{
    client_t *c = conn->c;
    char text[DELIVERY_REPLY_MAX];

    if (client_conn_loops(conn))
        return;
    conn->ext = ext;
    conn->size_limit = size_limit;
    if (conn->tls == NULL && !conn->no_tls && (ext & CLIENT_EXT_STARTTLS)) {
        conn->state = CONN_STARTTLS;
        client_reply_init(&conn->reply, false);
        if (client_conn_send(conn, "STARTTLS\r\n"))
            client__conn_timer(conn, c->t.helo);
        return;
    }
    if (conn->tls == NULL && c->tls_mode == CLIENT_TLS_REQUIRED) {
        str_fmt(text, sizeof(text), "TLS is required, but was not offered by host %s",
                conn->namaddr);
        client__conn_session_fail(conn, true, 4, "4.7.4", text, false);
        return;
    }
    client_conn_ready(conn);
}

static void client_conn_on_ehlo(client_conn_t *conn)
{
    client_reply_t *r = &conn->reply;

    if (r->code / 100 == 2) {
        client_conn_hello_done(conn, r->ext, r->size_limit);
        return;
    }
    if (r->code == 421) {
        client__conn_session_fail(conn, false, 4, client_reply_dsn(r), r->text, true);
        return;
    }
    conn->state = CONN_HELO;
    client_reply_init(&conn->reply, false);
    if (client_conn_send(conn, "HELO %s\r\n", conn->c->hostname))
        client__conn_timer(conn, conn->c->t.helo);
}

static void client_conn_on_helo(client_conn_t *conn)
{
    client_reply_t *r = &conn->reply;

    if (r->code / 100 == 2) {
        client_conn_hello_done(conn, 0, 0);
        return;
    }
    /* As Postfix: the server refused to talk to us, for good with 5xx. */
    client__conn_session_fail(conn, r->code != 421, client__reply_class(r->code),
                              client_reply_dsn(r), r->text, true);
}

static void client_conn_on_starttls(client_conn_t *conn)
{
    client_reply_t *r = &conn->reply;
    client_t *c = conn->c;
    char text[DELIVERY_REPLY_MAX];
    bool literal;
    unsigned char bin[16];

    if (r->code != 220) {
        if (r->code == 421) {
            client__conn_session_fail(conn, false, 4, client_reply_dsn(r), r->text, true);
            return;
        }
        if (c->tls_mode == CLIENT_TLS_REQUIRED) {
            str_fmt(text, sizeof(text), "TLS is required, but host %s refused to start TLS: %s",
                    conn->namaddr, r->text);
            client__conn_session_fail(conn, true, 4, "4.7.4", text, false);
            return;
        }
        /* Opportunistic: go on in plaintext on this connection. */
        client_conn_ready(conn);
        return;
    }
    /* Nothing the server sent before the handshake may be read as if it
     * came through TLS (the STARTTLS injection of CVE-2011-0411). */
    buf_reset(&conn->in);
    literal = inet_pton(AF_INET, conn->host, bin) == 1 || inet_pton(AF_INET6, conn->host, bin) == 1;
    conn->tls = tls_new(c->tls_ctx, false, literal ? NULL : conn->host);
    if (conn->tls == NULL) {
        client_conn_tls_failed(conn, "cannot make a TLS session");
        return;
    }
    conn->state = CONN_TLS;
    client__conn_timer(conn, c->t.tls);
    if (tls_connect(conn->tls) != TLS_OK || tls_drain(conn->tls, &conn->out) < 0) {
        client_conn_tls_failed(conn, NULL);
        return;
    }
    client__conn_flush(conn);
}

static void client_conn_tls_ready(client_conn_t *conn)
{
    (*conn->c->count.tls)++;
    log_debug("client: TLS with %s: %s %s", conn->relay, tls_version(conn->tls),
              tls_cipher(conn->tls));
    /* RFC 3207 4.2: forget what the server said before TLS, ask again. */
    conn->ext = 0;
    conn->size_limit = 0;
    client_conn_send_ehlo(conn);
}

/* The handshake failed (why, or OpenSSL's reason when NULL).
 * Opportunistic: this host again, in plaintext, on a new connection
 * (Postfix does the same); required: the next hop. */
static void client_conn_tls_failed(client_conn_t *conn, const char *why)
{
    client_job_t *j = conn->job;
    char text[DELIVERY_REPLY_MAX];

    str_fmt(text, sizeof(text), "TLS handshake with %s failed: %s", conn->namaddr,
            why != NULL ? why : tls_strerror(conn->tls));
    log_debug("client: %s", text);
    if (conn->c->tls_mode == CLIENT_TLS_REQUIRED || j == NULL) {
        client__conn_session_fail(conn, false, 4, "4.7.5", text, false);
        return;
    }
    client__job_error(j, "4.7.5", "%s", text);
    j->plaintext = true;
    j->sessions--;
    conn->job = NULL;
    client__conn_close(conn);
    client__job_continue(j, true);
}

static void client_conn_write_cb(uv_write_t *req, int status)
{
    client_conn_t *conn = req->data;

    conn->writing = false;
    buf_reset(&conn->wire);
    if (conn->closing)
        return;
    if (status < 0) {
        client__conn_io_error(conn, status);
        return;
    }
    if (!client__conn_flush(conn))
        return;
    if (conn->state == CONN_BODY)
        client__body_pump(conn);
    else if (conn->state == CONN_QUIT && !conn->writing && conn->c->closing)
        client__conn_close(conn); /* shutting down: QUIT said, no need to wait */
}

/* ---- replies ---- */

static bool client_conn_expects_reply(const client_conn_t *conn)
{
    switch (conn->state) {
    case CONN_GREETING:
    case CONN_EHLO:
    case CONN_HELO:
    case CONN_STARTTLS:
    case CONN_DOT:
    case CONN_QUIT:
        return true;
    case CONN_TXN:
        return conn->replied < conn->sent;
    default:
        return false;
    }
}

/* Parse and act on every complete reply that is expected now. */
void client__conn_process(client_conn_t *conn)
{
    while (!conn->closing && client_conn_expects_reply(conn)) {
        size_t used;
        int rc = client_reply_parse(&conn->reply, buf_ptr(&conn->in), buf_used(&conn->in), &used);
        char text[DELIVERY_REPLY_MAX];

        buf_consume(&conn->in, used);
        if (rc == CLIENT_REPLY_MORE)
            return;
        if (rc < 0) {
            str_fmt(text, sizeof(text), "malformed reply from %s while %s: %s", conn->namaddr,
                    client_conn_doing(conn), conn->reply.text);
            conn->reusable = false;
            client__conn_session_fail(conn, false, 4, "4.5.0", text, false);
            return;
        }
        switch (conn->state) {
        case CONN_GREETING:
            client_conn_on_greeting(conn);
            break;
        case CONN_EHLO:
            client_conn_on_ehlo(conn);
            break;
        case CONN_HELO:
            client_conn_on_helo(conn);
            break;
        case CONN_STARTTLS:
            client_conn_on_starttls(conn);
            break;
        case CONN_TXN:
            client__txn_reply(conn);
            break;
        case CONN_DOT:
            client__txn_dot(conn);
            break;
        case CONN_QUIT:
        default:
            client__conn_close(conn);
            return;
        }
    }
}

void client__conn_attach(client_conn_t *conn, client_job_t *j)
{
    log_debug("client: reusing connection to %s", conn->relay);
    uv_timer_stop(&conn->timer);
    conn->job = j;
    j->conn = conn;
    conn->state = CONN_READY;
    client__txn_begin(conn);
}
