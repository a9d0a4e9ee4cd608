#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "str.h"

/* Character classes, so the checks below cost one load per byte. */
#define ADDR_C_ATEXT 0x01 /* RFC 5322 atext, plus UTF-8 bytes (RFC 6531) */
#define ADDR_C_LDH 0x02   /* letter, digit, hyphen, plus UTF-8 bytes (U-labels) */
#define ADDR_C_HIGH 0x04  /* outside ASCII */

#define ADDR_C_WORD (ADDR_C_ATEXT | ADDR_C_LDH)

/* Range designators are a GNU C extension that GCC and Clang both take. */
static const unsigned char addr_class[256] = {
    ['a' ... 'z'] = ADDR_C_WORD,
    ['A' ... 'Z'] = ADDR_C_WORD,
    ['0' ... '9'] = ADDR_C_WORD,
    ['-'] = ADDR_C_WORD,
    ['!'] = ADDR_C_ATEXT, ['#'] = ADDR_C_ATEXT, ['$'] = ADDR_C_ATEXT, ['%'] = ADDR_C_ATEXT,
    ['&'] = ADDR_C_ATEXT, ['\''] = ADDR_C_ATEXT, ['*'] = ADDR_C_ATEXT, ['+'] = ADDR_C_ATEXT,
    ['/'] = ADDR_C_ATEXT, ['='] = ADDR_C_ATEXT, ['?'] = ADDR_C_ATEXT, ['^'] = ADDR_C_ATEXT,
    ['_'] = ADDR_C_ATEXT, ['`'] = ADDR_C_ATEXT, ['{'] = ADDR_C_ATEXT, ['|'] = ADDR_C_ATEXT,
    ['}'] = ADDR_C_ATEXT, ['~'] = ADDR_C_ATEXT,
    [0x80 ... 0xff] = ADDR_C_WORD | ADDR_C_HIGH,
};

bool addr_utf8_valid(const char *s, size_t len)
{
    size_t i = 0, n;

    while (i < len && (n = str_utf8_len(s + i, len - i)) > 0)
        i += n;
    return i == len;
}

static int addr_local_check(const char *s, size_t len, bool *quoted, bool *high)
{
    *quoted = false;
    if (len == 0)
        return ADDR_ELOCAL;
    if (s[0] == '"') {
        if (len < 2 || s[len - 1] != '"')
            return ADDR_ELOCAL;
        for (size_t i = 1; i < len - 1; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                if (i + 1 >= len - 1)
                    return ADDR_ELOCAL;
                c = (unsigned char)s[++i];
                if (c < 32 || c > 126)
                    return ADDR_ELOCAL;
            } else if (c == '"' || (c < 32) || c == 127) {
                return ADDR_ELOCAL;
            }
            if (c >= 0x80)
                *high = true;
        }
        *quoted = true;
        return 0;
    }
    if (s[0] == '.' || s[len - 1] == '.')
        return ADDR_ELOCAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return ADDR_ELOCAL;
        } else if (!(addr_class[c] & ADDR_C_ATEXT)) {
            return ADDR_ELOCAL;
        } else if (addr_class[c] & ADDR_C_HIGH) {
            *high = true;
        }
    }
    return 0;
}

static int addr_literal_check(const char *d, size_t len)
{
    char ip[64];
    unsigned char bin[16];
    size_t n = len - 2;

    if (n == 0 || n >= sizeof(ip))
        return ADDR_EDOMAIN;
    memcpy(ip, d + 1, n);
    ip[n] = '\0';
    if (strncmp(ip, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, ip + 5, bin) == 1 ? 0 : ADDR_EDOMAIN;
    return inet_pton(AF_INET, ip, bin) == 1 ? 0 : ADDR_EDOMAIN;
}

static int addr_domain_check_high(const char *d, size_t len, bool *high)
{
    size_t label = 0;

    if (len == 0)
        return ADDR_EDOMAIN;
    if (len > ADDR_DOMAIN_MAX)
        return ADDR_EDOMAINLEN;
    if (d[0] == '[')
        return d[len - 1] == ']' ? addr_literal_check(d, len) : ADDR_EDOMAIN;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)d[i] : '.';
        if (c == '.') {
            /* Empty labels, and labels starting or ending with '-'. */
            if (label == 0 || label > 63 || d[i - label] == '-' || d[i - 1] == '-')
                return ADDR_EDOMAIN;
            label = 0;
            continue;
        }
        if (!(addr_class[c] & ADDR_C_LDH))
            return ADDR_EDOMAIN;
        if (c >= 0x80)
            *high = true;
        label++;
    }
    if (*high && !addr_utf8_valid(d, len))
        return ADDR_EUTF8;
    return 0;
}

int addr_domain_check(const char *d, size_t len)
{
    bool high = false;

    return addr_domain_check_high(d, len, &high);
}

static int addr_parse_limits(const char *s, size_t len, size_t local_max, size_t max,
                             addr_t *out)
{
    const char *at = NULL;
    bool in_quote = false, local_high = false, domain_high = false;
    int err;

    memset(out, 0, sizeof(*out));
    if (len == 0)
        return ADDR_EEMPTY;
    /* The domain starts after the last '@' outside a quoted string. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && in_quote) {
            i++;
            continue;
        }
        if (s[i] == '"')
            in_quote = !in_quote;
        else if (s[i] == '@' && !in_quote)
            at = s + i;
    }
    if (at == NULL || at == s)
        return at == NULL ? ADDR_ENOAT : ADDR_ELOCAL;
    out->local = s;
    out->local_len = (size_t)(at - s);
    out->domain = at + 1;
    out->domain_len = len - out->local_len - 1;
    if (out->domain_len == 0)
        return ADDR_ENOAT;
    if (out->local_len > local_max)
        return ADDR_ELOCALLEN;
    if ((err = addr_local_check(out->local, out->local_len, &out->quoted, &local_high)) < 0)
        return err;
    if (local_high && !addr_utf8_valid(out->local, out->local_len))
        return ADDR_EUTF8;
    if ((err = addr_domain_check_high(out->domain, out->domain_len, &domain_high)) < 0)
        return err;
    if (len > max)
        return ADDR_ELEN;
    out->literal = out->domain[0] == '[';
    out->utf8 = local_high || domain_high;
    return 0;
}

int addr_parse(const char *s, size_t len, addr_t *out)
{
    return addr_parse_limits(s, len, ADDR_LOCAL_MAX, ADDR_MAX, out);
}

int addr_parse_input(const char *s, size_t len, addr_t *out)
{
    return addr_parse_limits(s, len, ADDR_INPUT_MAX, ADDR_INPUT_MAX, out);
}

bool addr_is_relay_trick(const addr_t *a)
{
    for (size_t i = 0; i < a->local_len; i++) {
        char c = a->local[i];
        if (c == '%' || c == '!' || (a->quoted && c == '@'))
            return true;
    }
    return false;
}

const char *addr_strerror(int err)
{
    switch (err) {
    case 0:
        return "valid";
    case ADDR_EEMPTY:
        return "empty address";
    case ADDR_ENOAT:
        return "address has no @domain";
    case ADDR_ELOCAL:
        return "bad local part";
    case ADDR_EDOMAIN:
        return "bad domain";
    case ADDR_ELOCALLEN:
        return "local part longer than 64 octets";
    case ADDR_EDOMAINLEN:
        return "domain longer than 255 octets";
    case ADDR_ELEN:
        return "address longer than 254 octets";
    case ADDR_EUTF8:
        return "invalid UTF-8";
    }
    return "bad address";
}

int addr_dns_name(const char *s, size_t len, char *dst, size_t size)
{
    size_t label = 0;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > 253 || len >= size)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if ((c < 0x80 && (addr_class[c] & ADDR_C_LDH)) || c == '_') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
        dst[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (label == 0)
        return -1;
    dst[len] = '\0';
    return (int)len;
}
