/*
 * json - writing and reading JSON (RFC 8259), for the control socket's
 * replies and the command-line tools that show them.
 *
 * Writing is a few helpers that append to a buf_t: json_str() quotes and
 * escapes any bytes (invalid UTF-8 becomes U+FFFD, so the output is always
 * valid JSON whatever mail put in an address or reply).
 *
 * Reading parses a whole document into a tree the caller walks through
 * the public fields and frees with json_free().  Objects keep their keys
 * in document order (a reader shows them in the order the writer chose).
 * Nesting is limited to JSON_DEPTH_MAX; the input's size is the caller's
 * to bound.  json_parse() returns 0 or JSON_ESYNTAX / JSON_EDEPTH and
 * never logs.
 */
#ifndef MXFWD_JSON_H
#define MXFWD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define JSON_DEPTH_MAX 64

/* The json band of error codes (docs/development.md, "Error codes"): the
 * writers return buf's BUF_EFULL, never one of these. */
#define JSON_EBASE (-8000)
#define JSON_ESYNTAX (JSON_EBASE - 1)
#define JSON_EDEPTH (JSON_EBASE - 2)

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type_t;

typedef struct json {
    json_type_t type;
    bool boolean;
    double number;
    char *string;        /* NUL-terminated UTF-8; len bytes (may hold NUL from \u0000) */
    size_t len;
    struct json **items; /* array elements, object values */
    char **keys;         /* object keys, items[i] belongs to keys[i] */
    size_t n;
} json_t;

/* ---- Writing ---- */

/* Append s[0..n) as a JSON string, quotes included.  0 or BUF_EFULL. */
int json_strn(buf_t *b, const char *s, size_t n);
int json_str(buf_t *b, const char *s);
/* Append "key": (the key quoted like a string). */
int json_key(buf_t *b, const char *key);

/* ---- Reading ---- */

int json_parse(const char *s, size_t len, json_t **out);
void json_free(json_t *v);
const char *json_strerror(int err);

/* Member key of an object, or NULL (also when v is not an object). */
const json_t *json_get(const json_t *v, const char *key);
/* A string member's text, or dflt when missing or not a string. */
const char *json_get_str(const json_t *v, const char *key, const char *dflt);
/* A number member, or dflt. */
double json_get_num(const json_t *v, const char *key, double dflt);

#endif
