/*
 * str - checked string helpers.  ASCII-only case handling: mail protocol
 * keywords and domain names are compared without regard to the locale.
 *
 * Functions that write into a caller's array take its size and report
 * truncation instead of overflowing; the result is always NUL-terminated
 * when size > 0.
 */
#ifndef MXFWD_STR_H
#define MXFWD_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst[size].  0, or -1 when src did not fit (dst then holds
 * the truncated prefix). */
int str_lcpy(char *dst, const char *src, size_t size);
/* snprintf that reports truncation: 0, or -1 when the result did not fit. */
int str_fmt(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static inline char str_lower_c(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}
static inline char str_upper_c(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}
/* Lowercase in place; returns s. */
char *str_lower(char *s);
void str_lower_n(char *s, size_t n);

int str_casecmp(const char *a, const char *b);
int str_ncasecmp(const char *a, const char *b, size_t n);
bool str_eq_ci(const char *a, const char *b);
/* Whether s begins with prefix, ignoring ASCII case. */
bool str_prefix_ci(const char *s, const char *prefix);
/* Whether s[0..n) equals the NUL-terminated word, ignoring ASCII case. */
bool str_eq_ci_n(const char *s, size_t n, const char *word);

/* Strip leading and trailing spaces and tabs in place; returns the start. */
char *str_trim(char *s);

/*
 * Split off the next token of *cursor, tokens being separated by any run of
 * the characters in seps.  Returns the token (NUL-terminated in place) and
 * advances *cursor, or NULL when no token is left.  Like strsep(3), but
 * empty tokens are skipped.
 */
char *str_token(char **cursor, const char *seps);

/* Whether the n bytes contain a NUL or a control character other than tab. */
bool str_has_ctl(const char *s, size_t n);

/* Whether any of the n bytes is not ASCII. */
bool str_has_8bit(const char *s, size_t n);

/* Bytes of the valid UTF-8 sequence at s[0..n) (1 for an ASCII byte), or
 * 0 when it is not one: a truncated sequence, an overlong form, a
 * surrogate or a value past U+10FFFF.  n >= 1. */
size_t str_utf8_len(const char *s, size_t n);

/* Unix time t as an RFC 5322 date in UTC, "Sat, 28 Nov 2026 17:37:34 +0000",
 * with English names whatever the locale; needs 32 bytes. */
#define STR_DATE_SIZE 32
void str_date(int64_t t, char *dst, size_t size);

#endif
