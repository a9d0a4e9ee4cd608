/*
 * config_int - what config.c and config_lists.c share: the parser, the
 * key table's entries, and the setters of the keys that take lists
 * (config__set_*).  Nothing else includes this.
 */
#ifndef MXFWD_CONFIG_INT_H
#define MXFWD_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"

#define CONFIG_FILE_MAX (1024 * 1024)

typedef struct config_parser config_parser_t;
typedef struct config_key config_key_t;
typedef int (*config_set_fn)(config_parser_t *p, const config_key_t *key, char *value);

struct config_key {
    const char *name;
    config_set_fn set;
    size_t offset; /* of the field in config_t */
    bool repeatable;
    uint64_t min, max; /* for numbers */
};

struct config_parser {
    diag_t diag;
    unsigned line;
    config_t *cfg;
    unsigned *seen; /* line where each key was first set, 0 if not yet */
    config_t **out;
};

#define config_error(p, line, ...) diag_error(&(p)->diag, (line), __VA_ARGS__)

#define FIELD(p, key, type) ((type *)((char *)(p)->cfg + (key)->offset))

/* Keys that take lists (config_lists.c); each returns 0, or -1 after
 * reporting the problem. */
int config__set_route(config_parser_t *p, const config_key_t *key, char *value);
int config__set_dns_servers(config_parser_t *p, const config_key_t *key, char *value);
int config__set_retry(config_parser_t *p, const config_key_t *key, char *value);
int config__set_milter(config_parser_t *p, const config_key_t *key, char *value);
int config__set_dnsbl(config_parser_t *p, const config_key_t *key, char *value);
int config__set_cidrs(config_parser_t *p, const config_key_t *key, char *value);
/* Free what those keys hold. */
void config__free_lists(config_t *cfg);

#endif
