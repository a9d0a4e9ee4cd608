/*
 * config_value.c - the common kinds of configuration value: strings,
 * paths, domains, addresses, durations, sizes, numbers, ports, yes/no and
 * words from a list (docs/configuration.md, "Values").
 */
#include "config_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "parse.h"
#include "str.h"
#include "xalloc.h"

char *config__abspath(const char *path)
{
    char cwd[PATH_MAX];
    size_t n;
    char *abs;

    if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
        return xstrdup(path);
    n = strlen(cwd) + 1 + strlen(path) + 1;
    abs = xmalloc(n);
    snprintf(abs, n, "%s/%s", cwd, path);
    return abs;
}

int config__set_string(config_parser_t *p, const config_key_t *key, char *value)
{
    char **dst = FIELD(p, key, char *);

    free(*dst);
    *dst = xstrdup(value);
    return 0;
}

int config__set_path(config_parser_t *p, const config_key_t *key, char *value)
{
    char **dst = FIELD(p, key, char *);

    free(*dst);
    *dst = config__abspath(value);
    return 0;
}

int config__set_domain(config_parser_t *p, const config_key_t *key, char *value)
{
    if (value[0] == '[' || addr_domain_check(value, strlen(value)) < 0) {
        config_error(p, p->line, "%s: '%s' is not a domain name", key->name, value);
        return -1;
    }
    str_lower(value);
    return config__set_string(p, key, value);
}

/* A DKIM selector: one or more DNS labels (RFC 6376 3.1). */
int config__set_selector(config_parser_t *p, const config_key_t *key, char *value)
{
    char name[256];

    if (addr_dns_name(value, strlen(value), name, sizeof(name)) < 0) {
        config_error(p, p->line, "%s: '%s' is not a DKIM selector (DNS labels)", key->name, value);
        return -1;
    }
    return config__set_string(p, key, name);
}

int config__set_address(config_parser_t *p, const config_key_t *key, char *value)
{
    addr_t a;

    if (addr_parse(value, strlen(value), &a) < 0 || a.literal) {
        config_error(p, p->line, "%s: '%s' is not a mail address", key->name, value);
        return -1;
    }
    return config__set_string(p, key, value);
}

int config__set_duration(config_parser_t *p, const config_key_t *key, char *value)
{
    uint64_t v;

    if (parse_duration(value, &v) < 0) {
        config_error(p, p->line, "%s: '%s' is not a duration like 30s, 5m, 2h or 21d", key->name,
                     value);
        return -1;
    }
    if (v < key->min || v > key->max) {
        config_error(p, p->line, "%s: '%s' is out of range (%llus to %llus)", key->name, value,
                     (unsigned long long)key->min, (unsigned long long)key->max);
        return -1;
    }
    *FIELD(p, key, uint64_t) = v;
    return 0;
}

int config__set_size(config_parser_t *p, const config_key_t *key, char *value)
{
    uint64_t v;

    if (parse_size(value, &v) < 0 || v < key->min || v > key->max) {
        config_error(p, p->line, "%s: '%s' is not a size between %llu and %llu bytes (25M, 64K)",
                     key->name, value, (unsigned long long)key->min, (unsigned long long)key->max);
        return -1;
    }
    *FIELD(p, key, uint64_t) = v;
    return 0;
}

int config__set_uint(config_parser_t *p, const config_key_t *key, char *value)
{
    uint64_t v;

    if (parse_uint(value, key->min, key->max, &v) < 0) {
        config_error(p, p->line, "%s: '%s' is not a number from %llu to %llu", key->name, value,
                     (unsigned long long)key->min, (unsigned long long)key->max);
        return -1;
    }
    *FIELD(p, key, unsigned) = (unsigned)v;
    return 0;
}

int config__set_port(config_parser_t *p, const config_key_t *key, char *value)
{
    uint64_t v;

    if (parse_uint(value, 1, 65535, &v) < 0) {
        config_error(p, p->line, "%s: '%s' is not a port number (1-65535)", key->name, value);
        return -1;
    }
    *FIELD(p, key, uint16_t) = (uint16_t)v;
    return 0;
}

int config__set_enum(config_parser_t *p, const config_key_t *key, const config_word_t *words,
                     const char *value)
{
    char choices[128];
    size_t used = 0;

    for (const config_word_t *w = words; w->word != NULL; w++) {
        if (strcmp(w->word, value) == 0) {
            *FIELD(p, key, int) = w->value;
            return 0;
        }
    }
    choices[0] = '\0';
    for (const config_word_t *w = words; w->word != NULL; w++) {
        const char *sep = w == words ? "" : w[1].word != NULL ? ", " : " or ";
        int n = snprintf(choices + used, sizeof(choices) - used, "%s%s", sep, w->word);
        if (n < 0 || (size_t)n >= sizeof(choices) - used)
            break;
        used += (size_t)n;
    }
    config_error(p, p->line, "%s: '%s' is not one of %s", key->name, value, choices);
    return -1;
}

int config__set_bool(config_parser_t *p, const config_key_t *key, char *value)
{
    if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
        config_error(p, p->line, "%s: '%s' is not one of yes or no", key->name, value);
        return -1;
    }
    *FIELD(p, key, bool) = strcmp(value, "yes") == 0;
    return 0;
}
