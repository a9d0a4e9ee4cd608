/*
 * cli_queue.c - `mxfwd queue`, `flush`, `delete ID`, `hold ID`, `release
 * ID` and `stats`: a request to the running daemon's control socket (mxfwd/control.h), its JSON reply
 * shown to people (or passed through with --json).
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "json.h"

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

int cli_flush(const cli_args_t *args)
{
    json_t *v;
    double n;

    if (cli_queue_ask(args, "flush", "flush", &v) != CLI_OK)
        return CLI_FAIL;
    n = json_get_num(v, "flushed", 0);
    if (!args->json)
        printf("%.0f recipient%s due now\n", n, n == 1 ? "" : "s");
    json_free(v);
    return CLI_OK;
}

/* A request naming one message ("delete ID", "hold ID", "release ID"):
 * CLI_OK and the reply in *v. */
static int cli_queue_by_id(const cli_args_t *args, const char *verb, json_t **v)
{
    char request[CONTROL_LINE_MAX];

    /* The id goes on the request line: it must be one word. */
    if (strlen(args->argv[0]) > 64 || strpbrk(args->argv[0], " \t\r\n") != NULL) {
        fprintf(stderr, "mxfwd %s: '%.64s' is not a queue id\n", verb, args->argv[0]);
        return CLI_FAIL;
    }
    snprintf(request, sizeof(request), "%s %s", verb, args->argv[0]);
    return cli_queue_ask(args, verb, request, v);
}

int cli_delete(const cli_args_t *args)
{
    json_t *v;
    double running;

    if (cli_queue_by_id(args, "delete", &v) != CLI_OK)
        return CLI_FAIL;
    running = json_get_num(v, "running", 0);
    if (!args->json && running > 0)
        printf("%s: deleted; %.0f deliver%s in progress finish%s first\n", args->argv[0], running,
               running == 1 ? "y" : "ies", running == 1 ? "es" : "");
    else if (!args->json)
        printf("%s: deleted\n", args->argv[0]);
    json_free(v);
    return CLI_OK;
}

/* hold, release: how many recipients changed. */
static int cli_queue_hold(const cli_args_t *args, bool hold)
{
    const char *verb = hold ? "hold" : "release", *key = hold ? "held" : "released";
    json_t *v;
    double n;

    if (cli_queue_by_id(args, verb, &v) != CLI_OK)
        return CLI_FAIL;
    n = json_get_num(v, key, 0);
    if (!args->json)
        printf("%s: %s (%.0f recipient%s)\n", args->argv[0], key, n, n == 1 ? "" : "s");
    json_free(v);
    return CLI_OK;
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
