#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "list.h"
#include "xalloc.h"

/* A listening or a connected stream: a TCP socket or a Unix one. */
typedef union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} listener_io_t;

struct listener {
    uv_loop_t *loop;
    listener_io_t io;
    bool pipe;
    listener_config_t cfg;
    void *arg;
    list_t clients;   /* listener_client_t, newest first */
    unsigned handles; /* open libuv handles; the listener goes with the last */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
    char drop[512]; /* where what a lingering client sends goes */
};

struct listener_client {
    listener_t *l;
    list_node_t node; /* in l->clients */
    listener_io_t io;
    uv_timer_t timer;
    uv_write_t write;
    uv_shutdown_t shutdown;
    unsigned handles; /* open: the client is freed with the last */
    buf_t in;
    buf_t out;
    bool writing; /* a reply is on its way */
    bool last;    /* the last reply is sent: what arrives is dropped */
    bool eof;     /* the client has shut its side */
    bool closing;
};

/* ---- closing ---- */

/* One of l's handles is closed; the listener goes with the last. */
static void listener_release(listener_t *l)
{
    void (*closed)(void *) = l->closed;
    void *arg = l->closed_arg;

    if (--l->handles > 0)
        return;
    free(l);
    if (closed != NULL)
        closed(arg);
}

static void listener_handle_closed(uv_handle_t *h)
{
    listener_release(h->data);
}

static void listener_client_handle_closed(uv_handle_t *h)
{
    listener_client_t *cl = h->data;
    listener_t *l = cl->l;

    /* The stream and the timer: the client goes with the second. */
    if (--cl->handles == 0) {
        buf_free(&cl->in);
        buf_free(&cl->out);
        free(cl);
    }
    listener_release(l);
}

void listener_client_close(listener_client_t *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    list_remove(&cl->l->clients, &cl->node);
    uv_close((uv_handle_t *)&cl->timer, listener_client_handle_closed);
    uv_close(&cl->io.handle, listener_client_handle_closed);
}

void listener_close(listener_t *l, void (*closed)(void *arg), void *arg)
{
    listener_client_t *cl;

    l->closing = true;
    l->closed = closed;
    l->closed_arg = arg;
    while ((cl = LIST_ITEM(list_first(&l->clients), listener_client_t, node)) != NULL)
        listener_client_close(cl);
    uv_close(&l->io.handle, listener_handle_closed);
}

static void listener_on_timer(uv_timer_t *t)
{
    listener_client_close(t->data);
}

static void listener_on_shutdown(uv_shutdown_t *req, int status)
{
    /* Reading goes on until the client closes, or the linger time is up. */
    if (status < 0)
        listener_client_close(req->data);
}

/* The last reply is written: close, or linger (listener.h). */
static void listener_client_linger(listener_client_t *cl)
{
    /* A client that has shut its side sends nothing more: the reply is
     * in the kernel's hands, and a close sends it out whole. */
    if (cl->l->cfg.linger_ms == 0 || cl->eof ||
        uv_shutdown(&cl->shutdown, &cl->io.stream, listener_on_shutdown) < 0) {
        listener_client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, listener_on_timer, cl->l->cfg.linger_ms, 0);
}

/* ---- reading and writing ---- */

static void listener_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    listener_client_t *cl = h->data;
    size_t room = buf_room(&cl->in);

    (void)suggested;
    if (cl->last)
        *b = uv_buf_init(cl->l->drop, sizeof(cl->l->drop));
    else /* straight into the input, never more than fits: none is lost */
        *b = uv_buf_init(room > 0 ? buf_reserve(&cl->in, room) : NULL, (unsigned)room);
}

static void listener_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    listener_client_t *cl = s->data;

    (void)b;
    if (nread == 0 || (nread > 0 && cl->last))
        return;
    if (nread > 0) {
        buf_commit(&cl->in, (size_t)nread);
        if (cl->l->cfg.idle_timeout)
            uv_timer_again(&cl->timer);
        cl->l->cfg.input(cl);
        return;
    }
    /* An error (a full input is UV_ENOBUFS), or the end after the last
     * reply: the close a lingering client was waited for. */
    if (nread != UV_EOF || (cl->last && !cl->writing)) {
        listener_client_close(cl);
        return;
    }
    /* The end of the input.  While the last reply is written (a request,
     * then a half close), the write ends the exchange. */
    cl->eof = true;
    uv_read_stop(s);
    if (!cl->last)
        cl->l->cfg.input(cl);
}

static void listener_on_write(uv_write_t *req, int status)
{
    listener_client_t *cl = req->data;

    cl->writing = false;
    buf_free(&cl->out);
    if (cl->closing)
        return;
    if (status < 0) {
        listener_client_close(cl);
        return;
    }
    if (cl->last) {
        listener_client_linger(cl);
        return;
    }
    if (!cl->eof && uv_read_start(&cl->io.stream, listener_alloc, listener_on_read) < 0) {
        listener_client_close(cl);
        return;
    }
    cl->l->cfg.input(cl);
}

void listener_client_send(listener_client_t *cl, bool last)
{
    uv_buf_t b = uv_buf_init((char *)buf_ptr(&cl->out), (unsigned)buf_used(&cl->out));

    if (cl->writing)
        abort(); /* one reply at a time: the protocol's bookkeeping is broken */
    cl->last = last;
    /* A lingering last reply goes on reading, to drop what comes. */
    if (!last || cl->l->cfg.linger_ms == 0)
        uv_read_stop(&cl->io.stream);
    if (uv_write(&cl->write, &cl->io.stream, &b, 1, listener_on_write) < 0) {
        listener_client_close(cl);
        return;
    }
    cl->writing = true;
}

void *listener_client_arg(const listener_client_t *cl)
{
    return cl->l->arg;
}

buf_t *listener_client_in(listener_client_t *cl)
{
    return &cl->in;
}

buf_t *listener_client_out(listener_client_t *cl)
{
    return &cl->out;
}

bool listener_client_eof(const listener_client_t *cl)
{
    return cl->eof;
}

/* ---- accepting ---- */

static void listener_io_init(listener_t *l, listener_io_t *io, void *data)
{
    if (l->pipe)
        uv_pipe_init(l->loop, &io->pipe, 0);
    else
        uv_tcp_init(l->loop, &io->tcp);
    io->handle.data = data;
}

static void listener_on_connection(uv_stream_t *server, int status)
{
    listener_t *l = server->data;
    listener_client_t *cl;
    bool over;

    if (status < 0 || l->closing)
        return;
    cl = xcalloc(1, sizeof(*cl));
    cl->l = l;
    buf_init(&cl->in, l->cfg.in_max);
    buf_init(&cl->out, l->cfg.out_max);
    listener_io_init(l, &cl->io, cl);
    uv_timer_init(l->loop, &cl->timer);
    cl->timer.data = cl->write.data = cl->shutdown.data = cl;
    cl->handles = 2;
    l->handles += 2;
    list_push_front(&l->clients, &cl->node);
    /* Over the limit, the connection is taken all the same (so that the
     * kernel's queue does not fill), then told so or closed at once. */
    over = list_len(&l->clients) > l->cfg.max_clients;
    if (uv_accept(server, &cl->io.stream) < 0 || (over && l->cfg.busy == NULL)) {
        listener_client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, listener_on_timer, l->cfg.timeout_ms,
                   l->cfg.idle_timeout ? l->cfg.timeout_ms : 0);
    if (over)
        l->cfg.busy(cl);
    else if (uv_read_start(&cl->io.stream, listener_alloc, listener_on_read) < 0)
        listener_client_close(cl);
}

/* ---- opening ---- */

static listener_t *listener_new(uv_loop_t *loop, bool pipe, const listener_config_t *cfg, void *arg)
{
    listener_t *l = xcalloc(1, sizeof(*l));

    l->loop = loop;
    l->pipe = pipe;
    l->cfg = *cfg;
    l->arg = arg;
    listener_io_init(l, &l->io, l);
    l->handles = 1;
    return l;
}

/* Listen once bound (rc 0); else close: the listener goes in its close
 * callback. */
static int listener_start(listener_t *l, int rc, listener_t **out)
{
    *out = NULL;
    if (rc == 0)
        rc = uv_listen(&l->io.stream, (int)l->cfg.max_clients, listener_on_connection);
    if (rc < 0) {
        l->closing = true;
        uv_close(&l->io.handle, listener_handle_closed);
        return rc;
    }
    *out = l;
    return 0;
}

int listener_open_tcp(uv_loop_t *loop, const struct sockaddr *addr, const listener_config_t *cfg,
                      void *arg, listener_t **out)
{
    listener_t *l = listener_new(loop, false, cfg, arg);

    return listener_start(
        l, uv_tcp_bind(&l->io.tcp, addr, addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0), out);
}

int listener_open_pipe(uv_loop_t *loop, const char *path, mode_t mode, const listener_config_t *cfg,
                       void *arg, listener_t **out)
{
    listener_t *l = listener_new(loop, true, cfg, arg);
    mode_t old;
    int rc;

    /* The umask covers the moment between bind and chmod. */
    old = umask(~mode & 0777);
    rc = uv_pipe_bind(&l->io.pipe, path);
    umask(old);
    if (rc == 0 && chmod(path, mode) < 0)
        rc = -errno;
    return listener_start(l, rc, out);
}
