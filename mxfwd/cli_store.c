/*
 * cli_store.c - the envelope store for the commands that rewrite and
 * resolve addresses (srs forward, srs reverse, resolve): opened, asked
 * once and closed, on a loop of their own, as the daemon would ask it.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "default.h"
#include "options.h"
#include "srs_store.h"
#include "xalloc.h"

typedef struct {
    bool done;
    int status;
    char *sender;
    uv_timer_t timer; /* keeps the loop running (the store's handles do not) */
} cli_store_wait_t;

static void cli_store_timeout(uv_timer_t *t)
{
    cli_store_wait_t *w = t->data;

    if (!w->done) {
        w->done = true;
        w->status = SRS_STORE_ETIMEOUT;
    }
}

static void cli_store_put_done(void *arg, int status)
{
    cli_store_wait_t *w = arg;

    w->done = true;
    w->status = status;
}

static void cli_store_got(void *arg, int status, const char *sender)
{
    cli_store_wait_t *w = arg;

    w->done = true;
    w->status = status;
    if (status == 0)
        w->sender = xstrdup(sender);
}

/*
 * Open the store on loop, put (sender != NULL) or get key, wait, close.
 * CLI_STORE_NONE when the store is an embedded file that does not exist
 * (only the daemon makes it, as its own user).
 */
static int cli_store_ask(const config_t *cfg, const char *key, const char *sender, char **out,
                         char *why, size_t why_size)
{
    srs_store_options_t opts;
    srs_store_location_t loc;
    cli_store_wait_t w = {.status = 0};
    srs_store_t *st = NULL;
    struct stat sb;
    uv_loop_t loop;
    int rc;

    why[0] = '\0';
    if (srs_store_location(cfg->envelope_store, &loc, why, why_size) < 0)
        return SRS_STORE_ELOCATION;
    if (loc.kind == SRS_STORE_EMBEDDED && stat(loc.path, &sb) != 0)
        return CLI_STORE_NONE;
    options_store(cfg, &opts);
    opts.no_sweep = true;
    uv_loop_init(&loop);
    if ((rc = srs_store_open(&loop, &opts, &st, why, why_size)) < 0)
        goto done;
    uv_timer_init(&loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, cli_store_timeout, DEFAULT_REDIS_TIMEOUT_MS + 1000, 0);
    if (sender != NULL) {
        rc = srs_store_put(st, key, sender, cli_store_put_done, &w);
        if (rc == SRS_STORE_AT_SYNC)
            cli_store_put_done(&w, srs_store_sync(st));
    } else {
        rc = srs_store_get(st, key, cli_store_got, &w);
    }
    if (rc < 0)
        cli_store_put_done(&w, rc);
    while (!w.done)
        uv_run(&loop, UV_RUN_ONCE);
    rc = w.status;
    *out = w.sender;
    uv_close((uv_handle_t *)&w.timer, NULL);
    srs_store_close(st, NULL, NULL);
done:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

int cli_store_put(const config_t *cfg, const char *key, const char *sender, char *why,
                  size_t why_size)
{
    char *unused = NULL;

    return cli_store_ask(cfg, key, sender, &unused, why, why_size);
}

int cli_store_get(const config_t *cfg, const char *key, char **sender, char *why, size_t why_size)
{
    *sender = NULL;
    return cli_store_ask(cfg, key, NULL, sender, why, why_size);
}
