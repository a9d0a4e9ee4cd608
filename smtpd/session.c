/*
 * session.c - the connection side of an inbound session: accepting,
 * reading, pipelined input, replies and their writes, TLS, the idle timer
 * and closing.  Commands are in session_cmd.c, message data in
 * session_data.c.
 */
#include "session_int.h"

#include <assert.h>
#include <poll.h>
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

/* The session stops counting against the connection limits once it is as
 * good as gone: its client has closed, or its last reply is on its way.
 * Counting it until its handles are closed would refuse a client that
 * reconnects at once, its old connection still in the loop's hands. */
static void session_release(session_t *s)
{
    if (!s->counted)
        return;
    s->counted = false;
    smtpd__release(s->smtpd, s->peer_ip);
}
static void session_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

unsigned session_release_closed(smtpd_t *d, const char *ip)
{
    list_node_t *node, *next;
    unsigned n = 0;

    LIST_FOREACH (node, next, &d->sessions) {
        session_t *s = session_of(node);
        struct pollfd pfd = {.events = POLLRDHUP};
        uv_os_fd_t fd;

        if (!s->counted || (ip != NULL && strcmp(s->peer_ip, ip) != 0) ||
            uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0)
            continue;
        pfd.fd = fd;
        if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            session_release(s);
            n++;
        }
    }
    return n;
}

session_t *session_of(list_node_t *node)
{
    return LIST_ITEM(node, session_t, node);
}

/* ---- writing ------------------------------------------------------------- */

static void session_write_cb(uv_write_t *req, int status)
{
    session_write_t *w = (session_write_t *)req;
    session_t *s = w->s;

    free(w);
    s->writes--;
    if (status < 0 && status != UV_ECANCELED && s->state != SESSION_CLOSING) {
        log_info("lost connection writing to %s: %s session=%s", s->peer, uv_strerror(status),
                 s->sid);
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
            log_info("TLS write failed to %s: %s", s->peer, tls_strerror(s->tls));
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
    session__milter_free(s);
    session__policy_free(s);
    log_info("disconnect from %s commands=%u errors=%u messages=%u session=%s", s->peer,
             s->commands, s->errors, s->messages, s->sid);
    session_release(s);
    list_remove(&s->smtpd->sessions, &s->node);
    smtpd__session_closed(s->smtpd);
    table_unref(s->table);
    tls_free(s->tls);
    if (s->peer != s->peer_unnamed)
        free(s->peer);
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
    session_release(s);
    if (s->greeting_due) {
        s->greeting_due = false;
        s->waiting = false;
    }
    session__abandon(s);
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

/*
 * Send what is queued, then close.  Gracefully: shut our side down and
 * read out the rest until the client's EOF or the linger.  After QUIT's
 * 221 (quit), the client is done, so nothing it sends can be lost by
 * closing, and a plain session whose reply left whole closes at once, as
 * Postfix's smtpd does: a shutdown(2), a read and a loop turn fewer per
 * session.  TLS waits for the client's close_notify either way.
 */
static void session_close(session_t *s, bool quit)
{
    /* Never while waiting: the reply owed to the work in flight would come
     * after this one (session_force_stop() defers instead). */
    assert(!s->waiting);
    if (s->state == SESSION_CLOSING)
        return;
    session_release(s);
    session__data_abort(s);
    s->state = SESSION_CLOSING;
    session__flush(s);
    if (quit && s->tls == NULL && uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0) {
        session_destroy(s);
        return;
    }
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

void session__close(session_t *s)
{
    session_close(s, false);
}

void session__close_quit(session_t *s)
{
    session_close(s, true);
}

/* ---- reading --------------------------------------------------------------- */

static void session_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    session_t *s = h->data;

    (void)suggested;
    *b = uv_buf_init(s->smtpd->rbuf, sizeof(s->smtpd->rbuf));
}

/*
 * Whether the session may read while asynchronous work holds its input:
 * a plain one reads on into its buffer as long as another read fits (the
 * bytes would wait in the kernel otherwise), since stopping and starting
 * the socket costs two or three epoll_ctl(2) calls in libuv, and a message
 * is held several times (the sender checks, the commit).  Not before the
 * greeting, nor while the DNS lists are asked (nothing is read from a
 * client that may be refused, docs/smtp.md); input to TLS waits in the
 * kernel too: its records would pile up in the TLS layer unbounded.
 */
static bool session_read_while_held(const session_t *s)
{
    return s->tls == NULL && !s->peer_eof && !s->greeting_due && !s->conn_hold &&
           buf_used(&s->in) <= s->smtpd->opts.max_line_length + 16384;
}

/* Read while nothing holds the input (or it may go on into the buffer)
 * and the client reads its replies. */
static void session_read_control(session_t *s)
{
    bool want;

    if (uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    want = s->state == SESSION_CLOSING ||
           (!s->peer_eof && (!s->waiting || session_read_while_held(s)) &&
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

    log_info("timeout after %s from %s session=%s", proto_verb_name(s->last), s->peer, s->sid);
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
        uv_timer_start(&s->timer, session_timeout_cb, s->smtpd->opts.timeout * 1000, 0);
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
            log_warning("%s: dropped %zu bytes pipelined after STARTTLS", s->peer, n - used);
            return n;
        }
        if (session__conn_hold(s))
            return used;
        if (s->skip_line) {
            bool done;
            used += proto_skip_line(p + used, n - used, &done);
            s->skip_line = !done;
            continue;
        }
        switch (proto_next_line(p + used, n - used, s->smtpd->opts.max_line_length, &line)) {
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
    /* Postfix's words for it. */
    log_info("Anonymous TLS connection established from %s: %s with cipher %s (%d/%d bits) "
             "session=%s",
             s->peer, tls_version(s->tls), tls_cipher(s->tls), tls_bits(s->tls), tls_bits(s->tls),
             s->sid);
    (*s->smtpd->stats.tls)++;
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
                log_info("TLS failure with %s: %s session=%s", s->peer, tls_strerror(s->tls), s->sid);
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

/* The client's EOF, or a read error: the session ends. */
static void session_lost(session_t *s, ssize_t nread)
{
    if (s->state != SESSION_CLOSING)
        log_info("lost connection after %s from %s%s%s session=%s", proto_verb_name(s->last),
                 s->peer, nread == UV_EOF ? "" : ": ",
                 nread == UV_EOF ? "" : uv_strerror((int)nread), s->sid);
    session_destroy(s);
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
        if (session__idle(s) || s->smtpd->forcing) {
            session__reply(s, REPLY_SHUTDOWN);
            session__close(s);
        }
    }
    /* A command waiting for a step of its own (a DNS answer, a filter's
     * word) holds the replies before it: a pipelined batch is answered
     * in one write, as if the step had been made at once. */
    if (s->cont == NULL)
        session__flush(s);
    /* An EOF read ahead counts once the input before it is handled. */
    if (s->peer_eof && !s->waiting && s->state != SESSION_CLOSING) {
        session_lost(s, UV_EOF);
        return;
    }
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
    if (nread == UV_EOF && s->waiting && s->state != SESSION_CLOSING) {
        /* Read ahead while the input was held: what came before the EOF
         * is answered first, as if it had been read afterwards. */
        s->peer_eof = true;
        session_read_control(s);
        return;
    }
    if (nread < 0) {
        session_lost(s, nread);
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
    log_warning("%s: input buffer overflow", s->peer);
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

void session__step_wait(session_t *s, session_cont_fn cont)
{
    s->cont = cont;
    session__wait(s);
}

void session__step_done(session_t *s)
{
    session_cont_fn cont = s->cont;

    s->cont = NULL;
    s->waiting = false;
    /* The client left meanwhile: nobody to answer. */
    if (!s->close_after && cont != NULL)
        cont(s);
    if (!s->waiting)
        session__resume(s);
}

void session__abandon(session_t *s)
{
    if (s->auth_waiting || s->milter_waiting)
        session__auth_abandon(s);
    session__milter_abandon(s);
    session__policy_abandon(s);
    if (s->cont != NULL) {
        s->cont = NULL;
        s->waiting = false;
    }
}

/* ---- TLS ----------------------------------------------------------------- */

void session__start_tls(session_t *s)
{
    /* The 220 goes out in the clear, then everything is TLS. */
    session__flush(s);
    buf_reset(&s->in);
    s->tls = tls_new(s->smtpd->tls_ctx, true, NULL);
    if (s->tls == NULL) {
        log_error("%s: cannot start TLS", s->peer);
        session_destroy(s);
        return;
    }
    s->state = SESSION_TLS;
}

/* ---- accepting --------------------------------------------------------------- */

/* The peer's address, an IPv4-mapped one as IPv4, and its text forms. */
static void session_set_peer(session_t *s, const struct sockaddr *sa)
{
    str_lcpy(s->peer_ip, "unknown", sizeof(s->peer_ip));
    s->peer_sa.sa.sa_family = AF_UNSPEC;
    if (sa != NULL && sa->sa_family == AF_INET) {
        memcpy(&s->peer_sa.in, sa, sizeof(s->peer_sa.in));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        memcpy(&s->peer_sa.in6, sa, sizeof(s->peer_sa.in6));
        /* An IPv4 client on a dual-stack socket is an IPv4 client, for
         * the logs, SPF and its name alike. */
        if (IN6_IS_ADDR_V4MAPPED(&s->peer_sa.in6.sin6_addr)) {
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = s->peer_sa.in6.sin6_port};
            memcpy(&sin.sin_addr, &s->peer_sa.in6.sin6_addr.s6_addr[12], sizeof(sin.sin_addr));
            memset(&s->peer_sa, 0, sizeof(s->peer_sa));
            s->peer_sa.in = sin;
        }
    }
    if (s->peer_sa.sa.sa_family == AF_INET)
        uv_ip4_name(&s->peer_sa.in, s->peer_ip, sizeof(s->peer_ip));
    else if (s->peer_sa.sa.sa_family == AF_INET6)
        uv_ip6_name(&s->peer_sa.in6, s->peer_ip, sizeof(s->peer_ip));
    /* Postfix's "unknown" for a client without a (confirmed) name. */
    snprintf(s->peer_unnamed, sizeof(s->peer_unnamed), "unknown[%s]", s->peer_ip);
}

void session__host(const session_t *s, char *dst, size_t size)
{
    const char *bracket = strrchr(s->peer, '[');
    size_t n = bracket != NULL ? (size_t)(bracket - s->peer) : strlen(s->peer);

    snprintf(dst, size, "%.*s", (int)n, s->peer);
}

static void session_greet(session_t *s)
{
    s->greeting_due = false;
    s->waiting = false;
    uv_timer_stop(&s->timer);
    log_info("connect from %s session=%s", s->peer, s->sid);
    if (s->stop) {
        session__reply(s, REPLY_SHUTDOWN);
        session__close(s);
        return;
    }
    session__replyf(s, 220, NULL, "%s ESMTP mxfwd", s->smtpd->opts.hostname);
    session__flush(s);
    /* The filters hear of the client once its name is known. */
    session__milter_connect(s);
    buf_free(&s->out);
    session_idle_timer(s);
    /* What a client sent before the greeting was read ahead: it is
     * handled now, as it would have been read now. */
    session_pump(s);
    session_settle(s);
}

/* The client's name is known, or known to be unknown. */
static void session_named(void *arg, const rdns_result_t *res)
{
    session_t *s = arg;

    s->rdns = NULL;
    if (res->status == RDNS_OK) {
        size_t size = strlen(res->name) + strlen(s->peer_ip) + 3;
        char *named = xmalloc(size);

        snprintf(named, size, "%s[%s]", res->name, s->peer_ip);
        if (s->peer != s->peer_unnamed)
            free(s->peer);
        s->peer = named;
    } else if (res->status == RDNS_TEMPFAIL) {
        log_warning("%s: hostname verification failed: %s", s->peer, dns_strerror(res->error));
    } else if (res->unverified != NULL) {
        /* Postfix's words: the PTR names a host that is not this one. */
        log_warning("hostname %s does not resolve to address %s", res->unverified, s->peer_ip);
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
    session__policy_connect(s);
    if (rdns_lookup(s->smtpd->opts.resolver, &s->peer_sa.sa, session_named, s, &s->rdns) < 0) {
        session_greet(s);
        return;
    }
    s->greeting_due = true;
    session__wait(s);
    uv_timer_start(&s->timer, session_greeting_wait_cb, DEFAULT_RDNS_GREETING_WAIT_MS, 0);
}

/* A session on the server's list, its handles initialised. */
static session_t *session_new(smtpd_t *d)
{
    session_t *s = xcalloc(1, sizeof(*s));

    s->smtpd = d;
    s->peer = s->peer_unnamed;
    /* Unique while the process lives; the pid in the tag does the rest. */
    snprintf(s->sid, sizeof(s->sid), "%" PRIX64, ++d->sessions_made);
    uv_tcp_init(d->loop, &s->tcp);
    uv_timer_init(d->loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->handles = 2;
    s->table = table_ref(d->table);
    buf_init(&s->in, d->opts.max_line_length + SMTPD_READ_SIZE + 16384);
    buf_init(&s->out, SESSION_OUT_MAX);
    list_push_front(&d->sessions, &s->node);
    return s;
}

/* Connected, the peer known: count it against the limits, then greet (or
 * refuse it). */
static void session_begin(session_t *s, const struct sockaddr *peer)
{
    smtpd_t *d = s->smtpd;
    reply_id_t refusal;

    session_set_peer(s, peer);
    (*d->stats.connections)++;
    refusal = smtpd__admit(d, s->peer_ip);
    if (refusal != REPLY_OK) {
        (*d->stats.refused_connections)++;
        log_info("refused connection from %s: %s session=%s", s->peer, reply_get(refusal)->text,
                 s->sid);
        session__reply(s, refusal);
        session__close(s);
        return;
    }
    s->counted = true;
    if (session__rate_refused(s, ANVIL_CONNECTIONS, "CONNECT", NULL, 0)) {
        (*d->stats.refused_connections)++;
        session__close(s);
        return;
    }
    session_start(s);
}

void session_accept(smtpd_t *d, uv_stream_t *listener)
{
    session_t *s = session_new(d);
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_accept(listener, (uv_stream_t *)&s->tcp) < 0) {
        str_lcpy(s->peer_unnamed, "unknown", sizeof(s->peer_unnamed));
        session_destroy(s);
        return;
    }
    /* TCP_NODELAY: the listener's (smtpd_listen()). */
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) < 0)
        ss.ss_family = AF_UNSPEC;
    session_begin(s, (const struct sockaddr *)&ss);
}

void session_open(smtpd_t *d, uv_os_sock_t fd, const struct sockaddr *peer)
{
    session_t *s = session_new(d);

    if (uv_tcp_open(&s->tcp, fd) < 0) {
        str_lcpy(s->peer_unnamed, "unknown", sizeof(s->peer_unnamed));
        session_destroy(s);
        return;
    }
    session_begin(s, peer);
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
     * unfinished one, and so is a command waiting for a step; a spool
     * commit under way is waited for. */
    session__abandon(s);
    if (s->waiting || s->state == SESSION_CLOSING)
        return;
    if (s->state == SESSION_TLS) {
        session_destroy(s);
        return;
    }
    session__reply(s, REPLY_SHUTDOWN);
    session__close(s);
}
