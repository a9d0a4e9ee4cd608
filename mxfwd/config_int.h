/*
 * config_int - what config.c, config_value.c and config_lists.c share:
 * the parser, the key table's entry, and the setters of the common kinds
 * of value and of the filters' lists (config__set_*), each of which
 * reports its own errors.
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

typedef struct {
    const char *word;
    int value;
} config_word_t;

/* The path made absolute against the working directory; allocated. */
char *config__abspath(const char *path);

/* Set the key's field of p->cfg from value: 0, or -1 with the error
 * reported.  Numbers are checked against the key's min and max. */
int config__set_string(config_parser_t *p, const config_key_t *key, char *value);
int config__set_path(config_parser_t *p, const config_key_t *key, char *value);
int config__set_domain(config_parser_t *p, const config_key_t *key, char *value);
int config__set_selector(config_parser_t *p, const config_key_t *key, char *value);
int config__set_address(config_parser_t *p, const config_key_t *key, char *value);
int config__set_duration(config_parser_t *p, const config_key_t *key, char *value);
int config__set_size(config_parser_t *p, const config_key_t *key, char *value);
int config__set_uint(config_parser_t *p, const config_key_t *key, char *value);
int config__set_port(config_parser_t *p, const config_key_t *key, char *value);
int config__set_bool(config_parser_t *p, const config_key_t *key, char *value);
/* One of the words (a list ending in {NULL, 0}): its value in the field
 * (an enum). */
int config__set_enum(config_parser_t *p, const config_key_t *key, const config_word_t *words,
                     const char *value);

/* The filters and client checks' lists (config_lists.c): milter, dnsbl
 * and dnswl, rate_limit_exempt; and what frees them. */
int config__set_milter(config_parser_t *p, const config_key_t *key, char *value);
int config__set_dnsbl(config_parser_t *p, const config_key_t *key, char *value);
int config__set_cidrs(config_parser_t *p, const config_key_t *key, char *value);
void config__free_lists(config_t *cfg);

#endif
