#include "xtext.h"

#include <stdio.h>

static int xtext_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    /* RFC 3461 writes upper case; lower case is taken, as Postfix does. */
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

long xtext_decode(const char *s, size_t len, char *dst, size_t size)
{
    size_t n = 0;

    if (size == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi, lo;

        if (n + 1 >= size)
            return -1;
        if (c == '+') {
            if (i + 2 >= len || (hi = xtext_hex(s[i + 1])) < 0 || (lo = xtext_hex(s[i + 2])) < 0)
                return -1;
            dst[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c >= '!' && c <= '~' && c != '=') {
            dst[n++] = (char)c;
        } else {
            return -1;
        }
    }
    dst[n] = '\0';
    return (long)n;
}

int xtext_encode(buf_t *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc = c >= '!' && c <= '~' && c != '+' && c != '='
                     ? buf_append(out, (const char *)&s[i], 1)
                     : buf_printf(out, "+%02X", c);
        if (rc != 0)
            return rc;
    }
    return 0;
}
