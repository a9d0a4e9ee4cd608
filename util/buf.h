/*
 * buf - a growable byte buffer with a hard cap, for network input and
 * for building output.
 *
 * The buffer owns its memory.  Bytes are appended at the end and consumed
 * from the front; consumed space is reclaimed by buf_compact() (called by
 * buf_append() when it needs room), so a long pipelined batch costs no
 * memmove per line.  buf_append() never lets the buffer hold more than
 * `max` unconsumed bytes: it appends nothing and returns BUF_EFULL instead.
 *
 * buf_getline() reports which terminator ended the line, because SMTP
 * treats CRLF, bare LF and bare CR differently (RFC 5321 2.3.8, smuggling).
 */
#ifndef MXFWD_BUF_H
#define MXFWD_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* The buf band of error codes (docs/development.md, "Error codes"). */
#define BUF_EBASE (-5000)
#define BUF_EFULL (BUF_EBASE - 1)

typedef struct {
    char *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of data; unconsumed bytes are data[off..len) */
    size_t cap; /* allocated */
    size_t max; /* cap on len - off */
} buf_t;

typedef enum {
    BUF_EOL_NONE, /* no complete line yet */
    BUF_EOL_CRLF,
    BUF_EOL_LF, /* LF not preceded by CR */
    BUF_EOL_CR, /* CR not followed by LF */
} buf_eol_t;

void buf_init(buf_t *b, size_t max);
void buf_free(buf_t *b);
/* Drop all content, keep the allocation. */
void buf_reset(buf_t *b);

/* Unconsumed bytes and their count. */
static inline const char *buf_ptr(const buf_t *b)
{
    return b->data + b->off;
}
static inline size_t buf_used(const buf_t *b)
{
    return b->len - b->off;
}
/* Bytes that may still be appended before the cap. */
static inline size_t buf_room(const buf_t *b)
{
    return b->max - buf_used(b);
}

int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Reserve space for n more bytes and return where to write them; commit
 * what was written with buf_commit().  NULL when the cap forbids it. */
char *buf_reserve(buf_t *b, size_t n);
void buf_commit(buf_t *b, size_t n);

void buf_consume(buf_t *b, size_t n);
/* Move unconsumed bytes to the front. */
void buf_compact(buf_t *b);

/*
 * Find the first line in the unconsumed bytes.  On success *line points at
 * it (not NUL-terminated), *len is its length without the terminator, and the
 * line and terminator are consumed; the pointer stays valid until the next
 * call that modifies the buffer.  A CR at the very end of the data might be
 * the first half of CRLF, so it gives BUF_EOL_NONE until more data arrives.
 */
buf_eol_t buf_getline(buf_t *b, const char **line, size_t *len);

#endif
