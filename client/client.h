/*
 * client - the outbound SMTP client: queue/delivery.h's delivery
 * interface over the network.
 *
 * A client_t owns, on one libuv loop: the settings it copied from its
 * client_options_t (hostname, routes, port, TLS policy, timeout, the
 * concurrency limits, the listen addresses for loop detection), a TLS
 * client context, the jobs it was given, the SMTP
 * connections it opened and the cache of idle ones.  It borrows the
 * resolver, which must outlive it.
 *
 * A job (one message, the recipients of one domain) is routed with dns/
 * route_lookup(), then its next hops are tried in order: connect, greeting,
 * EHLO (HELO when EHLO is refused), STARTTLS per outbound_tls, one
 * transaction for all its recipients (pipelined when the server offers
 * PIPELINING), the message streamed from the spool file with dot-stuffing.
 * Every recipient ends OK, TEMPFAIL or PERMFAIL with the server's reply (or
 * mxfwd's reason), its enhanced status code and the relay that said so.
 * Temporary failures at one hop leave the recipients for the next one
 * (Postfix's rule); only the last hop tried defers them.
 *
 * Concurrency: at most max_deliveries jobs at once, at most
 * max_deliveries_per_domain per destination (the domain, or the route's
 * next hop when a route applies).  Further jobs wait inside the client, in
 * the order they came, and start as others finish: deliver() never refuses
 * a job for being busy.
 *
 * Connections are kept after a transaction for further jobs to the same
 * address and port (DEFAULT_SMTP_CACHE_IDLE seconds idle, at most
 * DEFAULT_SMTP_REUSE_COUNT transactions and DEFAULT_SMTP_REUSE_TIME
 * seconds); a reused connection is probed with RSET, and one found dead is
 * replaced by a fresh one without counting as a failure.
 *
 * Callbacks run on the loop thread, never from inside deliver().  The
 * client logs only connection-level debug lines: the per-recipient log
 * line is the queue manager's, from what the client filled in.
 * docs/delivery.md describes the behaviour in full.
 */
#ifndef MXFWD_CLIENT_H
#define MXFWD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "delivery.h"
#include "dns.h"
#include "route.h"
#include "stats.h"

/* The client band of error codes (docs/development.md, "Error codes"). */
#define CLIENT_EBASE (-18000)
#define CLIENT_ECLOSING (CLIENT_EBASE - 1) /* deliver() after shutdown: not started */
#define CLIENT_ETLS (CLIENT_EBASE - 2)     /* client_new(): no TLS client context */
#define CLIENT_ESELF (CLIENT_EBASE - 3)    /* a connect that reached its own socket */

typedef struct client client_t;

/* STARTTLS towards next hops (docs/delivery.md, outbound_tls). */
typedef enum { CLIENT_TLS_OPPORTUNISTIC, CLIENT_TLS_REQUIRED, CLIENT_TLS_OFF } client_tls_t;

/* What a client is built from; everything is copied by client_new(). */
typedef struct {
    const char *hostname;        /* EHLO name */
    const route_entry_t *routes; /* route keys: domain ("*" for any) -> next hop */
    size_t nroutes;
    uint16_t port; /* outbound_port: MX hosts and routes without one */
    /* Addresses this host listens on: a next hop that is one of them is a
     * mail loop (docs/delivery.md). */
    const struct sockaddr_storage *listen;
    size_t nlisten;
    client_tls_t tls;
    uint64_t timeout;        /* seconds; the RFC 5321 timeouts are scaled by it; 0: default */
    unsigned max_deliveries; /* 0: DEFAULT_MAX_DELIVERIES */
    unsigned max_deliveries_per_domain; /* 0: DEFAULT_MAX_DELIVERIES_PER_DOMAIN */
    /* Counters (outbound_connections, ...) are registered here; it must
     * outlive the client. */
    stats_t *stats;
} client_options_t;

/*
 * A client on loop with the settings of opts and resolver r, which must
 * outlive it.  0 and *out, or CLIENT_ETLS with OpenSSL's reason in err
 * when TLS is not off and no TLS context could be made.
 */
int client_new(uv_loop_t *loop, dns_resolver_t *r, const client_options_t *opts, client_t **out,
               char *err, size_t errsize);

/* The delivery interface over c: ops are client_deliver/client_shutdown. */
delivery_t client_delivery(client_t *c);

/*
 * Deliver job (queue/delivery.h).  0: done(job, arg) is called once, later,
 * on the loop; CLIENT_ECLOSING after client_shutdown(), with no callback.
 */
int client_deliver(void *impl, delivery_job_t *job, delivery_done_fn done, void *arg);

/*
 * Stop: refuse new jobs, end the waiting and running ones with TEMPFAIL
 * for every recipient not finished (their done() runs as usual), close
 * every connection (idle ones with QUIT), then free the client and call
 * closed(arg).
 */
void client_shutdown(void *impl, void (*closed)(void *arg), void *arg);

/*
 * Whether the connected socket tcp is connected to itself: its local
 * address and port are its peer's.  A connect on loopback to a closed port
 * in the ephemeral range can pick that very port as its source and then
 * succeed by simultaneous open, with nobody to greet; the client takes it
 * for a failed connect (docs/delivery.md, The session).
 */
bool client_self_connected(const uv_tcp_t *tcp);

#endif
