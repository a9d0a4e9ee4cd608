#include "config.h"

#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "config_int.h"
#include "default.h"
#include "diag.h"
#include "lines.h"
#include "parse.h"
#include "srs_store.h"
#include "str.h"
#include "xalloc.h"

/* An "IP:port" to bind. */
static int config_parse_bind(config_parser_t *p, const char *name, const char *value,
                             config_listen_t *out)
{
    parse_hostport_t hp;

    if (parse_hostport(value, false, &hp) < 0 || !hp.is_ip) {
        config_error(p, p->line,
                     "%s: '%s' is not an IP address and port (127.0.0.1:2525, [::1]:25)", name,
                     value);
        return -1;
    }
    out->text = xstrdup(value);
    parse_sockaddr(hp.host, hp.port, &out->sa);
    return 0;
}

static int config_set_listen(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    config_listen_t l;
    char *tok, *cursor = value;
    int rc = 0;

    /* Several addresses may share a line, as in Postfix's inet_interfaces. */
    while ((tok = str_token(&cursor, " \t,")) != NULL) {
        if (config_parse_bind(p, key->name, tok, &l) < 0) {
            rc = -1;
            continue;
        }
        for (size_t i = 0; i < cfg->nlisten; i++) {
            if (strcmp(cfg->listen[i].text, l.text) == 0) {
                config_error(p, p->line, "listen: %s is listed twice", tok);
                free(l.text);
                l.text = NULL;
                rc = -1;
                break;
            }
        }
        if (l.text == NULL)
            continue;
        cfg->listen = xrealloc(cfg->listen, (cfg->nlisten + 1) * sizeof(*cfg->listen));
        cfg->listen[cfg->nlisten++] = l;
    }
    return rc;
}

static int config_set_metrics(config_parser_t *p, const config_key_t *key, char *value)
{
    if (config_parse_bind(p, key->name, value, &p->cfg->metrics_listen) < 0)
        return -1;
    p->cfg->has_metrics = true;
    return 0;
}

static int config_set_route(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    char *cursor = value;
    char *domain = str_token(&cursor, " \t");
    char *hop = str_token(&cursor, " \t");
    parse_hostport_t hp;
    config_route_t *r;

    (void)key;
    if (domain == NULL || hop == NULL || str_token(&cursor, " \t") != NULL) {
        config_error(p, p->line, "route: expected 'DOMAIN HOST[:PORT]', got '%s'", value);
        return -1;
    }
    if (strcmp(domain, "*") != 0 &&
        (domain[0] == '[' || addr_domain_check(domain, strlen(domain)) < 0)) {
        config_error(p, p->line, "route: '%s' is not a domain name or '*'", domain);
        return -1;
    }
    if (parse_hostport(hop, true, &hp) < 0) {
        config_error(p, p->line, "route: '%s' is not a host name or IP address with an optional port",
                     hop);
        return -1;
    }
    str_lower(domain);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (strcmp(cfg->routes[i].domain, domain) == 0) {
            config_error(p, p->line, "route: %s already has a route", domain);
            return -1;
        }
    }
    cfg->routes = xrealloc(cfg->routes, (cfg->nroutes + 1) * sizeof(*cfg->routes));
    r = &cfg->routes[cfg->nroutes++];
    r->domain = xstrdup(domain);
    r->host = xstrdup(hp.host);
    r->port = hp.port;
    return 0;
}

static int config_set_dns_servers(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    char *tok, *cursor = value;
    parse_hostport_t hp;
    int rc = 0;

    while ((tok = str_token(&cursor, " \t,")) != NULL) {
        if (parse_hostport(tok, true, &hp) < 0 || !hp.is_ip) {
            config_error(p, p->line, "%s: '%s' is not an IP address with an optional port",
                         key->name, tok);
            rc = -1;
            continue;
        }
        cfg->dns_servers =
            xrealloc(cfg->dns_servers, (cfg->ndns_servers + 1) * sizeof(*cfg->dns_servers));
        cfg->dns_servers[cfg->ndns_servers++] = xstrdup(tok);
    }
    return rc;
}

static int config_set_retry(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    char *tok, *cursor = value;
    uint64_t *list = NULL, v;
    size_t n = 0;

    while ((tok = str_token(&cursor, " \t,")) != NULL) {
        if (parse_duration(tok, &v) < 0 || v == 0) {
            config_error(p, p->line, "%s: '%s' is not a duration like 30s, 5m or 2h", key->name,
                         tok);
            free(list);
            return -1;
        }
        list = xrealloc(list, (n + 1) * sizeof(*list));
        list[n++] = v;
    }
    free(cfg->retry_schedule);
    cfg->retry_schedule = list;
    cfg->nretry_schedule = n;
    return 0;
}

static int config_set_tls(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {{"opportunistic", CONFIG_TLS_OPPORTUNISTIC},
                                          {"required", CONFIG_TLS_REQUIRED},
                                          {"off", CONFIG_TLS_OFF},
                                          {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_sync(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {
        {"file", CONFIG_SYNC_FILE}, {"filesystem", CONFIG_SYNC_FILESYSTEM}, {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_spf_action(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {{"reject", CONFIG_ACTION_REJECT},
                                          {"tag", CONFIG_ACTION_TAG},
                                          {"off", CONFIG_ACTION_OFF},
                                          {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_dmarc_action(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {{"enforce", CONFIG_ACTION_REJECT},
                                          {"tag", CONFIG_ACTION_TAG},
                                          {"off", CONFIG_ACTION_OFF},
                                          {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_rewrite(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {{"dmarc", CONFIG_REWRITE_DMARC},
                                          {"off", CONFIG_REWRITE_OFF},
                                          {"always", CONFIG_REWRITE_ALWAYS},
                                          {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_log(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {
        {"stderr", CONFIG_LOG_STDERR}, {"syslog", CONFIG_LOG_SYSLOG}, {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_long_senders(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {{"store", CONFIG_LONG_STORE},
                                          {"embed", CONFIG_LONG_EMBED},
                                          {"reject", CONFIG_LONG_REJECT},
                                          {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

/* A file path (made absolute), redis://HOST:PORT[/DB] or unix:/PATH. */
static int config_set_envelope_store(config_parser_t *p, const config_key_t *key, char *value)
{
    srs_store_location_t loc;
    char why[256];

    if (srs_store_location(value, &loc, why, sizeof(why)) < 0) {
        config_error(p, p->line, "%s: '%s': %s", key->name, value, why);
        return -1;
    }
    if (loc.kind == SRS_STORE_EMBEDDED)
        return config__set_path(p, key, value);
    return config__set_string(p, key, value);
}

static int config_set_milter_action(config_parser_t *p, const config_key_t *key, char *value)
{
    static const config_word_t words[] = {{"tempfail", CONFIG_MILTER_TEMPFAIL},
                                          {"accept", CONFIG_MILTER_ACCEPT},
                                          {"reject", CONFIG_MILTER_REJECT},
                                          {NULL, 0}};
    return config__set_enum(p, key, words, value);
}

static int config_set_user(config_parser_t *p, const config_key_t *key, char *value)
{
    if (getpwnam(value) == NULL) {
        config_error(p, p->line, "%s: no such user '%s'", key->name, value);
        return -1;
    }
    return config__set_string(p, key, value);
}

#define OFF(field) offsetof(config_t, field)
#define DAY 86400ULL

static const config_key_t config_keys[] = {
    {"hostname", config__set_domain, OFF(hostname), false, 0, 0},
    {"listen", config_set_listen, 0, true, 0, 0},
    {"srs_domain", config__set_domain, OFF(srs_domain), false, 0, 0},
    {"srs_secrets", config__set_path, OFF(srs_secrets), false, 0, 0},
    {"srs_max_age", config__set_duration, OFF(srs_max_age), false, DAY, 1023 * DAY},
    {"srs_long_senders", config_set_long_senders, OFF(srs_long_senders), false, 0, 0},
    {"envelope_store", config_set_envelope_store, OFF(envelope_store), false, 0, 0},
    {"envelope_store_size", config__set_size, OFF(envelope_store_size), false, 1024 * 1024,
     1024ULL * 1024 * 1024 * 1024},
    {"forward_table", config__set_path, OFF(forward_table), false, 0, 0},
    {"spool_dir", config__set_path, OFF(spool_dir), false, 0, 0},
    {"spool_sync", config_set_sync, OFF(spool_sync), false, 0, 0},
    {"control_socket", config__set_path, OFF(control_socket), false, 0, 0},
    {"dns_servers", config_set_dns_servers, 0, false, 0, 0},
    {"route", config_set_route, 0, true, 0, 0},
    {"outbound_port", config__set_port, OFF(outbound_port), false, 0, 0},
    {"outbound_tls", config_set_tls, OFF(outbound_tls), false, 0, 0},
    {"max_deliveries", config__set_uint, OFF(max_deliveries), false, 1, 10000},
    {"max_deliveries_per_domain", config__set_uint, OFF(max_deliveries_per_domain), false, 1,
     10000},
    {"tls_cert", config__set_path, OFF(tls_cert), false, 0, 0},
    {"tls_key", config__set_path, OFF(tls_key), false, 0, 0},
    {"spf_action", config_set_spf_action, OFF(spf_action), false, 0, 0},
    {"dmarc_action", config_set_dmarc_action, OFF(dmarc_action), false, 0, 0},
    {"signing_key", config__set_path, OFF(signing_key), false, 0, 0},
    {"signing_selector", config__set_selector, OFF(signing_selector), false, 0, 0},
    {"signing_domain", config__set_domain, OFF(signing_domain), false, 0, 0},
    {"dkim_sign", config__set_bool, OFF(dkim_sign), false, 0, 0},
    {"arc_seal", config__set_bool, OFF(arc_seal), false, 0, 0},
    {"from_rewrite", config_set_rewrite, OFF(from_rewrite), false, 0, 0},
    {"from_rewrite_address", config__set_address, OFF(from_rewrite_address), false, 0, 0},
    {"milter", config__set_milter, 0, true, 0, 0},
    {"milter_timeout", config__set_duration, OFF(milter_timeout), false, 1, 3600},
    {"milter_default_action", config_set_milter_action, OFF(milter_default_action), false, 0, 0},
    {"milter_body_changes", config__set_bool, OFF(milter_body_changes), false, 0, 0},
    {"dnsbl", config__set_dnsbl, 0, true, 0, 0},
    {"dnswl", config__set_dnsbl, 0, true, 0, 0},
    {"reject_unknown_sender_domain", config__set_bool, OFF(reject_unknown_sender_domain), false,
     0, 0},
    {"reject_non_fqdn_sender", config__set_bool, OFF(reject_non_fqdn_sender), false, 0, 0},
    {"client_connection_rate_limit", config__set_uint, OFF(client_connection_rate_limit), false,
     0, 1000000},
    {"client_message_rate_limit", config__set_uint, OFF(client_message_rate_limit), false, 0,
     1000000},
    {"client_recipient_rate_limit", config__set_uint, OFF(client_recipient_rate_limit), false, 0,
     1000000},
    {"rate_limit_exempt", config__set_cidrs, 0, true, 0, 0},
    {"max_message_size", config__set_size, OFF(max_message_size), false, 1024,
     4ULL * 1024 * 1024 * 1024},
    {"max_recipients", config__set_uint, OFF(max_recipients), false, 1, 100000},
    {"max_connections", config__set_uint, OFF(max_connections), false, 1, 1000000},
    {"max_connections_per_ip", config__set_uint, OFF(max_connections_per_ip), false, 1, 1000000},
    {"timeout", config__set_duration, OFF(timeout), false, 1, DAY},
    {"max_line_length", config__set_uint, OFF(max_line_length), false, DEFAULT_LINE_MAX, 65536},
    {"max_errors", config__set_uint, OFF(max_errors), false, 1, 1000},
    {"max_hops", config__set_uint, OFF(max_hops), false, 1, 1000},
    {"shutdown_grace", config__set_duration, OFF(shutdown_grace), false, 0, 3600},
    {"retry_schedule", config_set_retry, 0, false, 0, 0},
    {"max_queue_lifetime", config__set_duration, OFF(max_queue_lifetime), false, 60, 365 * DAY},
    {"postmaster", config__set_address, OFF(postmaster), false, 0, 0},
    {"delay_warning_time", config__set_duration, OFF(delay_warning_time), false, 0, 365 * DAY},
    {"dsn_hide_destinations", config__set_bool, OFF(dsn_hide_destinations), false, 0, 0},
    {"user", config_set_user, OFF(user), false, 0, 0},
    {"log", config_set_log, OFF(log), false, 0, 0},
    {"metrics_listen", config_set_metrics, 0, false, 0, 0},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static config_t *config_defaults(const char *path)
{
    config_t *cfg = xcalloc(1, sizeof(*cfg));
    char *schedule = xstrdup(DEFAULT_RETRY_SCHEDULE), *cursor = schedule, *tok;

    cfg->path = xstrdup(path);
    cfg->srs_secrets = config__abspath(DEFAULT_SRS_SECRETS);
    cfg->srs_max_age = DEFAULT_SRS_MAX_AGE;
    cfg->srs_long_senders = CONFIG_LONG_STORE;
    cfg->envelope_store_size = DEFAULT_ENVELOPE_STORE_SIZE;
    cfg->forward_table = config__abspath(DEFAULT_FORWARD_TABLE);
    cfg->spool_dir = config__abspath(DEFAULT_SPOOL_DIR);
    cfg->spool_sync = CONFIG_SYNC_FILE;
    cfg->control_socket = config__abspath(DEFAULT_CONTROL_SOCKET);
    cfg->outbound_port = DEFAULT_OUTBOUND_PORT;
    cfg->outbound_tls = CONFIG_TLS_OPPORTUNISTIC;
    cfg->max_deliveries = DEFAULT_MAX_DELIVERIES;
    cfg->max_deliveries_per_domain = DEFAULT_MAX_DELIVERIES_PER_DOMAIN;
    cfg->spf_action = CONFIG_ACTION_REJECT;
    cfg->dmarc_action = CONFIG_ACTION_REJECT;
    cfg->dkim_sign = true;
    cfg->arc_seal = true;
    cfg->from_rewrite = CONFIG_REWRITE_DMARC;
    cfg->milter_timeout = DEFAULT_MILTER_TIMEOUT;
    cfg->milter_default_action = CONFIG_MILTER_TEMPFAIL;
    cfg->reject_unknown_sender_domain = true;
    cfg->reject_non_fqdn_sender = true;
    cfg->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    cfg->max_recipients = DEFAULT_MAX_RECIPIENTS;
    cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
    cfg->max_connections_per_ip = DEFAULT_MAX_CONNECTIONS_PER_IP;
    cfg->timeout = DEFAULT_TIMEOUT;
    cfg->max_line_length = DEFAULT_LINE_MAX;
    cfg->max_errors = DEFAULT_MAX_ERRORS;
    cfg->max_hops = DEFAULT_MAX_HOPS;
    cfg->shutdown_grace = DEFAULT_SHUTDOWN_GRACE;
    cfg->max_queue_lifetime = DEFAULT_MAX_QUEUE_LIFETIME;
    cfg->delay_warning_time = DEFAULT_DELAY_WARNING_TIME;
    cfg->dsn_hide_destinations = true;
    cfg->log = CONFIG_LOG_STDERR;
    while ((tok = str_token(&cursor, " ")) != NULL) {
        uint64_t v = 0;
        parse_duration(tok, &v);
        cfg->retry_schedule =
            xrealloc(cfg->retry_schedule, (cfg->nretry_schedule + 1) * sizeof(uint64_t));
        cfg->retry_schedule[cfg->nretry_schedule++] = v;
    }
    free(schedule);
    return cfg;
}

/* Before the first line of a file that could be read. */
static void config_start(void *parser, const char *text, size_t len, const struct stat *st)
{
    config_parser_t *p = parser;

    (void)text, (void)len, (void)st;
    p->cfg = config_defaults(p->diag.path);
}

/* One "key = value" line (docs/configuration.md). */
static void config_line(void *parser, char *line, size_t len, size_t lineno)
{
    config_parser_t *p = parser;
    char *hash, *eq, *key, *value;
    const config_key_t *k = NULL;
    size_t i;

    p->line = (unsigned)lineno;
    if (strlen(line) != len) {
        config_error(p, p->line, "NUL byte in line");
        return;
    }
    /* '#' starts a comment at the start of a line or after white space. */
    for (hash = line; (hash = strchr(hash, '#')) != NULL; hash++) {
        if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
            *hash = '\0';
            break;
        }
    }
    line = str_trim(line);
    if (*line == '\0')
        return;
    if (str_has_ctl(line, strlen(line))) {
        config_error(p, p->line, "control character in line");
        return;
    }
    eq = strchr(line, '=');
    if (eq == NULL) {
        config_error(p, p->line, "expected 'key = value', got '%s'", line);
        return;
    }
    *eq = '\0';
    key = str_trim(line);
    value = str_trim(eq + 1);
    for (i = 0; i < CONFIG_NKEYS; i++) {
        if (strcmp(config_keys[i].name, key) == 0) {
            k = &config_keys[i];
            break;
        }
    }
    if (k == NULL) {
        config_error(p, p->line, "unknown key '%s'", key);
        return;
    }
    if (*value == '\0') {
        config_error(p, p->line, "%s: missing value", key);
        return;
    }
    if (p->seen[i] != 0 && !k->repeatable) {
        config_error(p, p->line, "%s: already set on line %u", key, p->seen[i]);
        return;
    }
    if (p->seen[i] == 0)
        p->seen[i] = p->line;
    k->set(p, k, value);
}

static unsigned config_line_of(const config_parser_t *p, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return p->seen[i];
    return 0;
}

/* Checks that involve several keys, and defaults that depend on others;
 * then the snapshot, when there was no error. */
static void config_finish(void *parser)
{
    config_parser_t *p = parser;
    config_t *cfg = p->cfg;
    char host[256];

    if (cfg->hostname == NULL) {
        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            str_lcpy(host, "localhost", sizeof(host));
        host[sizeof(host) - 1] = '\0';
        cfg->hostname = str_lower(xstrdup(host));
    }
    if (cfg->srs_domain == NULL)
        cfg->srs_domain = xstrdup(cfg->hostname);
    /* The envelope store beside the spool: both are the daemon's state. */
    if (cfg->envelope_store == NULL) {
        const char *slash = strrchr(cfg->spool_dir, '/');
        size_t dir = slash == NULL          ? 0
                     : slash == cfg->spool_dir ? 1
                                               : (size_t)(slash - cfg->spool_dir);
        size_t n = dir + 1 + strlen(DEFAULT_ENVELOPE_STORE) + 1;

        cfg->envelope_store = xmalloc(n);
        str_fmt(cfg->envelope_store, n, "%.*s/%s", (int)dir, cfg->spool_dir,
                DEFAULT_ENVELOPE_STORE);
    }
    if (cfg->signing_domain == NULL)
        cfg->signing_domain = xstrdup(cfg->srs_domain);
    if (cfg->from_rewrite_address == NULL) {
        size_t n = strlen("noreply@") + strlen(cfg->signing_domain) + 1;
        cfg->from_rewrite_address = xmalloc(n);
        str_fmt(cfg->from_rewrite_address, n, "noreply@%s", cfg->signing_domain);
    }
    if (cfg->signing_key != NULL && cfg->signing_selector == NULL)
        config_error(p, config_line_of(p, "signing_key"),
                     "signing_key is set but signing_selector is not: the signatures need one");
    if (cfg->signing_key == NULL && cfg->signing_selector != NULL)
        config_error(p, config_line_of(p, "signing_selector"),
                     "signing_selector is set but signing_key is not");
    if (cfg->nlisten == 0) {
        cfg->listen = xcalloc(1, sizeof(*cfg->listen));
        cfg->listen[0].text = xstrdup(DEFAULT_LISTEN);
        parse_sockaddr("127.0.0.1", 2525, &cfg->listen[0].sa);
        cfg->nlisten = 1;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        const char *set = cfg->tls_cert != NULL ? "tls_cert" : "tls_key";
        config_error(p, config_line_of(p, set), "%s is set but %s is not: STARTTLS needs both",
                     set, cfg->tls_cert != NULL ? "tls_key" : "tls_cert");
    }
    if (cfg->max_connections_per_ip > cfg->max_connections) {
        config_error(p, config_line_of(p, "max_connections_per_ip"),
                     "max_connections_per_ip (%u) is larger than max_connections (%u)",
                     cfg->max_connections_per_ip, cfg->max_connections);
    }
    /* The default per domain fits whatever max_deliveries says; only a
     * value given larger is an error. */
    if (config_line_of(p, "max_deliveries_per_domain") == 0 &&
        cfg->max_deliveries_per_domain > cfg->max_deliveries)
        cfg->max_deliveries_per_domain = cfg->max_deliveries;
    if (cfg->max_deliveries_per_domain > cfg->max_deliveries) {
        config_error(p, config_line_of(p, "max_deliveries_per_domain"),
                     "max_deliveries_per_domain (%u) is larger than max_deliveries (%u)",
                     cfg->max_deliveries_per_domain, cfg->max_deliveries);
    }
    if (p->diag.errors > 0)
        config_free(cfg);
    else
        *p->out = cfg;
}

static const lines_loader_t config_lines = {
    .max = CONFIG_FILE_MAX, .start = config_start, .line = config_line, .finish = config_finish};

int config_parse(const char *path, const char *text, size_t len, config_error_fn on_error,
                 void *ctx, config_t **out)
{
    unsigned seen[CONFIG_NKEYS] = {0};
    config_parser_t p = {
        .diag = {.path = path, .on_error = on_error, .ctx = ctx}, .seen = seen, .out = out};

    *out = NULL;
    return lines_parse(&p.diag, &config_lines, text, len, &p);
}

int config_load(const char *path, config_error_fn on_error, void *ctx, config_t **out)
{
    unsigned seen[CONFIG_NKEYS] = {0};
    config_parser_t p = {
        .diag = {.path = path, .on_error = on_error, .ctx = ctx}, .seen = seen, .out = out};

    *out = NULL;
    return lines_load(&p.diag, &config_lines, &p);
}

void config_free(config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->hostname);
    for (size_t i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i].text);
    free(cfg->listen);
    free(cfg->srs_domain);
    free(cfg->srs_secrets);
    free(cfg->envelope_store);
    free(cfg->forward_table);
    free(cfg->spool_dir);
    free(cfg->control_socket);
    for (size_t i = 0; i < cfg->ndns_servers; i++)
        free(cfg->dns_servers[i]);
    free(cfg->dns_servers);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].domain);
        free(cfg->routes[i].host);
    }
    free(cfg->routes);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->signing_key);
    free(cfg->signing_selector);
    free(cfg->signing_domain);
    free(cfg->from_rewrite_address);
    free(cfg->postmaster);
    free(cfg->retry_schedule);
    free(cfg->user);
    free(cfg->metrics_listen.text);
    config__free_lists(cfg);
    free(cfg);
}

const config_route_t *config_route_for(const config_t *cfg, const char *domain)
{
    const config_route_t *star = NULL;

    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (str_eq_ci(cfg->routes[i].domain, domain))
            return &cfg->routes[i];
        if (strcmp(cfg->routes[i].domain, "*") == 0)
            star = &cfg->routes[i];
    }
    return star;
}
