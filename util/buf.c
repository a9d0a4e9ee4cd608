#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void buf_init(buf_t *b, size_t max)
{
    b->data = NULL;
    b->off = b->len = b->cap = 0;
    b->max = max;
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b, b->max);
}

void buf_reset(buf_t *b)
{
    b->off = b->len = 0;
}

void buf_compact(buf_t *b)
{
    if (b->off == 0)
        return;
    if (b->len > b->off)
        memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

char *buf_reserve(buf_t *b, size_t n)
{
    if (n > buf_room(b))
        return NULL;
    /* One spare byte beyond n, for buf_vprintf's terminating NUL. */
    if (b->cap - b->len <= n) {
        buf_compact(b);
        if (b->cap - b->len <= n)
            b->data = xgrow(b->data, &b->cap, b->len + n + 1, 1);
    }
    return b->data + b->len;
}

void buf_commit(buf_t *b, size_t n)
{
    b->len += n;
}

int buf_append(buf_t *b, const void *p, size_t n)
{
    char *dst = buf_reserve(b, n);

    if (dst == NULL)
        return BUF_EFULL;
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    return 0;
}

int buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    char *dst;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return BUF_EFULL;
    dst = buf_reserve(b, (size_t)n);
    if (dst == NULL)
        return BUF_EFULL;
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

void buf_consume(buf_t *b, size_t n)
{
    if (n >= buf_used(b)) {
        b->off = b->len = 0;
        return;
    }
    b->off += n;
}

buf_eol_t buf_getline(buf_t *b, const char **line, size_t *len)
{
    const char *start = buf_ptr(b);
    size_t used = buf_used(b);
    size_t i;

    for (i = 0; i < used; i++) {
        if (start[i] == '\n') {
            *line = start;
            *len = i;
            b->off += i + 1;
            return BUF_EOL_LF;
        }
        if (start[i] == '\r') {
            if (i + 1 == used)
                return BUF_EOL_NONE;
            *line = start;
            *len = i;
            if (start[i + 1] == '\n') {
                b->off += i + 2;
                return BUF_EOL_CRLF;
            }
            b->off += i + 1;
            return BUF_EOL_CR;
        }
    }
    return BUF_EOL_NONE;
}
