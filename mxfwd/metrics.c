#include "metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
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

/* A histogram's entries (stats.h): its buckets as name_bucket{le=...}
 * under one HELP and TYPE, then name_sum (in units) and name_count. */
static void metrics_histogram(const stats_entry_t *e, bool first, buf_t *out)
{
    char name[256];

    if (e->label != NULL) {
        snprintf(name, sizeof(name), METRICS_PREFIX "%s", e->name);
        if (first) {
            buf_printf(out, "# HELP %s ", name);
            metrics_escaped(out, e->help, false);
            buf_printf(out, "\n# TYPE %s histogram\n", name);
        }
        buf_printf(out, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, e->label_value, e->value);
    } else if (metrics_ends_with(e->name, "_sum")) {
        buf_printf(out, METRICS_PREFIX "%s %" PRIu64 ".%06" PRIu64 "\n", e->name,
                   e->value / 1000000, e->value % 1000000);
    } else {
        buf_printf(out, METRICS_PREFIX "%s %" PRIu64 "\n", e->name, e->value);
    }
}

void metrics_render(const stats_t *stats, buf_t *out)
{
    size_t n = stats_count(stats);
    char name[256];

    for (size_t i = 0; i < n; i++) {
        const stats_entry_t *e = stats_at(stats, i);
        bool counter = e->kind == STATS_COUNTER;
        /* The process's own, by the names every exporter uses for them. */
        const char *prefix = strncmp(e->name, "process_", 8) == 0 ? "" : METRICS_PREFIX;

        if (e->kind == STATS_HISTOGRAM) {
            metrics_histogram(e, i == 0 || strcmp(stats_at(stats, i - 1)->name, e->name) != 0, out);
            continue;
        }
        /* Counters are named for what they count, with _total, as
         * Prometheus's conventions want. */
        snprintf(name, sizeof(name), "%s%s%s", prefix, e->name,
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

struct metrics {
    listener_t *listener;
    stats_t *stats;
};

/* One request a connection: answered once its head is whole. */
static void metrics_input(listener_client_t *cl)
{
    metrics_t *m = listener_client_arg(cl);
    buf_t *in = listener_client_in(cl);

    if (listener_client_eof(cl)) { /* gone before its request was whole */
        listener_client_close(cl);
        return;
    }
    if (metrics_respond(buf_ptr(in), buf_used(in), m->stats, listener_client_out(cl)) != 0)
        listener_client_send(cl, true);
}

static const listener_config_t metrics_listener = {
    .max_clients = METRICS_MAX_CLIENTS,
    /* One byte over the limit tells a head too long from one that fits. */
    .in_max = METRICS_REQUEST_MAX + 1,
    .out_max = METRICS_RESPONSE_MAX + 1024,
    .timeout_ms = METRICS_TIMEOUT_MS,
    /* Every answer says "Connection: close" (metrics.h). */
    .linger_ms = METRICS_LINGER_MS,
    .input = metrics_input,
};

int metrics_open(uv_loop_t *loop, const struct sockaddr *addr, stats_t *stats, metrics_t **out)
{
    metrics_t *m = xcalloc(1, sizeof(*m));
    int rc;

    *out = NULL;
    m->stats = stats;
    if ((rc = listener_open_tcp(loop, addr, &metrics_listener, m, &m->listener)) < 0) {
        free(m);
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
    /* The listener calls back into m no more. */
    listener_close(m->listener, closed, arg);
    free(m);
}
