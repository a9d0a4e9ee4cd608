#include "reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "default.h"
#include "log.h"
#include "options.h"
#include "srs_secrets.h"
#include "tls.h"
#include "xalloc.h"

/* How long a changed file must keep the same status before it is read. */
#define RELOAD_SETTLE_MS 300

/* What gets loaded; the certificate and key go together. */
typedef enum {
    RELOAD_TABLE,
    RELOAD_SECRETS,
    RELOAD_TLS,
    RELOAD_SIGNING,
    RELOAD_NKINDS
} reload_kind_t;

typedef struct {
    const char *path; /* the config's */
    reload_kind_t kind;
    struct stat loaded; /* status just before the version in use was read */
    struct stat seen;   /* a different status, waiting to settle */
    bool changed;       /* seen is set */
    int stat_errno;     /* of the last check; logged when it changes */
    int logged_errno;
} reload_watch_t;

struct reload {
    uv_loop_t *loop;
    const config_t *cfg;
    reload_hooks_t hooks;
    uv_timer_t tick;   /* every DEFAULT_RELOAD_INTERVAL */
    uv_timer_t settle; /* a changed file is looked at again */
    uv_work_t work;
    unsigned handles;
    bool busy;        /* work in the pool: the fields below are its */
    bool hup_pending; /* SIGHUP while busy */
    bool stopping;

    reload_watch_t watch[5];
    size_t nwatch;

    /* The job: kinds to load whatever their status (SIGHUP), and what the
     * pool made of it for the loop thread. */
    unsigned force;
    unsigned tried;  /* kinds loaded (or attempted) by the job */
    unsigned failed; /* kinds that did not load */
    table_t *table;
    srs_t *srs;
    SSL_CTX *tls;
    sign_ctx_t *signer;
};

static void reload_log_error(void *ctx, const char *message)
{
    (void)ctx;
    log_error("%s", message);
}

static bool reload_same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* ---- loading (any thread) ---------------------------------------------------- */

/* Load one kind into r's result fields, recording the status its files had
 * just before they were read: a change during the read is seen next time. */
static void reload_load(reload_t *r, reload_kind_t kind)
{
    const config_t *cfg = r->cfg;
    srs_secrets_t secrets;
    char err[512];
    int rc;

    for (size_t i = 0; i < r->nwatch; i++) {
        reload_watch_t *w = &r->watch[i];
        if (w->kind != kind)
            continue;
        if (stat(w->path, &w->loaded) < 0)
            memset(&w->loaded, 0, sizeof(w->loaded));
        w->changed = false;
    }
    r->tried |= 1u << kind;
    switch (kind) {
    case RELOAD_TABLE:
        if (table_load(cfg->forward_table, reload_log_error, NULL, &r->table) > 0)
            r->failed |= 1u << kind;
        break;
    case RELOAD_SECRETS:
        if (srs_secrets_load(cfg->srs_secrets, reload_log_error, reload_log_error, NULL, &secrets) >
            0) {
            r->failed |= 1u << kind;
            break;
        }
        rc = srs_new(cfg->srs_domain, cfg->srs_max_age, (const char *const *)secrets.secret,
                     secrets.n, &r->srs);
        srs_secrets_free(&secrets);
        if (rc < 0) {
            log_error("%s: %s", cfg->srs_secrets, srs_strerror(rc));
            r->failed |= 1u << kind;
        }
        break;
    case RELOAD_TLS:
        r->tls = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
        if (r->tls == NULL) {
            log_error("%s", err);
            r->failed |= 1u << kind;
        }
        break;
    case RELOAD_SIGNING:
        if (options_signer(cfg, &r->signer, err, sizeof(err)) != 0) {
            log_error("%s: %s", cfg->signing_key, err);
            r->failed |= 1u << kind;
        }
        break;
    case RELOAD_NKINDS:
        break;
    }
}

/* In the pool: look at every file; load what is forced, and what changed
 * and has kept its new status since it was last looked at. */
static void reload_work(uv_work_t *req)
{
    reload_t *r = req->data;
    unsigned load = r->force;

    for (size_t i = 0; i < r->nwatch; i++) {
        reload_watch_t *w = &r->watch[i];
        struct stat st;

        if (stat(w->path, &st) < 0) {
            w->stat_errno = errno;
            continue;
        }
        w->stat_errno = 0;
        if (reload_same(&st, &w->loaded)) {
            w->changed = false;
        } else if (w->changed && reload_same(&st, &w->seen)) {
            load |= 1u << w->kind;
        } else {
            w->seen = st;
            w->changed = true;
        }
    }
    for (int k = 0; k < RELOAD_NKINDS; k++)
        if (load & (1u << k))
            reload_load(r, (reload_kind_t)k);
}

/* Whether the configuration has files of kind k at all. */
static bool reload_kind_on(const reload_t *r, int k)
{
    return (k != RELOAD_TLS || r->cfg->tls_cert != NULL) &&
           (k != RELOAD_SIGNING || r->cfg->signing_key != NULL);
}

/* Drop what a job loaded and nobody took. */
static void reload_drop(reload_t *r)
{
    table_unref(r->table);
    srs_free(r->srs);
    SSL_CTX_free(r->tls);
    sign_ctx_unref(r->signer);
    r->table = NULL;
    r->srs = NULL;
    r->tls = NULL;
    r->signer = NULL;
}

/* ---- the loop side ------------------------------------------------------------- */

/* Put what a job loaded in place, and log it. */
static void reload_apply(reload_t *r)
{
    const config_t *cfg = r->cfg;
    static const char *const what[RELOAD_NKINDS] = {"forward table stays", "SRS secrets stay",
                                                    "TLS certificate stays", "signing key stays"};
    const char *paths[RELOAD_NKINDS] = {cfg->forward_table, cfg->srs_secrets, cfg->tls_cert,
                                        cfg->signing_key};
    char key[32];

    for (int k = 0; k < RELOAD_NKINDS; k++) {
        if (!(r->tried & (1u << k)))
            continue;
        if (r->failed & (1u << k)) {
            log_error("%s: not reloaded, the previous %s in use", paths[k], what[k]);
            continue;
        }
        if (k == RELOAD_TABLE) {
            log_info("reloaded forward table %s: %zu aliases", paths[k], table_count(r->table));
            r->hooks.set_table(r->hooks.arg, r->table);
            r->table = NULL;
        } else if (k == RELOAD_SECRETS) {
            r->hooks.set_srs(r->hooks.arg, r->srs);
            r->srs = NULL;
            log_info("reloaded SRS secrets %s", paths[k]);
        } else if (k == RELOAD_TLS) {
            r->hooks.set_tls(r->hooks.arg, r->tls);
            r->tls = NULL;
            log_info("reloaded TLS certificate %s", paths[k]);
        } else {
            log_info("reloaded signing key %s (%s)", paths[k],
                     sign_ctx_key_text(r->signer, key, sizeof(key)));
            r->hooks.set_signer(r->hooks.arg, r->signer);
            r->signer = NULL;
        }
    }
    reload_drop(r); /* what failed beside what loaded */
    r->tried = r->failed = r->force = 0;
}

static void reload_close_cb(uv_handle_t *h)
{
    reload_t *r = h->data;

    if (--r->handles == 0 && !r->busy)
        free(r);
}

static void reload_submit(reload_t *r, unsigned force);
static void reload_tick_cb(uv_timer_t *t);

static void reload_after_work(uv_work_t *req, int status)
{
    reload_t *r = req->data;
    bool settle = false;
    bool hup = r->force != 0; /* only SIGHUP's jobs force a load */

    (void)status;
    r->busy = false;
    for (size_t i = 0; i < r->nwatch; i++) {
        reload_watch_t *w = &r->watch[i];
        if (w->stat_errno != w->logged_errno && w->stat_errno != 0)
            log_warning("%s: %s; keeping what is loaded", w->path, strerror(w->stat_errno));
        w->logged_errno = w->stat_errno;
        settle = settle || w->changed;
    }
    if (r->stopping) {
        /* Nothing is swapped in any more; drop what was loaded. */
        reload_drop(r);
        if (r->handles == 0)
            free(r);
        return;
    }
    reload_apply(r);
    /* A SIGHUP is done once its files are in place, unless another
     * came meanwhile, whose job reports instead. */
    if (hup && !r->hup_pending)
        r->hooks.reloaded(r->hooks.arg);
    if (r->hup_pending) {
        r->hup_pending = false;
        reload_submit(r, (1u << RELOAD_NKINDS) - 1);
    } else if (settle) {
        uv_timer_start(&r->settle, reload_tick_cb, RELOAD_SETTLE_MS, 0);
    }
}

static void reload_submit(reload_t *r, unsigned force)
{
    if (r->busy || r->stopping)
        return;
    for (int k = 0; k < RELOAD_NKINDS; k++)
        if (!reload_kind_on(r, k))
            force &= ~(1u << k);
    r->force = force;
    r->busy = true;
    uv_queue_work(r->loop, &r->work, reload_work, reload_after_work);
}

static void reload_tick_cb(uv_timer_t *t)
{
    reload_submit(t->data, 0);
}

static void reload_watch(reload_t *r, reload_kind_t kind, const char *path)
{
    reload_watch_t *w = &r->watch[r->nwatch++];

    w->kind = kind;
    w->path = path;
}

reload_t *reload_new(uv_loop_t *loop, const config_t *cfg, const reload_hooks_t *hooks)
{
    reload_t *r = xcalloc(1, sizeof(*r));

    r->loop = loop;
    r->cfg = cfg;
    r->hooks = *hooks;
    r->work.data = r;
    uv_timer_init(loop, &r->tick);
    uv_timer_init(loop, &r->settle);
    r->tick.data = r->settle.data = r;
    r->handles = 2;
    reload_watch(r, RELOAD_TABLE, cfg->forward_table);
    reload_watch(r, RELOAD_SECRETS, cfg->srs_secrets);
    if (cfg->tls_cert != NULL) {
        reload_watch(r, RELOAD_TLS, cfg->tls_cert);
        reload_watch(r, RELOAD_TLS, cfg->tls_key);
    }
    if (cfg->signing_key != NULL)
        reload_watch(r, RELOAD_SIGNING, cfg->signing_key);
    return r;
}

int reload_initial(reload_t *r)
{
    const config_t *cfg = r->cfg;
    int errors = 0;

    for (int k = 0; k < RELOAD_NKINDS; k++)
        if (reload_kind_on(r, k))
            reload_load(r, (reload_kind_t)k);
    if (r->failed & (1u << RELOAD_TABLE)) {
        log_error("%s: forward table errors", cfg->forward_table);
        errors++;
    }
    if (r->failed & (1u << RELOAD_SECRETS)) {
        log_error("%s: SRS secrets errors", cfg->srs_secrets);
        errors++;
    }
    if (r->failed & (1u << RELOAD_TLS)) {
        log_error("%s: TLS certificate errors", cfg->tls_cert);
        errors++;
    }
    if (r->failed & (1u << RELOAD_SIGNING)) {
        log_error("%s: signing key errors", cfg->signing_key);
        errors++;
    }
    if (errors > 0) {
        reload_drop(r);
        return errors;
    }
    r->hooks.set_table(r->hooks.arg, r->table);
    r->hooks.set_srs(r->hooks.arg, r->srs);
    r->hooks.set_tls(r->hooks.arg, r->tls);
    r->hooks.set_signer(r->hooks.arg, r->signer);
    r->table = NULL;
    r->srs = NULL;
    r->tls = NULL;
    r->signer = NULL;
    r->tried = r->failed = 0;
    return 0;
}

void reload_start(reload_t *r)
{
    uint64_t ms = DEFAULT_RELOAD_INTERVAL * 1000;

    uv_timer_start(&r->tick, reload_tick_cb, ms, ms);
}

void reload_all(reload_t *r)
{
    log_info("reloading on SIGHUP");
    if (r->busy)
        r->hup_pending = true;
    else
        reload_submit(r, (1u << RELOAD_NKINDS) - 1);
}

void reload_stop(reload_t *r)
{
    r->stopping = true;
    uv_close((uv_handle_t *)&r->tick, reload_close_cb);
    uv_close((uv_handle_t *)&r->settle, reload_close_cb);
}
