/*
 * cli_queue.c - `mxfwd queue`, `queue show`, `flush`, `delete`, `hold`,
 * `release` and `stats`: requests
 * to the running daemon's control socket (mxfwd/control.h), its JSON reply
 * shown to people (or passed through with --json).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"
#include "control.h"
#include "json.h"
#include "str.h"
#include "xalloc.h"

/* Long enough for a listing of a very large queue. */
#define CLI_CONTROL_TIMEOUT_MS 60000

/*
 * Send request to the daemon of the configuration.  CLI_OK with the parsed
 * reply in *out (an {"ok":true} one); otherwise the reason is printed and
 * *out is NULL.  With --json the reply line is printed as it came.
 */
static int cli_queue_ask(const cli_args_t *args, const char *command, const char *request,
                         json_t **out)
{
    config_t *cfg = NULL;
    json_t *v = NULL;
    buf_t reply;
    int rc = CLI_FAIL, err;

    *out = NULL;
    buf_init(&reply, SIZE_MAX);
    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        goto done;
    err = control_request(cfg->control_socket, request, CLI_CONTROL_TIMEOUT_MS, &reply);
    if (err < 0) {
        fprintf(stderr, "mxfwd %s: cannot reach the daemon at %s: %s (is mxfwd serve running?)\n",
                command, cfg->control_socket, control_strerror(err));
        goto done;
    }
    if ((err = json_parse(buf_ptr(&reply), buf_used(&reply), &v)) < 0 || v->type != JSON_OBJECT) {
        fprintf(stderr, "mxfwd %s: the daemon's reply is %s\n", command,
                err < 0 ? json_strerror(err) : "not a JSON object");
        goto done;
    }
    if (args->json)
        printf("%.*s\n", (int)buf_used(&reply), buf_ptr(&reply));
    if (json_get(v, "ok") == NULL || !json_get(v, "ok")->boolean) {
        if (!args->json)
            fprintf(stderr, "mxfwd %s: %s\n", command, json_get_str(v, "error", "failed"));
        goto done;
    }
    *out = v;
    v = NULL;
    rc = CLI_OK;
done:
    json_free(v);
    buf_free(&reply);
    config_free(cfg);
    return rc;
}

/* ---- queue ---- */

/* "45s", "12m", "3h", "2d": the largest whole unit. */
static void cli_queue_age(double secs, char *dst, size_t size)
{
    if (secs < 0)
        secs = 0;
    if (secs < 60)
        snprintf(dst, size, "%.0fs", secs);
    else if (secs < 3600)
        snprintf(dst, size, "%.0fm", secs / 60 - 0.5);
    else if (secs < 86400)
        snprintf(dst, size, "%.0fh", secs / 3600 - 0.5);
    else
        snprintf(dst, size, "%.0fd", secs / 86400 - 0.5);
}

static void cli_queue_size(double bytes, char *dst, size_t size)
{
    if (bytes < 1024)
        snprintf(dst, size, "%.0f", bytes);
    else if (bytes < 1024 * 1024)
        snprintf(dst, size, "%.1fK", bytes / 1024);
    else
        snprintf(dst, size, "%.1fM", bytes / (1024 * 1024));
}

static const char *cli_queue_sender(const char *s)
{
    return s[0] != '\0' ? s : "<>";
}

/* The address column's width: the longest address, within reason. */
static int cli_queue_addr_width(const json_t *msgs)
{
    size_t w = strlen("Sender / Recipient");

    for (size_t i = 0; i < msgs->n; i++) {
        const json_t *rcpts = json_get(msgs->items[i], "recipients");
        size_t n = strlen(cli_queue_sender(json_get_str(msgs->items[i], "sender", "")));
        if (n > w)
            w = n;
        for (size_t k = 0; rcpts != NULL && k < rcpts->n; k++)
            if ((n = strlen(json_get_str(rcpts->items[k], "address", ""))) > w)
                w = n;
    }
    return w > 40 ? 40 : (int)w;
}

static void cli_queue_print_rcpt(const json_t *r, double now, int width, size_t *waiting)
{
    const char *state = json_get_str(r, "state", "?");
    const json_t *next = json_get(r, "next_attempt");
    bool final = strcmp(state, "sent") == 0 || strcmp(state, "bounced") == 0;
    char when[16] = "-";

    if (next != NULL && next->type == JSON_NUMBER) {
        if (next->number <= now)
            snprintf(when, sizeof(when), "now");
        else
            cli_queue_age(next->number - now + 0.5, when, sizeof(when));
    }
    if (!final)
        (*waiting)++;
    printf("%-13s  %5s  %6s  %-*s  %-8s  %-4s  %s\n", "", "", "", width,
           json_get_str(r, "address", ""), state, when,
           strcmp(state, "sent") == 0 ? "" : json_get_str(r, "last_reply", ""));
}

int cli_queue(const cli_args_t *args)
{
    json_t *v;
    const json_t *msgs;
    double now, total = 0;
    size_t waiting = 0;
    char age[16], size[16];
    int width;

    if (cli_queue_ask(args, "queue", "queue", &v) != CLI_OK)
        return CLI_FAIL;
    if (args->json) {
        json_free(v);
        return CLI_OK;
    }
    msgs = json_get(v, "messages");
    now = json_get_num(v, "now", 0);
    if (msgs == NULL || msgs->n == 0) {
        printf("Mail queue is empty\n");
        json_free(v);
        return CLI_OK;
    }
    /* One line per message, then one per recipient under it, as
     * postqueue -p lays it out. */
    width = cli_queue_addr_width(msgs);
    printf("%-13s  %5s  %6s  %-*s  %-8s  %-4s  %s\n", "Queue ID", "Age", "Size", width,
           "Sender / Recipient", "State", "Next", "Last reply");
    for (size_t i = 0; i < msgs->n; i++) {
        const json_t *m = msgs->items[i], *rcpts = json_get(m, "recipients");

        cli_queue_age(now - json_get_num(m, "arrival", now), age, sizeof(age));
        cli_queue_size(json_get_num(m, "size", 0), size, sizeof(size));
        total += json_get_num(m, "size", 0);
        printf("%-13s  %5s  %6s  %s\n", json_get_str(m, "id", "?"), age, size,
               cli_queue_sender(json_get_str(m, "sender", "")));
        for (size_t k = 0; rcpts != NULL && k < rcpts->n; k++)
            cli_queue_print_rcpt(rcpts->items[k], now, width, &waiting);
    }
    cli_queue_size(total, size, sizeof(size));
    printf("-- %zu message%s, %s bytes, %zu recipient%s waiting\n", msgs->n,
           msgs->n == 1 ? "" : "s", size, waiting, waiting == 1 ? "" : "s");
    json_free(v);
    return CLI_OK;
}

/* ---- flush, delete ---- */

/* Each id the daemon did not know, on stderr; whether there was one. */
static bool cli_queue_unknown(const char *command, const json_t *v)
{
    const json_t *unknown = json_get(v, "unknown");

    for (size_t i = 0; unknown != NULL && i < unknown->n; i++)
        fprintf(stderr, "mxfwd %s: %s: no such message in the queue\n", command,
                unknown->items[i]->string);
    return unknown != NULL && unknown->n > 0;
}

/* A queue id on a request line: one word, of a sane length. */
static bool cli_queue_id_ok(const char *command, const char *id)
{
    if (id[0] == '\0' || strlen(id) > 64 || strpbrk(id, " \t\r\n") != NULL) {
        fprintf(stderr, "mxfwd %s: '%.64s' is not a queue id\n", command, id);
        return false;
    }
    return true;
}

/*
 * Send "VERB ID ID ..." for ids[0..n), as few requests as fit the request
 * line; done(v, arg) gets each reply.  CLI_FAIL when one could not be
 * sent or answered (the rest are not sent).
 */
static int cli_queue_ids(const cli_args_t *args, const char *command, const char *verb,
                         char **ids, size_t n, void (*done)(const json_t *v, void *arg), void *arg)
{
    char request[CONTROL_LINE_MAX + 1];
    size_t i = 0;

    while (i < n) {
        size_t len = (size_t)snprintf(request, sizeof(request), "%s", verb);
        json_t *v;

        for (; i < n && len + 1 + strlen(ids[i]) <= CONTROL_LINE_MAX; i++)
            len += (size_t)snprintf(request + len, sizeof(request) - len, " %s", ids[i]);
        if (cli_queue_ask(args, command, request, &v) != CLI_OK)
            return CLI_FAIL;
        done(v, arg);
        json_free(v);
    }
    return CLI_OK;
}

/* Ids from standard input, separated by white space (`delete -`). */
static char **cli_queue_read_ids(const char *command, size_t *n)
{
    char word[80], **ids = NULL;
    size_t cap = 0;

    *n = 0;
    while (scanf("%79s", word) == 1) {
        if (!cli_queue_id_ok(command, word)) {
            for (size_t i = 0; i < *n; i++)
                free(ids[i]);
            free(ids);
            return NULL;
        }
        if (*n == cap) {
            cap = cap > 0 ? 2 * cap : 64;
            ids = xrealloc(ids, cap * sizeof(*ids));
        }
        ids[(*n)++] = xstrdup(word);
    }
    return ids != NULL ? ids : xcalloc(1, sizeof(*ids));
}

typedef struct {
    const cli_args_t *args;
    const char *command;
    size_t done;     /* recipients flushed, messages deleted */
    unsigned running;
    bool unknown;
} cli_queue_tally_t;

/*
 * The ids a command was given (args->argv), or those on standard input
 * for a lone "-" (as postsuper reads them), sent as cli_queue_ids() does,
 * under verb; done(v, t) gets each reply.  CLI_OK, or CLI_FAIL (a bad id
 * said on stderr, or a request not answered).
 */
static int cli_queue_given_ids(const cli_args_t *args, const char *verb,
                               void (*done)(const json_t *v, void *arg), cli_queue_tally_t *t)
{
    char **ids = args->argv;
    size_t n = (size_t)args->argc;
    bool from_stdin = n == 1 && strcmp(ids[0], "-") == 0;
    int rc;

    if (from_stdin && (ids = cli_queue_read_ids(verb, &n)) == NULL)
        return CLI_FAIL;
    for (size_t i = 0; !from_stdin && i < n; i++)
        if (!cli_queue_id_ok(verb, ids[i]))
            return CLI_FAIL;
    rc = cli_queue_ids(args, verb, verb, ids, n, done, t);
    if (from_stdin) {
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
    }
    return rc;
}

static void cli_queue_flush_done(const json_t *v, void *arg)
{
    cli_queue_tally_t *t = arg;

    t->done += (size_t)json_get_num(v, "flushed", 0);
    t->unknown |= cli_queue_unknown("flush", v);
}

int cli_flush(const cli_args_t *args)
{
    cli_queue_tally_t t = {args, "flush", 0, 0, false};
    char request[CONTROL_LINE_MAX + 1];
    json_t *v;

    for (int i = 0; i < args->argc; i++)
        if (!cli_queue_id_ok("flush", args->argv[i]))
            return CLI_FAIL;
    if (args->domain != NULL) {
        if (args->argc > 0 || !cli_queue_id_ok("flush", args->domain)) {
            fprintf(stderr, "mxfwd flush: -d DOMAIN or IDs, not both\n");
            return CLI_USAGE;
        }
        snprintf(request, sizeof(request), "flush-domain %s", args->domain);
        if (cli_queue_ask(args, "flush", request, &v) != CLI_OK)
            return CLI_FAIL;
        cli_queue_flush_done(v, &t);
        json_free(v);
    } else if (args->argc == 0) {
        if (cli_queue_ask(args, "flush", "flush", &v) != CLI_OK)
            return CLI_FAIL;
        cli_queue_flush_done(v, &t);
        json_free(v);
    } else if (cli_queue_ids(args, "flush", "flush", args->argv, (size_t)args->argc,
                             cli_queue_flush_done, &t) != CLI_OK) {
        return CLI_FAIL;
    }
    if (!args->json)
        printf("%zu recipient%s%s%s due now\n", t.done, t.done == 1 ? "" : "s",
               args->domain != NULL ? " at " : "", args->domain != NULL ? args->domain : "");
    return t.unknown ? CLI_FAIL : CLI_OK;
}

static void cli_queue_delete_done(const json_t *v, void *arg)
{
    cli_queue_tally_t *t = arg;
    const json_t *deleted = json_get(v, "deleted");

    for (size_t i = 0; deleted != NULL && i < deleted->n; i++) {
        if (!t->args->json)
            printf("%s: deleted\n", deleted->items[i]->string);
        t->done++;
    }
    t->running += (unsigned)json_get_num(v, "running", 0);
    t->unknown |= cli_queue_unknown("delete", v);
}

int cli_delete(const cli_args_t *args)
{
    cli_queue_tally_t t = {args, "delete", 0, 0, false};
    int rc = CLI_OK;
    json_t *v;

    if (args->argc == 1 && strcmp(args->argv[0], "ALL") == 0) {
        if (cli_queue_ask(args, "delete", "delete ALL", &v) != CLI_OK)
            return CLI_FAIL;
        t.done = (size_t)json_get_num(v, "all", 0);
        t.running = (unsigned)json_get_num(v, "running", 0);
        json_free(v);
        if (!args->json)
            printf("%zu message%s deleted\n", t.done, t.done == 1 ? "" : "s");
    } else {
        rc = cli_queue_given_ids(args, "delete", cli_queue_delete_done, &t);
    }
    if (!args->json && t.running > 0)
        printf("%u deliver%s in progress finish%s first\n", t.running,
               t.running == 1 ? "y" : "ies", t.running == 1 ? "es" : "");
    return rc != CLI_OK || t.unknown ? CLI_FAIL : CLI_OK;
}

/* ---- queue show ---- */

/* Write data[0..n) with CRLF line ends as LF ones, as postcat does;
 * *cr carries a CR that ended the previous piece. */
static void cli_queue_show_write(const char *data, size_t n, bool *cr)
{
    for (size_t i = 0; i < n; i++) {
        if (*cr && data[i] != '\n')
            putchar('\r');
        *cr = data[i] == '\r';
        if (!*cr)
            putchar(data[i]);
    }
}

/*
 * The stored message from the file at path: from offset, length bytes;
 * with headers_only, up to the empty line that ends the header section
 * (or the end).  *seen_blank says whether the bytes before already ended
 * it.  0, or -errno.
 */
static int cli_queue_show_file(const char *path, uint64_t offset, uint64_t length, bool headers_only,
                         int *line_start, bool *cr)
{
    char chunk[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return -errno;
    while (length > 0) {
        size_t want = length < sizeof(chunk) ? (size_t)length : sizeof(chunk), n;
        ssize_t r = pread(fd, chunk, want, (off_t)offset);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        n = (size_t)r;
        if (headers_only) {
            /* Stop after the CRLF of an empty line: *line_start counts the
             * bytes of the current line (-1: the header section is over). */
            for (size_t i = 0; i < n; i++) {
                if (chunk[i] == '\n') {
                    if (*line_start <= 1) {
                        cli_queue_show_write(chunk, i + 1, cr);
                        *line_start = -1;
                        close(fd);
                        return 0;
                    }
                    *line_start = 0;
                } else {
                    (*line_start)++;
                }
            }
        }
        cli_queue_show_write(chunk, n, cr);
        offset += n;
        length -= n;
    }
    close(fd);
    return rc;
}

static void cli_queue_show_envelope(const json_t *m, double now)
{
    const json_t *rcpts = json_get(m, "recipients"), *f;
    char date[STR_DATE_SIZE], when[16];
    bool b8 = (f = json_get(m, "8bitmime")) != NULL && f->boolean;
    bool utf8 = (f = json_get(m, "smtputf8")) != NULL && f->boolean;

    str_date((int64_t)json_get_num(m, "arrival", 0), date, sizeof(date));
    printf("*** ENVELOPE %s ***\n", json_get_str(m, "id", "?"));
    printf("arrival: %s\n", date);
    printf("size: %.0f\n", json_get_num(m, "size", 0));
    printf("client: %s\n", json_get_str(m, "client", ""));
    printf("helo: %s\n", json_get_str(m, "helo", ""));
    printf("sender: %s\n", cli_queue_sender(json_get_str(m, "sender", "")));
    printf("srs_sender: %s\n", cli_queue_sender(json_get_str(m, "srs_sender", "")));
    printf("body: %s%s\n", b8 ? "8BITMIME" : "7BIT", utf8 ? ", SMTPUTF8" : "");
    for (size_t i = 0; rcpts != NULL && i < rcpts->n; i++) {
        const json_t *r = rcpts->items[i], *next = json_get(r, "next_attempt");

        printf("recipient: %s\n", json_get_str(r, "address", ""));
        if (json_get_str(r, "alias", "")[0] != '\0')
            printf("  alias: %s\n", json_get_str(r, "alias", ""));
        printf("  state: %s, %.0f attempt%s", json_get_str(r, "state", "?"),
               json_get_num(r, "attempts", 0), json_get_num(r, "attempts", 0) == 1 ? "" : "s");
        if (next != NULL && next->type == JSON_NUMBER) {
            cli_queue_age(next->number - now + 0.5, when, sizeof(when));
            printf(", next %s%s", next->number <= now ? "now" : "in ",
                   next->number <= now ? "" : when);
        }
        printf("\n");
        if (json_get_str(r, "last_reply", "")[0] != '\0')
            printf("  last reply: %s\n", json_get_str(r, "last_reply", ""));
        if (json_get_str(r, "relay", "")[0] != '\0')
            printf("  relay: %s\n", json_get_str(r, "relay", ""));
    }
}

/* The daemon's "show" reply: the envelope, then the message or its
 * header section.  0, or -errno from reading the file. */
static int cli_queue_show_message(const json_t *v, bool body)
{
    const json_t *m = json_get(v, "message");
    const char *id = json_get_str(m, "id", "?"), *b64 = json_get_str(m, "prepend", "");
    uint64_t offset = (uint64_t)json_get_num(m, "body_offset", 0);
    uint64_t length = (uint64_t)json_get_num(m, "body_length", 0);
    uint64_t skip = (uint64_t)json_get_num(m, "body_skip", 0);
    size_t b64len = strlen(b64), plen;
    unsigned char *prepend = xmalloc(b64len / 4 * 3 + 1);
    int line_start = 0, rc;
    bool cr = false;

    /* Padding decodes to zero bytes EVP_DecodeBlock counts: drop them. */
    plen = (size_t)EVP_DecodeBlock(prepend, (const unsigned char *)b64, (int)b64len);
    plen -= b64len > 0 && b64[b64len - 1] == '=' ? 1 : 0;
    plen -= b64len > 1 && b64[b64len - 2] == '=' ? 1 : 0;
    /* Open the file before printing anything, so that a retry prints
     * nothing twice. */
    if (access(json_get_str(m, "path", ""), R_OK) != 0) {
        rc = -errno;
        free(prepend);
        return rc;
    }
    cli_queue_show_envelope(m, json_get_num(v, "now", 0));
    printf("*** %s %s ***\n", body ? "MESSAGE" : "HEADERS", id);
    cli_queue_show_write((const char *)prepend, plen, &cr);
    free(prepend);
    /* What is sent: the prepended fields, then the stored bytes past
     * body_skip. */
    rc = cli_queue_show_file(json_get_str(m, "path", ""), offset + skip, length - skip, !body,
                       &line_start, &cr);
    if (cr)
        putchar('\r');
    printf("*** END %s ***\n", id);
    return rc;
}

int cli_queue_show(const cli_args_t *args)
{
    char request[CONTROL_LINE_MAX + 1];
    json_t *v;
    int rc;

    if (!cli_queue_id_ok("queue show", args->argv[0]))
        return CLI_FAIL;
    snprintf(request, sizeof(request), "show %s", args->argv[0]);
    /* A message read from a journal segment may move to a file of its own
     * between the reply and the read: ask again. */
    for (int attempt = 0;; attempt++) {
        if (cli_queue_ask(args, "queue show", request, &v) != CLI_OK)
            return CLI_FAIL;
        rc = args->json ? 0 : cli_queue_show_message(v, args->body);
        if (rc != -ENOENT || attempt == 2)
            break;
        json_free(v);
    }
    if (rc < 0) {
        fprintf(stderr, "mxfwd queue show: cannot read %s: %s\n",
                json_get_str(json_get(v, "message"), "path", "the message"), strerror(-rc));
        json_free(v);
        return CLI_FAIL;
    }
    json_free(v);
    return CLI_OK;
}

/* ---- hold, release ---- */

static void cli_queue_hold_done(const json_t *v, void *arg)
{
    cli_queue_tally_t *t = arg;

    t->done += (size_t)json_get_num(v, strcmp(t->command, "hold") == 0 ? "held" : "released", 0);
    t->unknown |= cli_queue_unknown(t->command, v);
}

/* hold ID..., release ID... (or -: the ids on standard input): how many
 * recipients changed. */
static int cli_queue_hold(const cli_args_t *args, bool hold)
{
    const char *verb = hold ? "hold" : "release";
    cli_queue_tally_t t = {args, verb, 0, 0, false};
    int rc = cli_queue_given_ids(args, verb, cli_queue_hold_done, &t);

    if (rc == CLI_OK && !args->json)
        printf("%zu recipient%s %s\n", t.done, t.done == 1 ? "" : "s",
               hold ? "held" : "released");
    return rc != CLI_OK || t.unknown ? CLI_FAIL : CLI_OK;
}

int cli_hold(const cli_args_t *args)
{
    return cli_queue_hold(args, true);
}

int cli_release(const cli_args_t *args)
{
    return cli_queue_hold(args, false);
}

/* ---- stats ---- */

int cli_stats(const cli_args_t *args)
{
    json_t *v;
    const json_t *st;
    int width = 0;

    if (cli_queue_ask(args, "stats", "stats", &v) != CLI_OK)
        return CLI_FAIL;
    st = json_get(v, "stats");
    if (args->json || st == NULL || st->type != JSON_OBJECT) {
        json_free(v);
        return CLI_OK;
    }
    /* One column of names (a family's parts indented under it), one of
     * figures. */
    for (size_t i = 0; i < st->n; i++) {
        const json_t *e = st->items[i];
        int w = (int)strlen(st->keys[i]);
        width = w > width ? w : width;
        for (size_t k = 0; e->type == JSON_OBJECT && k < e->n; k++)
            width = (int)strlen(e->keys[k]) + 2 > width ? (int)strlen(e->keys[k]) + 2 : width;
    }
    for (size_t i = 0; i < st->n; i++) {
        const json_t *e = st->items[i];
        double total = 0;

        if (e->type == JSON_NUMBER) {
            printf("%-*s %12.0f\n", width, st->keys[i], e->number);
            continue;
        }
        if (e->type != JSON_OBJECT)
            continue;
        /* A family split by a label: its total, then each part. */
        for (size_t k = 0; k < e->n; k++)
            total += e->items[k]->type == JSON_NUMBER ? e->items[k]->number : 0;
        printf("%-*s %12.0f\n", width, st->keys[i], total);
        for (size_t k = 0; k < e->n; k++)
            if (e->items[k]->type == JSON_NUMBER)
                printf("  %-*s %12.0f\n", width - 2, e->keys[k], e->items[k]->number);
    }
    json_free(v);
    return CLI_OK;
}
