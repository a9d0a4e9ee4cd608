/*
 * rdns - a client's name, forward-confirmed.
 *
 * The name a server logs and writes into Received: for a client is the
 * one DNS vouches for both ways (Postfix's "verified" client name, RFC
 * 8601 3's "iprev"): the PTR records of the client's address give host
 * names, and a name counts only when its own A (or AAAA, for an IPv6
 * client) records contain that address again.  Anyone controlling the
 * reverse zone of an address can make its PTR say anything; the forward
 * lookup is what ties the name to its owner.
 *
 * rdns_lookup() asks for the PTR records, then for the addresses of each
 * name in turn (the first DEFAULT_RDNS_NAMES), and reports the first name
 * that maps back.  A PTR that is itself an address literal never confirms
 * (an A lookup of "192.0.2.1" would answer with itself).  IPv4-mapped IPv6
 * addresses are looked up as the IPv4 addresses they are.
 *
 * The result comes through the callback, once, on the loop thread, never
 * from inside rdns_lookup(); rdns_cancel() before then means no callback.
 * The resolver must outlive every lookup.  Strings passed to the callback
 * are valid only during it.
 */
#ifndef MXFWD_RDNS_H
#define MXFWD_RDNS_H

#include <sys/socket.h>

#include "dns.h"

typedef enum {
    RDNS_OK,       /* name is confirmed */
    RDNS_NONE,     /* no name maps back to the address: the client is unknown */
    RDNS_TEMPFAIL, /* a DNS error kept the answer from being known */
} rdns_status_t;

typedef struct {
    rdns_status_t status;
    /* RDNS_OK: the confirmed name, lowercased, without a trailing dot.
     * Otherwise NULL. */
    const char *name;
    /* RDNS_NONE, RDNS_TEMPFAIL: the first PTR name that did not map back
     * (for a log line that says why), or NULL when there was none. */
    const char *unverified;
    /* RDNS_TEMPFAIL: the DNS error (DNS_E*); 0 otherwise. */
    int error;
} rdns_result_t;

typedef void (*rdns_cb)(void *arg, const rdns_result_t *result);

typedef struct rdns_req rdns_req_t;

/* Start.  0 and *req (not NULL), or a negative DNS_E* when the address
 * cannot be looked up (DNS_EINVAL for a family other than IPv4 and IPv6,
 * DNS_ECLOSING): then no callback. */
int rdns_lookup(dns_resolver_t *r, const struct sockaddr *sa, rdns_cb cb, void *arg,
                rdns_req_t **req);

/* Forget a lookup whose callback has not run: it will not run. */
void rdns_cancel(rdns_req_t *req);

#endif
