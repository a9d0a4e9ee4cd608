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

#include <openssl/evp.h>

#include "file.h"
#include "json.h"
#include "listener.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

struct control {
    listener_t *listener;
    char *path;
    queue_t *queue;
    stats_t *stats;
    control_resolve_fn resolve;
    void *resolve_arg;
};

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

/* A MESSAGE's members, without its braces. */
static void control_msg_fields(buf_t *out, const spool_msg_t *m, const queue_rcpt_info_t *rcpts)
{
    buf_puts(out, "\"id\":");
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
    buf_puts(out, "]");
}

static void control_list_msg(void *arg, const spool_msg_t *m, const queue_rcpt_info_t *rcpts)
{
    control_list_t *l = arg;

    buf_puts(l->out, l->n++ > 0 ? ",{" : "{");
    control_msg_fields(l->out, m, rcpts);
    buf_puts(l->out, "}");
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

        /* Histograms are for the metrics endpoint: their counts per bucket
         * say nothing read alone. */
        if (e->kind == STATS_HISTOGRAM)
            continue;
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

/* Queue ids are upper-case hex; an admin may type them in any case. */
static void control_upper(char *id)
{
    for (; *id != '\0'; id++)
        *id = str_upper_c(*id);
}

static void control_str_list(buf_t *out, const char *key, char **items, size_t n)
{
    buf_puts(out, ",");
    json_key(out, key);
    buf_puts(out, "[");
    for (size_t i = 0; i < n; i++) {
        buf_puts(out, i > 0 ? "," : "");
        json_str(out, items[i]);
    }
    buf_puts(out, "]");
}

/* delete ID... | delete ALL */
static void control_delete(control_t *c, char **ids, size_t n, buf_t *out)
{
    char **deleted = xcalloc(n, sizeof(*deleted)), **unknown = xcalloc(n, sizeof(*unknown));
    size_t nd = 0, nu = 0;
    unsigned running = 0;

    if (n == 1 && strcmp(ids[0], "ALL") == 0) {
        size_t all = queue_delete_all(c->queue, &running);
        log_info("delete: %zu message%s deleted by the administrator (control socket)", all,
                 all == 1 ? "" : "s");
        buf_printf(out, "{\"ok\":true,\"all\":%zu,\"running\":%u}", all, running);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        control_upper(ids[i]);
        if (queue_delete(c->queue, ids[i], &running) == 0)
            deleted[nd++] = ids[i];
        else
            unknown[nu++] = ids[i];
    }
    buf_puts(out, "{\"ok\":true");
    control_str_list(out, "deleted", deleted, nd);
    control_str_list(out, "unknown", unknown, nu);
    buf_printf(out, ",\"running\":%u}", running);
done:
    free(deleted);
    free(unknown);
}

/* flush | flush ID... */
static void control_flush(control_t *c, char **ids, size_t n, buf_t *out)
{
    char **unknown = xcalloc(n > 0 ? n : 1, sizeof(*unknown));
    size_t nu = 0, flushed = 0;

    if (n == 0)
        flushed = queue_flush(c->queue, NULL);
    for (size_t i = 0; i < n; i++) {
        control_upper(ids[i]);
        if (queue_flush_id(c->queue, ids[i], &flushed) < 0)
            unknown[nu++] = ids[i];
    }
    log_info("flush: %zu recipient%s due now (control socket)", flushed, flushed == 1 ? "" : "s");
    buf_printf(out, "{\"ok\":true,\"flushed\":%zu", flushed);
    control_str_list(out, "unknown", unknown, nu);
    buf_puts(out, "}");
    free(unknown);
}

static void control_flush_domain(control_t *c, const char *domain, buf_t *out)
{
    size_t flushed = queue_flush(c->queue, domain);

    log_info("flush: %zu recipient%s at %s due now (control socket)", flushed,
             flushed == 1 ? "" : "s", domain);
    buf_printf(out, "{\"ok\":true,\"flushed\":%zu,\"unknown\":[]}", flushed);
}

/* The message of `show ID`: the listing's fields, and what `mxfwd queue
 * show` needs to print the message itself. */
static void control_show_msg(void *arg, const spool_msg_t *m, const queue_rcpt_info_t *rcpts)
{
    control_t *c = ((void **)arg)[0];
    buf_t *out = ((void **)arg)[1];
    char *b64;

    buf_printf(out, "{\"ok\":true,\"now\":%" PRId64 ",\"message\":{",
               queue_now(c->queue) / QUEUE_US_PER_S);
    control_msg_fields(out, m, rcpts);
    buf_puts(out, ",\"helo\":");
    json_str(out, m->helo);
    buf_printf(out, ",\"8bitmime\":%s,\"smtputf8\":%s,\"path\":",
               (m->flags & SPOOL_F_8BITMIME) ? "true" : "false",
               (m->flags & SPOOL_F_SMTPUTF8) ? "true" : "false");
    json_str(out, m->path);
    buf_printf(out, ",\"body_offset\":%" PRIu64 ",\"body_length\":%" PRIu64
                    ",\"body_skip\":%" PRIu64 ",\"prepend\":\"",
               m->body_offset, m->body_length, m->body_skip);
    /* The prepended header fields are mail bytes, not text: base64. */
    b64 = xmalloc(4 * ((m->prepend_len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)m->prepend, (int)m->prepend_len);
    buf_puts(out, b64);
    free(b64);
    buf_puts(out, "\"}}");
}

static void control_show(control_t *c, char *id, buf_t *out)
{
    void *arg[2] = {c, out};

    control_upper(id);
    if (queue_show(c->queue, id, control_show_msg, arg) < 0)
        control_error(out, "%s: %s", id, queue_strerror(QUEUE_ENOENT));
}

/* hold ID..., release ID...: {"ok":true,"held":N,"unknown":[...]} (or
 * "released"): how many recipients changed, and the ids not queued. */
static void control_hold(control_t *c, char **ids, size_t n, bool hold, buf_t *out)
{
    char **unknown = xcalloc(n, sizeof(*unknown));
    size_t nu = 0, changed = 0;

    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        int rc;

        control_upper(ids[i]);
        rc = hold ? queue_hold(c->queue, ids[i], &k) : queue_release(c->queue, ids[i], &k);
        if (rc < 0)
            unknown[nu++] = ids[i];
        changed += k;
    }
    buf_printf(out, "{\"ok\":true,\"%s\":%zu", hold ? "held" : "released", changed);
    control_str_list(out, "unknown", unknown, nu);
    buf_puts(out, "}");
    free(unknown);
}

#define CONTROL_USAGE                                                                          \
    "queue | show ID | flush [ID...] | flush-domain DOMAIN | delete ID... | delete ALL | "      \
    "hold ID... | release ID... | resolve ADDRESS | stats"

/* One request line: the reply into out. */
static void control_request_line(control_t *c, char *line, buf_t *out)
{
    char *cursor = line, *verb;
    char *args[CONTROL_LINE_MAX / 2];
    size_t n = 0;

    /* The rest of the line is the address: a quoted local part may hold
     * spaces. */
    if (strncmp(line, "resolve ", 8) == 0 && c->resolve != NULL) {
        c->resolve(c->resolve_arg, str_trim(line + 8), out);
        buf_puts(out, "\n");
        return;
    }
    verb = str_token(&cursor, " \t");
    while (n < sizeof(args) / sizeof(args[0]) && (args[n] = str_token(&cursor, " \t")) != NULL)
        n++;
    if (verb == NULL)
        control_error(out, "empty request; say " CONTROL_USAGE);
    else if (strcmp(verb, "queue") == 0 && n == 0)
        control_queue(c, out);
    else if (strcmp(verb, "show") == 0 && n == 1)
        control_show(c, args[0], out);
    else if (strcmp(verb, "flush") == 0)
        control_flush(c, args, n, out);
    else if (strcmp(verb, "flush-domain") == 0 && n == 1)
        control_flush_domain(c, args[0], out);
    else if (strcmp(verb, "delete") == 0 && n > 0)
        control_delete(c, args, n, out);
    else if ((strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0) && n > 0)
        control_hold(c, args, n, strcmp(verb, "hold") == 0, out);
    else if (strcmp(verb, "stats") == 0 && n == 0)
        control_stats(c, out);
    else if (strcmp(verb, "queue") == 0 || strcmp(verb, "show") == 0 ||
             strcmp(verb, "flush-domain") == 0 || strcmp(verb, "delete") == 0 ||
             strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0 ||
             strcmp(verb, "stats") == 0)
        control_error(out, "usage: " CONTROL_USAGE);
    else
        control_error(out, "unknown request '%.64s'; say " CONTROL_USAGE, verb);
    buf_puts(out, "\n");
}

/* ---- Clients ---- */

/* A last reply: an error, then the connection is closed. */
static void control_refuse(listener_client_t *cl, const char *text)
{
    buf_t *out = listener_client_out(cl);

    control_error(out, "%s", text);
    buf_puts(out, "\n");
    listener_client_send(cl, true);
}

/* Answer the next complete request, or wait for more, or close. */
static void control_input(listener_client_t *cl)
{
    buf_t *in = listener_client_in(cl);
    const char *line;
    size_t len;
    buf_eol_t eol = buf_getline(in, &line, &len);
    char text[CONTROL_LINE_MAX + 1];

    if ((eol == BUF_EOL_NONE && buf_room(in) == 0) ||
        (eol != BUF_EOL_NONE && len > CONTROL_LINE_MAX)) {
        snprintf(text, sizeof(text), "request longer than %d octets", CONTROL_LINE_MAX);
        control_refuse(cl, text);
        return;
    }
    if (eol == BUF_EOL_NONE) {
        if (listener_client_eof(cl))
            listener_client_close(cl);
        return;
    }
    memcpy(text, line, len);
    text[len] = '\0';
    control_request_line(listener_client_arg(cl), text, listener_client_out(cl));
    listener_client_send(cl, false);
}

static void control_busy(listener_client_t *cl)
{
    control_refuse(cl, "too many control clients; try again");
}

static const listener_config_t control_listener = {
    .max_clients = CONTROL_MAX_CLIENTS,
    /* A request line, its CRLF, and no more. */
    .in_max = CONTROL_LINE_MAX + 2,
    /* A listing is as long as the queue: no cap but memory. */
    .out_max = SIZE_MAX,
    .timeout_ms = CONTROL_IDLE_TIMEOUT_MS,
    .idle_timeout = true,
    .input = control_input,
    .busy = control_busy,
};

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
    c->queue = queue;
    c->stats = stats;
    if ((rc = listener_open_pipe(loop, path, 0600, &control_listener, c, &c->listener)) < 0) {
        unlink(path);
        free(c);
        return rc;
    }
    c->path = xstrdup(path);
    *out = c;
    return 0;
}

void control_set_resolver(control_t *c, control_resolve_fn fn, void *arg)
{
    c->resolve = fn;
    c->resolve_arg = arg;
}

void control_close(control_t *c, void (*closed)(void *arg), void *arg)
{
    unlink(c->path);
    /* The listener calls back into c no more. */
    listener_close(c->listener, closed, arg);
    free(c->path);
    free(c);
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
