/*
 * dns_msg - DNS answers turned into typed results, and the names we ask
 * about.  Internal to dns/ (the resolver and its tests and fuzzer).
 *
 * Everything here is pure: bytes in, results out, no I/O, so unit tests
 * and the fuzzer call it directly.  Answers are read with our own walk
 * over the message (c-ares' ares_expand_name() decompresses names) because
 * the cache needs the TTLs that c-ares 1.18's MX, TXT and PTR parsers
 * drop, and because records are taken only from the owner name asked
 * about or the CNAME chain leading from it.
 *
 * Results are reference-counted and immutable once built: the cache and
 * every waiting lookup share one.  dns_msg_result_unref() frees the last
 * reference.
 */
#ifndef MXFWD_DNS_MSG_H
#define MXFWD_DNS_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns.h"

/* Longest CNAME chain followed inside one answer. */
#define DNS_MSG_CNAME_MAX 8

/*
 * Read answer abuf[0..alen), the reply to a query for name (normalised,
 * see dns_msg_name_norm()) and type.  Returns:
 *   0            *res holds n >= 1 records; *ttl is the smallest TTL of
 *                the records and CNAMEs used;
 *   DNS_ENXDOMAIN, DNS_ENODATA
 *                *ttl is how long the negative answer may be kept
 *                (RFC 2308: the smaller of the SOA record's TTL and its
 *                MINIMUM field), 0 when the answer carries no SOA;
 *   DNS_ESERVFAIL, DNS_EREFUSED, DNS_EBADRESP, DNS_EFAIL
 *                *ttl is 0.
 */
int dns_msg_parse(const unsigned char *abuf, size_t alen, const char *name, dns_type_t type,
                  dns_result_t **res, uint32_t *ttl);

/*
 * Normalise a name to look up into out[DNS_NAME_MAX + 1]: lowercase, one
 * trailing dot removed.  Labels are 1 to 63 octets of letters, digits,
 * '-' and '_' (for _dmarc and _domainkey names).  0 or DNS_EBADNAME.
 */
int dns_msg_name_norm(const char *name, char *out);

/* The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa" or the
 * 32 nibbles of ip6.arpa.  0 or DNS_EINVAL (another family). */
int dns_msg_ptr_name(const struct sockaddr *sa, char *out, size_t size);

/* A result of n zeroed records and one reference. */
dns_result_t *dns_msg_result_new(dns_type_t type, size_t n);
/* The answer to an A or AAAA lookup of an IP literal: 0 and *res, or
 * DNS_ENODATA when the literal is of the other family, or DNS_EBADNAME
 * when name is not an IP literal. */
int dns_msg_literal(const char *name, dns_type_t type, dns_result_t **res);
dns_result_t *dns_msg_result_ref(dns_result_t *res);
void dns_msg_result_unref(dns_result_t *res);

#endif
