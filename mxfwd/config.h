/*
 * config - the mxfwd.conf file.
 *
 * config_load() parses a file into an immutable snapshot: every key of the
 * configuration table (docs/configuration.md) with its default, the repeatable keys
 * (listen, route) as arrays.  Every problem found is reported through the
 * caller's error callback as "FILE:LINE: problem", all of them, not only the
 * first; the load fails when there was at least one.
 *
 * Relative paths in the file (and in the defaults) are made absolute
 * against the working directory at load time, so a later chdir or privilege
 * drop does not change what they name.
 *
 * The snapshot is owned by the caller and released with config_free().
 * Sessions keep the snapshot they started with; a reload builds a new one.
 */
#ifndef MXFWD_CONFIG_H
#define MXFWD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"
#include "diag.h"

typedef enum { CONFIG_TLS_OPPORTUNISTIC, CONFIG_TLS_REQUIRED, CONFIG_TLS_OFF } config_tls_t;
typedef enum { CONFIG_ACTION_REJECT, CONFIG_ACTION_TAG, CONFIG_ACTION_OFF } config_action_t;
typedef enum { CONFIG_LOG_STDERR, CONFIG_LOG_SYSLOG } config_log_t;
/* from_rewrite (docs/configuration.md, Signing). */
typedef enum { CONFIG_REWRITE_DMARC, CONFIG_REWRITE_OFF, CONFIG_REWRITE_ALWAYS } config_rewrite_t;
/* srs_long_senders (docs/srs.md, "Long senders"). */
typedef enum { CONFIG_LONG_STORE, CONFIG_LONG_EMBED, CONFIG_LONG_REJECT } config_long_t;
/* milter_default_action (docs/milter.md). */
typedef enum { CONFIG_MILTER_TEMPFAIL, CONFIG_MILTER_ACCEPT, CONFIG_MILTER_REJECT } config_milter_action_t;
/* spool_sync: an fsync(2) per file, or one syncfs(2) per group commit. */
typedef enum { CONFIG_SYNC_FILE, CONFIG_SYNC_FILESYSTEM } config_sync_t;

typedef struct {
    char *text;                 /* as written, "127.0.0.1:2525" or "[::1]:25" */
    struct sockaddr_storage sa; /* the address to bind */
} config_listen_t;

typedef struct {
    char *domain;   /* lowercased; "*" for the smarthost */
    char *host;     /* host name or IP literal, without brackets */
    uint16_t port;  /* 0: outbound_port */
} config_route_t;

typedef struct {
    char *text;                   /* as written: "inet:127.0.0.1:11332", "unix:/run/x.sock" */
    struct sockaddr_storage addr; /* AF_INET, AF_INET6 or AF_UNIX */
} config_milter_t;

typedef struct {
    char *zone;    /* lowercased */
    char *pattern; /* the answers that count; NULL: any in 127.0.0.0/8 */
} config_dnsbl_t;

typedef struct {
    char *path; /* the file this came from, as given */

    char *hostname;
    config_listen_t *listen;
    size_t nlisten;

    char *srs_domain;
    char *srs_secrets;
    uint64_t srs_max_age;
    config_long_t srs_long_senders;
    /* An absolute file path (default: "envelopes" beside spool_dir), or a
     * Redis: redis://HOST:PORT[/DB], unix:/PATH. */
    char *envelope_store;
    uint64_t envelope_store_size;

    char *forward_table;
    char *spool_dir;
    config_sync_t spool_sync;
    char *control_socket;

    char **dns_servers; /* "ip" or "ip:port" / "[ip6]:port", c-ares CSV syntax */
    size_t ndns_servers;
    config_route_t *routes;
    size_t nroutes;
    uint16_t outbound_port;
    config_tls_t outbound_tls;
    unsigned max_deliveries;
    unsigned max_deliveries_per_domain;

    char *tls_cert;
    char *tls_key;

    config_action_t spf_action;
    config_action_t dmarc_action; /* CONFIG_ACTION_REJECT is "enforce" */

    /* Signing: all off without signing_key (docs/configuration.md). */
    char *signing_key;      /* PEM private key; NULL: no signing */
    char *signing_selector; /* required with signing_key */
    char *signing_domain;   /* default: srs_domain */
    bool dkim_sign;         /* default yes */
    bool arc_seal;          /* default yes */
    config_rewrite_t from_rewrite; /* default dmarc */
    char *from_rewrite_address;    /* default noreply@signing_domain */

    /* Filters and client checks (docs/milter.md, docs/smtp.md). */
    config_milter_t *milters; /* in order */
    size_t nmilters;
    uint64_t milter_timeout;
    config_milter_action_t milter_default_action;
    bool milter_body_changes;
    config_dnsbl_t *dnsbl;
    size_t ndnsbl;
    config_dnsbl_t *dnswl;
    size_t ndnswl;
    bool reject_unknown_sender_domain; /* default yes */
    bool reject_non_fqdn_sender;       /* default yes */
    unsigned client_connection_rate_limit; /* per minute; 0: none */
    unsigned client_message_rate_limit;
    unsigned client_recipient_rate_limit;
    cidr_t *rate_limit_exempt;
    size_t nrate_limit_exempt;

    uint64_t max_message_size;
    unsigned max_recipients;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    uint64_t timeout;
    unsigned max_line_length;
    unsigned max_errors;
    unsigned max_hops;
    uint64_t shutdown_grace;

    uint64_t *retry_schedule; /* seconds; the last repeats */
    size_t nretry_schedule;
    uint64_t max_queue_lifetime;
    uint64_t delay_warning_time; /* seconds; 0: no delay notices */
    char *postmaster;            /* postmaster@hostname and @srs_domain go there; NULL: held */
    bool dsn_hide_destinations;

    char *user;
    config_log_t log;
    bool has_metrics;
    config_listen_t metrics_listen;
} config_t;

/* Receives one "FILE:LINE: problem" (or "FILE: problem") line, without a
 * newline. */
typedef diag_fn config_error_fn;

/*
 * Load path.  Returns the number of errors reported through on_error,
 * never a negative status: 0 and *out is the new snapshot, or a count
 * > 0 and *out is NULL.
 */
int config_load(const char *path, config_error_fn on_error, void *ctx, config_t **out);

/* Parse text as if it were the contents of the file named path (tests);
 * returns the number of errors reported, as config_load(). */
int config_parse(const char *path, const char *text, size_t len, config_error_fn on_error,
                 void *ctx, config_t **out);

void config_free(config_t *cfg);

/* The route for a domain: an exact entry, else "*", else NULL. */
const config_route_t *config_route_for(const config_t *cfg, const char *domain);

#endif
