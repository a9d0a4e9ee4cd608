/*
 * parse - values of configuration and command-line syntax: durations,
 * sizes, bounded integers and "host:port" endpoints.  Each returns 0 or -1
 * and never logs; callers say which file and line was wrong.
 */
#ifndef MXFWD_PARSE_H
#define MXFWD_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* "30s", "5m", "2h", "21d", "1w"; a bare number is seconds.  Result in
 * seconds, at most 10 years. */
int parse_duration(const char *s, uint64_t *secs);
/* "1000", "64K", "25M", "1G" (powers of 1024).  Result in bytes. */
int parse_size(const char *s, uint64_t *bytes);
/* A decimal integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#define PARSE_HOST_MAX 256

typedef struct {
    char host[PARSE_HOST_MAX]; /* without the brackets of "[::1]" */
    uint16_t port;             /* 0 when none was given */
    bool is_ip;                /* host is an IPv4 or IPv6 literal */
} parse_hostport_t;

/*
 * "1.2.3.4:25", "[::1]:25", "host.example:2525", and without ":port" when
 * port_optional.  An IPv6 address must be bracketed when a port follows;
 * a bare IPv6 address is accepted when port_optional.  Brackets around a
 * host name are allowed and dropped ("[relay.example]:25", as Postfix
 * writes a next hop).  Host names are checked for host-name syntax.
 */
int parse_hostport(const char *s, bool port_optional, parse_hostport_t *out);

/* Fill a sockaddr from an IP literal and a port.  0, or -1 when host is not
 * an IP address. */
int parse_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss);

/* Fill a Unix socket address from a path, or from "@name" for a name in
 * the abstract namespace (as systemd writes NOTIFY_SOCKET).  0 and *len
 * the length to pass to connect(2) or sendto(2); -1 when path is empty,
 * too long, or neither absolute nor abstract. */
int parse_unix_sockaddr(const char *path, struct sockaddr_storage *ss, socklen_t *len);

/* The version at the start of a kernel release string (uname -r):
 * "6.1.0-18-amd64" is 6.1.  0, or -1 when it does not start MAJOR.MINOR. */
int parse_kernel_release(const char *release, unsigned *major, unsigned *minor);

/* Format an address as "1.2.3.4:25" or "[::1]:25". */
void parse_format_sockaddr(const struct sockaddr *sa, char *dst, size_t size);

#endif
