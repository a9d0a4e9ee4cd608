/*
 * milter_edit.c - a header section edited as filters ask (docs/milter.md).
 */
#include "milter_edit.h"

#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

/* Whether p[0..n) starts a field: a name of printable characters, white
 * space allowed before the colon (as docs/smtp.md reads them). */
static bool milter_edit_field_start(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 && p[i] != ':')
        i++;
    if (i == 0)
        return false;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i < n && p[i] == ':';
}

static void milter_edit_push(milter_edit_t *e, size_t at, const milter_edit_field_t *f)
{
    if (e->n == e->cap)
        e->f = xgrow(e->f, &e->cap, e->n + 1, sizeof(*e->f));
    memmove(e->f + at + 1, e->f + at, (e->n - at) * sizeof(*e->f));
    e->f[at] = *f;
    e->n++;
}

void milter_edit_init(milter_edit_t *e, const char *p, size_t n)
{
    size_t i = 0;

    memset(e, 0, sizeof(*e));
    while (i < n && milter_edit_field_start(p + i, n - i)) {
        size_t end = i;
        milter_edit_field_t f = {.ptr = p + i, .orig = (long)e->n};

        /* To the CRLF not followed by white space. */
        for (;;) {
            const char *crlf = memmem(p + end, n - end, "\r\n", 2);
            if (crlf == NULL)
                goto out; /* cut off: not a whole field */
            end = (size_t)(crlf - p) + 2;
            if (end >= n || (p[end] != ' ' && p[end] != '\t'))
                break;
        }
        f.len = end - i;
        milter_edit_push(e, e->n, &f);
        i = end;
    }
out:
    e->norig = e->n;
    e->section_len = i;
}

void milter_edit_free(milter_edit_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->f[i].own);
    free(e->f);
    memset(e, 0, sizeof(*e));
}

void milter_edit_name_value(const milter_edit_field_t *f, bool leadspc, buf_t *name,
                            buf_t *value)
{
    const char *colon = memchr(f->ptr, ':', f->len);
    size_t nlen = (size_t)(colon - f->ptr), v = nlen + 1, end = f->len - 2;

    while (nlen > 0 && (f->ptr[nlen - 1] == ' ' || f->ptr[nlen - 1] == '\t'))
        nlen--;
    buf_reset(name);
    buf_reset(value);
    buf_append(name, f->ptr, nlen);
    buf_append(name, "", 1);
    if (!leadspc)
        while (v < end && (f->ptr[v] == ' ' || f->ptr[v] == '\t'))
            v++;
    for (; v < end; v++)
        if (f->ptr[v] != '\r')
            buf_append(value, f->ptr + v, 1);
    buf_append(value, "", 1);
}

/* "Name: value\r\n" from a filter's name and value (see the header). */
static milter_edit_field_t milter_edit_make(const char *name, const char *value, bool leadspc)
{
    buf_t b;
    size_t n = strlen(value);
    milter_edit_field_t f = {.orig = -1};

    while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\r'))
        n--;
    buf_init(&b, SIZE_MAX);
    buf_puts(&b, name);
    buf_append(&b, ":", 1);
    if (!leadspc && n > 0)
        buf_append(&b, " ", 1);
    for (size_t i = 0; i < n; i++) {
        if (value[i] == '\r')
            continue;
        if (value[i] != '\n') {
            buf_append(&b, value + i, 1);
            continue;
        }
        buf_append(&b, "\r\n", 2);
        /* A line of its own must continue the field. */
        if (i + 1 < n && value[i + 1] != ' ' && value[i + 1] != '\t')
            buf_append(&b, "\t", 1);
    }
    buf_append(&b, "\r\n", 2);
    f.len = buf_used(&b);
    f.own = xmemdup(buf_ptr(&b), f.len);
    f.ptr = f.own;
    buf_free(&b);
    return f;
}

void milter_edit_add(milter_edit_t *e, const char *name, const char *value, bool leadspc)
{
    milter_edit_field_t f = milter_edit_make(name, value, leadspc);

    milter_edit_push(e, e->n, &f);
    e->changed = true;
}

void milter_edit_insert(milter_edit_t *e, uint32_t index, const char *name, const char *value,
                        bool leadspc)
{
    milter_edit_field_t f = milter_edit_make(name, value, leadspc);

    milter_edit_push(e, index < e->n ? index : e->n, &f);
    e->changed = true;
}

static bool milter_edit_named(const milter_edit_field_t *f, const char *name)
{
    size_t n = 0;

    while (n < f->len && f->ptr[n] != ':' && f->ptr[n] != ' ' && f->ptr[n] != '\t')
        n++;
    return str_eq_ci_n(f->ptr, n, name);
}

void milter_edit_change(milter_edit_t *e, uint32_t index, const char *name, const char *value,
                        bool leadspc)
{
    uint32_t seen = 0;

    for (size_t i = 0; i < e->n; i++) {
        if (!milter_edit_named(&e->f[i], name) || ++seen < (index > 0 ? index : 1))
            continue;
        free(e->f[i].own);
        if (value[0] == '\0') {
            memmove(e->f + i, e->f + i + 1, (e->n - i - 1) * sizeof(*e->f));
            e->n--;
        } else {
            e->f[i] = milter_edit_make(name, value, leadspc);
        }
        e->changed = true;
        return;
    }
    if (value[0] != '\0')
        milter_edit_add(e, name, value, leadspc);
}

bool milter_edit_split(const milter_edit_t *e, buf_t *top, buf_t *section)
{
    size_t k = 0;
    bool same;

    while (k < e->n && e->f[k].orig < 0)
        k++;
    for (size_t i = 0; i < k; i++)
        buf_append(top, e->f[i].ptr, e->f[i].len);
    same = e->n - k == e->norig;
    for (size_t i = k; i < e->n && same; i++)
        same = e->f[i].orig == (long)(i - k);
    if (same)
        return false;
    for (size_t i = k; i < e->n; i++)
        buf_append(section, e->f[i].ptr, e->f[i].len);
    return true;
}
