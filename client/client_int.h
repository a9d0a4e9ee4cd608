/*
 * client_int - what the outbound client's files share: client.c (jobs,
 * scheduling, hops, results, the connection cache, shutdown),
 * client_conn.c (one SMTP connection: socket, TLS, the session) and
 * client_txn.c (a transaction on it and the message stream).  Not for
 * other modules.
 *
 * Lifetimes: a job lives from deliver() until its done() has run and no
 * connection still reads its spool file; a connection from its connect
 * until both its handles are closed and no file read is in flight.  Each
 * holds a pointer to the other only while they work together
 * (client__conn_attach() to client__job_continue()).
 */
#ifndef MXFWD_CLIENT_INT_H
#define MXFWD_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "client.h"
#include "client_proto.h"
#include "htab.h"
#include "list.h"
#include "route.h"
#include "tls.h"

typedef struct client_job client_job_t;
typedef struct client_conn client_conn_t;
typedef struct client_dest client_dest_t;

/* Timeouts in milliseconds: RFC 5321 4.5.3.2 scaled by config `timeout`. */
typedef struct {
    uint64_t connect, greeting, helo, tls, mail, rcpt, data, block, dot, rset, quit;
} client_timeouts_t;

/* Bytes of the spool file read at once, and of the output buffer. */
#define CLIENT_CHUNK (128 * 1024)
#define CLIENT_OUT_MAX (4 * CLIENT_CHUNK + 65536)
/* Output buffers larger than this are released while idle. */
#define CLIENT_IDLE_BUF 16384
/* Input: replies waiting to be parsed (one line may be long). */
#define CLIENT_IN_MAX 65536
/* "host[address]" of a connection, for reasons. */
#define CLIENT_NAMADDR_MAX (DNS_NAME_MAX + INET6_ADDRSTRLEN + 8)
/* An endpoint as a cache key: family, port, address. */
#define CLIENT_KEY_MAX 20

struct client {
    uv_loop_t *loop;
    dns_resolver_t *resolver;
    char *hostname;
    route_config_t route; /* entries and own addresses owned here */
    route_entry_t *routes;
    struct sockaddr_storage *own;
    client_tls_t tls_mode;
    SSL_CTX *tls_ctx;
    unsigned max_active, max_per_dest;
    client_timeouts_t t;

    htab_t *dests; /* destination key -> client_dest_t */
    list_t ready;  /* client_dest_t (rnode) with a waiting job and a free slot, in turn */
    unsigned active, waiting;

    list_t running; /* client_job_t (rnode) started and not finished, newest first */
    list_t done;    /* client_job_t (qnode) finished, done() not yet called, FIFO */
    bool pumping;
    uv_idle_t idle; /* calls done() */

    htab_t *cache;     /* endpoint key -> client_endpoint_t, while it has idle connections */
    list_t idle_conns; /* client_conn_t (inode) idle, newest first */
    list_t conns;      /* client_conn_t (node), every connection, newest first */

    /* Counters in the stats registry. */
    struct {
        uint64_t *jobs, *connections, *connect_failures, *reused, *transactions, *tls, *open;
    } count;
    bool closing;
    unsigned busy; /* handles and requests not yet closed */
    void (*closed)(void *arg);
    void *closed_arg;
};

/* A destination: what concurrency is counted against. */
struct client_dest {
    char *key;
    unsigned active;
    list_t waiting;    /* client_job_t (qnode), FIFO */
    list_node_t rnode; /* in c->ready */
    bool ready;
};

/* The cache's entry for an endpoint: its idle connections (enode), newest
 * first; it goes when the last one leaves. */
typedef struct {
    list_t idle;
} client_endpoint_t;

/* Per-recipient flags. */
#define CLIENT_R_DONE 0x01     /* final status set */
#define CLIENT_R_TXN 0x02      /* in the current transaction */
#define CLIENT_R_ACCEPTED 0x04 /* RCPT accepted in the current transaction */
#define CLIENT_R_NOTED 0x08    /* a temporary failure at an earlier hop is noted */
#define CLIENT_R_DSN 0x10      /* its RCPT went with NOTIFY= to a server offering DSN */

struct client_job {
    client_t *c;
    delivery_job_t *job;
    delivery_done_fn done;
    void *done_arg;
    client_dest_t *dest;
    list_node_t qnode; /* in the destination's waiting list or c->done */
    list_node_t rnode; /* in c->running */
    route_req_t *route_req;
    route_result_t *route;
    size_t hop;        /* index of the hop being tried */
    unsigned sessions; /* SMTP sessions begun */
    bool final;        /* the current session is the last chance */
    bool plaintext;    /* the current hop again, without STARTTLS */
    bool running;      /* counted in active */
    bool finished;     /* done() queued or called */
    bool told;         /* done() called */
    client_conn_t *conn;
    int fd;     /* the spool file, -1 until open */
    uv_fs_t fs; /* open, then close */
    bool fs_busy;
    unsigned starting;              /* the open and the route lookup outstanding */
    unsigned reads;                 /* reads of fd in flight */
    uint64_t started_ms;            /* uv_now() when the job came */
    uint64_t txn_ms;                /* uv_now() when its latest transaction began; 0 none */
    char error[DELIVERY_REPLY_MAX]; /* the last error with no recipient's reply */
    char error_dsn[CLIENT_DSN_MAX];
    uint8_t rflags[];
};

typedef enum {
    CLIENT_CMD_RSET,
    CLIENT_CMD_MAIL,
    CLIENT_CMD_RCPT,
    CLIENT_CMD_DATA,
} client_cmd_kind_t;

typedef struct {
    client_cmd_kind_t kind;
    size_t rcpt;
} client_cmd_t;

typedef enum {
    CONN_CONNECT,  /* TCP connect in progress */
    CONN_GREETING, /* waiting for 220 */
    CONN_EHLO,
    CONN_HELO,
    CONN_STARTTLS, /* waiting for 220 to STARTTLS */
    CONN_TLS,      /* handshake */
    CONN_READY,    /* session open, nothing in progress */
    CONN_TXN,      /* RSET, MAIL, RCPT, DATA replies pending */
    CONN_BODY,     /* sending the message */
    CONN_DOT,      /* waiting for the reply to the final dot */
    CONN_IDLE,     /* in the cache */
    CONN_QUIT,     /* QUIT sent */
    CONN_CLOSED,
} client_conn_state_t;

struct client_conn {
    client_t *c;
    list_node_t node;  /* in c->conns */
    list_node_t inode; /* in c->idle_conns */
    list_node_t enode; /* in its endpoint's idle list */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_fs_t read_req;
    client_conn_state_t state;
    unsigned handles; /* libuv handles open */
    bool writing;
    bool file_reading;
    bool closing;
    bool no_tls;    /* do not use STARTTLS on this connection */
    bool reusable;  /* may go back to the cache */
    bool need_rset; /* reused: RSET before the next MAIL */
    client_job_t *job;
    client_job_t *read_job; /* whose file the read in flight is from */

    char host[DNS_NAME_MAX + 1];
    struct sockaddr_storage addr;
    uint16_t pref;
    char namaddr[CLIENT_NAMADDR_MAX]; /* "host[ip]" */
    char relay[DELIVERY_RELAY_MAX];   /* "host[ip]:port" */
    char key[CLIENT_KEY_MAX];
    size_t keylen;

    tls_t *tls;
    unsigned ext; /* CLIENT_EXT_* of the last EHLO */
    uint64_t size_limit;
    unsigned uses; /* transactions begun */
    uint64_t born; /* uv_now() when connected */

    client_reply_t reply;
    buf_t in;    /* plaintext from the server */
    buf_t out;   /* bytes to write (ciphertext under TLS) */
    buf_t wire;  /* bytes being written */
    buf_t plain; /* plaintext staged for TLS */

    client_cmd_t *cmds; /* commands whose replies are awaited, in order */
    size_t ncmds, cmds_cap, sent, replied;
    bool mail_ok;
    size_t naccepted;

    client_stuff_t stuff; /* the message being sent */
    uint64_t file_pos, file_left;
    char *fbuf; /* file reads, up to CLIENT_CHUNK bytes */
    size_t fbuf_cap;
    char rbuf[16384]; /* socket reads */
};

/* ---- client.c, for the connections ---- */

/* A result for recipient i from the session on conn (remote: the text is
 * the server's reply).  cls 2: OK; 5: PERMFAIL; 4: TEMPFAIL on the last
 * chance, else noted and left for the next hop. */
void client__rcpt_result(client_job_t *j, size_t i, int cls, const char *dsn, const char *text,
                         bool remote, const char *relay);
/* The same for every recipient not finished yet. */
void client__fail_pending(client_job_t *j, int cls, const char *dsn, const char *text, bool remote,
                          const char *relay);
/* A connection-level error without a reply for anyone (connect failed):
 * the reason for recipients that end with no other. */
void client__job_error(client_job_t *j, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The connection is done with j: go on with the next hop, or the same one
 * again (a dead cached connection, a TLS handshake to retry in plaintext). */
void client__job_continue(client_job_t *j, bool same_hop);

/* A read of j's spool file by a connection has ended. */
void client__job_read_done(client_job_t *j);

/* The connection cache. */
void client__cache_put(client_conn_t *conn);
void client__cache_remove(client_conn_t *conn);
/* Counting what keeps the client from being freed at shutdown. */
void client__busy(client_t *c);
void client__unbusy(client_t *c);

/* ---- client_conn.c ---- */

/* The reply's class as a result: 2 delivered, 4 temporary, 5 permanent.
 * Anything else where a 2xx, 4xx or 5xx belongs is a protocol error,
 * permanent as Postfix has it. */
static inline int client__reply_class(int code)
{
    int cls = code / 100;

    return cls == 2 || cls == 4 ? cls : 5;
}

/* Connect to hop for j (the connection is attached to it).  NULL when the
 * connect could not even start; the reason is noted in j. */
client_conn_t *client__conn_open(client_t *c, client_job_t *j, const route_hop_t *hop, bool no_tls);
/* Give a cached connection a job: RSET, then the transaction. */
void client__conn_attach(client_conn_t *conn, client_job_t *j);
/* Close now, without QUIT; the job (if any) is detached without a word. */
void client__conn_abort(client_conn_t *conn);
/* Close an idle connection politely: QUIT, then close. */
void client__conn_quit(client_conn_t *conn);
/* The cache key of an endpoint. */
size_t client__endpoint_key(const struct sockaddr_storage *ss, char key[CLIENT_KEY_MAX]);

/* For client_txn.c: output (format into the stage, commit it through TLS,
 * flush it to the socket; false when the connection failed meanwhile),
 * the timer, and the ways a session ends. */
buf_t *client__conn_stage(client_conn_t *conn);
bool client__conn_commit(client_conn_t *conn);
bool client__conn_flush(client_conn_t *conn);
void client__conn_timer(client_conn_t *conn, uint64_t ms);
/* The connection broke (err < 0; UV_EOF: closed by the server). */
void client__conn_io_error(client_conn_t *conn, int err);
/* The session failed for every recipient still open (cls 4 or 5); then
 * QUIT (quit) or drop the connection, and the job tries the next hop. */
void client__conn_session_fail(client_conn_t *conn, bool quit, int cls, const char *dsn,
                               const char *text, bool remote);
/* A reused connection found dead at its RSET: the job tries the same hop
 * on a fresh connection, and this session does not count.  false when
 * that is not the case. */
bool client__conn_retry_if_reused(client_conn_t *conn);
void client__conn_close(client_conn_t *conn);
/* Free a closed connection once nothing of it is in flight. */
void client__conn_free(client_conn_t *conn);
/* Act on the replies that are complete in the input. */
void client__conn_process(client_conn_t *conn);

/* ---- client_txn.c ---- */

/* Run the job's transaction on a ready session. */
void client__txn_begin(client_conn_t *conn);
/* A reply to RSET, MAIL, RCPT or DATA; to the final dot. */
void client__txn_reply(client_conn_t *conn);
void client__txn_dot(client_conn_t *conn);
/* Go on sending the message (after a write or a file read). */
void client__body_pump(client_conn_t *conn);

#endif
