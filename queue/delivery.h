/*
 * delivery - the seam between the queue manager and whatever moves a
 * message to its next hop.
 *
 * The queue groups due recipients of one message by destination domain and
 * hands each group to a delivery implementation as a delivery_job_t.  The
 * outbound SMTP client (client/client.c) is the real implementation; tests
 * plug in a scripted one, so every queue path is tested without a network.
 *
 * Ownership: the queue owns the job and everything it points to until the
 * implementation calls done(); the implementation must not touch the job
 * after that call.  deliver() returning non-zero means the job was not
 * started and done() will not be called (libuv's rule for async calls).
 * Callbacks run on the loop thread.
 */
#ifndef MXFWD_DELIVERY_H
#define MXFWD_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DELIVERY_PENDING,   /* not tried yet (the queue sets this) */
    DELIVERY_OK,        /* 2xx: done */
    DELIVERY_TEMPFAIL,  /* 4xx, no connection, timeout: retry later */
    DELIVERY_PERMFAIL,  /* 5xx, null MX, mail loop: bounce */
} delivery_status_t;

/* DSN parameters (RFC 3461), the values spool.h stores. */
#define DELIVERY_RET_FULL 1u
#define DELIVERY_RET_HDRS 2u
#define DELIVERY_NOTIFY_NEVER 0x1u
#define DELIVERY_NOTIFY_SUCCESS 0x2u
#define DELIVERY_NOTIFY_FAILURE 0x4u
#define DELIVERY_NOTIFY_DELAY 0x8u

#define DELIVERY_REPLY_MAX 512
#define DELIVERY_RELAY_MAX 300
#define DELIVERY_DSN_MAX 16
#define DELIVERY_TLS_MAX 16

typedef struct {
    const char *addr;      /* destination address */
    const char *orig_addr; /* the alias it was sent to (Original-Recipient) */
    /* DSN parameters to pass on (RFC 3461) when the next hop takes them:
     * NOTIFY= (0 not given), and ORCPT= ("type;addr"
     * decoded; "" none: the implementation offers "rfc822;" orig_addr).
     * DELIVERY_NOTIFY_* bits. */
    unsigned notify;
    const char *orcpt;
    /* Filled by the implementation before done(): */
    delivery_status_t status;
    /* The remote reply, multiline joined with " ", e.g. "250 2.0.0 Ok:
     * queued as X"; or mxfwd's own reason when there was no remote reply
     * ("connection refused", "Host or domain name not found").  Also tells
     * whether the reply came from the remote (for DSN Diagnostic-Code). */
    char reply[DELIVERY_REPLY_MAX];
    bool remote_reply;
    /* "mx.example.com[192.0.2.1]:25", or "none" when no host was reached. */
    char relay[DELIVERY_RELAY_MAX];
    /* The RFC 3463 status for the DSN's Status field and the log: the
     * server's enhanced status code when its reply had one, else one
     * derived from the reply code ("5.0.0") or mxfwd's own ("4.4.1"). */
    char dsn[DELIVERY_DSN_MAX];
    /* The next hop advertised DSN and took the recipient with its NOTIFY=:
     * success notices are its to send from here on (RFC 3461 5.2.2). */
    bool dsn_passed;
    /* The TLS version of the session that gave the result ("TLSv1.3"), ""
     * in the clear or when no session got that far (the log's tls=). */
    char tls[DELIVERY_TLS_MAX];
    /* Milliseconds from the job's start to the transaction that gave the
     * result (connection set-up: DNS, connect, greeting, EHLO, TLS), and
     * from then to the result (the log's delays=). */
    uint32_t setup_ms;
    uint32_t xmit_ms;
} delivery_rcpt_t;

typedef struct delivery_job {
    const char *queue_id;
    const char *sender; /* envelope sender to use (SRS-rewritten); "" is <> */
    const char *domain; /* destination domain, lowercased; every rcpt is in it */
    delivery_rcpt_t *rcpts;
    size_t nrcpts;

    /* The message: prepend[0..prepend_len) (headers mxfwd adds), then
     * length bytes of the file at path from offset.  Lines end in CRLF;
     * the bytes are not dot-stuffed.  size = prepend_len + length. */
    const char *prepend;
    size_t prepend_len;
    const char *path;
    uint64_t offset;
    uint64_t length;
    /* NULL, or those length bytes already in memory (a message's first
     * attempt, while the spool still had them): then path need not be
     * read. */
    const char *body;
    uint64_t size;
    bool body_8bitmime; /* MAIL FROM had BODY=8BITMIME */
    bool smtputf8;      /* MAIL FROM had SMTPUTF8 */
    /* RET= and ENVID= of MAIL FROM, passed on when the next hop advertises
     * DSN: DELIVERY_RET_* (0 not given), "" none. */
    unsigned ret;
    const char *envid;
} delivery_job_t;

typedef void (*delivery_done_fn)(delivery_job_t *job, void *arg);

typedef struct delivery_ops {
    /* Start delivering job.  0: done(job, arg) will be called exactly once,
     * on the loop thread (never from inside deliver()), with every
     * recipient's status set to OK, TEMPFAIL or PERMFAIL.  Non-zero: not
     * started, no callback.  An implementation with concurrency limits
     * keeps jobs over them waiting and starts them in order as others
     * finish: the queue may hand over any number of jobs. */
    int (*deliver)(void *impl, delivery_job_t *job, delivery_done_fn done, void *arg);
    /* Finish or abandon jobs in flight (each still gets done(), with
     * TEMPFAIL for recipients not finished) and release the implementation.
     * closed(arg) runs once nothing of it is left on the loop. */
    void (*shutdown)(void *impl, void (*closed)(void *arg), void *arg);
} delivery_ops_t;

typedef struct {
    const delivery_ops_t *ops;
    void *impl;
} delivery_t;

#endif
