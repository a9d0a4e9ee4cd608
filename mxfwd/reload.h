/*
 * reload - the files `mxfwd serve` reloads while running: the forward
 * table, the SRS secrets, and the TLS certificate and key.
 *
 * Every DEFAULT_RELOAD_INTERVAL seconds each file's status (inode, size,
 * modification and change times) is compared with the status it had just
 * before the version in use was read.  That sees a file rewritten in place
 * as well as one replaced by rename, as editors and deployment tools do,
 * on every file system, and misses no change made while a version was
 * being loaded.  A changed file is read once its status has stayed the
 * same for a moment, so a file caught half written is not loaded.  SIGHUP
 * reloads everything at once.
 *
 * Status checks and loading run in libuv's thread pool (a large table
 * takes a while to parse); the new version is swapped in on the loop
 * thread.  A file that does not load leaves the running one in place:
 * every error is logged as "FILE:LINE: problem", then one line saying the
 * old one is kept.  What loads is handed over through the hooks (the
 * daemon gives it to the inbound server, smtpd.h); sessions keep the table
 * they started with.  Once a SIGHUP's files are in place (or kept),
 * reloaded() is called.
 *
 * At start-up, reload_initial() loads everything on the calling thread; its
 * failure is fatal (main only).
 */
#ifndef MXFWD_RELOAD_H
#define MXFWD_RELOAD_H

#include <openssl/ssl.h>
#include <uv.h>

#include "config.h"
#include "sign.h"
#include "srs.h"
#include "table.h"

typedef struct reload reload_t;

/* Where the loaded files go; each set_*() takes ownership of what it is
 * given. */
typedef struct {
    void (*set_table)(void *arg, table_t *table);
    void (*set_srs)(void *arg, srs_t *srs);
    void (*set_tls)(void *arg, SSL_CTX *ctx);
    /* The signer (signing_key and its settings); NULL when none is set. */
    void (*set_signer)(void *arg, sign_ctx_t *signer);
    /* A reload that SIGHUP asked for is done. */
    void (*reloaded)(void *arg);
    void *arg;
} reload_hooks_t;

/* Watch the files cfg names (nothing runs until reload_start()); cfg must
 * outlive r. */
reload_t *reload_new(uv_loop_t *loop, const config_t *cfg, const reload_hooks_t *hooks);
/* Load every file now and hand each over, logging each problem.  Returns
 * the number of files that did not load (each one's errors logged, then a
 * line naming it), never a negative status: 0 when every file loaded and
 * was handed over; otherwise nothing was handed over. */
int reload_initial(reload_t *r);
/* Start checking for changes. */
void reload_start(reload_t *r);
/* Reload every file now (SIGHUP). */
void reload_all(reload_t *r);
/* Stop; the handles close on the loop and r is freed once work in flight
 * has come back. */
void reload_stop(reload_t *r);

#endif
