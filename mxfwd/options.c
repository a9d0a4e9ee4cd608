#include "options.h"

#include <stdlib.h>

#include "default.h"

#include "xalloc.h"

static client_tls_t options_tls(config_tls_t t)
{
    switch (t) {
    case CONFIG_TLS_REQUIRED:
        return CLIENT_TLS_REQUIRED;
    case CONFIG_TLS_OFF:
        return CLIENT_TLS_OFF;
    case CONFIG_TLS_OPPORTUNISTIC:
        break;
    }
    return CLIENT_TLS_OPPORTUNISTIC;
}

void options_client(const config_t *cfg, stats_t *stats, client_options_t *opts,
                    options_client_t *storage)
{
    storage->routes = xcalloc(cfg->nroutes + 1, sizeof(*storage->routes));
    for (size_t i = 0; i < cfg->nroutes; i++) {
        storage->routes[i].domain = cfg->routes[i].domain;
        storage->routes[i].host = cfg->routes[i].host;
        storage->routes[i].port = cfg->routes[i].port;
    }
    storage->listen = xcalloc(cfg->nlisten + 1, sizeof(*storage->listen));
    for (size_t i = 0; i < cfg->nlisten; i++)
        storage->listen[i] = cfg->listen[i].sa;
    *opts = (client_options_t){
        .hostname = cfg->hostname,
        .routes = storage->routes,
        .nroutes = cfg->nroutes,
        .port = cfg->outbound_port,
        .listen = storage->listen,
        .nlisten = cfg->nlisten,
        .tls = options_tls(cfg->outbound_tls),
        .timeout = cfg->timeout,
        .max_deliveries = cfg->max_deliveries,
        .max_deliveries_per_domain = cfg->max_deliveries_per_domain,
        .stats = stats,
    };
}

void options_client_free(options_client_t *storage)
{
    free(storage->routes);
    free(storage->listen);
    storage->routes = NULL;
    storage->listen = NULL;
}

static dnsbl_list_t *options_dnsbl(const config_dnsbl_t *l, size_t n)
{
    dnsbl_list_t *out = xcalloc(n + 1, sizeof(*out));

    for (size_t i = 0; i < n; i++)
        out[i] = (dnsbl_list_t){.zone = l[i].zone, .pattern = l[i].pattern};
    return out;
}

void options_smtpd(const config_t *cfg, smtpd_options_t *opts, options_smtpd_t *storage)
{
    static const smtpd_milter_action_t actions[] = {
        [CONFIG_MILTER_TEMPFAIL] = SMTPD_MILTER_TEMPFAIL,
        [CONFIG_MILTER_ACCEPT] = SMTPD_MILTER_ACCEPT,
        [CONFIG_MILTER_REJECT] = SMTPD_MILTER_REJECT,
    };

    storage->milters = xcalloc(cfg->nmilters + 1, sizeof(*storage->milters));
    for (size_t i = 0; i < cfg->nmilters; i++)
        storage->milters[i] =
            (smtpd_milter_t){.name = cfg->milters[i].text, .addr = cfg->milters[i].addr};
    storage->dnsbl = options_dnsbl(cfg->dnsbl, cfg->ndnsbl);
    storage->dnswl = options_dnsbl(cfg->dnswl, cfg->ndnswl);
    *opts = (smtpd_options_t){
        .hostname = cfg->hostname,
        .srs_domain = cfg->srs_domain,
        .postmaster = cfg->postmaster,
        .max_message_size = cfg->max_message_size,
        .max_recipients = cfg->max_recipients,
        .max_connections = cfg->max_connections,
        .max_connections_per_ip = cfg->max_connections_per_ip,
        .timeout = cfg->timeout,
        .max_line_length = cfg->max_line_length,
        .max_errors = cfg->max_errors,
        .max_hops = cfg->max_hops,
        .shutdown_grace = cfg->shutdown_grace,
        .milters = storage->milters,
        .nmilters = cfg->nmilters,
        .milter_timeout = cfg->milter_timeout,
        .milter_default_action = actions[cfg->milter_default_action],
        .milter_body_changes = cfg->milter_body_changes,
        .dnsbl = storage->dnsbl,
        .ndnsbl = cfg->ndnsbl,
        .dnswl = storage->dnswl,
        .ndnswl = cfg->ndnswl,
        .reject_unknown_sender_domain = cfg->reject_unknown_sender_domain,
        .reject_non_fqdn_sender = cfg->reject_non_fqdn_sender,
        .connection_rate_limit = cfg->client_connection_rate_limit,
        .message_rate_limit = cfg->client_message_rate_limit,
        .recipient_rate_limit = cfg->client_recipient_rate_limit,
        .rate_limit_exempt = cfg->rate_limit_exempt,
        .nrate_limit_exempt = cfg->nrate_limit_exempt,
        .long_senders = options_long_senders(cfg),
    };
}

srs_long_t options_long_senders(const config_t *cfg)
{
    switch (cfg->srs_long_senders) {
    case CONFIG_LONG_STORE:
        return SRS_LONG_STORE;
    case CONFIG_LONG_EMBED:
        return SRS_LONG_EMBED;
    case CONFIG_LONG_REJECT:
        break;
    }
    return SRS_LONG_REJECT;
}

void options_store(const config_t *cfg, srs_store_options_t *opts)
{
    *opts = (srs_store_options_t){
        .location = cfg->envelope_store,
        /* An address is good for srs_max_age whole days after the day it
         * was made: its entry outlives that by the margin. */
        .expiry = cfg->srs_max_age / 86400 * 86400 + DEFAULT_ENVELOPE_STORE_MARGIN,
        .max_size = cfg->envelope_store_size,
    };
}

void options_smtpd_free(options_smtpd_t *storage)
{
    free(storage->milters);
    free(storage->dnsbl);
    free(storage->dnswl);
    *storage = (options_smtpd_t){0};
}

static auth_action_t options_action(config_action_t a)
{
    switch (a) {
    case CONFIG_ACTION_TAG:
        return AUTH_ACTION_TAG;
    case CONFIG_ACTION_OFF:
        return AUTH_ACTION_OFF;
    case CONFIG_ACTION_REJECT:
        break;
    }
    return AUTH_ACTION_REJECT;
}

void options_auth(const config_t *cfg, auth_config_t *ac)
{
    *ac = (auth_config_t){
        .hostname = cfg->hostname,
        .spf_action = options_action(cfg->spf_action),
        .dmarc_action = options_action(cfg->dmarc_action),
    };
}

int options_signer(const config_t *cfg, sign_ctx_t **out, char *why, size_t why_size)
{
    static const sign_rewrite_t rewrite[] = {
        [CONFIG_REWRITE_DMARC] = SIGN_REWRITE_DMARC,
        [CONFIG_REWRITE_OFF] = SIGN_REWRITE_OFF,
        [CONFIG_REWRITE_ALWAYS] = SIGN_REWRITE_ALWAYS,
    };
    sign_config_t sc = {
        .key_path = cfg->signing_key,
        .selector = cfg->signing_selector,
        .domain = cfg->signing_domain,
        .dkim = cfg->dkim_sign,
        .arc = cfg->arc_seal,
        .rewrite = rewrite[cfg->from_rewrite],
        .rewrite_address = cfg->from_rewrite_address,
        .authserv_id = cfg->hostname,
    };

    *out = NULL;
    if (cfg->signing_key == NULL)
        return 0;
    return sign_ctx_new(&sc, out, why, why_size);
}
