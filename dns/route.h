/*
 * route - where mail for a domain goes: the next hops to try, in order,
 * or the reason there are none.
 *
 * The decision, in this order:
 *  1. A route entry for the domain, else the "*" entry (smarthost): its
 *     host, an IP literal or a name whose AAAA and A records are used (no
 *     MX lookup), at the entry's port or the default port.
 *  2. An address-literal domain, "[192.0.2.1]" or "[IPv6:2001:db8::1]":
 *     that address.
 *  3. The domain's MX records.  A null MX ("0 .", RFC 7505) fails at once,
 *     permanently.  Otherwise the hosts by preference, in random order
 *     among equal preferences, the best max_hosts of them, each with its
 *     AAAA then its A addresses, at most max_addrs hops in all.
 *  4. No MX records (NODATA): the domain itself, as its own MX with
 *     preference 0 (implicit MX, RFC 5321 5.1).
 * Then loops: a host with an address (and port) that is one of our own
 * listen addresses gives our own preference; hosts at that preference or
 * worse are dropped (RFC 5321 5.1), and when none is left the mail would
 * loop: permanent failure.  Another port on the same address is a
 * legitimate next hop.
 *
 * Failures: NXDOMAIN for the domain, or no address for any MX host, is
 * permanent; a temporary DNS error with no usable hop is temporary.  A
 * route entry whose host does not resolve is temporary too: it is the
 * admin's to fix, and mail should wait for that rather than bounce.  The
 * reason reads as Postfix words it ("Host or domain name not found. Name
 * service error for name=example.com type=MX: Host not found"), with an
 * RFC 3463 status code for the DSN.
 *
 * route_lookup() is the asynchronous driver over the resolver; the
 * decision itself (route_find(), route_order(), route_plan()) is pure and
 * is what the unit tests exercise.  Callbacks run on the loop thread; a
 * call that returns an error never calls its callback.
 */
#ifndef MXFWD_ROUTE_H
#define MXFWD_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns.h"

/* Reason texts fit the delivery interface's reply field. */
#define ROUTE_REASON_MAX 512

/* A next hop as the configuration gives it (config `route`). */
typedef struct {
    const char *domain; /* lowercased domain, or "*" for every other one */
    const char *host;   /* host name or IP literal, without brackets */
    uint16_t port;      /* 0: the default port */
} route_entry_t;

typedef uint64_t (*route_rand_fn)(void *arg);

typedef struct {
    const route_entry_t *entries;
    size_t nentries;
    /* Our own addresses: listen addresses with wildcards expanded by
     * route_own_addresses().  A next hop at one of them is a loop. */
    const struct sockaddr_storage *own;
    size_t nown;
    uint16_t port;      /* outbound_port: MX hosts and routes without a port; 0: 25 */
    size_t max_hosts;   /* 0: DEFAULT_MX_HOST_LIMIT */
    size_t max_addrs;   /* 0: DEFAULT_MX_ADDRESS_LIMIT */
    route_rand_fn rand; /* orders equal preferences; NULL: getrandom(2) */
    void *rand_arg;
} route_config_t;

typedef enum { ROUTE_OK, ROUTE_TEMPFAIL, ROUTE_PERMFAIL } route_status_t;

typedef struct {
    char host[DNS_NAME_MAX + 1];  /* MX host, route host or the domain; the
                                   * address itself for a literal */
    struct sockaddr_storage addr; /* address and port to connect to */
    uint16_t pref;                /* MX preference; 0 for the others */
} route_hop_t;

typedef struct {
    route_status_t status;
    const char *dsn;               /* RFC 3463 status, "4.4.3", "5.1.10", ...; "" when OK */
    char reason[ROUTE_REASON_MAX]; /* for the DSN and the log; "" when OK */
    route_hop_t *hops;             /* in the order to try */
    size_t nhops;
} route_result_t;

/* The result belongs to the callback: release it with route_result_free(). */
typedef void (*route_cb)(void *arg, route_result_t *res);

typedef struct route_req route_req_t;

/*
 * Find the next hops for domain (lowercase; an address literal keeps its
 * brackets).  cfg is copied: it need not outlive the call.  0: cb will be
 * called once unless route_cancel(*req) comes first.  Negative DNS_E*
 * code: no callback (DNS_EBADNAME, permanent; DNS_ECLOSING).
 */
int route_lookup(dns_resolver_t *r, const route_config_t *cfg, const char *domain, route_cb cb,
                 void *arg, route_req_t **req);
void route_cancel(route_req_t *req);
void route_result_free(route_result_t *res);

/* Our own addresses from the listen addresses: each as it is, and for a
 * wildcard (0.0.0.0, ::) every local interface address with its port.
 * *out is allocated (free(3)). */
void route_own_addresses(const struct sockaddr_storage *listen, size_t nlisten,
                         struct sockaddr_storage **out, size_t *nout);

/* ---- the pure decision ---- */

/* Indexes into route_host_t's per-family arrays, in the order used. */
#define ROUTE_V6 0
#define ROUTE_V4 1

/* A host and what its AAAA and A lookups gave. */
typedef struct {
    char *name;
    uint16_t pref;
    int status[2]; /* 0 or the DNS_E* code of the AAAA / A lookup */
    dns_addr_t *addr[2];
    size_t naddr[2];
} route_host_t;

typedef enum {
    ROUTE_VIA_MX,       /* MX records */
    ROUTE_VIA_IMPLICIT, /* the domain as its own MX */
    ROUTE_VIA_ROUTE,    /* a route entry */
    ROUTE_VIA_LITERAL,  /* an address-literal domain */
} route_via_t;

/*
 * The hosts to resolve for an MX lookup's outcome (status and res as the
 * resolver gave them): the MX hosts ordered with route_order(), without
 * duplicates, the best max_hosts of them (ROUTE_VIA_MX); or the domain
 * itself after NODATA (ROUTE_VIA_IMPLICIT).  *hosts is allocated, names
 * too: release with route_hosts_free().  -1 when there is nothing to
 * resolve: out holds the failure (null MX, NXDOMAIN, temporary error).
 */
int route_from_mx(const char *domain, int status, const dns_result_t *res, size_t max_hosts,
                  uint64_t *rng, route_host_t **hosts, size_t *nhosts, route_result_t *out);
void route_hosts_free(route_host_t *hosts, size_t n);

/* The route entry for domain: exact (case-insensitive), else "*", else NULL. */
const route_entry_t *route_find(const route_config_t *cfg, const char *domain);

/* Sort hosts by preference and shuffle each run of equal preferences with
 * the generator state *rng (splitmix64). */
void route_order(route_host_t *hosts, size_t n, uint64_t *rng);

/* Whether sa (address and port) is one of cfg's own addresses. */
bool route_is_own(const route_config_t *cfg, const struct sockaddr *sa);

/*
 * Decide from the hosts (ordered) and their lookups: hops to port, or the
 * failure.  out->hops is allocated; release with route_result_free() or
 * free(out->hops).
 */
void route_plan(const route_config_t *cfg, const char *domain, route_via_t via, uint16_t port,
                const route_host_t *hosts, size_t nhosts, route_result_t *out);

#endif
