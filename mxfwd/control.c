#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "json.h"
#include "list.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"


typedef struct control_client control_client_t;

struct control {
    uv_loop_t *loop;
    uv_pipe_t listener;
    char *path;
    queue_t *queue;
    stats_t *stats;
    list_t clients; /* of control_client_t, for closing */
    unsigned handles; /* open libuv handles; the control_t goes with the last */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

struct control_client {
    control_t *c;
    list_node_t node; /* in c->clients */
    uv_pipe_t pipe;
    uv_timer_t idle;
    unsigned handles; /* open: the client is freed with the last */
    buf_t in;         /* request bytes read and not yet answered */
    bool writing; /* a reply is on its way; requests wait in `in` */
    bool eof;
    bool closing;
    bool hangup; /* close once the reply is written */
};

typedef struct {
    uv_write_t req;
    control_client_t *cl;
    buf_t out;
} control_write_t;

/* ---- Handles ---- */

/* One of c's handles is closed; the control_t goes with the last. */
static void control_release(control_t *c)
{
    if (--c->handles > 0)
        return;
    free(c->path);
    if (c->closed != NULL)
        c->closed(c->closed_arg);
    free(c);
}

static void control_handle_closed(uv_handle_t *h)
{
    control_release(h->data);
}

static void control_client_handle_closed(uv_handle_t *h)
{
    control_client_t *cl = h->data;
    control_t *c = cl->c;

    /* The pipe and the timer: the client goes with the second. */
    if (--cl->handles == 0) {
        buf_free(&cl->in);
        free(cl);
    }
    control_release(c);
}

static void control_client_close(control_client_t *cl)
{
    control_t *c = cl->c;

    if (cl->closing)
        return;
    cl->closing = true;
    list_remove(&c->clients, &cl->node);
    uv_close((uv_handle_t *)&cl->idle, control_client_handle_closed);
    uv_close((uv_handle_t *)&cl->pipe, control_client_handle_closed);
}

/* ---- Replies ---- */

static void control_error(buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void control_error(buf_t *out, const char *fmt, ...)
{
    char text[CONTROL_LINE_MAX + 256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    buf_puts(out, "{\"ok\":false,\"error\":");
    json_str(out, text);
    buf_puts(out, "}");
}

static void control_rcpt_json(buf_t *out, const queue_rcpt_info_t *ri)
{
    const spool_rcpt_t *r = ri->rcpt;

    buf_puts(out, "{\"address\":");
    json_str(out, r->addr);
    buf_puts(out, ",\"alias\":");
    json_str(out, r->orig);
    buf_puts(out, ",\"state\":");
    json_str(out, ri->state);
    buf_printf(out, ",\"attempts\":%" PRIu32 ",\"next_attempt\":", r->attempts);
    if (ri->next_attempt_us > 0)
        buf_printf(out, "%" PRId64, ri->next_attempt_us / QUEUE_US_PER_S);
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"last_reply\":");
    json_str(out, r->reply);
    buf_puts(out, ",\"relay\":");
    json_str(out, r->relay);
    buf_puts(out, "}");
}

typedef struct {
    buf_t *out;
    size_t n;
} control_list_t;

static void control_list_msg(void *arg, const spool_msg_t *m, const queue_rcpt_info_t *rcpts)
{
    control_list_t *l = arg;
    buf_t *out = l->out;

    buf_puts(out, l->n++ > 0 ? ",{\"id\":" : "{\"id\":");
    json_str(out, m->id);
    buf_printf(out, ",\"arrival\":%" PRId64 ",\"size\":%" PRIu64 ",\"sender\":",
               m->arrival_us / QUEUE_US_PER_S, spool_msg_size(m));
    json_str(out, m->sender);
    buf_puts(out, ",\"srs_sender\":");
    json_str(out, m->srs_sender);
    buf_puts(out, ",\"client\":");
    json_str(out, m->client);
    buf_puts(out, ",\"recipients\":[");
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (i > 0)
            buf_puts(out, ",");
        control_rcpt_json(out, &rcpts[i]);
    }
    buf_puts(out, "]}");
}

static void control_queue(control_t *c, buf_t *out)
{
    control_list_t l = {out, 0};

    buf_printf(out, "{\"ok\":true,\"now\":%" PRId64 ",\"messages\":[",
               queue_now(c->queue) / QUEUE_US_PER_S);
    queue_list(c->queue, control_list_msg, &l);
    buf_puts(out, "]}");
}

/* {"connections":3,"rejected":{"relay_denied":1,"spf":2},...}: a family
 * of labelled counters becomes an object, in registration order. */
static void control_stats(control_t *c, buf_t *out)
{
    size_t n = stats_count(c->stats);
    bool first = true; /* in the family's object */

    stats_refresh(c->stats);
    buf_puts(out, "{\"ok\":true,\"stats\":{");
    for (size_t i = 0; i < n; i++) {
        const stats_entry_t *e = stats_at(c->stats, i);

        /* A family's entries are together (stats.h): its first one opens
         * it, its last one closes it. */
        if (i == 0 || strcmp(stats_at(c->stats, i - 1)->name, e->name) != 0) {
            buf_puts(out, i > 0 ? "," : "");
            json_key(out, e->name);
            if (e->label == NULL) {
                buf_printf(out, "%" PRIu64, e->value);
                continue;
            }
            buf_puts(out, "{");
            first = true;
        }
        if (e->label_value != NULL) { /* not the family's declaration */
            buf_puts(out, first ? "" : ",");
            first = false;
            json_key(out, e->label_value);
            buf_printf(out, "%" PRIu64, e->value);
        }
        if (i + 1 == n || strcmp(stats_at(c->stats, i + 1)->name, e->name) != 0)
            buf_puts(out, "}");
    }
    buf_puts(out, "}}");
}

static void control_delete(control_t *c, const char *id, buf_t *out)
{
    unsigned running = 0;
    int rc = queue_delete(c->queue, id, &running);

    if (rc < 0) {
        control_error(out, "%s: %s", id, queue_strerror(rc));
        return;
    }
    buf_puts(out, "{\"ok\":true,\"id\":");
    json_str(out, id);
    buf_printf(out, ",\"running\":%u}", running);
}

/* One request line: the reply into out. */
static void control_request_line(control_t *c, char *line, buf_t *out)
{
    char *cursor = line, *verb = str_token(&cursor, " \t"), *arg = str_token(&cursor, " \t");
    bool extra = str_token(&cursor, " \t") != NULL;

    if (verb == NULL) {
        control_error(out, "empty request; say queue, flush, delete ID or stats");
    } else if (strcmp(verb, "queue") == 0 && arg == NULL) {
        control_queue(c, out);
    } else if (strcmp(verb, "flush") == 0 && arg == NULL) {
        size_t n = queue_flush(c->queue);
        log_info("flush: %zu recipient%s due now (control socket)", n, n == 1 ? "" : "s");
        buf_printf(out, "{\"ok\":true,\"flushed\":%zu}", n);
    } else if (strcmp(verb, "delete") == 0 && arg != NULL && !extra) {
        control_delete(c, arg, out);
    } else if (strcmp(verb, "stats") == 0 && arg == NULL) {
        control_stats(c, out);
    } else if (strcmp(verb, "queue") == 0 || strcmp(verb, "flush") == 0 ||
               strcmp(verb, "delete") == 0 || strcmp(verb, "stats") == 0) {
        control_error(out, "usage: queue | flush | delete ID | stats");
    } else {
        control_error(out, "unknown request '%.64s'; say queue, flush, delete ID or stats", verb);
    }
    buf_puts(out, "\n");
}

/* ---- Clients ---- */

static void control_client_run(control_client_t *cl);

static void control_on_write(uv_write_t *req, int status)
{
    control_write_t *w = (control_write_t *)req;
    control_client_t *cl = w->cl;

    buf_free(&w->out);
    free(w);
    cl->writing = false;
    if (cl->closing)
        return;
    if (status < 0 || cl->hangup) {
        control_client_close(cl);
        return;
    }
    control_client_run(cl);
}

static void control_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void control_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

static void control_send(control_client_t *cl, control_write_t *w)
{
    uv_buf_t b = uv_buf_init((char *)buf_ptr(&w->out), (unsigned)buf_used(&w->out));

    w->cl = cl;
    cl->writing = true;
    /* One request at a time: the next is read once this reply is out. */
    uv_read_stop((uv_stream_t *)&cl->pipe);
    if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &b, 1, control_on_write) < 0) {
        buf_free(&w->out);
        free(w);
        cl->writing = false;
        control_client_close(cl);
    }
}

static control_write_t *control_reply_new(void)
{
    control_write_t *w = xcalloc(1, sizeof(*w));

    /* A listing is as long as the queue: no cap but memory. */
    buf_init(&w->out, SIZE_MAX);
    return w;
}

/* Answer the next complete request, or read more, or close. */
static void control_client_run(control_client_t *cl)
{
    const char *line;
    size_t len;
    buf_eol_t eol;
    control_write_t *w;
    char text[CONTROL_LINE_MAX + 1];

    if (cl->writing || cl->closing)
        return;
    eol = buf_getline(&cl->in, &line, &len);
    if ((eol == BUF_EOL_NONE && buf_room(&cl->in) == 0) ||
        (eol != BUF_EOL_NONE && len > CONTROL_LINE_MAX)) {
        w = control_reply_new();
        control_error(&w->out, "request longer than %d octets", CONTROL_LINE_MAX);
        buf_puts(&w->out, "\n");
        cl->hangup = true;
        control_send(cl, w);
        return;
    }
    if (eol == BUF_EOL_NONE) {
        if (cl->eof)
            control_client_close(cl);
        else
            uv_read_start((uv_stream_t *)&cl->pipe, control_alloc, control_on_read);
        return;
    }
    memcpy(text, line, len);
    text[len] = '\0';
    w = control_reply_new();
    control_request_line(cl->c, text, &w->out);
    control_send(cl, w);
}

/* Reads go straight into the request buffer, never more than fits: a
 * client may send several requests at once, and none is lost. */
static void control_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    control_client_t *cl = h->data;
    size_t room = buf_room(&cl->in);

    (void)suggested;
    *b = uv_buf_init(room > 0 ? buf_reserve(&cl->in, room) : NULL, (unsigned)room);
}

static void control_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    control_client_t *cl = s->data;

    (void)b;
    if (nread == 0)
        return;
    if (nread < 0) {
        cl->eof = true;
        uv_read_stop(s);
        if (nread == UV_EOF)
            control_client_run(cl);
        else
            control_client_close(cl);
        return;
    }
    buf_commit(&cl->in, (size_t)nread);
    uv_timer_again(&cl->idle);
    control_client_run(cl);
}

static void control_on_idle(uv_timer_t *t)
{
    control_client_close(t->data);
}

static void control_on_connection(uv_stream_t *listener, int status)
{
    control_t *c = listener->data;
    control_client_t *cl;

    if (status < 0 || c->closing)
        return;
    cl = xcalloc(1, sizeof(*cl));
    cl->c = c;
    /* A request line, its CRLF, and no more. */
    buf_init(&cl->in, CONTROL_LINE_MAX + 2);
    uv_pipe_init(c->loop, &cl->pipe, 0);
    uv_timer_init(c->loop, &cl->idle);
    cl->pipe.data = cl;
    cl->idle.data = cl;
    cl->handles = 2;
    c->handles += 2;
    list_push_front(&c->clients, &cl->node);
    if (uv_accept(listener, (uv_stream_t *)&cl->pipe) < 0) {
        control_client_close(cl);
        return;
    }
    uv_timer_start(&cl->idle, control_on_idle, CONTROL_IDLE_TIMEOUT_MS, CONTROL_IDLE_TIMEOUT_MS);
    if (list_len(&c->clients) > CONTROL_MAX_CLIENTS) {
        control_write_t *w = control_reply_new();
        control_error(&w->out, "too many control clients; try again");
        buf_puts(&w->out, "\n");
        cl->hangup = true;
        control_send(cl, w);
        return;
    }
    uv_read_start((uv_stream_t *)&cl->pipe, control_alloc, control_on_read);
}

/* ---- Opening and closing ---- */

static int control_sockaddr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (str_lcpy(sun->sun_path, path, sizeof(sun->sun_path)) < 0)
        return CONTROL_ETOOLONG;
    return 0;
}

/* Remove a socket left by a crash; refuse one that is still answered. */
static int control_clear_stale(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return CONTROL_ENOTSOCK;
    if ((rc = control_sockaddr(path, &sun)) < 0)
        return rc;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    if (rc == 0)
        return CONTROL_EINUSE;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int control_open(uv_loop_t *loop, const char *path, queue_t *queue, stats_t *stats,
                 control_t **out)
{
    control_t *c;
    struct sockaddr_un sun;
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    mode_t old;
    int rc;

    *out = NULL;
    if ((rc = control_sockaddr(path, &sun)) < 0) {
        free(dir);
        return rc;
    }
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        rc = file_mkdirs(dir, 0700);
    }
    free(dir);
    if (rc < 0 || (rc = control_clear_stale(path)) < 0)
        return rc;
    c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->path = xstrdup(path);
    c->queue = queue;
    c->stats = stats;
    uv_pipe_init(loop, &c->listener, 0);
    c->listener.data = c;
    c->handles = 1;
    /* Created 0600: the umask covers the moment between bind and chmod. */
    old = umask(0177);
    rc = uv_pipe_bind(&c->listener, path);
    umask(old);
    if (rc == 0 && chmod(path, 0600) < 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&c->listener, CONTROL_MAX_CLIENTS, control_on_connection);
    if (rc < 0) {
        unlink(path);
        c->closing = true;
        uv_close((uv_handle_t *)&c->listener, control_handle_closed);
        return rc;
    }
    *out = c;
    return 0;
}

void control_close(control_t *c, void (*closed)(void *arg), void *arg)
{
    c->closing = true;
    c->closed = closed;
    c->closed_arg = arg;
    unlink(c->path);
    while (list_first(&c->clients) != NULL)
        control_client_close(LIST_ITEM(list_first(&c->clients), control_client_t, node));
    uv_close((uv_handle_t *)&c->listener, control_handle_closed);
}

/* ---- The client side ---- */

static int64_t control_ms_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline: 0, or -ETIMEDOUT. */
static int control_wait(int fd, short events, int64_t deadline)
{
    struct pollfd p = {fd, events, 0};
    int rc;

    for (;;) {
        int64_t left = deadline - control_ms_now();
        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

int control_request(const char *path, const char *request, int timeout_ms, buf_t *reply)
{
    int64_t deadline = control_ms_now() + timeout_ms;
    size_t start = buf_used(reply), sent = 0, len = strlen(request);
    struct sockaddr_un sun;
    char chunk[65536];
    int fd = -1, rc;

    if ((rc = control_sockaddr(path, &sun)) < 0)
        return rc;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return -errno;
    /* A Unix socket connects at once or fails (EAGAIN: backlog full). */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        rc = -errno;
        goto done;
    }
    while (sent <= len) {
        /* The request, then its newline. */
        const char *p = sent < len ? request + sent : "\n";
        size_t n = sent < len ? len - sent : 1;
        ssize_t w;

        if ((rc = control_wait(fd, POLLOUT, deadline)) < 0)
            goto done;
        w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            rc = -errno;
            goto done;
        }
        if (w > 0)
            sent += (size_t)w;
    }
    for (;;) {
        const char *nl;
        ssize_t r;

        if ((rc = control_wait(fd, POLLIN, deadline)) < 0)
            goto done;
        r = recv(fd, chunk, sizeof(chunk), 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0 || buf_used(reply) - start + (size_t)r > CONTROL_REPLY_MAX ||
            buf_append(reply, chunk, (size_t)r) != 0) {
            rc = r < 0 ? -errno : CONTROL_EREPLY;
            goto done;
        }
        nl = memchr(buf_ptr(reply) + start, '\n', buf_used(reply) - start);
        if (nl != NULL) {
            /* Drop the newline and anything after it. */
            reply->len = reply->off + (size_t)(nl - buf_ptr(reply));
            rc = 0;
            goto done;
        }
    }
done:
    close(fd);
    return rc;
}

const char *control_strerror(int err)
{
    switch (err) {
    case CONTROL_EINUSE:
        return "another process is answering on the control socket";
    case CONTROL_ENOTSOCK:
        return "the control socket path exists and is not a socket";
    case CONTROL_ETOOLONG:
        return "the control socket path is too long for a Unix socket";
    case CONTROL_EREPLY:
        return "the daemon's reply was cut short or too long";
    default:
        return err < 0 ? strerror(-err) : "no error";
    }
}
