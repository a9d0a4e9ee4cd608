/*
 * session.c - the connection side of an inbound session: accepting,
 * reading, pipelined input, replies and their writes, TLS, the idle timer
 * and closing.  Commands are in session_cmd.c, message data in
 * session_data.c.
 */
#include "session_int.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

/* After the last reply, how long the client may take to close its side
 * while its remaining input is read and dropped: closing with unread input
 * would reset the connection and could destroy the reply in flight. */
#define SESSION_LINGER_MS 2000
/* Replies queued beyond this are written before the batch ends. */
#define SESSION_OUT_FLUSH 16384
#define SESSION_OUT_MAX (1024 * 1024)
/* A client that does not read its replies stops being read from. */
#define SESSION_WRITE_QUEUE_MAX (256 * 1024)
/* Ciphertext of one flush. */
#define SESSION_WIRE_MAX (4 * 1024 * 1024)

typedef struct {
    uv_write_t req;
    session_t *s;
    char data[];
} session_write_t;

static void session_destroy(session_t *s);
static void session_read_control(session_t *s);
static void session_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

session_t *session_next(const session_t *s)
{
    return s->next;
}

/* ---- replies ------------------------------------------------------------- */

static void session_out_room(session_t *s)
{
    if (buf_used(&s->out) > SESSION_OUT_FLUSH)
        session__flush(s);
}

void session__replyf(session_t *s, int code, const char *esc, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    session_out_room(s);
    /* 421 names the host, as RFC 5321 4.2 shows it. */
    if (code == 421)
        proto_replyf(&s->out, code, esc, "%s %s", s->srv->cfg->hostname, text);
    else
        proto_reply(&s->out, code, esc, text);
}

void session__reply(session_t *s, reply_id_t id)
{
    const reply_t *r = reply_get(id);

    session__replyf(s, r->code, r->esc, "%s", r->text);
}

void session__reply_addr(session_t *s, reply_id_t id, const char *addr, size_t len)
{
    const reply_t *r = reply_get(id);

    session__replyf(s, r->code, r->esc, "<%.*s>: %s", (int)len, addr, r->text);
}

void session__log_reject_reply(session_t *s, const char *what, reply_id_t id, const char *reply)
{
    server_count_rejected(s->srv, id);
    log_info("NOQUEUE: reject: %s from %s: %s; from=<%s> helo=<%s>", what, s->client, reply,
             s->txn != NULL ? txn_sender(s->txn) : "", s->helo != NULL ? s->helo : "");
}

void session__log_reject(session_t *s, const char *what, reply_id_t id, const char *addr,
                         size_t addr_len)
{
    const reply_t *r = reply_get(id);
    bool mail = strcmp(what, "MAIL") == 0;
    int n = (int)(addr_len > ADDR_MAX ? ADDR_MAX : addr_len);
    char shown[ADDR_MAX + 8] = "", to[ADDR_MAX + 8] = "", from[ADDR_MAX + 1] = "";

    server_count_rejected(s->srv, id);
    if (addr != NULL)
        snprintf(shown, sizeof(shown), "<%.*s>: ", n, addr);
    if (addr != NULL && !mail)
        snprintf(to, sizeof(to), " to=<%.*s>", n, addr);
    if (mail && addr != NULL)
        snprintf(from, sizeof(from), "%.*s", n, addr);
    else if (s->txn != NULL)
        str_lcpy(from, txn_sender(s->txn), sizeof(from));
    /* Postfix's wording, so that log tools read it. */
    log_info("NOQUEUE: reject: %s from %s: %d %s %s%s; from=<%s>%s helo=<%s>", what, s->client,
             r->code, r->esc, shown, r->text, from, to, s->helo != NULL ? s->helo : "");
}

void session__error(session_t *s)
{
    if (++s->errors < s->srv->cfg->max_errors)
        return;
    log_info("too many errors after %s from %s", proto_verb_name(s->last), s->client);
    session__reply(s, REPLY_TOO_MANY_ERRORS);
    session__close(s);
}

bool session__idle(const session_t *s)
{
    return s->txn == NULL && !s->waiting && (s->state == SESSION_INIT || s->state == SESSION_HELO);
}

/* ---- writing ------------------------------------------------------------- */

static void session_write_cb(uv_write_t *req, int status)
{
    session_write_t *w = (session_write_t *)req;
    session_t *s = w->s;

    free(w);
    s->writes--;
    if (status < 0 && status != UV_ECANCELED && s->state != SESSION_CLOSING) {
        log_info("lost connection writing to %s: %s", s->client, uv_strerror(status));
        session_destroy(s);
        return;
    }
    session_read_control(s);
}

/* Put p[0..n) on the wire: at once when the socket takes it, which is the
 * common case, else behind a write request holding a copy. */
static void session_send(session_t *s, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    session_write_t *w;
    int r;

    if (n == 0 || uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    if (s->writes == 0) {
        r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (r == (int)n)
            return;
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN) {
            /* The read side sees the same failure and ends the session. */
            return;
        }
    }
    w = xmalloc(sizeof(*w) + n);
    w->s = s;
    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, session_write_cb) < 0) {
        free(w);
        return;
    }
    s->writes++;
}

void session__flush(session_t *s)
{
    static buf_t wire = {.max = SESSION_WIRE_MAX};

    if (s->tls == NULL) {
        session_send(s, buf_ptr(&s->out), buf_used(&s->out));
        buf_reset(&s->out);
        return;
    }
    if (buf_used(&s->out) > 0 && tls_established(s->tls)) {
        if (tls_write(s->tls, buf_ptr(&s->out), buf_used(&s->out)) < 0)
            log_info("TLS write failed to %s: %s", s->client, tls_strerror(s->tls));
    }
    buf_reset(&s->out);
    while (tls_has_output(s->tls)) {
        if (tls_drain(s->tls, &wire) < 0)
            break;
        session_send(s, buf_ptr(&wire), buf_used(&wire));
        buf_reset(&wire);
    }
}

/* ---- closing --------------------------------------------------------------- */

static void session_close_cb(uv_handle_t *h)
{
    session_t *s = h->data;

    if (--s->handles > 0)
        return;
    session__data_abort(s);
    session__end_txn(s);
    log_info("disconnect from %s commands=%u errors=%u messages=%u", s->client, s->commands,
             s->errors, s->messages);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        s->srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    server_session_closed(s->srv, s->counted ? s->ip : NULL);
    table_unref(s->table);
    tls_free(s->tls);
    if (s->client != s->unnamed)
        free(s->client);
    buf_free(&s->in);
    buf_free(&s->out);
    free(s->helo);
    free(s);
}

/* Close the handles now; the session is freed when both are closed.  With
 * asynchronous work in flight it waits for that first, unless nothing is
 * owed to the client any more: the greeting, or a verdict of the checks. */
static void session_destroy(session_t *s)
{
    if (s->greeting_due) {
        s->greeting_due = false;
        s->waiting = false;
    }
    if (s->auth_waiting)
        session__auth_abandon(s);
    if (s->waiting) {
        s->close_after = true;
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = false;
        return;
    }
    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    s->state = SESSION_CLOSING;
    rdns_cancel(s->rdns);
    s->rdns = NULL;
    uv_close((uv_handle_t *)&s->tcp, session_close_cb);
    uv_close((uv_handle_t *)&s->timer, session_close_cb);
}

static void session_shutdown_cb(uv_shutdown_t *req, int status)
{
    session_t *s = req->data;

    /* Our side is closed; the client's ends at its EOF or the linger. */
    if (status < 0)
        session_destroy(s);
}

static void session_linger_cb(uv_timer_t *t)
{
    session_destroy(t->data);
}

void session__close(session_t *s)
{
    /* Never while waiting: the reply owed to the work in flight would come
     * after this one (session_force_stop() defers instead). */
    assert(!s->waiting);
    if (s->state == SESSION_CLOSING)
        return;
    session__data_abort(s);
    s->state = SESSION_CLOSING;
    session__flush(s);
    if (s->tls != NULL && tls_established(s->tls)) {
        tls_close(s->tls); /* close_notify, after the last reply */
        session__flush(s);
    }
    uv_timer_start(&s->timer, session_linger_cb, SESSION_LINGER_MS, 0);
    s->shutdown.data = s;
    if (uv_shutdown(&s->shutdown, (uv_stream_t *)&s->tcp, session_shutdown_cb) < 0) {
        session_destroy(s);
        return;
    }
    session_read_control(s);
}

/* ---- reading --------------------------------------------------------------- */

static void session_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    session_t *s = h->data;

    (void)suggested;
    *b = uv_buf_init(s->srv->rbuf, sizeof(s->srv->rbuf));
}

/* Read while nothing holds the input and the client reads its replies. */
static void session_read_control(session_t *s)
{
    bool want;

    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    want = s->state == SESSION_CLOSING ||
           (!s->waiting &&
            uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) < SESSION_WRITE_QUEUE_MAX);
    if (want && !s->reading) {
        if (uv_read_start((uv_stream_t *)&s->tcp, session_alloc_cb, session_read_cb) == 0)
            s->reading = true;
    } else if (!want && s->reading) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = false;
    }
}

static void session_timeout_cb(uv_timer_t *t)
{
    session_t *s = t->data;

    log_info("timeout after %s from %s", proto_verb_name(s->last), s->client);
    if (s->state == SESSION_TLS) {
        session_destroy(s);
        return;
    }
    session__reply(s, REPLY_TIMEOUT);
    session__close(s);
}

static void session_idle_timer(session_t *s)
{
    if (s->state != SESSION_CLOSING && !s->waiting)
        uv_timer_start(&s->timer, session_timeout_cb, s->srv->cfg->timeout * 1000, 0);
}

/*
 * Handle the input p[0..n): command lines and message data, until it runs
 * out, a line is incomplete, or something holds the input.  Returns the
 * bytes used up; the rest waits in the session's buffer.
 */
static size_t session_consume(session_t *s, char *p, size_t n)
{
    size_t used = 0;
    proto_line_t line;

    while (used < n && !s->waiting && s->state != SESSION_CLOSING) {
        if (s->state == SESSION_DATA || s->state == SESSION_BDAT) {
            used += session__data_input(s, p + used, n - used);
            continue;
        }
        if (s->state == SESSION_TLS) {
            /* Bytes after STARTTLS in the same read were sent before the
             * handshake: never commands (RFC 3207 4.2, CVE-2011-0411). */
            log_warning("%s: dropped %zu bytes pipelined after STARTTLS", s->client, n - used);
            return n;
        }
        if (s->skip_line) {
            bool done;
            used += proto_skip_line(p + used, n - used, &done);
            s->skip_line = !done;
            continue;
        }
        switch (proto_next_line(p + used, n - used, s->srv->cfg->max_line_length, &line)) {
        case PROTO_LINE_PARTIAL:
            return used;
        case PROTO_LINE_LONG:
            used += line.consumed;
            s->skip_line = true;
            s->last = PROTO_UNKNOWN;
            session__reply(s, REPLY_LINE_TOO_LONG);
            session__error(s);
            break;
        case PROTO_LINE_BARE:
            used += line.consumed;
            s->last = PROTO_UNKNOWN;
            session__reply(s, REPLY_BARE_COMMAND);
            session__error(s);
            break;
        case PROTO_LINE_OK:
            used += line.consumed;
            session__command(s, line.text, line.len);
            break;
        }
    }
    return used;
}

static void session_tls_ready(session_t *s)
{
    log_info("%s: STARTTLS: %s with cipher %s (%d bits)", s->client, tls_version(s->tls),
             tls_cipher(s->tls), tls_bits(s->tls));
    (*s->srv->stats.tls)++;
    /* RFC 3207 4.2: forget everything learnt before TLS. */
    s->state = SESSION_INIT;
    s->esmtp = false;
    free(s->helo);
    s->helo = NULL;
}

/* Hand buffered input to the state machine; with TLS, decrypt first. */
static void session_pump(session_t *s)
{
    size_t used;

    if (s->tls == NULL) {
        used = session_consume(s, (char *)buf_ptr(&s->in), buf_used(&s->in));
        buf_consume(&s->in, used);
        return;
    }
    while (!s->waiting && s->state != SESSION_CLOSING) {
        size_t before = buf_used(&s->in);
        session_state_t state = s->state;
        int r = tls_read(s->tls, &s->in);
        bool progress = buf_used(&s->in) > before;

        if (r == TLS_ECLOSED || r == TLS_EFAIL) {
            if (r == TLS_EFAIL)
                log_info("TLS failure with %s: %s", s->client, tls_strerror(s->tls));
            session__flush(s); /* the alert, if any */
            session_destroy(s);
            return;
        }
        if (s->state == SESSION_TLS && tls_established(s->tls))
            session_tls_ready(s);
        progress = progress || state != s->state;
        used = session_consume(s, (char *)buf_ptr(&s->in), buf_used(&s->in));
        buf_consume(&s->in, used);
        if (r == TLS_EWANT || !progress)
            break;
    }
}

/* After input was handled: write the batch's replies, close an idle
 * session of a stopping server, and let idle sessions hold no buffers. */
static void session_settle(session_t *s)
{
    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    if (s->stop && s->state != SESSION_CLOSING && !s->waiting) {
        if (s->state == SESSION_TLS) {
            session_destroy(s);
            return;
        }
        if (session__idle(s) || s->srv->forcing) {
            session__reply(s, REPLY_SHUTDOWN);
            session__close(s);
        }
    }
    session__flush(s);
    if (buf_used(&s->in) == 0)
        buf_free(&s->in);
    if (buf_used(&s->out) == 0)
        buf_free(&s->out);
    session_read_control(s);
}

static void session_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    session_t *s = stream->data;
    size_t n = (size_t)nread, used;

    if (nread == 0)
        return;
    if (nread < 0) {
        if (s->state != SESSION_CLOSING)
            log_info("lost connection after %s from %s%s%s", proto_verb_name(s->last), s->client,
                     nread == UV_EOF ? "" : ": ", nread == UV_EOF ? "" : uv_strerror((int)nread));
        session_destroy(s);
        return;
    }
    if (s->state == SESSION_CLOSING)
        return; /* lingering: the rest is dropped */
    session_idle_timer(s);
    if (s->tls != NULL) {
        tls_feed(s->tls, b->base, n);
        session_pump(s);
    } else if (buf_used(&s->in) == 0) {
        /* The common case: handle the bytes where they were read, keep
         * only what is left over. */
        used = session_consume(s, b->base, n);
        if (used < n && s->state != SESSION_CLOSING &&
            buf_append(&s->in, b->base + used, n - used) < 0)
            goto overflow;
    } else {
        if (buf_append(&s->in, b->base, n) < 0)
            goto overflow;
        session_pump(s);
    }
    session_settle(s);
    return;
overflow:
    /* Cannot happen while reading stops whenever input is held; be safe. */
    log_warning("%s: input buffer overflow", s->client);
    session_destroy(s);
}

/* ---- asynchronous work ------------------------------------------------------- */

void session__wait(session_t *s)
{
    s->waiting = true;
    uv_timer_stop(&s->timer);
    session_read_control(s);
}

void session__resume(session_t *s)
{
    s->waiting = false;
    if (s->close_after) {
        session_destroy(s);
        return;
    }
    session_idle_timer(s);
    session_pump(s);
    session_settle(s);
}

/* ---- TLS ----------------------------------------------------------------- */

void session__start_tls(session_t *s)
{
    /* The 220 goes out in the clear, then everything is TLS. */
    session__flush(s);
    buf_reset(&s->in);
    s->tls = tls_new(s->srv->tls_ctx, true, NULL);
    if (s->tls == NULL) {
        log_error("%s: cannot start TLS", s->client);
        session_destroy(s);
        return;
    }
    s->state = SESSION_TLS;
}

/* ---- accepting --------------------------------------------------------------- */

static void session_peer(session_t *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    str_lcpy(s->ip, "unknown", sizeof(s->ip));
    s->peer.sa.sa_family = AF_UNSPEC;
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            memcpy(&s->peer.in, &ss, sizeof(s->peer.in));
        } else if (ss.ss_family == AF_INET6) {
            memcpy(&s->peer.in6, &ss, sizeof(s->peer.in6));
            /* An IPv4 client on a dual-stack socket is an IPv4 client, for
             * the logs, SPF and its name alike. */
            if (IN6_IS_ADDR_V4MAPPED(&s->peer.in6.sin6_addr)) {
                struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = s->peer.in6.sin6_port};
                memcpy(&sin.sin_addr, &s->peer.in6.sin6_addr.s6_addr[12], sizeof(sin.sin_addr));
                memset(&s->peer, 0, sizeof(s->peer));
                s->peer.in = sin;
            }
        }
    }
    if (s->peer.sa.sa_family == AF_INET)
        uv_ip4_name(&s->peer.in, s->ip, sizeof(s->ip));
    else if (s->peer.sa.sa_family == AF_INET6)
        uv_ip6_name(&s->peer.in6, s->ip, sizeof(s->ip));
    /* Postfix's "unknown" for a client without a (confirmed) name. */
    snprintf(s->unnamed, sizeof(s->unnamed), "unknown[%s]", s->ip);
}

void session__host(const session_t *s, char *dst, size_t size)
{
    const char *bracket = strrchr(s->client, '[');
    size_t n = bracket != NULL ? (size_t)(bracket - s->client) : strlen(s->client);

    snprintf(dst, size, "%.*s", (int)n, s->client);
}

static void session_greet(session_t *s)
{
    s->greeting_due = false;
    s->waiting = false;
    uv_timer_stop(&s->timer);
    log_info("connect from %s", s->client);
    if (s->stop) {
        session__reply(s, REPLY_SHUTDOWN);
        session__close(s);
        return;
    }
    session__replyf(s, 220, NULL, "%s ESMTP mxfwd", s->srv->cfg->hostname);
    session__flush(s);
    buf_free(&s->out);
    session_idle_timer(s);
    session_read_control(s);
}

/* The client's name is known, or known to be unknown. */
static void session_named(void *arg, const rdns_result_t *res)
{
    session_t *s = arg;

    s->rdns = NULL;
    if (res->status == RDNS_OK) {
        size_t size = strlen(res->name) + strlen(s->ip) + 3;
        char *named = xmalloc(size);

        snprintf(named, size, "%s[%s]", res->name, s->ip);
        if (s->client != s->unnamed)
            free(s->client);
        s->client = named;
    } else if (res->status == RDNS_TEMPFAIL) {
        log_warning("%s: hostname verification failed: %s", s->client, dns_strerror(res->error));
    } else if (res->unverified != NULL) {
        /* Postfix's words: the PTR names a host that is not this one. */
        log_warning("hostname %s does not resolve to address %s", res->unverified, s->ip);
    }
    if (s->greeting_due)
        session_greet(s);
}

static void session_greeting_wait_cb(uv_timer_t *t)
{
    session_t *s = t->data;

    /* The lookup goes on: its answer still names the client in what is
     * written after it comes. */
    session_greet(s);
}

/* Greet once the client's name is known, or after a short wait at most
 * (DEFAULT_RDNS_GREETING_WAIT_MS): nothing is read before the greeting. */
static void session_start(session_t *s)
{
    if (rdns_lookup(s->srv->resolver, &s->peer.sa, session_named, s, &s->rdns) < 0) {
        session_greet(s);
        return;
    }
    s->greeting_due = true;
    session__wait(s);
    uv_timer_start(&s->timer, session_greeting_wait_cb, DEFAULT_RDNS_GREETING_WAIT_MS, 0);
}

void session_accept(server_t *srv, uv_stream_t *listener)
{
    session_t *s = xcalloc(1, sizeof(*s));
    const config_t *cfg = srv->cfg;
    reply_id_t refusal;

    s->srv = srv;
    s->client = s->unnamed;
    uv_tcp_init(srv->loop, &s->tcp);
    uv_timer_init(srv->loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->handles = 2;
    s->table = table_ref(srv->table);
    buf_init(&s->in, cfg->max_line_length + SERVER_READ_SIZE + 16384);
    buf_init(&s->out, SESSION_OUT_MAX);
    s->next = srv->sessions;
    if (srv->sessions != NULL)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;

    if (uv_accept(listener, (uv_stream_t *)&s->tcp) < 0) {
        str_lcpy(s->unnamed, "unknown", sizeof(s->unnamed));
        session_destroy(s);
        return;
    }
    session_peer(s);
    uv_tcp_nodelay(&s->tcp, 1);
    (*srv->stats.connections)++;
    refusal = server_admit(srv, s->ip);
    if (refusal != REPLY_OK) {
        (*srv->stats.refused_connections)++;
        log_info("refused connection from %s: %s", s->client, reply_get(refusal)->text);
        session__reply(s, refusal);
        session__close(s);
        return;
    }
    s->counted = true;
    session_start(s);
}

void session_stop(session_t *s)
{
    s->stop = true;
    if (!s->waiting && s->state != SESSION_CLOSING)
        session_settle(s);
}

void session_force_stop(session_t *s)
{
    s->stop = true;
    /* A message still waiting for its verdict is dropped like any other
     * unfinished one; a spool commit under way is waited for. */
    if (s->auth_waiting)
        session__auth_abandon(s);
    if (s->waiting || s->state == SESSION_CLOSING)
        return;
    if (s->state == SESSION_TLS) {
        session_destroy(s);
        return;
    }
    session__reply(s, REPLY_SHUTDOWN);
    session__close(s);
}
