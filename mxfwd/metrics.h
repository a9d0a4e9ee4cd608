/*
 * metrics - the Prometheus endpoint (`metrics_listen`): the daemon's stats
 * registry over HTTP, in Prometheus's text exposition format 0.0.4.
 *
 * metrics_open() listens on one address from the event loop.  Each
 * connection may send one request: GET (or HEAD) /metrics is answered 200
 * with every entry of the registry, read at that moment (stats_refresh());
 * another path is 404, another method on /metrics 405, a request that is
 * not HTTP/1.0 or 1.1 400 (505 for another HTTP version), a request head
 * over METRICS_REQUEST_MAX octets 431.  Every answer says "Connection:
 * close": the daemon then shuts its side, reads and drops what the client
 * still sends until it closes (so the answer is not cut off by a reset),
 * for METRICS_LINGER_MS at most.  A client gets METRICS_TIMEOUT_MS for
 * its request; past METRICS_MAX_CLIENTS at once, new connections are
 * closed at once.  Nothing blocks: a scrape is one pass over the registry.
 *
 * The exposition (metrics_render()) names each entry "mxfwd_" + its name,
 * with "_total" for counters; a family's label becomes a label of the
 * samples (mxfwd_rejected_total{reason="relay_denied"} 3), and each family
 * gets its # HELP and # TYPE lines once, also while it has no sample yet.
 * docs/admin-guide.md lists the metrics.
 *
 * metrics_t borrows the registry: close it before the registry goes.
 * metrics_open() returns 0 or a libuv error code (uv_strerror()).
 */
#ifndef MXFWD_METRICS_H
#define MXFWD_METRICS_H

#include <sys/socket.h>
#include <uv.h>

#include "buf.h"
#include "stats.h"

#define METRICS_PREFIX "mxfwd_"
#define METRICS_REQUEST_MAX 8192 /* request line and headers */
#define METRICS_MAX_CLIENTS 64   /* connections served at once */
#define METRICS_TIMEOUT_MS 5000  /* to send a whole request */
#define METRICS_LINGER_MS 2000   /* after the answer, for the client to close */
#define METRICS_RESPONSE_MAX (16u << 20)

typedef struct metrics metrics_t;

/* Listen on addr.  0 and *out, or libuv's error (uv_strerror()). */
int metrics_open(uv_loop_t *loop, const struct sockaddr *addr, stats_t *stats, metrics_t **out);
/* Stop listening and close every client; closed(arg) (may be NULL) runs
 * once the handles are closed and the metrics_t is freed. */
void metrics_close(metrics_t *m, void (*closed)(void *arg), void *arg);

/* The registry in the text exposition format, appended to out.  Reads the
 * entries as they are: the caller refreshes them first. */
void metrics_render(const stats_t *stats, buf_t *out);

/*
 * The answer to the request head in p[0..n), the bytes received so far:
 * 1 with the whole HTTP response (status line, headers, body) appended to
 * out, or 0 when the head is not complete yet and may still be (fewer
 * than METRICS_REQUEST_MAX octets).  Refreshes the registry for a scrape.
 */
int metrics_respond(const char *p, size_t n, stats_t *stats, buf_t *out);

#endif
