#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "parse.h"

int cidr_parse(const char *s, cidr_t *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
    uint64_t bits;

    memset(out, 0, sizeof(*out));
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(host))
        return -1;
    memcpy(host, s, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        if (parse_uint(slash + 1, 0, out->bits, &bits) < 0)
            return -1;
        out->bits = (unsigned)bits;
    }
    return 0;
}

static bool cidr_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    return rest == 0 || ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool cidr_match(const cidr_t *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    int family = sa->sa_family;

    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        a = in6->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    return family == c->family && cidr_prefix_eq(a, c->addr, c->bits);
}

bool cidr_match_any(const cidr_t *c, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&c[i], sa))
            return true;
    return false;
}
