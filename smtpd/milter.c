/*
 * milter.c - one filter connection on the loop (docs/milter.md): connect,
 * negotiate, a queue of steps sent one reply at a time, the timeout.
 */
#include "milter.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "xalloc.h"

/* A read, and what the input may hold: one whole packet and a read. */
#define MILTER_READ_SIZE 65536
#define MILTER_IN_MAX (MILTER_PACKET_MAX + 4 + MILTER_READ_SIZE)
/* MILTER_EV_DRAINED once the backlog is under this. */
#define MILTER_DRAIN_LOW (256 * 1024)

typedef struct milter_qstep {
    struct milter_qstep *next;
    int cmd;
    bool notify;
    size_t len;
    char bytes[]; /* the macros packet, if any, then the command's */
} milter_qstep_t;

typedef struct {
    uv_write_t req;
    milter_t *m;
    size_t len;
    char data[];
} milter_write_t;

typedef enum {
    MILTER_CONNECTING,
    MILTER_NEGOTIATING,
    MILTER_READY,
    MILTER_FAILED,
} milter_state_t;

struct milter {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_connect_t connect;
    uv_timer_t timer; /* the timeout of what is awaited */
    uv_timer_t kick;  /* the queue is worked on the loop's next turn */
    unsigned handles;
    uint64_t timeout_ms;
    milter_cb cb;
    void *arg;
    milter_state_t state;
    milter_qstep_t *head, *tail;
    size_t queued;   /* bytes of the queue */
    size_t inflight; /* bytes in write requests */
    milter_qstep_t *awaiting; /* the step whose reply is awaited */
    bool skip_body;  /* the filter said skip: no more body chunks this message */
    bool want_drain;
    bool owner_gone; /* milter_close() was called */
    int early_error; /* a failure to report from the loop */
    uint32_t actions, protocol;
    buf_t in;
    buf_t out; /* what one turn of the pump sends */
};

static void milter_pump(milter_t *m);

/* ---- closing ---- */

static void milter_maybe_free(milter_t *m)
{
    if (m->handles > 0 || !m->owner_gone)
        return;
    while (m->head != NULL) {
        milter_qstep_t *s = m->head;
        m->head = s->next;
        free(s);
    }
    free(m->awaiting);
    buf_free(&m->in);
    buf_free(&m->out);
    free(m);
}

static void milter_close_cb(uv_handle_t *h)
{
    milter_t *m = h->data;

    m->handles--;
    milter_maybe_free(m);
}

static void milter_close_handles(milter_t *m)
{
    uv_handle_t *hs[] = {&m->h.handle, (uv_handle_t *)&m->timer, (uv_handle_t *)&m->kick};

    for (size_t i = 0; i < 3; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], milter_close_cb);
}

static void milter_fail(milter_t *m, int status)
{
    milter_cb cb = m->cb;

    if (m->state == MILTER_FAILED)
        return;
    m->state = MILTER_FAILED;
    milter_close_handles(m);
    if (cb != NULL && !m->owner_gone)
        cb(m->arg, m, &(milter_event_info_t){.ev = MILTER_EV_FAILED, .status = status});
}

/* ---- writing ---- */

/* After bytes left: tell the owner who waits for the backlog to fall. */
static void milter_check_drain(milter_t *m)
{
    if (!m->want_drain || milter_backlog(m) >= MILTER_DRAIN_LOW || m->state == MILTER_FAILED)
        return;
    m->want_drain = false;
    if (m->awaiting == NULL)
        uv_timer_stop(&m->timer);
    if (!m->owner_gone)
        m->cb(m->arg, m, &(milter_event_info_t){.ev = MILTER_EV_DRAINED});
}

static void milter_write_cb(uv_write_t *req, int status)
{
    milter_write_t *w = (milter_write_t *)req;
    milter_t *m = w->m;

    m->inflight -= w->len;
    free(w);
    if (status < 0) {
        milter_fail(m, status == UV_ECANCELED ? MILTER_ECLOSED : status);
        return;
    }
    milter_check_drain(m);
}

/* Put p[0..n) on the wire: at once when the socket takes it (the common
 * case), else behind a write request holding a copy. */
static void milter_write(milter_t *m, const char *p, size_t n)
{
    milter_write_t *w;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r;

    if (n == 0)
        return;
    if (m->inflight == 0) {
        r = uv_try_write(&m->h.stream, &b, 1);
        if (r == (int)n)
            return;
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN) {
            milter_fail(m, MILTER_ECLOSED);
            return;
        }
    }
    w = xmalloc(sizeof(*w) + n);
    w->m = m;
    w->len = n;
    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, (unsigned)n);
    m->inflight += n;
    if (uv_write(&w->req, &m->h.stream, &b, 1, milter_write_cb) < 0) {
        m->inflight -= n;
        free(w);
        milter_fail(m, MILTER_ECLOSED);
    }
}

/* ---- the queue ---- */

static void milter_timeout_cb(uv_timer_t *t)
{
    milter_fail(t->data, MILTER_ETIMEOUT);
}

static void milter_arm(milter_t *m)
{
    uv_timer_start(&m->timer, milter_timeout_cb, m->timeout_ms, 0);
}

/* The protocol steps: the flag that skips each, and the one that leaves
 * it unanswered.  ABORT and QUIT are never skipped nor answered; the end
 * of the message is always answered. */
static const struct {
    int cmd;
    uint32_t skip, no_reply;
} milter_steps[] = {
    {MILTER_C_CONNECT, MILTER_P_NOCONNECT, MILTER_P_NR_CONN},
    {MILTER_C_HELO, MILTER_P_NOHELO, MILTER_P_NR_HELO},
    {MILTER_C_MAIL, MILTER_P_NOMAIL, MILTER_P_NR_MAIL},
    {MILTER_C_RCPT, MILTER_P_NORCPT, MILTER_P_NR_RCPT},
    {MILTER_C_DATA, MILTER_P_NODATA, MILTER_P_NR_DATA},
    {MILTER_C_HEADER, MILTER_P_NOHDRS, MILTER_P_NR_HDR},
    {MILTER_C_EOH, MILTER_P_NOEOH, MILTER_P_NR_EOH},
    {MILTER_C_BODY, MILTER_P_NOBODY, MILTER_P_NR_BODY},
};

/* Whether the filter asked to skip cmd, and whether it answers it. */
static bool milter_skipped(const milter_t *m, int cmd)
{
    if (cmd == MILTER_C_BODY && m->skip_body)
        return true;
    for (size_t i = 0; i < sizeof(milter_steps) / sizeof(milter_steps[0]); i++)
        if (milter_steps[i].cmd == cmd)
            return (m->protocol & milter_steps[i].skip) != 0;
    return false;
}

static bool milter_answered(const milter_t *m, int cmd)
{
    if (cmd == MILTER_C_BODYEOB)
        return true;
    for (size_t i = 0; i < sizeof(milter_steps) / sizeof(milter_steps[0]); i++)
        if (milter_steps[i].cmd == cmd)
            return (m->protocol & milter_steps[i].no_reply) == 0;
    return false;
}

/* Send steps until one awaits its reply, in one write. */
static void milter_pump(milter_t *m)
{
    buf_reset(&m->out);
    while (m->state == MILTER_READY && m->awaiting == NULL && m->head != NULL &&
           !m->owner_gone) {
        milter_qstep_t *s = m->head;
        bool skip = milter_skipped(m, s->cmd);

        m->head = s->next;
        if (m->head == NULL)
            m->tail = NULL;
        m->queued -= s->len;
        if (s->cmd == MILTER_C_BODYEOB || s->cmd == MILTER_C_ABORT)
            m->skip_body = false;
        if (!skip)
            buf_append(&m->out, s->bytes, s->len);
        if (!skip && milter_answered(m, s->cmd)) {
            m->awaiting = s;
            milter_arm(m);
            break;
        }
        if (s->notify)
            m->cb(m->arg, m,
                  &(milter_event_info_t){.ev = MILTER_EV_DONE, .cmd = s->cmd, .notify = true});
        free(s);
    }
    if (m->state == MILTER_READY && !m->owner_gone) {
        milter_write(m, buf_ptr(&m->out), buf_used(&m->out));
        milter_check_drain(m);
    }
}

static void milter_kick_cb(uv_timer_t *t)
{
    milter_t *m = t->data;

    if (m->early_error != 0)
        milter_fail(m, m->early_error);
    else
        milter_pump(m);
}

static void milter_kick(milter_t *m)
{
    if (m->state == MILTER_READY && m->awaiting == NULL)
        uv_timer_start(&m->kick, milter_kick_cb, 0, 0);
}

static void milter_enqueue(milter_t *m, milter_qstep_t *s)
{
    s->next = NULL;
    if (m->tail != NULL)
        m->tail->next = s;
    else
        m->head = s;
    m->tail = s;
    m->queued += s->len;
    milter_kick(m);
}

int milter_step(milter_t *m, int cmd, const void *data, size_t len, const char *const *nv,
                size_t n, bool notify)
{
    milter_qstep_t *s;
    buf_t b;

    if (m->state == MILTER_FAILED)
        return MILTER_ECLOSED;
    buf_init(&b, SIZE_MAX);
    if (n > 0)
        milter_proto_macros(&b, cmd, nv, n);
    milter_proto_put(&b, cmd, data, len);
    s = xmalloc(sizeof(*s) + buf_used(&b));
    s->cmd = cmd;
    s->notify = notify;
    s->len = buf_used(&b);
    memcpy(s->bytes, buf_ptr(&b), s->len);
    buf_free(&b);
    milter_enqueue(m, s);
    return 0;
}

void milter_drop(milter_t *m)
{
    milter_qstep_t **p = &m->head, *last = NULL;

    /* The message's steps not sent yet go; the connection's stay. */
    while (*p != NULL) {
        milter_qstep_t *s = *p;
        if (s->cmd == MILTER_C_HEADER || s->cmd == MILTER_C_EOH || s->cmd == MILTER_C_BODY ||
            s->cmd == MILTER_C_BODYEOB || s->cmd == MILTER_C_DATA || s->cmd == MILTER_C_RCPT ||
            s->cmd == MILTER_C_MAIL) {
            *p = s->next;
            m->queued -= s->len;
            free(s);
            continue;
        }
        last = s;
        p = &s->next;
    }
    m->tail = last;
    m->skip_body = false;
}

void milter_abort(milter_t *m)
{
    if (m->state == MILTER_FAILED)
        return;
    milter_drop(m);
    milter_step(m, MILTER_C_ABORT, NULL, 0, NULL, 0, false);
}

bool milter_ready(const milter_t *m)
{
    return m->state == MILTER_READY;
}

bool milter_answers(const milter_t *m, int cmd)
{
    return m->state == MILTER_READY && !milter_skipped(m, cmd) && milter_answered(m, cmd);
}

size_t milter_backlog(const milter_t *m)
{
    return m->queued + m->inflight;
}

void milter_want_drain(milter_t *m)
{
    m->want_drain = true;
    /* A filter that takes no more bytes is as stuck as one that does not
     * answer: the same timeout. */
    if (m->awaiting == NULL && m->state == MILTER_READY)
        milter_arm(m);
}

uint32_t milter_actions(const milter_t *m)
{
    return m->actions;
}

uint32_t milter_protocol(const milter_t *m)
{
    return m->protocol;
}

/* ---- reading ---- */

/* The filter's side of the negotiation: a version we both speak, steps
 * we offered (docs/milter.md). */
static int milter_negotiated(milter_t *m, const milter_reply_t *r)
{
    if (r->type != MILTER_R_OPTNEG || r->version < 2 || r->version > MILTER_VERSION)
        return MILTER_ENEGOTIATE;
    if (r->protocol & ~MILTER_P_OFFERED)
        return MILTER_ENEGOTIATE;
    m->actions = r->actions & MILTER_ACT_ALL;
    m->protocol = r->protocol;
    m->state = MILTER_READY;
    uv_timer_stop(&m->timer);
    milter_pump(m);
    return 0;
}

static bool milter_final(int type)
{
    switch (type) {
    case MILTER_R_ACCEPT:
    case MILTER_R_CONTINUE:
    case MILTER_R_DISCARD:
    case MILTER_R_CONN_FAIL:
    case MILTER_R_REJECT:
    case MILTER_R_SKIP:
    case MILTER_R_TEMPFAIL:
    case MILTER_R_REPLYCODE:
        return true;
    }
    return false;
}

/* One packet from the filter: 0, or why the connection cannot go on. */
static int milter_packet(milter_t *m, const char *p, size_t n)
{
    milter_qstep_t *s = m->awaiting;
    milter_reply_t r;
    bool final;

    if (milter_proto_decode(p, n, &r) < 0)
        return MILTER_EPROTO;
    if (m->state == MILTER_NEGOTIATING)
        return milter_negotiated(m, &r);
    /* Nothing is said unasked; changes only before the end's reply. */
    if (s == NULL || r.type == MILTER_R_OPTNEG)
        return MILTER_EPROTO;
    if (r.type == MILTER_R_PROGRESS) {
        milter_arm(m);
        return 0;
    }
    final = milter_final(r.type);
    if ((!final && s->cmd != MILTER_C_BODYEOB) || (r.type == MILTER_R_SKIP && s->cmd != MILTER_C_BODY))
        return MILTER_EPROTO;
    if (!final) {
        m->cb(m->arg, m,
              &(milter_event_info_t){
                  .ev = MILTER_EV_REPLY, .reply = &r, .cmd = s->cmd, .notify = s->notify});
        return 0;
    }
    uv_timer_stop(&m->timer);
    m->awaiting = NULL;
    if (r.type == MILTER_R_SKIP) {
        m->skip_body = true;
        r.type = MILTER_R_CONTINUE;
    }
    /* An answer the owner waits for, or one that ends the filter's part
     * in the message; a plain "continue" to a header needs no word. */
    if (s->notify || r.type != MILTER_R_CONTINUE)
        m->cb(m->arg, m,
              &(milter_event_info_t){.ev = MILTER_EV_REPLY,
                                     .reply = &r,
                                     .cmd = s->cmd,
                                     .final = true,
                                     .notify = s->notify});
    free(s);
    return 0;
}

static void milter_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    milter_t *m = h->data;
    size_t n = buf_room(&m->in) < MILTER_READ_SIZE ? buf_room(&m->in) : MILTER_READ_SIZE;
    char *p = buf_reserve(&m->in, n);

    (void)suggested;
    *b = uv_buf_init(p, p != NULL ? (unsigned)n : 0);
}

static void milter_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    milter_t *m = stream->data;
    size_t len;
    int rc = 0;

    (void)b;
    if (nread == 0)
        return;
    if (nread < 0) {
        milter_fail(m, nread == UV_EOF ? MILTER_ECLOSED : (int)nread);
        return;
    }
    buf_commit(&m->in, (size_t)nread);
    while (rc == 0 && m->state != MILTER_FAILED && !m->owner_gone) {
        switch (milter_proto_frame(buf_ptr(&m->in), buf_used(&m->in), MILTER_PACKET_MAX, &len)) {
        case MILTER_FRAME_PARTIAL:
            milter_pump(m);
            return;
        case MILTER_FRAME_BAD:
            rc = MILTER_ETOOBIG;
            break;
        case MILTER_FRAME_OK:
            rc = milter_packet(m, buf_ptr(&m->in) + 4, len);
            buf_consume(&m->in, 4 + len);
            break;
        }
    }
    if (rc < 0)
        milter_fail(m, rc);
}

/* ---- connecting ---- */

static void milter_connect_cb(uv_connect_t *req, int status)
{
    milter_t *m = req->data;
    buf_t b;

    if (status < 0) {
        milter_fail(m, status == UV_ECANCELED ? MILTER_ECLOSED : MILTER_ECONNECT);
        return;
    }
    if (m->state == MILTER_FAILED)
        return;
    m->state = MILTER_NEGOTIATING;
    if (uv_read_start(&m->h.stream, milter_alloc_cb, milter_read_cb) < 0) {
        milter_fail(m, MILTER_ECONNECT);
        return;
    }
    buf_init(&b, 64);
    milter_proto_optneg(&b, MILTER_VERSION, MILTER_ACT_ALL, MILTER_P_OFFERED);
    milter_write(m, buf_ptr(&b), buf_used(&b));
    buf_free(&b);
}

milter_t *milter_open(uv_loop_t *loop, const struct sockaddr *sa, uint64_t timeout_ms,
                      milter_cb cb, void *arg)
{
    milter_t *m = xcalloc(1, sizeof(*m));
    int rc;

    m->cb = cb;
    m->arg = arg;
    m->timeout_ms = timeout_ms;
    buf_init(&m->in, MILTER_IN_MAX);
    buf_init(&m->out, SIZE_MAX);
    if (sa->sa_family == AF_UNIX)
        uv_pipe_init(loop, &m->h.pipe, 0);
    else
        uv_tcp_init(loop, &m->h.tcp);
    uv_timer_init(loop, &m->timer);
    uv_timer_init(loop, &m->kick);
    m->h.handle.data = m->timer.data = m->kick.data = m->connect.data = m;
    m->handles = 3;
    m->state = MILTER_CONNECTING;
    milter_arm(m);
    if (sa->sa_family == AF_UNIX) {
        uv_pipe_connect(&m->connect, &m->h.pipe, ((const struct sockaddr_un *)sa)->sun_path,
                        milter_connect_cb);
        return m;
    }
    uv_tcp_nodelay(&m->h.tcp, 1);
    rc = uv_tcp_connect(&m->connect, &m->h.tcp, sa, milter_connect_cb);
    if (rc < 0) {
        /* Reported from the loop, as every other failure. */
        m->early_error = MILTER_ECONNECT;
        uv_timer_start(&m->kick, milter_kick_cb, 0, 0);
    }
    return m;
}

void milter_close(milter_t *m)
{
    static const char quit[5] = {0, 0, 0, 1, MILTER_C_QUIT};
    uv_buf_t b = uv_buf_init((char *)quit, sizeof(quit));

    m->owner_gone = true;
    m->cb = NULL;
    if (m->state == MILTER_READY && m->inflight == 0)
        uv_try_write(&m->h.stream, &b, 1);
    m->state = MILTER_FAILED;
    milter_close_handles(m);
    milter_maybe_free(m);
}
