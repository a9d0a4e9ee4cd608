#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

/* ---- Writing ---- */

int json_strn(buf_t *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = buf_append(b, "\"", 1);
    size_t i = 0;

    while (rc == 0 && i < n) {
        size_t run = i, len;

        /* Copy runs of bytes that need no escape in one append. */
        while (run < n && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\' &&
               (len = str_utf8_len(s + run, n - run)) > 0)
            run += len;
        if (run > i) {
            rc = buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        switch (p[i]) {
        case '"':
            rc = buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = buf_append(b, "\\t", 2);
            break;
        default:
            if (p[i] < 0x20)
                rc = buf_printf(b, "\\u%04x", p[i]);
            else
                rc = buf_append(b, "\\ufffd", 6); /* a byte of broken UTF-8 */
            break;
        }
        i++;
    }
    return rc == 0 ? buf_append(b, "\"", 1) : rc;
}

int json_str(buf_t *b, const char *s)
{
    return json_strn(b, s, strlen(s));
}

int json_key(buf_t *b, const char *key)
{
    int rc = json_str(b, key);

    return rc == 0 ? buf_append(b, ":", 1) : rc;
}

/* ---- Reading ---- */

typedef struct {
    const char *p;
    const char *end;
    int depth;
    int err;
} json_parser_t;

static json_t *json_value(json_parser_t *ps);

static void json_ws(json_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static json_t *json_fail(json_parser_t *ps, json_t *v, int err)
{
    if (ps->err == 0)
        ps->err = err;
    json_free(v);
    return NULL;
}

static bool json_literal(json_parser_t *ps, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static int json_hex4(const char *p, uint32_t *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
        if (d < 0)
            return -1;
        *out = *out << 4 | (uint32_t)d;
    }
    return 0;
}

static void json_put_utf8(buf_t *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    buf_append(b, u, n);
}

/* A string at ps->p (the opening quote); its text in *out (allocated). */
static int json_string(json_parser_t *ps, char **out, size_t *len)
{
    buf_t b;

    buf_init(&b, SIZE_MAX);
    ps->p++;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        uint32_t cp, lo;

        if (c < 0x20)
            goto fail;
        if (c != '\\') {
            buf_append(&b, ps->p++, 1);
            continue;
        }
        if (ps->end - ps->p < 2)
            goto fail;
        switch (ps->p[1]) {
        case '"': case '\\': case '/':
            buf_append(&b, ps->p + 1, 1);
            break;
        case 'b': buf_append(&b, "\b", 1); break;
        case 'f': buf_append(&b, "\f", 1); break;
        case 'n': buf_append(&b, "\n", 1); break;
        case 'r': buf_append(&b, "\r", 1); break;
        case 't': buf_append(&b, "\t", 1); break;
        case 'u':
            if (ps->end - ps->p < 6 || json_hex4(ps->p + 2, &cp) < 0)
                goto fail;
            if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 12 && ps->p[6] == '\\' &&
                ps->p[7] == 'u' && json_hex4(ps->p + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                ps->p += 6;
            } else if (cp >= 0xd800 && cp <= 0xdfff) {
                cp = 0xfffd; /* a lone surrogate */
            }
            json_put_utf8(&b, cp);
            ps->p += 4;
            break;
        default:
            goto fail;
        }
        ps->p += 2;
    }
    if (ps->p >= ps->end)
        goto fail;
    ps->p++;
    *len = buf_used(&b);
    *out = xmalloc(*len + 1);
    if (*len > 0)
        memcpy(*out, buf_ptr(&b), *len);
    (*out)[*len] = '\0';
    buf_free(&b);
    return 0;
fail:
    buf_free(&b);
    return -1;
}

static json_t *json_number(json_parser_t *ps)
{
    const char *start = ps->p;
    char tmp[64];
    json_t *v;

    /* RFC 8259 6: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->p < ps->end && *ps->p == '0') {
        ps->p++;
    } else {
        if (ps->p >= ps->end || *ps->p < '1' || *ps->p > '9')
            return json_fail(ps, NULL, JSON_ESYNTAX);
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        if (++ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return json_fail(ps, NULL, JSON_ESYNTAX);
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        if (++ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return json_fail(ps, NULL, JSON_ESYNTAX);
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
            ps->p++;
    }
    if ((size_t)(ps->p - start) >= sizeof(tmp))
        return json_fail(ps, NULL, JSON_ESYNTAX);
    memcpy(tmp, start, (size_t)(ps->p - start));
    tmp[ps->p - start] = '\0';
    v = xcalloc(1, sizeof(*v));
    v->type = JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    return v;
}

static void json_push(json_t *v, size_t *cap, char *key, json_t *item)
{
    if (v->n == *cap) {
        *cap = *cap != 0 ? *cap * 2 : 8;
        v->items = xrealloc(v->items, *cap * sizeof(*v->items));
        if (v->type == JSON_OBJECT)
            v->keys = xrealloc(v->keys, *cap * sizeof(*v->keys));
    }
    if (v->type == JSON_OBJECT)
        v->keys[v->n] = key;
    v->items[v->n++] = item;
}

/* An array or object at ps->p (its opening bracket). */
static json_t *json_container(json_parser_t *ps, json_type_t type)
{
    char close = type == JSON_ARRAY ? ']' : '}';
    json_t *v = xcalloc(1, sizeof(*v));
    size_t cap = 0;

    v->type = type;
    if (++ps->depth > JSON_DEPTH_MAX)
        return json_fail(ps, v, JSON_EDEPTH);
    ps->p++;
    json_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return v;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        json_t *item;

        json_ws(ps);
        if (type == JSON_OBJECT) {
            if (ps->p >= ps->end || *ps->p != '"' || json_string(ps, &key, &klen) < 0)
                return json_fail(ps, v, JSON_ESYNTAX);
            json_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                return json_fail(ps, v, JSON_ESYNTAX);
            }
            ps->p++;
        }
        if ((item = json_value(ps)) == NULL) {
            free(key);
            return json_fail(ps, v, JSON_ESYNTAX);
        }
        json_push(v, &cap, key, item);
        json_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return v;
        }
        return json_fail(ps, v, JSON_ESYNTAX);
    }
}

static json_t *json_value(json_parser_t *ps)
{
    json_t *v;

    json_ws(ps);
    if (ps->p >= ps->end)
        return json_fail(ps, NULL, JSON_ESYNTAX);
    switch (*ps->p) {
    case '{':
        return json_container(ps, JSON_OBJECT);
    case '[':
        return json_container(ps, JSON_ARRAY);
    case '"':
        v = xcalloc(1, sizeof(*v));
        v->type = JSON_STRING;
        if (json_string(ps, &v->string, &v->len) < 0)
            return json_fail(ps, v, JSON_ESYNTAX);
        return v;
    case 't':
    case 'f':
    case 'n':
        v = xcalloc(1, sizeof(*v));
        if (json_literal(ps, "true"))
            v->type = JSON_BOOL, v->boolean = true;
        else if (json_literal(ps, "false"))
            v->type = JSON_BOOL;
        else if (json_literal(ps, "null"))
            v->type = JSON_NULL;
        else
            return json_fail(ps, v, JSON_ESYNTAX);
        return v;
    default:
        return json_number(ps);
    }
}

int json_parse(const char *s, size_t len, json_t **out)
{
    json_parser_t ps = {s, s + len, 0, 0};
    json_t *v = json_value(&ps);

    *out = NULL;
    if (v == NULL)
        return ps.err != 0 ? ps.err : JSON_ESYNTAX;
    json_ws(&ps);
    if (ps.p != ps.end) {
        json_free(v);
        return JSON_ESYNTAX;
    }
    *out = v;
    return 0;
}

void json_free(json_t *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        json_free(v->items[i]);
        if (v->keys != NULL)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    free(v);
}

const char *json_strerror(int err)
{
    switch (err) {
    case 0:
        return "no error";
    case JSON_ESYNTAX:
        return "not valid JSON";
    case JSON_EDEPTH:
        return "JSON nested too deeply";
    default:
        return "unknown JSON error";
    }
}

const json_t *json_get(const json_t *v, const char *key)
{
    if (v == NULL || v->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return v->items[i];
    return NULL;
}

const char *json_get_str(const json_t *v, const char *key, const char *dflt)
{
    const json_t *m = json_get(v, key);

    return m != NULL && m->type == JSON_STRING ? m->string : dflt;
}

double json_get_num(const json_t *v, const char *key, double dflt)
{
    const json_t *m = json_get(v, key);

    return m != NULL && m->type == JSON_NUMBER ? m->number : dflt;
}
