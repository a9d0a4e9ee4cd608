#include "metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "xalloc.h"

/* ---- the exposition ------------------------------------------------------------- */

/* HELP text escapes backslash and newline; label values also the double
 * quote (the text format's rules). */
static void metrics_escaped(buf_t *out, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            buf_puts(out, "\\\\");
        else if (*s == '\n')
            buf_puts(out, "\\n");
        else if (*s == '"' && quote)
            buf_puts(out, "\\\"");
        else
            buf_append(out, s, 1);
    }
}

static bool metrics_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

void metrics_render(const stats_t *stats, buf_t *out)
{
    size_t n = stats_count(stats);
    char name[256];

    for (size_t i = 0; i < n; i++) {
        const stats_entry_t *e = stats_at(stats, i);
        bool counter = e->kind == STATS_COUNTER;

        /* Counters are named for what they count, with _total, as
         * Prometheus's conventions want. */
        snprintf(name, sizeof(name), METRICS_PREFIX "%s%s", e->name,
                 counter && !metrics_ends_with(e->name, "_total") ? "_total" : "");
        /* A family's entries are together (stats.h): its first one
         * introduces it. */
        if (i == 0 || strcmp(stats_at(stats, i - 1)->name, e->name) != 0) {
            buf_printf(out, "# HELP %s ", name);
            metrics_escaped(out, e->help, false);
            buf_printf(out, "\n# TYPE %s %s\n", name, counter ? "counter" : "gauge");
        }
        if (e->label != NULL && e->label_value == NULL)
            continue; /* the family's declaration: no sample of its own */
        buf_puts(out, name);
        if (e->label != NULL) {
            buf_printf(out, "{%s=\"", e->label);
            metrics_escaped(out, e->label_value, true);
            buf_puts(out, "\"}");
        }
        buf_printf(out, " %" PRIu64 "\n", e->value);
    }
}

/* ---- requests ------------------------------------------------------------------- */

/* Where the head ends (after its empty line), or NULL.  Bare LF line ends
 * are taken too, as RFC 9112 2.2 allows a recipient to. */
static const char *metrics_head_end(const char *p, size_t n)
{
    const char *crlf = memmem(p, n, "\r\n\r\n", 4), *lf = memmem(p, n, "\n\n", 2);

    if (crlf != NULL && (lf == NULL || crlf < lf))
        return crlf + 4;
    return lf != NULL ? lf + 2 : NULL;
}

static void metrics_answer(buf_t *out, int status, const char *reason, const char *type,
                           const char *extra, const buf_t *body, bool head_only)
{
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
               "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
               status, reason, type, buf_used(body), extra);
    if (!head_only)
        buf_append(out, buf_ptr(body), buf_used(body));
}

static void metrics_error(buf_t *out, int status, const char *reason, const char *extra)
{
    buf_t body;

    buf_init(&body, 256);
    buf_printf(&body, "%d %s\n", status, reason);
    metrics_answer(out, status, reason, "text/plain; charset=utf-8", extra, &body, false);
    buf_free(&body);
}

/* A token of RFC 9110 5.6.2 (the method). */
static bool metrics_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strchr("!#$%&'*+-.^_`|~", s[i]) == NULL &&
            !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

int metrics_respond(const char *p, size_t n, stats_t *stats, buf_t *out)
{
    const char *end = metrics_head_end(p, n), *eol, *sp1, *sp2, *path, *path_end, *version;
    size_t line_len;
    buf_t body;
    bool head;

    if (end == NULL) {
        if (n < METRICS_REQUEST_MAX)
            return 0;
        metrics_error(out, 431, "Request Header Fields Too Large", "");
        return 1;
    }
    if ((size_t)(end - p) > METRICS_REQUEST_MAX) {
        metrics_error(out, 431, "Request Header Fields Too Large", "");
        return 1;
    }
    /* The request line: METHOD SP TARGET SP HTTP-VERSION. */
    eol = memchr(p, '\n', (size_t)(end - p));
    line_len = (size_t)(eol - p);
    if (line_len > 0 && p[line_len - 1] == '\r')
        line_len--;
    sp1 = memchr(p, ' ', line_len);
    sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', line_len - (size_t)(sp1 + 1 - p)) : NULL;
    if (sp2 == NULL || !metrics_token(p, (size_t)(sp1 - p)) || sp2 == sp1 + 1) {
        metrics_error(out, 400, "Bad Request", "");
        return 1;
    }
    version = sp2 + 1;
    if ((size_t)(p + line_len - version) != 8 || memcmp(version, "HTTP/", 5) != 0 ||
        version[5] < '0' || version[5] > '9' || version[6] != '.' || version[7] < '0' ||
        version[7] > '9') {
        metrics_error(out, 400, "Bad Request", "");
        return 1;
    }
    if (memcmp(version, "HTTP/1.", 7) != 0) {
        metrics_error(out, 505, "HTTP Version Not Supported", "");
        return 1;
    }
    /* The path: origin form "/metrics?query", or the absolute form
     * "http://host:port/metrics" a proxy would send. */
    path = sp1 + 1;
    if ((size_t)(sp2 - path) > 7 && strncmp(path, "http://", 7) == 0) {
        const char *slash = memchr(path + 7, '/', (size_t)(sp2 - path - 7));
        path = slash != NULL ? slash : sp2;
    }
    path_end = memchr(path, '?', (size_t)(sp2 - path));
    if (path_end == NULL)
        path_end = sp2;
    if ((size_t)(path_end - path) != 8 || memcmp(path, "/metrics", 8) != 0) {
        metrics_error(out, 404, "Not Found", "");
        return 1;
    }
    head = (size_t)(sp1 - p) == 4 && memcmp(p, "HEAD", 4) == 0;
    if (!head && !((size_t)(sp1 - p) == 3 && memcmp(p, "GET", 3) == 0)) {
        metrics_error(out, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return 1;
    }

    buf_init(&body, METRICS_RESPONSE_MAX);
    stats_refresh(stats);
    metrics_render(stats, &body);
    metrics_answer(out, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", "", &body, head);
    buf_free(&body);
    return 1;
}

/* ---- the server ------------------------------------------------------------------ */

typedef struct metrics_client metrics_client_t;

struct metrics {
    uv_loop_t *loop;
    uv_tcp_t listener;
    stats_t *stats;
    list_t clients; /* of metrics_client_t, for closing */
    unsigned handles; /* open libuv handles; the metrics_t goes with the last */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

struct metrics_client {
    metrics_t *m;
    list_node_t node; /* in m->clients */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    uv_shutdown_t shutdown;
    unsigned handles;
    buf_t in;       /* the request head so far */
    buf_t out;      /* the answer, until written */
    bool answered;  /* from then on, what the client sends is dropped */
    bool writing;   /* the answer is on its way */
    bool peer_done; /* the client has shut its side */
    bool closing;
    char drop[512]; /* where dropped bytes go */
};

static void metrics_release(metrics_t *m)
{
    if (--m->handles > 0)
        return;
    if (m->closed != NULL)
        m->closed(m->closed_arg);
    free(m);
}

static void metrics_handle_closed(uv_handle_t *h)
{
    metrics_release(h->data);
}

static void metrics_client_handle_closed(uv_handle_t *h)
{
    metrics_client_t *cl = h->data;
    metrics_t *m = cl->m;

    /* The socket and the timer: the client goes with the second. */
    if (--cl->handles == 0) {
        buf_free(&cl->in);
        buf_free(&cl->out);
        free(cl);
    }
    metrics_release(m);
}

static void metrics_client_close(metrics_client_t *cl)
{
    metrics_t *m = cl->m;

    if (cl->closing)
        return;
    cl->closing = true;
    list_remove(&m->clients, &cl->node);
    uv_close((uv_handle_t *)&cl->timer, metrics_client_handle_closed);
    uv_close((uv_handle_t *)&cl->tcp, metrics_client_handle_closed);
}

static void metrics_on_timer(uv_timer_t *t)
{
    metrics_client_close(t->data);
}

static void metrics_on_shutdown(uv_shutdown_t *req, int status)
{
    metrics_client_t *cl = req->data;

    /* Reading goes on until the client closes, or the linger time is up. */
    if (status < 0)
        metrics_client_close(cl);
}

static void metrics_on_write(uv_write_t *req, int status)
{
    metrics_client_t *cl = req->data;

    cl->writing = false;
    if (cl->closing)
        return;
    /* A client that has shut its side already sends nothing more: the
     * answer is in the kernel's hands, and a close sends it out whole. */
    if (status < 0 || cl->peer_done ||
        uv_shutdown(&cl->shutdown, (uv_stream_t *)&cl->tcp, metrics_on_shutdown) < 0) {
        metrics_client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, metrics_on_timer, METRICS_LINGER_MS, 0);
}

static void metrics_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    metrics_client_t *cl = h->data;
    size_t room = buf_room(&cl->in);

    (void)suggested;
    if (cl->answered || room == 0)
        *b = uv_buf_init(cl->drop, sizeof(cl->drop));
    else
        *b = uv_buf_init(buf_reserve(&cl->in, room), (unsigned)room);
}

static void metrics_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    metrics_client_t *cl = s->data;
    uv_buf_t wb;

    if (nread == 0)
        return;
    if (nread < 0) {
        /* The client has shut its side while its answer is being written
         * (a request sent, then a half close): the write ends the
         * exchange.  Otherwise it is gone, or done after its answer: the
         * close the daemon waits for. */
        if (nread == UV_EOF && cl->writing) {
            cl->peer_done = true;
            uv_read_stop(s);
            return;
        }
        metrics_client_close(cl);
        return;
    }
    if (cl->answered || b->base == cl->drop)
        return;
    buf_commit(&cl->in, (size_t)nread);
    if (metrics_respond(buf_ptr(&cl->in), buf_used(&cl->in), cl->m->stats, &cl->out) == 0)
        return;
    cl->answered = true;
    wb = uv_buf_init((char *)buf_ptr(&cl->out), (unsigned)buf_used(&cl->out));
    if (uv_write(&cl->write, s, &wb, 1, metrics_on_write) < 0)
        metrics_client_close(cl);
    else
        cl->writing = true;
}

static void metrics_on_connection(uv_stream_t *listener, int status)
{
    metrics_t *m = listener->data;
    metrics_client_t *cl;

    if (status < 0 || m->closing)
        return;
    cl = xcalloc(1, sizeof(*cl));
    cl->m = m;
    /* One byte over the limit tells a head too long from one that fits. */
    buf_init(&cl->in, METRICS_REQUEST_MAX + 1);
    buf_init(&cl->out, METRICS_RESPONSE_MAX + 1024);
    uv_tcp_init(m->loop, &cl->tcp);
    uv_timer_init(m->loop, &cl->timer);
    cl->tcp.data = cl->timer.data = cl->write.data = cl->shutdown.data = cl;
    cl->handles = 2;
    m->handles += 2;
    list_push_front(&m->clients, &cl->node);
    /* Over the limit, the connection is taken (so the kernel's queue
     * does not fill) and closed at once. */
    if (uv_accept(listener, (uv_stream_t *)&cl->tcp) < 0 ||
        list_len(&m->clients) > METRICS_MAX_CLIENTS ||
        uv_read_start((uv_stream_t *)&cl->tcp, metrics_alloc, metrics_on_read) < 0) {
        metrics_client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, metrics_on_timer, METRICS_TIMEOUT_MS, 0);
}

int metrics_open(uv_loop_t *loop, const struct sockaddr *addr, stats_t *stats, metrics_t **out)
{
    metrics_t *m = xcalloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    m->loop = loop;
    m->stats = stats;
    uv_tcp_init(loop, &m->listener);
    m->listener.data = m;
    m->handles = 1;
    rc = uv_tcp_bind(&m->listener, addr, addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, METRICS_MAX_CLIENTS, metrics_on_connection);
    if (rc < 0) {
        m->closing = true;
        uv_close((uv_handle_t *)&m->listener, metrics_handle_closed);
        return rc;
    }
    *out = m;
    return 0;
}

void metrics_close(metrics_t *m, void (*closed)(void *arg), void *arg)
{
    if (m == NULL) {
        if (closed != NULL)
            closed(arg);
        return;
    }
    m->closing = true;
    m->closed = closed;
    m->closed_arg = arg;
    while (list_first(&m->clients) != NULL)
        metrics_client_close(LIST_ITEM(list_first(&m->clients), metrics_client_t, node));
    uv_close((uv_handle_t *)&m->listener, metrics_handle_closed);
}
