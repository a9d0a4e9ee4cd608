#include "tagval.h"

#include <string.h>

#include "str.h"

/* White space of a folded header: WSP, and the CRLF of FWS. */
static bool tagval_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool tagval_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool tagval_is_alnumpunc(char c)
{
    return tagval_is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* VALCHAR = %x21-3A / %x3C-7E */
static bool tagval_is_valchar(char c)
{
    unsigned char u = (unsigned char)c;

    return u >= 0x21 && u <= 0x7e && u != 0x3b;
}

/* Parse one tag-spec s[a..b) (no ';' inside).  0, 1 for an empty spec, or
 * TAGVAL_ESYNTAX. */
static int tagval_parse_spec(const char *s, size_t a, size_t b, tagval_tag_t *t)
{
    size_t p = a, eq, name_end, v, ve;

    while (p < b && tagval_is_ws(s[p]))
        p++;
    if (p == b)
        return 1;
    if (!tagval_is_alpha(s[p]))
        return TAGVAL_ESYNTAX;
    eq = p;
    while (eq < b && tagval_is_alnumpunc(s[eq]))
        eq++;
    name_end = eq;
    while (eq < b && tagval_is_ws(s[eq]))
        eq++;
    if (eq == b || s[eq] != '=')
        return TAGVAL_ESYNTAX;
    v = eq + 1;
    while (v < b && tagval_is_ws(s[v]))
        v++;
    ve = b;
    while (ve > v && tagval_is_ws(s[ve - 1]))
        ve--;
    for (size_t i = v; i < ve; i++)
        if (!tagval_is_valchar(s[i]) && !tagval_is_ws(s[i]))
            return TAGVAL_ESYNTAX;
    t->name = s + p;
    t->name_len = name_end - p;
    t->value = s + v;
    t->value_len = ve - v;
    t->raw_start = eq + 1;
    t->raw_end = b;
    return 0;
}

static bool tagval_same_name(const tagval_tag_t *a, const tagval_tag_t *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

int tagval_parse(const char *s, size_t len, bool lenient, tagval_list_t *out)
{
    size_t a = 0;

    out->n = 0;
    while (a <= len) {
        const char *semi = memchr(s + a, ';', len - a);
        size_t b = semi ? (size_t)(semi - s) : len;
        tagval_tag_t t;
        int rc = tagval_parse_spec(s, a, b, &t);
        bool dup = false;

        if (rc == 1) {
            /* Only the last spec may be empty: "a=1;" but not "a=1;;b=2". */
            if (semi != NULL && !lenient)
                return TAGVAL_ESYNTAX;
        } else if (rc < 0) {
            if (!lenient)
                return rc;
        } else {
            for (size_t i = 0; i < out->n && !dup; i++)
                dup = tagval_same_name(&out->tag[i], &t);
            if (dup && !lenient)
                return TAGVAL_EDUP;
            if (!dup) {
                if (out->n == TAGVAL_MAX)
                    return TAGVAL_EMANY;
                out->tag[out->n++] = t;
            }
        }
        if (semi == NULL)
            break;
        a = b + 1;
    }
    return 0;
}

const tagval_tag_t *tagval_get(const tagval_list_t *list, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < list->n; i++)
        if (list->tag[i].name_len == n && memcmp(list->tag[i].name, name, n) == 0)
            return &list->tag[i];
    return NULL;
}

bool tagval_is(const tagval_tag_t *tag, const char *word)
{
    return tag->value_len == strlen(word) && memcmp(tag->value, word, tag->value_len) == 0;
}

bool tagval_is_ci(const tagval_tag_t *tag, const char *word)
{
    return str_eq_ci_n(tag->value, tag->value_len, word);
}

int tagval_copy_nows(const tagval_tag_t *tag, char *dst, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; i < tag->value_len; i++) {
        if (tagval_is_ws(tag->value[i]))
            continue;
        if (n + 1 >= size)
            return -1;
        dst[n++] = tag->value[i];
    }
    if (size == 0)
        return -1;
    dst[n] = '\0';
    return (int)n;
}

const char *tagval_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case TAGVAL_ESYNTAX:
        return "malformed tag=value list";
    case TAGVAL_EDUP:
        return "duplicate tag";
    case TAGVAL_EMANY:
        return "too many tags";
    }
    return "unknown error";
}
