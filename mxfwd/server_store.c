#include "server_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "options.h"
#include "str.h"
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

static uint64_t server_store_entries(void *arg)
{
    srs_store_stats_t st;

    srs_store_stats(arg, &st);
    return st.entries;
}

static uint64_t server_store_bytes(void *arg)
{
    srs_store_stats_t st;

    srs_store_stats(arg, &st);
    return st.bytes;
}

static uint64_t server_store_written(void *arg)
{
    srs_store_stats_t st;

    srs_store_stats(arg, &st);
    return st.written;
}

static uint64_t server_store_expired(void *arg)
{
    srs_store_stats_t st;

    srs_store_stats(arg, &st);
    return st.expired;
}

static uint64_t server_store_up(void *arg)
{
    srs_store_stats_t st;

    srs_store_stats(arg, &st);
    return st.connected;
}

static void server_store_register(srs_store_t *st, stats_t *registry)
{
    stats_register_fn(registry, STATS_GAUGE, "envelope_store_entries", NULL, NULL,
                      "long senders kept in the envelope store (with Redis: the keys of its "
                      "database)",
                      server_store_entries, st);
    stats_register_fn(registry, STATS_GAUGE, "envelope_store_bytes", NULL, NULL,
                      "size of the envelope store: the LMDB file's pages in use (with Redis: "
                      "its used_memory)",
                      server_store_bytes, st);
    stats_register_fn(registry, STATS_COUNTER, "envelope_store_written", NULL, NULL,
                      "entries written to the envelope store (a sender already there with "
                      "time to live is not written again)",
                      server_store_written, st);
    stats_register_fn(registry, STATS_COUNTER, "envelope_store_expired", NULL, NULL,
                      "expired entries removed from the embedded envelope store",
                      server_store_expired, st);
    stats_register_fn(registry, STATS_GAUGE, "envelope_store_up", NULL, NULL,
                      "1 while the envelope store can be used (Redis: connected)", server_store_up,
                      st);
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

void server_store_close(srs_store_t *st, stats_t *registry)
{
    if (st == NULL)
        return;
    stats_detach(registry, st);
    srs_store_close(st, NULL, NULL);
}
