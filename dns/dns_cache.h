/*
 * dns_cache - answers kept for their TTL: results and negative answers
 * (NXDOMAIN, NODATA; RFC 2308), internal to dns/.
 *
 * Bounded twice, by entries and by the memory the results hold; when a
 * bound is reached the least recently used entry goes first.  An entry
 * past its TTL is never returned: it is dropped when found.  Time is
 * passed in by the caller (monotonic milliseconds), so tests age entries
 * without sleeping.
 *
 * The cache holds one reference on each result it stores and hands the
 * caller a reference of its own with each hit.
 */
#ifndef MXFWD_DNS_CACHE_H
#define MXFWD_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns.h"

/* "15 example.com": type number, space, normalised name. */
#define DNS_CACHE_KEY_MAX (DNS_NAME_MAX + 8)

typedef struct dns_cache dns_cache_t;

dns_cache_t *dns_cache_new(size_t max_entries, size_t max_bytes);
void dns_cache_free(dns_cache_t *c);

/* Write the key of (type, name) into key[DNS_CACHE_KEY_MAX]; its length. */
size_t dns_cache_key(char *key, dns_type_t type, const char *name);

/*
 * Find (type, name) as of now_ms.  true: a live entry, with *status 0 and
 * *res a new reference, or *status its DNS_E* code and *res NULL.  false:
 * none (or it had expired and is gone).
 */
bool dns_cache_get(dns_cache_t *c, dns_type_t type, const char *name, uint64_t now_ms, int *status,
                   dns_result_t **res);

/*
 * Keep status (0 with res, or a negative DNS_E* code with res NULL) for
 * ttl seconds from now_ms, replacing an entry for the same key.  The
 * cache takes its own reference on res.  A ttl of 0, or an entry larger
 * than the whole byte bound, is not kept.
 */
void dns_cache_put(dns_cache_t *c, dns_type_t type, const char *name, int status, dns_result_t *res,
                   uint32_t ttl, uint64_t now_ms);

size_t dns_cache_count(const dns_cache_t *c);
size_t dns_cache_bytes(const dns_cache_t *c);

#endif
