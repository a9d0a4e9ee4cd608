#include "placeholder.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "str.h"

/* Whether domain is, or is under, a name reserved for examples. */
static bool placeholder_reserved(const char *domain)
{
    static const char *const tlds[] = {"test", "example", "invalid", "localhost"};
    static const char *const names[] = {"example.com", "example.net", "example.org"};
    const char *dot = strrchr(domain, '.');
    const char *tld = dot != NULL ? dot + 1 : domain;
    size_t n = strlen(domain);

    for (size_t i = 0; i < sizeof(tlds) / sizeof(tlds[0]); i++)
        if (str_eq_ci(tld, tlds[i]))
            return true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t k = strlen(names[i]);
        if (n >= k && str_eq_ci(domain + n - k, names[i]) && (n == k || domain[n - k - 1] == '.'))
            return true;
    }
    return false;
}

static int placeholder_say(diag_fn report, void *ctx, const char *fmt, const char *a, const char *b)
{
    char text[512];

    snprintf(text, sizeof(text), fmt, a, b);
    report(ctx, text);
    return 1;
}

int placeholder_check(const config_t *cfg, const table_t *table, const srs_secrets_t *secrets,
                      diag_fn report, void *ctx)
{
    const char *domain;
    size_t pos = 0;
    int n = 0;

    if (strchr(cfg->hostname, '.') == NULL)
        n += placeholder_say(report, ctx,
                             "%s: hostname '%s' is not a fully qualified domain name: receivers "
                             "match it against this host's PTR record",
                             cfg->path, cfg->hostname);
    else if (placeholder_reserved(cfg->hostname))
        n += placeholder_say(report, ctx,
                             "%s: hostname '%s' is a name reserved for examples: set this "
                             "host's own",
                             cfg->path, cfg->hostname);
    if (placeholder_reserved(cfg->srs_domain))
        n += placeholder_say(report, ctx,
                             "%s: srs_domain '%s' is a name reserved for examples: bounces to "
                             "forwarded mail could never come back",
                             cfg->path, cfg->srs_domain);
    if (cfg->signing_key != NULL && placeholder_reserved(cfg->signing_domain))
        n += placeholder_say(report, ctx,
                             "%s: signing_domain '%s' is a name reserved for examples: no "
                             "receiver can find its key",
                             cfg->path, cfg->signing_domain);
    for (size_t i = 0; secrets != NULL && i < secrets->n; i++)
        if (strcmp(secrets->secret[i], PLACEHOLDER_SECRET) == 0)
            n += placeholder_say(report, ctx,
                                 "%s: the public sample secret%s: anyone could sign SRS "
                                 "addresses that pass for yours (openssl rand -base64 32)",
                                 cfg->srs_secrets, "");
    while (table != NULL && table_next_domain(table, &pos, &domain))
        if (placeholder_reserved(domain))
            n += placeholder_say(report, ctx,
                                 "%s: aliases in '%s', a domain reserved for examples: the "
                                 "sample table is still in place",
                                 cfg->forward_table, domain);
    return n;
}

bool placeholder_port25(const config_t *cfg)
{
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct sockaddr_storage *ss = &cfg->listen[i].sa;
        in_port_t port = ss->ss_family == AF_INET6
                             ? ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port
                             : ((const struct sockaddr_in *)(const void *)ss)->sin_port;
        if (ntohs(port) == 25)
            return true;
    }
    return false;
}
