/*
 * options - a configuration snapshot (config.h) turned into the options
 * each stage is built from, so that no stage outside mxfwd/ reads
 * config_t.
 *
 * The options point into the snapshot and into the storage given with
 * them; both must outlive the call that takes the options (the stages copy
 * what they keep).  options_client_free() releases that storage.
 */
#ifndef MXFWD_OPTIONS_H
#define MXFWD_OPTIONS_H

#include "auth.h"
#include "client.h"
#include "config.h"
#include "sign.h"
#include "smtpd.h"
#include "srs_store.h"

/* Storage behind a client_options_t. */
typedef struct {
    route_entry_t *routes;
    struct sockaddr_storage *listen;
} options_client_t;

/* The outbound client's options from cfg: routes, outbound_port,
 * outbound_tls, timeout, the delivery limits, the listen addresses; stats
 * is the registry its counters go to. */
void options_client(const config_t *cfg, stats_t *stats, client_options_t *opts,
                    options_client_t *storage);
void options_client_free(options_client_t *storage);

/* Storage behind an smtpd_options_t. */
typedef struct {
    smtpd_milter_t *milters;
    dnsbl_list_t *dnsbl, *dnswl;
} options_smtpd_t;

/* The inbound server's values from cfg, its filters and client checks
 * included; the borrowed services (stats, resolver, auth) are left NULL
 * for the caller. */
void options_smtpd(const config_t *cfg, smtpd_options_t *opts, options_smtpd_t *storage);
void options_smtpd_free(options_smtpd_t *storage);

/* The signer of forwarded mail from cfg (signing_key and the keys beside
 * it): 0 and *out (NULL when no signing_key is set), or an error with the
 * reason in why. */
int options_signer(const config_t *cfg, sign_ctx_t **out, char *why, size_t why_size);

/* srs_long_senders as srs_forward_long() takes it. */
srs_long_t options_long_senders(const config_t *cfg);

/* The envelope store's options from cfg: envelope_store, its size, and
 * the lifetime of an entry (srs_max_age in whole days and a margin,
 * docs/srs.md); the clock is the caller's. */
void options_store(const config_t *cfg, srs_store_options_t *opts);

/* The sender checks' values from cfg (hostname, spf_action,
 * dmarc_action); the loop, resolver and TXT lookups are the caller's. */
void options_auth(const config_t *cfg, auth_config_t *ac);

#endif
