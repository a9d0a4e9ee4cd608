#include "reload.h"

#include <stdio.h>
#include <stdlib.h>

#include "default.h"
#include "log.h"
#include "srs_secrets.h"
#include "tls.h"
#include "xalloc.h"

/* How long a changed file must stay unchanged before it is read. */
#define RELOAD_SETTLE_MS 300

typedef enum { RELOAD_TABLE, RELOAD_SECRETS, RELOAD_TLS } reload_kind_t;

typedef struct {
    uv_fs_poll_t poll;
    reload_t *owner;
    reload_kind_t kind;
    const char *path; /* the config's */
    int last_status;  /* of the last poll, to log a vanished file once */
} reload_watch_t;

struct reload {
    server_t *srv;
    uv_timer_t settle;
    reload_watch_t watch[4];
    size_t nwatch;
    unsigned pending; /* 1 << reload_kind_t */
    unsigned handles; /* open; freed at 0 */
};

static void reload_log_error(void *ctx, const char *message)
{
    (void)ctx;
    log_error("%s", message);
}

int reload_load_table(const config_t *cfg, reload_report_fn report, void *ctx, table_t **out)
{
    return table_load(cfg->forward_table, report, ctx, out);
}

int reload_load_srs(const config_t *cfg, reload_report_fn report, void *ctx, srs_t **out)
{
    srs_secrets_t secrets;
    char msg[1024];
    int errors, rc;

    *out = NULL;
    errors = srs_secrets_load(cfg->srs_secrets, report, report, ctx, &secrets);
    if (errors > 0)
        return errors;
    rc = srs_new(cfg->srs_domain, cfg->srs_max_age, (const char *const *)secrets.secret,
                 secrets.n, out);
    srs_secrets_free(&secrets);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "%s: %s", cfg->srs_secrets, srs_strerror(rc));
        report(ctx, msg);
        return 1;
    }
    return 0;
}

int reload_load_tls(const config_t *cfg, reload_report_fn report, void *ctx, SSL_CTX **out)
{
    char err[512];

    *out = NULL;
    if (cfg->tls_cert == NULL)
        return 0;
    *out = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
    if (*out == NULL) {
        report(ctx, err);
        return 1;
    }
    return 0;
}

static void reload_kind(reload_t *r, reload_kind_t kind)
{
    server_t *srv = r->srv;
    const config_t *cfg = srv->cfg;
    table_t *table;
    srs_t *srs;
    SSL_CTX *ctx;

    switch (kind) {
    case RELOAD_TABLE:
        if (reload_load_table(cfg, reload_log_error, NULL, &table) > 0) {
            log_error("%s: not reloaded, the previous forward table stays in use",
                      cfg->forward_table);
            return;
        }
        server_set_table(srv, table);
        log_info("reloaded forward table %s: %zu aliases", cfg->forward_table, table_count(table));
        break;
    case RELOAD_SECRETS:
        if (reload_load_srs(cfg, reload_log_error, NULL, &srs) > 0) {
            log_error("%s: not reloaded, the previous SRS secrets stay in use", cfg->srs_secrets);
            return;
        }
        server_set_srs(srv, srs);
        log_info("reloaded SRS secrets %s", cfg->srs_secrets);
        break;
    case RELOAD_TLS:
        if (reload_load_tls(cfg, reload_log_error, NULL, &ctx) > 0) {
            log_error("%s: not reloaded, the previous certificate stays in use", cfg->tls_cert);
            return;
        }
        server_set_tls(srv, ctx);
        log_info("reloaded TLS certificate %s", cfg->tls_cert);
        break;
    }
}

static void reload_settle_cb(uv_timer_t *t)
{
    reload_t *r = t->data;
    unsigned pending = r->pending;

    r->pending = 0;
    for (int k = RELOAD_TABLE; k <= RELOAD_TLS; k++)
        if (pending & (1u << k))
            reload_kind(r, (reload_kind_t)k);
}

static void reload_poll_cb(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                           const uv_stat_t *curr)
{
    reload_watch_t *w = h->data;
    reload_t *r = w->owner;

    (void)prev;
    (void)curr;
    if (status < 0) {
        /* Gone (perhaps for a moment, mid-replace): keep what is loaded. */
        if (status != w->last_status)
            log_warning("%s: %s; keeping what is loaded", w->path, uv_strerror(status));
        w->last_status = status;
        return;
    }
    w->last_status = 0;
    r->pending |= 1u << w->kind;
    /* Restarting the timer at each change waits for the file to settle. */
    uv_timer_start(&r->settle, reload_settle_cb, RELOAD_SETTLE_MS, 0);
}

static void reload_close_cb(uv_handle_t *h)
{
    reload_t *r = h->data;

    if (h->type == UV_FS_POLL)
        r = ((reload_watch_t *)h->data)->owner;
    if (--r->handles == 0)
        free(r);
}

static void reload_watch(reload_t *r, reload_kind_t kind, const char *path)
{
    reload_watch_t *w = &r->watch[r->nwatch++];

    w->owner = r;
    w->kind = kind;
    w->path = path;
    uv_fs_poll_init(r->srv->loop, &w->poll);
    w->poll.data = w;
    r->handles++;
    uv_fs_poll_start(&w->poll, reload_poll_cb, path, DEFAULT_RELOAD_INTERVAL * 1000);
}

reload_t *reload_start(server_t *srv)
{
    reload_t *r = xcalloc(1, sizeof(*r));
    const config_t *cfg = srv->cfg;

    r->srv = srv;
    uv_timer_init(srv->loop, &r->settle);
    r->settle.data = r;
    r->handles = 1;
    reload_watch(r, RELOAD_TABLE, cfg->forward_table);
    reload_watch(r, RELOAD_SECRETS, cfg->srs_secrets);
    if (cfg->tls_cert != NULL) {
        reload_watch(r, RELOAD_TLS, cfg->tls_cert);
        reload_watch(r, RELOAD_TLS, cfg->tls_key);
    }
    return r;
}

void reload_all(reload_t *r)
{
    log_info("reloading on SIGHUP");
    uv_timer_stop(&r->settle);
    r->pending = 0;
    reload_kind(r, RELOAD_TABLE);
    reload_kind(r, RELOAD_SECRETS);
    if (r->srv->cfg->tls_cert != NULL)
        reload_kind(r, RELOAD_TLS);
}

void reload_stop(reload_t *r)
{
    uv_close((uv_handle_t *)&r->settle, reload_close_cb);
    for (size_t i = 0; i < r->nwatch; i++)
        uv_close((uv_handle_t *)&r->watch[i].poll, reload_close_cb);
}
