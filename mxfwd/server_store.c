#include "server_store.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "options.h"
#include "xalloc.h"

/* The spool's blocking work on libuv's thread pool. */
typedef struct {
    uv_work_t req; /* first: the request is the job */
    void (*work)(void *ctx);
    void (*done)(void *ctx);
    void *ctx;
} server_store_job_t;

static void server_store_job_work(uv_work_t *req)
{
    server_store_job_t *job = (server_store_job_t *)req;

    job->work(job->ctx);
}

static void server_store_job_done(uv_work_t *req, int status)
{
    server_store_job_t *job = (server_store_job_t *)req;

    (void)status; /* jobs are never cancelled */
    job->done(job->ctx);
    free(job);
}

static void server_store_job_submit(void *impl, void (*work)(void *), void (*done)(void *),
                                    void *ctx)
{
    server_store_job_t *job = xcalloc(1, sizeof(*job));

    job->work = work;
    job->done = done;
    job->ctx = ctx;
    uv_queue_work(impl, &job->req, server_store_job_work, server_store_job_done);
}

/* The store's figures in the registry: one reader per field of
 * srs_store_stats_t (one store per process). */
typedef struct {
    const char *name;
    stats_kind_t kind;
    size_t field;
    const char *help;
    srs_store_t *st;
} server_store_figure_t;

static server_store_figure_t server_store_figures[] = {
    {"envelope_store_entries", STATS_GAUGE, offsetof(srs_store_stats_t, entries),
     "long senders kept in the envelope store (with Redis: the keys of its database)", NULL},
    {"envelope_store_bytes", STATS_GAUGE, offsetof(srs_store_stats_t, bytes),
     "size of the envelope store: the LMDB file's pages in use (with Redis: its used_memory)",
     NULL},
    {"envelope_store_written", STATS_COUNTER, offsetof(srs_store_stats_t, written),
     "entries written to the envelope store (a sender already there with time to live is not "
     "written again)",
     NULL},
    {"envelope_store_expired", STATS_COUNTER, offsetof(srs_store_stats_t, expired),
     "expired entries removed from the embedded envelope store", NULL},
    {"envelope_store_up", STATS_GAUGE, offsetof(srs_store_stats_t, up),
     "1 while the envelope store can be used (Redis: connected)", NULL},
};

#define SERVER_STORE_NFIGURES (sizeof(server_store_figures) / sizeof(server_store_figures[0]))

static uint64_t server_store_read(void *arg)
{
    const server_store_figure_t *f = arg;
    srs_store_stats_t st;

    srs_store_stats(f->st, &st);
    return *(const uint64_t *)((const char *)&st + f->field);
}

static void server_store_register(srs_store_t *st, stats_t *registry)
{
    for (size_t i = 0; i < SERVER_STORE_NFIGURES; i++) {
        server_store_figure_t *f = &server_store_figures[i];

        f->st = st;
        stats_register_fn(registry, f->kind, f->name, NULL, NULL, f->help, server_store_read, f);
    }
}

srs_store_t *server_store_open(uv_loop_t *loop, const config_t *cfg, stats_t *registry)
{
    srs_store_options_t opts;
    srs_store_location_t loc;
    srs_store_t *st = NULL;
    struct stat sb;
    char why[600];
    int rc;

    if (srs_store_location(cfg->envelope_store, &loc, why, sizeof(why)) < 0)
        log_fatal("envelope_store = %s: %s", cfg->envelope_store, why);
    /* embed and reject make no new entries: a store is opened only to
     * answer bounces to keyed addresses made before, if there is one. */
    if (cfg->srs_long_senders != CONFIG_LONG_STORE && loc.kind == SRS_STORE_EMBEDDED &&
        stat(loc.path, &sb) != 0)
        return NULL;
    options_store(cfg, &opts);
    if ((rc = srs_store_open(loop, &opts, &st, why, sizeof(why))) < 0)
        log_fatal("cannot open the envelope store (envelope_store): %s", why);
    server_store_register(st, registry);
    log_info("envelope store %s (%s): long senders %s", cfg->envelope_store,
             loc.kind == SRS_STORE_REDIS ? "Redis" : "LMDB",
             cfg->srs_long_senders == CONFIG_LONG_STORE ? "kept here" : "not kept (only read)");
    return st;
}

bool server_store_dir(const config_t *cfg, char *dir, size_t size)
{
    srs_store_location_t loc;
    const char *slash;
    char why[256];

    if (srs_store_location(cfg->envelope_store, &loc, why, sizeof(why)) < 0 ||
        loc.kind != SRS_STORE_EMBEDDED || (slash = strrchr(loc.path, '/')) == NULL)
        return false;
    snprintf(dir, size, "%.*s", slash == loc.path ? 1 : (int)(slash - loc.path), loc.path);
    return true;
}

void server_store_spool_options(uv_loop_t *loop, srs_store_t *st, spool_options_t *sopts)
{
    sopts->exec = (spool_executor_t){server_store_job_submit, loop};
    if (st == NULL || srs_store_kind(st) != SRS_STORE_EMBEDDED)
        return;
    sopts->before_ack = srs_store_sync;
    sopts->before_ack_arg = st;
}

static void server_store_restore_one(void *arg, const spool_msg_t *m,
                                     const queue_rcpt_info_t *rcpts)
{
    void **ctx = arg;
    char key[SRS_KEY_SIZE];

    (void)rcpts;
    if (m->sender[0] == '\0' ||
        srs_address_key(m->srs_sender, strlen(m->srs_sender), key) != SRS_KEYED)
        return;
    if (srs_store_put(ctx[0], key, m->sender, NULL, NULL) == SRS_STORE_AT_SYNC)
        (*(size_t *)ctx[1])++;
}

size_t server_store_restore(srs_store_t *st, queue_t *queue)
{
    size_t n = 0;
    void *ctx[2] = {st, &n};
    int rc;

    if (st == NULL || srs_store_kind(st) != SRS_STORE_EMBEDDED)
        return 0;
    queue_list(queue, server_store_restore_one, ctx);
    if (n > 0 && (rc = srs_store_sync(st)) < 0)
        log_warning("envelope store: the entries of %zu queued messages could not be made "
                    "durable again: %s",
                    n, srs_store_strerror(rc));
    return n;
}

void server_store_close(srs_store_t *st, stats_t *registry)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < SERVER_STORE_NFIGURES; i++)
        stats_detach(registry, &server_store_figures[i]);
    srs_store_close(st, NULL, NULL);
}
