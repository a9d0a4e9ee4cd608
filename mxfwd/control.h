/*
 * control - the daemon's control socket, and the request an admin command
 * sends to it.
 *
 * The server side (control_open) listens on a Unix socket from the event
 * loop (a libuv pipe) for `mxfwd queue`, `queue show`, `flush`, `delete` and
 * `stats`.
 * The protocol is a line in, a line out: a client sends requests of one
 * line each (at most CONTROL_LINE_MAX octets, LF or CRLF), and gets for
 * each, in order, one line of JSON: {"ok":true,...} or
 * {"ok":false,"error":"..."}.  docs/queue.md documents every request and
 * reply.  At most CONTROL_MAX_CLIENTS are served at once and a client idle
 * for CONTROL_IDLE_TIMEOUT_MS is closed; an over-long line gets an error
 * and the connection is closed.
 *
 * The socket's directory is created (0700) when missing; the socket is
 * 0600, so only the daemon's user (and root) may talk to it.  A socket
 * left by a crash is replaced; one that a running process still answers
 * on is not (CONTROL_EINUSE).
 *
 * The client side (control_request) is blocking and for the command-line
 * tools: it connects, sends one request and reads one reply line.
 *
 * control_t borrows the queue and the stats registry: close it before
 * shutting the queue down.  Errors are negative: CONTROL_E* or -errno
 * (control_strerror()).
 */
#ifndef MXFWD_CONTROL_H
#define MXFWD_CONTROL_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "queue.h"
#include "stats.h"

#define CONTROL_LINE_MAX 512
#define CONTROL_MAX_CLIENTS 32
#define CONTROL_IDLE_TIMEOUT_MS 30000
/* Longest reply control_request() accepts (a queue listing can be long). */
#define CONTROL_REPLY_MAX (256u << 20)

/* The control band of error codes (docs/development.md, "Error codes"). */
#define CONTROL_EBASE (-2000)
#define CONTROL_EINUSE (CONTROL_EBASE - 1)   /* a running process answers on the socket */
#define CONTROL_ENOTSOCK (CONTROL_EBASE - 2) /* the path exists and is not a socket */
#define CONTROL_ETOOLONG (CONTROL_EBASE - 3) /* the path does not fit a Unix socket address */
#define CONTROL_EREPLY (CONTROL_EBASE - 4)   /* the reply was cut short or too long */

typedef struct control control_t;

int control_open(uv_loop_t *loop, const char *path, queue_t *queue, stats_t *stats,
                 control_t **out);
/* `resolve ADDRESS`: the answer of the daemon's current forward table,
 * one JSON object written into out (mxfwd/resolve.h).  Without a resolver
 * the request is refused. */
typedef void (*control_resolve_fn)(void *arg, const char *addr, buf_t *out);
void control_set_resolver(control_t *c, control_resolve_fn fn, void *arg);

/* Stop listening, close every client, unlink the socket; closed(arg) (may
 * be NULL) runs once the handles are closed and the control_t is freed. */
void control_close(control_t *c, void (*closed)(void *arg), void *arg);

/*
 * Send request (one line, without its newline) to the socket at path and
 * read the reply line into reply (appended, without the newline), waiting
 * at most timeout_ms in all.  0, or a negative code: -errno from connect
 * (-ENOENT, -ECONNREFUSED: no daemon), -ETIMEDOUT, CONTROL_EREPLY.
 */
int control_request(const char *path, const char *request, int timeout_ms, buf_t *reply);

const char *control_strerror(int err);

#endif
