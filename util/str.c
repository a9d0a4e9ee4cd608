#include "str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int str_lcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);

    if (size == 0)
        return -1;
    if (len >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

int str_fmt(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

char *str_lower(char *s)
{
    for (char *p = s; *p; p++)
        *p = str_lower_c(*p);
    return s;
}

void str_lower_n(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i] = str_lower_c(s[i]);
}

int str_casecmp(const char *a, const char *b)
{
    unsigned char ca, cb;

    do {
        ca = (unsigned char)str_lower_c(*a++);
        cb = (unsigned char)str_lower_c(*b++);
    } while (ca && ca == cb);
    return ca - cb;
}

int str_ncasecmp(const char *a, const char *b, size_t n)
{
    unsigned char ca = 0, cb = 0;

    while (n--) {
        ca = (unsigned char)str_lower_c(*a++);
        cb = (unsigned char)str_lower_c(*b++);
        if (!ca || ca != cb)
            break;
    }
    return ca - cb;
}

bool str_eq_ci(const char *a, const char *b)
{
    return str_casecmp(a, b) == 0;
}

bool str_prefix_ci(const char *s, const char *prefix)
{
    return str_ncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool str_eq_ci_n(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && str_ncasecmp(s, word, n) == 0;
}

char *str_trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

char *str_token(char **cursor, const char *seps)
{
    char *p = *cursor;
    char *tok;

    if (p == NULL)
        return NULL;
    p += strspn(p, seps);
    if (*p == '\0') {
        *cursor = p;
        return NULL;
    }
    tok = p;
    p += strcspn(p, seps);
    if (*p != '\0')
        *p++ = '\0';
    *cursor = p;
    return tok;
}

bool str_has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

bool str_has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

size_t str_utf8_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void str_date(int64_t t, char *dst, size_t size)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;

    /* Names from tables, not strftime: the locale must not leak into mail. */
    if (gmtime_r(&tt, &tm) == NULL) {
        str_lcpy(dst, "Thu, 1 Jan 1970 00:00:00 +0000", size);
        return;
    }
    snprintf(dst, size, "%s, %d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
