/*
 * reload - the files `mxfwd serve` reloads while running: the forward
 * table, the SRS secrets, and the TLS certificate and key.
 *
 * Each file is watched by polling its status every DEFAULT_RELOAD_INTERVAL
 * seconds (uv_fs_poll_t), which sees a file rewritten in place as well as
 * one replaced by rename, as editors and deployment tools do, and works
 * on every file system.  A change is acted on once the file has been quiet
 * for a moment, so a file caught half written is not loaded.  SIGHUP
 * reloads everything at once.
 *
 * A file that does not load leaves the running one in place: every error
 * is logged as "FILE:LINE: problem", then one line saying the old one is
 * kept.  Sessions keep the snapshot they started with.
 *
 * The loaders are also what start-up uses, so a file means the same at
 * start and on reload; at start their failure is fatal (main only).
 */
#ifndef MXFWD_RELOAD_H
#define MXFWD_RELOAD_H

#include <openssl/ssl.h>

#include "config.h"
#include "server.h"
#include "srs.h"
#include "table.h"

/* Receives "FILE:LINE: problem" lines. */
typedef void (*reload_report_fn)(void *ctx, const char *message);

/* Each returns 0 and the new object, or the number of errors reported. */
int reload_load_table(const config_t *cfg, reload_report_fn report, void *ctx, table_t **out);
int reload_load_srs(const config_t *cfg, reload_report_fn report, void *ctx, srs_t **out);
int reload_load_tls(const config_t *cfg, reload_report_fn report, void *ctx, SSL_CTX **out);

/* Start watching the server's files. */
reload_t *reload_start(server_t *srv);
/* Reload every file now (SIGHUP). */
void reload_all(reload_t *r);
/* Stop watching; the handles close on the loop, then r is freed. */
void reload_stop(reload_t *r);

#endif
