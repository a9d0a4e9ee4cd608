/*
 * server - `mxfwd serve`: the daemon, the stages wired together.
 *
 * server_main() loads the configuration, forward table, SRS secrets and
 * TLS certificate (any failure there is fatal, reported before anything
 * listens), creates the spool and control-socket directories, binds every
 * `listen` address, drops privileges to `user`, opens and recovers the
 * spool, starts the outbound client (client.h) and the queue manager over
 * the spool (queue.h; every message found is scheduled) and the control
 * socket (control.h), and runs one libuv loop until SIGTERM or SIGINT, with
 * one DNS resolver on it and the sender checks' context:
 *
 *   - the inbound server (smtpd.h) makes each accepted connection a
 *     session, unless it would exceed max_connections or
 *     max_connections_per_ip (421 4.7.0); a message it commits to the
 *     spool is handed to the queue, which delivers it through the client;
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
 * The stages are built from their own options (options.h) and joined
 * here: the inbound server's "accepted" hook adds to the queue, reload
 * hands its snapshots to the inbound server.
 */
#ifndef MXFWD_SERVER_H
#define MXFWD_SERVER_H

#include <stdbool.h>

/* `mxfwd serve`.  Returns the exit status. */
int server_main(const char *config_path, bool verbose);

#endif
