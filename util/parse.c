#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "str.h"

#define PARSE_DURATION_MAX (10ULL * 366 * 86400)

/* Digits followed by an optional one-letter unit; *unit gets the letter or
 * '\0'. */
static int parse_number_unit(const char *s, uint64_t *value, char *unit)
{
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *unit = *p;
    if (*p != '\0' && p[1] != '\0')
        return -1;
    *value = v;
    return 0;
}

/* A unit letter and what it multiplies by; the '\0' entry is no unit. */
typedef struct {
    char unit;
    uint64_t mult;
} parse_unit_t;

/* Digits and one of units' letters (case-insensitive when fold), scaled,
 * at most max. */
static int parse_scaled(const char *s, const parse_unit_t *units, size_t n, bool fold, uint64_t max,
                        uint64_t *out)
{
    uint64_t v;
    char unit;

    if (parse_number_unit(s, &v, &unit) < 0)
        return -1;
    if (fold)
        unit = str_lower_c(unit);
    for (size_t i = 0; i < n; i++) {
        if (units[i].unit != unit)
            continue;
        if (v > max / units[i].mult)
            return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

int parse_duration(const char *s, uint64_t *secs)
{
    static const parse_unit_t units[] = {
        {'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400},
    };

    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), false, PARSE_DURATION_MAX,
                        secs);
}

int parse_size(const char *s, uint64_t *bytes)
{
    static const parse_unit_t units[] = {
        {'\0', 1},
        {'k', 1024},
        {'m', 1024 * 1024},
        {'g', 1024 * 1024 * 1024},
    };

    return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), true, UINT64_MAX, bytes);
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    char unit;

    if (parse_number_unit(s, &v, &unit) < 0 || unit != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int parse_kernel_release(const char *release, unsigned *major, unsigned *minor)
{
    unsigned v[2] = {0, 0};
    const char *p = release;

    for (int i = 0; i < 2; i++) {
        int digits = 0;

        if (i == 1 && *p++ != '.')
            return -1;
        for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
            v[i] = v[i] * 10 + (unsigned)(*p - '0');
        if (digits == 0 || (*p >= '0' && *p <= '9'))
            return -1;
    }
    *major = v[0];
    *minor = v[1];
    return 0;
}

int parse_hostport(const char *s, bool port_optional, parse_hostport_t *out)
{
    const char *host = s, *host_end, *port = NULL;
    unsigned char bin[16];
    uint64_t p;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return -1;
        if (host_end[1] == ':')
            port = host_end + 2;
        else if (host_end[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            /* Several colons: a bare IPv6 address, without a port. */
            host_end = s + strlen(s);
        } else if (colon != NULL) {
            host_end = colon;
            port = colon + 1;
        } else {
            host_end = s + strlen(s);
        }
    }
    n = (size_t)(host_end - host);
    if (n == 0 || n >= sizeof(out->host))
        return -1;
    memcpy(out->host, host, n);
    out->host[n] = '\0';

    if (port != NULL) {
        if (parse_uint(port, 1, 65535, &p) < 0)
            return -1;
        out->port = (uint16_t)p;
    } else if (!port_optional) {
        return -1;
    }

    if (inet_pton(AF_INET, out->host, bin) == 1 || inet_pton(AF_INET6, out->host, bin) == 1) {
        out->is_ip = true;
        return 0;
    }
    return addr_domain_check(out->host, n) == 0 ? 0 : -1;
}

int parse_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        return 0;
    }
    return -1;
}

int parse_unix_sockaddr(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    size_t n = strlen(path);

    _Static_assert(sizeof(struct sockaddr_storage) >= sizeof(struct sockaddr_un),
                   "a Unix socket address fits a sockaddr_storage");
    memset(ss, 0, sizeof(*ss));
    if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof(sun->sun_path))
        return -1;
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    if (path[0] == '@') {
        /* An abstract name: a leading NUL, and the length says where it
         * ends (it has no terminator of its own). */
        sun->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

void parse_format_sockaddr(const struct sockaddr *sa, char *dst, size_t size)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(dst, size, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(dst, size, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        snprintf(dst, size, "unknown");
    }
}
