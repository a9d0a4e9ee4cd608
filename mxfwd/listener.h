/*
 * listener - a listening socket (TCP, or a Unix socket) and its clients,
 * for the daemon's small request/reply services: the metrics endpoint and
 * the control socket.  The protocol formats replies; the listener owns
 * the rest: accepting up to max_clients at once, each client's bounded
 * input buffer and timer, writing one reply at a time, closing a client
 * after its last reply, and closing everything on listener_close().
 *
 * The listener owns its clients, their handles and buffers: the protocol
 * uses a client only in the callback it is passed to, and not once it has
 * closed it.  listener_open_*() return 0 or a libuv error code; a listener
 * that failed to open frees itself.
 */
#ifndef MXFWD_LISTENER_H
#define MXFWD_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "buf.h"

typedef struct listener listener_t;
typedef struct listener_client listener_client_t;

typedef struct {
    size_t max_clients;  /* served at once; also the listen backlog */
    size_t in_max;       /* a client's input not consumed yet */
    size_t out_max;      /* a reply */
    uint64_t timeout_ms; /* a client's time from its accept... */
    bool idle_timeout;   /* ...or, when set, from its last read */
    uint64_t linger_ms;  /* after the last reply; see listener_client_send() */
    /* Bytes have arrived in listener_client_in(), the input has ended
     * (listener_client_eof()), or a reply that was not the last is
     * written: answer with listener_client_send(), return to wait for
     * more, or close.  Not called while a reply is being written. */
    void (*input)(listener_client_t *cl);
    /* A client past max_clients: send it a last reply.  NULL: it is
     * closed at once. */
    void (*busy)(listener_client_t *cl);
} listener_config_t;

/* Listen on addr (an IPv6 address only for IPv6). */
int listener_open_tcp(uv_loop_t *loop, const struct sockaddr *addr, const listener_config_t *cfg,
                      void *arg, listener_t **out);
/* Listen on a Unix socket created at path with mode (and no wider, not
 * even for a moment); the caller removes a stale one first. */
int listener_open_pipe(uv_loop_t *loop, const char *path, mode_t mode, const listener_config_t *cfg,
                       void *arg, listener_t **out);
/* Stop listening and close every client; no callback of cfg runs after
 * this.  closed(arg) (may be NULL) runs once every handle is closed and
 * the listener is freed. */
void listener_close(listener_t *l, void (*closed)(void *arg), void *arg);

/* The arg given to listener_open_*(). */
void *listener_client_arg(const listener_client_t *cl);
/* What the client sent and the protocol has not consumed (buf_consume(),
 * buf_getline()); at most cfg->in_max octets.  When it is full the
 * protocol must answer: a client with a full buffer is closed. */
buf_t *listener_client_in(listener_client_t *cl);
/* Where the protocol formats the next reply. */
buf_t *listener_client_out(listener_client_t *cl);
/* Whether the client has shut its side: nothing more will arrive. */
bool listener_client_eof(const listener_client_t *cl);
/*
 * Write the reply formatted in listener_client_out(); one at a time.
 * Until it is written, reading stops: further requests wait in the
 * input.  Not last: then input() is called again.  Last: the client is
 * closed once it is written; with linger_ms, the listener shuts its side
 * first and drops what the client still sends until it closes, for
 * linger_ms at most, so that unread bytes do not make the close a reset
 * that cuts the reply off (RFC 9112 9.6).
 */
void listener_client_send(listener_client_t *cl, bool last);
void listener_client_close(listener_client_t *cl);

#endif
