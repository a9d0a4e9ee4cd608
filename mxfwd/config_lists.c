/*
 * config_lists.c - the keys of the filters and client checks that take
 * lists (docs/configuration.md, "Filters and client checks"): milters,
 * DNS block and allow lists, address blocks.
 */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "dnsbl_pattern.h"
#include "parse.h"
#include "str.h"
#include "xalloc.h"

/* "inet:HOST:PORT" (an IP address, or localhost) or "unix:PATH", as
 * Postfix's smtpd_milters writes them. */
int config__set_milter(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    config_milter_t m = {0};
    parse_hostport_t hp;
    socklen_t len;

    if (strncmp(value, "unix:", 5) == 0) {
        if (parse_unix_sockaddr(value + 5, &m.addr, &len) < 0 || value[5] != '/') {
            config_error(p, p->line, "%s: '%s' is not an absolute socket path", key->name,
                         value + 5);
            return -1;
        }
    } else if (strncmp(value, "inet:", 5) != 0 || parse_hostport(value + 5, false, &hp) < 0 ||
               (!hp.is_ip && strcmp(hp.host, "localhost") != 0)) {
        config_error(p, p->line,
                     "%s: '%s' is not inet:ADDRESS:PORT (an IP address, or localhost) or "
                     "unix:PATH",
                     key->name, value);
        return -1;
    } else {
        parse_sockaddr(hp.is_ip ? hp.host : "127.0.0.1", hp.port, &m.addr);
    }
    m.text = xstrdup(value);
    cfg->milters = xrealloc(cfg->milters, (cfg->nmilters + 1) * sizeof(*cfg->milters));
    cfg->milters[cfg->nmilters++] = m;
    return 0;
}

/* "ZONE" or "ZONE=PATTERN", for dnsbl and dnswl. */
int config__set_dnsbl(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    bool allow = strcmp(key->name, "dnswl") == 0;
    config_dnsbl_t **list = allow ? &cfg->dnswl : &cfg->dnsbl;
    size_t *n = allow ? &cfg->ndnswl : &cfg->ndnsbl;
    char *eq = strchr(value, '='), zone[256];

    if (eq != NULL)
        *eq = '\0';
    if (addr_dns_name(value, strlen(value), zone, sizeof(zone)) < 0) {
        config_error(p, p->line, "%s: '%s' is not a DNS zone", key->name, value);
        return -1;
    }
    if (eq != NULL && !dnsbl_pattern_valid(eq + 1)) {
        config_error(p, p->line,
                     "%s: '%s' is not an answer pattern like 127.0.0.2 or 127.0.0.[2..11]",
                     key->name, eq + 1);
        return -1;
    }
    *list = xrealloc(*list, (*n + 1) * sizeof(**list));
    (*list)[*n].zone = xstrdup(zone);
    (*list)[*n].pattern = eq != NULL ? xstrdup(eq + 1) : NULL;
    (*n)++;
    return 0;
}

/* Address blocks, several on a line: rate_limit_exempt. */
int config__set_cidrs(config_parser_t *p, const config_key_t *key, char *value)
{
    config_t *cfg = p->cfg;
    char *tok, *cursor = value;
    cidr_t c;
    int rc = 0;

    while ((tok = str_token(&cursor, " \t,")) != NULL) {
        if (cidr_parse(tok, &c) < 0) {
            config_error(p, p->line, "%s: '%s' is not an address or address/bits", key->name,
                         tok);
            rc = -1;
            continue;
        }
        cfg->rate_limit_exempt = xrealloc(cfg->rate_limit_exempt,
                                          (cfg->nrate_limit_exempt + 1) * sizeof(c));
        cfg->rate_limit_exempt[cfg->nrate_limit_exempt++] = c;
    }
    return rc;
}

void config__free_lists(config_t *cfg)
{
    for (size_t i = 0; i < cfg->nmilters; i++)
        free(cfg->milters[i].text);
    free(cfg->milters);
    for (size_t i = 0; i < cfg->ndnsbl; i++) {
        free(cfg->dnsbl[i].zone);
        free(cfg->dnsbl[i].pattern);
    }
    free(cfg->dnsbl);
    for (size_t i = 0; i < cfg->ndnswl; i++) {
        free(cfg->dnswl[i].zone);
        free(cfg->dnswl[i].pattern);
    }
    free(cfg->dnswl);
    free(cfg->rate_limit_exempt);
}
