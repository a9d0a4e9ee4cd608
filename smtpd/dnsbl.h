/*
 * dnsbl - DNS block and allow lists of client addresses (dnsbl, dnswl:
 * docs/smtp.md, "DNS lists").
 *
 * A client is looked up in every list at once, as the lists publish
 * (RFC 5782): its IPv4 address's octets reversed, or its IPv6 address's
 * nibbles reversed, under the list's zone, type A.  An answer counts when
 * it matches the list's pattern (Postfix's syntax: "127.0.0.2",
 * "127.0.0.[2..11]", "127.0.0.[2;4;10..12]"), or without one when it is
 * in 127.0.0.0/8.  An allow list's listing wins over every block list;
 * otherwise the first block list in order that lists the client gives
 * the result, with its TXT record at the same name as the reason.  A
 * lookup that fails (SERVFAIL, timeout) lists nobody: the result says
 * which lists could not be asked.
 *
 * Lookups go through the daemon's resolver (dns/dns.h) and call back on
 * the loop, never from inside dnsbl_check().  The names and patterns are
 * borrowed and must outlive the check; the result is valid only during
 * the callback.
 */
#ifndef MXFWD_DNSBL_H
#define MXFWD_DNSBL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dns.h"
#include "dnsbl_pattern.h"

typedef struct {
    const char *zone;    /* "zen.spamhaus.org" */
    const char *pattern; /* "127.0.0.[2..11]", or NULL */
} dnsbl_list_t;

typedef enum {
    DNSBL_CLEAN,   /* in no list (or in none that answered) */
    DNSBL_LISTED,  /* in a block list */
    DNSBL_ALLOWED, /* in an allow list: the block lists do not apply */
} dnsbl_status_t;

/* A list that could not be asked. */
typedef struct {
    const char *zone;
    int error; /* DNS_E* */
} dnsbl_failure_t;

typedef struct {
    dnsbl_status_t status;
    const char *zone;   /* LISTED, ALLOWED: the list */
    const char *reason; /* LISTED: the list's TXT text, NULL without one */
    char answer[INET_ADDRSTRLEN]; /* LISTED, ALLOWED: the A record that matched */
    const dnsbl_failure_t *failures;
    size_t nfailures;
} dnsbl_result_t;

typedef void (*dnsbl_cb)(void *arg, const dnsbl_result_t *res);
typedef struct dnsbl_req dnsbl_req_t;

/* The name to look sa up at in zone, into out[size]: 0, or -1 when sa is
 * neither IPv4 nor IPv6 or the name does not fit. */
int dnsbl_query_name(const struct sockaddr *sa, const char *zone, char *out, size_t size);

/*
 * Look sa up in the allow lists wl[0..nwl) and the block lists
 * bl[0..nbl): 0, *req (may be NULL) until cb(arg, result) is called once;
 * or -1 when no lookup could start (no callback).
 */
int dnsbl_check(dns_resolver_t *r, const struct sockaddr *sa, const dnsbl_list_t *bl, size_t nbl,
                const dnsbl_list_t *wl, size_t nwl, dnsbl_cb cb, void *arg, dnsbl_req_t **req);

/* Forget a check: its callback will not be called. */
void dnsbl_cancel(dnsbl_req_t *req);

#endif
