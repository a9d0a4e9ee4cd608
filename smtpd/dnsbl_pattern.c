/*
 * dnsbl_pattern.c - the patterns DNS list answers are matched against
 * (docs/smtp.md, "DNS lists"): Postfix's "127.0.0.[2..11]" syntax.
 */
#include "dnsbl_pattern.h"

#include <stddef.h>
#include <stdint.h>

/* A number of 0 to 255 at *p: its value, p moved past it; -1 if none. */
static int dnsbl_pattern_num(const char **p)
{
    int v = 0, digits = 0;

    while (**p >= '0' && **p <= '9' && digits < 4) {
        v = v * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    return digits == 0 || digits > 3 || v > 255 ? -1 : v;
}

/* One octet of a pattern at *p, compared with v (v < 0: only checked):
 * 1 when it matches, 0 when not, -1 when the pattern is wrong. */
static int dnsbl_pattern_octet(const char **p, int v)
{
    int n, hi, match = 0;

    if (**p != '[') {
        n = dnsbl_pattern_num(p);
        return n < 0 ? -1 : n == v;
    }
    (*p)++;
    for (;;) {
        if ((n = dnsbl_pattern_num(p)) < 0)
            return -1;
        hi = n;
        if ((*p)[0] == '.' && (*p)[1] == '.') {
            *p += 2;
            if ((hi = dnsbl_pattern_num(p)) < n)
                return -1;
        }
        match = match || (v >= n && v <= hi);
        if (**p == ']') {
            (*p)++;
            return match;
        }
        if (**p != ';')
            return -1;
        (*p)++;
    }
}

/* Whether pattern is valid, and when a is given whether a matches it. */
static bool dnsbl_pattern_check(const char *pattern, const struct in_addr *a, bool *match)
{
    const uint8_t *o = a != NULL ? (const uint8_t *)&a->s_addr : NULL;
    const char *p = pattern;

    *match = true;
    for (int i = 0; i < 4; i++) {
        int r = dnsbl_pattern_octet(&p, o != NULL ? o[i] : -1);
        if (r < 0)
            return false;
        *match = *match && r == 1;
        if (i < 3 && *p++ != '.')
            return false;
    }
    return *p == '\0';
}

bool dnsbl_pattern_valid(const char *pattern)
{
    bool match;

    return dnsbl_pattern_check(pattern, NULL, &match);
}

bool dnsbl_pattern_match(const char *pattern, const struct in_addr *a)
{
    bool match;

    if (pattern == NULL)
        return ((const uint8_t *)&a->s_addr)[0] == 127;
    return dnsbl_pattern_check(pattern, a, &match) && match;
}
