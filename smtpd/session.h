/*
 * session - one inbound SMTP connection, from the greeting to the close.
 *
 * A session is an explicit state machine driven by its input: command
 * lines are dispatched through a command table (session_cmd.c), message
 * bytes go through the DATA reader to the spool (session_data.c), and the
 * connection itself, its buffers, TLS and timer live in session.c.
 *
 * The greeting waits for the client's forward-confirmed name (dns/rdns.h)
 * for DEFAULT_RDNS_GREETING_WAIT_MS at most; nothing is read before it.
 *
 * PIPELINING (RFC 2920): every complete command in the input is handled
 * before anything is written, and the replies they produced leave in one
 * write; a command waiting for asynchronous work (the sender checks'
 * verdict, the spool commit) holds the commands behind it, and reading
 * stops meanwhile, so input buffered per session stays bounded.
 *
 * The session owns its handles, buffers, TLS state, transaction and the
 * transaction's sender checks (auth/auth.h), and a reference to the forward
 * table it started with.  It frees itself after its handles are closed,
 * and tells the server (smtpd_int.h) then.
 */
#ifndef MXFWD_SESSION_H
#define MXFWD_SESSION_H

#include <sys/socket.h>
#include <uv.h>

#include "list.h"
#include "smtpd.h"

typedef struct session session_t;

/* Accept the connection waiting on listener; refuse it with 421 4.7.0
 * when a connection limit is reached. */
void session_accept(smtpd_t *d, uv_stream_t *listener);
/* The same for a connected socket fd whose peer is known. */
void session_open(smtpd_t *d, uv_os_sock_t fd, const struct sockaddr *peer);

/* SIGTERM: an idle session gets 421 4.4.2 and closes now, a busy one once
 * its transaction is over. */
void session_stop(session_t *s);
/* The grace period is over: 421 4.4.2 and close, dropping an unfinished
 * transaction (a spool commit already under way is waited for). */
void session_force_stop(session_t *s);

/* Sessions (from ip; any when NULL) whose client has closed its side
 * although the loop has not read that yet stop counting against the
 * connection limits: asked at a limit, so that a client that closes and
 * reconnects at once is not refused for its own old connection.  Returns
 * how many were released. */
unsigned session_release_closed(smtpd_t *d, const char *ip);

/* The session at node of the server's list. */
session_t *session_of(list_node_t *node);

#endif
