/*
 * server - `mxfwd serve`: the daemon around the inbound SMTP sessions.
 *
 * server_main() loads the configuration, forward table, SRS secrets and
 * TLS certificate (any failure there is fatal, reported before anything
 * listens), creates the spool and control-socket directories, binds every
 * `listen` address, drops privileges to `user`, opens and recovers the
 * spool, starts the outbound client (client.h) and the queue manager over
 * the spool (queue.h; every message found is scheduled) and the control
 * socket (control.h), and runs one libuv loop until SIGTERM or SIGINT, with
 * one DNS resolver on it (server->resolver) and the sender checks' context:
 *
 *   - each accepted connection becomes a session (session.h), unless it
 *     would exceed max_connections or max_connections_per_ip (421 4.7.0);
 *     a message it commits to the spool is handed to the queue, which
 *     delivers it through the client;
 *   - `mxfwd queue`, `flush`, `delete` and `stats` are answered on the
 *     control socket; every part counts into one stats registry;
 *   - SIGHUP, or a change to the forward table or secrets files, reloads
 *     them (reload.h); sessions keep the snapshot they started with;
 *   - with metrics_listen, GET /metrics is answered from the registry
 *     (metrics.h);
 *   - under systemd (NOTIFY_SOCKET), the service manager is told READY=1
 *     once everything listens and the queue is loaded, RELOADING=1 and
 *     READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM (notify.h);
 *   - SIGTERM stops accepting, tells idle sessions 421 4.4.2, lets running
 *     transactions finish for shutdown_grace seconds, then ends the rest;
 *     once no session is left it closes the control socket, shuts the
 *     queue down (deliveries in flight end, the client closes its
 *     connections), closes the resolver, and returns 0 once the loop is
 *     empty and the spool is closed.
 *
 * The server_t is shared by the inbound server's files (session*.c,
 * reload.c); its fields are the loop thread's.  Sessions read the current
 * snapshots through it and report their end with server_session_closed().
 */
#ifndef MXFWD_SERVER_H
#define MXFWD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "auth.h"
#include "config.h"
#include "dns.h"
#include "htab.h"
#include "reply.h"
#include "spool.h"
#include "srs.h"
#include "stats.h"
#include "table.h"

/* Bytes read from a socket at once; one buffer serves every session,
 * since a read is handled before the next one starts. */
#define SERVER_READ_SIZE 65536

typedef struct session session_t;
typedef struct reload reload_t;
typedef struct queue queue_t;
typedef struct control control_t;
typedef struct dns_resolver dns_resolver_t;
typedef struct metrics metrics_t;

/* The inbound server's counters in the daemon's stats registry. */
typedef struct {
    uint64_t *connections;
    uint64_t *refused_connections;
    uint64_t *accepted;
    uint64_t *rejected[REPLY_NREPLIES]; /* registered at the first rejection of each */
    uint64_t *tls;                      /* STARTTLS handshakes completed */
} server_stats_t;

typedef struct server {
    uv_loop_t *loop;
    config_t *cfg;
    table_t *table;   /* the current forward table */
    srs_t *srs;       /* the current SRS secrets (used synchronously only) */
    SSL_CTX *tls_ctx; /* NULL without tls_cert */
    spool_t *spool;
    /* The daemon's one resolver, on dns_servers: client names, DKIM keys
     * and DMARC policies (through auth), MX lookups (the outbound client).
     * Everything that borrows it is gone before it is closed. */
    dns_resolver_t *resolver;
    /* The sender checks for the config snapshot: one context as long as
     * the snapshot lives (messages in flight hold their own reference). */
    auth_ctx_t *auth;
    queue_t *queue;     /* owns the outbound client */
    control_t *control; /* the control socket */
    metrics_t *metrics; /* metrics_listen; NULL without */

    uv_tcp_t *listeners;
    size_t nlisteners;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t grace; /* shutdown_grace after SIGTERM */
    reload_t *reload;

    session_t *sessions; /* every open session, for shutdown */
    unsigned nsessions;
    unsigned nadmitted;           /* sessions counted against max_connections */
    htab_t *per_ip;               /* client IP text -> (uintptr_t) sessions from it */
    uint64_t last_accept_warning; /* uv_now() of the last accept error logged */

    bool stopping; /* SIGTERM seen: no new sessions or transactions */
    bool forcing;  /* grace over: sessions end now */
    stats_t *registry; /* every counter of the daemon: `mxfwd stats`, metrics */
    server_stats_t stats;
    char rbuf[SERVER_READ_SIZE];
} server_t;

/* `mxfwd serve`.  Returns the exit status. */
int server_main(const char *config_path, bool verbose);

/* Count a new connection from ip against the connection limits: REPLY_OK,
 * or the reply that refuses it. */
reply_id_t server_admit(server_t *srv, const char *ip);

/* A session has closed and left the list: forget its connection (ip is
 * NULL for one that server_admit() refused). */
void server_session_closed(server_t *srv, const char *ip);

/* Count a message refused with reply id ("rejected", reason = its name). */
void server_count_rejected(server_t *srv, reply_id_t id);

/* A reload that SIGHUP asked for is done (reload.c): the service manager
 * hears that the daemon is ready again. */
void server_reloaded(server_t *srv);

/* Replace the current forward table, SRS rewriter or TLS context
 * (reload); the server owns what it is given and drops the old one. */
void server_set_table(server_t *srv, table_t *table);
void server_set_srs(server_t *srv, srs_t *srs);
void server_set_tls(server_t *srv, SSL_CTX *ctx);

#endif
