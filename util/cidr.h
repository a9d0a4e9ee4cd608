/*
 * cidr - address blocks ("192.0.2.0/24", "2001:db8::/32") and whether an
 * address falls in one (rate_limit_exempt, docs/configuration.md).
 *
 * Pure; a cidr_t is a small value.  An IPv4-mapped IPv6 address is
 * matched as the IPv4 address it maps.
 */
#ifndef MXFWD_CIDR_H
#define MXFWD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; 4 bytes used for IPv4 */
    unsigned bits;    /* prefix length */
} cidr_t;

/* "ADDR" or "ADDR/BITS", an IPv6 address optionally in brackets
 * ("[2001:db8::]/32", as Postfix's mynetworks writes it).  0 and *out,
 * or -1 when s is no such block (bits beyond the address, host bits set
 * are allowed and ignored). */
int cidr_parse(const char *s, cidr_t *out);

/* Whether sa (AF_INET or AF_INET6) is in c, or in any of c[0..n). */
bool cidr_match(const cidr_t *c, const struct sockaddr *sa);
bool cidr_match_any(const cidr_t *c, size_t n, const struct sockaddr *sa);

#endif
