/*
 * cli - the subcommands of the mxfwd binary.
 *
 * main() parses the command line into cli_args_t and calls one of these;
 * each returns the process exit status: 0 success, 1 a failure its output
 * explains, 2 bad usage.  Output for people goes to stdout, problems to
 * stderr.
 */
#ifndef MXFWD_CLI_H
#define MXFWD_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "table.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

typedef struct {
    const char *config_path;
    bool verbose; /* -v: debug lines */
    bool json;    /* --json: machine-readable output */
    const char *output; /* -o FILE (dkim-keygen) */
    const char *domain; /* -d DOMAIN (flush) */
    bool body;          /* --body (queue show) */
    int argc;     /* words after the command */
    char **argv;
} cli_args_t;

/* A reporter for config_load() and the other loaders: the line on stderr. */
void cli_print_error(void *ctx, const char *message);

/* Where mail to addr[0..len) goes, as the inbound session decides it: the
 * forward table, with srs_domain ours even when the table does not list
 * it (the SRS side is the caller's). */
table_result_t cli_table_lookup(const config_t *cfg, const table_t *table, const char *addr,
                                size_t len, table_dests_t *dests);

/* What check-config, doctor and explain say when signing_key is not set. */
#define CLI_SIGNING_OFF                                                                        \
    "signing_key is not set: forwarded mail is not DKIM-signed or ARC-sealed, and From is "    \
    "never rewritten"

/* cli_store.c: the envelope store, as the daemon would ask it.  0, an
 * SRS_STORE_E* or -errno (the words of a failure to open it in why), or
 * CLI_STORE_NONE: the store is a file that does not exist yet (the
 * daemon makes it).  A sender found is the caller's to free. */
#define CLI_STORE_NONE 1
int cli_store_put(const config_t *cfg, const char *key, const char *sender, char *why,
                  size_t why_size);
int cli_store_get(const config_t *cfg, const char *key, char **sender, char *why,
                  size_t why_size);

int cli_serve(const cli_args_t *args);
int cli_check_config(const cli_args_t *args);
int cli_resolve(const cli_args_t *args);
int cli_srs_forward(const cli_args_t *args);
int cli_srs_reverse(const cli_args_t *args);
int cli_queue(const cli_args_t *args);
int cli_queue_show(const cli_args_t *args);
int cli_flush(const cli_args_t *args);
int cli_delete(const cli_args_t *args);
int cli_hold(const cli_args_t *args);
int cli_release(const cli_args_t *args);
int cli_stats(const cli_args_t *args);
/* doctor.c, explain.c, keygen.c */
int cli_doctor(const cli_args_t *args);
int cli_explain(const cli_args_t *args);
int cli_dkim_keygen(const cli_args_t *args);

#endif
