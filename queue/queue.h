/*
 * queue - the queue manager: which message goes where, when.
 *
 * The queue owns the in-memory index of every committed message (one
 * queue_msg per spool_msg_t, by queue id), a heap of next attempts with one
 * uv_timer_t armed for the earliest, and the delivery implementation it is
 * given.  It borrows the spool and the stats registry.
 *
 *   queue_load()   at start: spool_scan(), every message indexed and its
 *                  recipients scheduled from their recorded state
 *   queue_add()    a message the spool has just committed (the session's
 *                  commit callback hands it over; DSNs come in the same way)
 *   timer          due recipients of a message are grouped by destination
 *                  domain, one delivery job per domain
 *   job done       2xx: sent; 4xx or no connection: deferred to the next
 *                  attempt of retry_schedule (with jitter); 5xx, or a 4xx
 *                  once max_queue_lifetime is over: bounced, with one DSN
 *                  per message and occasion to the original sender
 *                  (never for a message from <>); each change is made
 *                  durable with spool_update() before the queue acts on
 *                  that message again; a message whose recipients are all
 *                  final leaves the spool
 *
 * Ordering on disk: a DSN is committed before its recipients are recorded
 * as bounced, so a crash in between sends the DSN twice, never not at all.
 *
 * Concurrency: the implementation (client/) enforces max_deliveries and
 * max_deliveries_per_domain per next hop, which it alone knows (routes
 * send several domains to one host), and keeps jobs over those limits
 * waiting (queue/delivery.h).  The queue hands it at most max_jobs jobs at
 * once, at most max_jobs_per_domain of one destination domain, so that a
 * flush of a big queue makes jobs as slots free up, not all at once: due
 * messages beyond them stay in the heap, or wait on their domain's list
 * (docs/queue.md, Concurrency).  A recipient is in at most one job at a
 * time.
 *
 * Time is the injected clock's (unix microseconds), randomness the
 * injected generator's, so tests drive retries and expiry without waiting.
 * The timer sleeps at most QUEUE_MAX_SLEEP_MS, so a step of the system
 * clock delays the queue by no more than that.
 *
 * Everything runs on the loop thread.  The queue logs one line per event
 * (docs/queue.md, Results): each recipient's result, each DSN created
 * ("ID: sender non-delivery notification: DSNID"), each removal.  Functions
 * return 0 or a negative QUEUE_E* code (queue_strerror()).
 */
#ifndef MXFWD_QUEUE_H
#define MXFWD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "delivery.h"
#include "spool.h"
#include "stats.h"

/* The queue band of error codes (docs/development.md, "Error codes"). */
#define QUEUE_EBASE (-12000)
#define QUEUE_EINVAL (QUEUE_EBASE - 1) /* bad options */
#define QUEUE_ENOENT (QUEUE_EBASE - 2) /* no message with that queue id */
#define QUEUE_ESPOOL (QUEUE_EBASE - 3) /* the spool could not be read (queue_load) */

/* Longest sleep of the timer; the queue looks at the clock at least this
 * often. */
#define QUEUE_MAX_SLEEP_MS 60000
/* Queue times (arrival, due, now) are microseconds of the real-time clock. */
#define QUEUE_US_PER_S INT64_C(1000000)
/* Each retry delay is moved by up to this many percent either way, at
 * random, so messages deferred together do not all return together. */
#define QUEUE_JITTER_PERCENT 10

typedef struct queue queue_t;

/* What signs the DSNs the queue makes (docs/queue.md): sign() starts the
 * work on msg[0..len) (the whole DSN) and returns 0, then done(arg, fields,
 * n) runs once, on the loop thread, with the header fields to put on top
 * of it (n 0: none); or sign() returns non-zero, calls nothing, and the
 * DSN goes unsigned. */
typedef void (*queue_signed_fn)(void *arg, const char *fields, size_t n);
typedef struct {
    int (*sign)(void *impl, const char *msg, size_t len, queue_signed_fn done, void *arg);
    void *impl;
} queue_signer_t;

typedef struct {
    uv_loop_t *loop;
    spool_t *spool;      /* borrowed; must outlive the queue */
    delivery_t delivery; /* the queue's from queue_new(): queue_shutdown() shuts it down */
    stats_t *stats;      /* borrowed: the queue registers its counters in it */
    const char *hostname; /* DSNs: Reporting-MTA, From: MAILER-DAEMON@hostname */
    const uint64_t *retry_schedule; /* seconds; the last repeats; copied */
    size_t nretry_schedule;         /* at least 1 */
    uint64_t max_queue_lifetime;    /* seconds */
    /* A recipient whose RCPT asked for NOTIFY=DELAY and that is deferred
     * after this many seconds in the queue gets its sender one notice;
     * 0: none. */
    uint64_t delay_warning_time;
    /* DSNs report each recipient as its alias and keep the mailbox out of
     * the quoted replies (dsn_hide_destinations). */
    bool hide_destinations;
    /* Where a message from <> that bounces (a double bounce) is reported,
     * from double-bounce@hostname; NULL: it is only logged. */
    const char *postmaster;
    int64_t (*clock_us)(void *arg); /* NULL: the time of day */
    void *clock_arg;
    uint32_t (*random)(void *arg);  /* NULL: arc4random() */
    void *random_arg;
    /* Message bodies the spool handed over in memory (spool_msg_t.body)
     * are kept for the first delivery attempt, up to this many bytes in
     * all; 0: DEFAULT_QUEUE_BODY_MEMORY. */
    size_t body_memory;
    /* DSNs are signed through it; sign NULL: unsigned. */
    queue_signer_t signer;
    /* Jobs at the delivery interface at once, in all and for one
     * destination domain; 0: DEFAULT_QUEUE_JOBS, DEFAULT_QUEUE_JOBS_PER_DOMAIN.
     * Twice the implementation's own limits keeps a next job waiting
     * there for every slot. */
    unsigned max_jobs;
    unsigned max_jobs_per_domain;
} queue_options_t;

int queue_new(const queue_options_t *opt, queue_t **out);

/*
 * Read the spool (spool_scan(), so once, before the first writer), index
 * every message, schedule what is not final and remove what is (a crash
 * before its removal).  Problem files are logged.  *nmsgs (may be NULL)
 * gets the number of messages queued.  QUEUE_ESPOOL with the spool's
 * error in *err when the directory cannot be read.
 */
int queue_load(queue_t *q, size_t *nmsgs, int *err);

/* A message the spool has committed (spool_commit_cb's msg): the queue's
 * from now on, tried at once. */
void queue_add(queue_t *q, spool_msg_t *msg);

/* Read the clock and start every delivery now due.  The timer calls it;
 * tests call it after moving the injected clock. */
void queue_tick(queue_t *q);

/* Every waiting recipient is due now (`mxfwd flush`); with domain (not
 * NULL) only those whose address is at that domain (`flush -d`, any
 * case).  Returns how many were not due yet. */
size_t queue_flush(queue_t *q, const char *domain);

/* The waiting recipients of message id are due now (`mxfwd flush ID`);
 * adds to *n how many were not due yet.  QUEUE_ENOENT when no such
 * message is queued. */
int queue_flush_id(queue_t *q, const char *id, size_t *n);

/*
 * Drop message id (`mxfwd delete`): no further attempt, no DSN, the file
 * removed.  Deliveries already running finish first (their results are
 * logged); *running (may be NULL) is increased by how many.  QUEUE_ENOENT
 * when no such message is queued.
 */
int queue_delete(queue_t *q, const char *id, unsigned *running);

/* Drop every queued message (`mxfwd delete ALL`), as queue_delete() does
 * each; returns how many. */
size_t queue_delete_all(queue_t *q, unsigned *running);

/*
 * Hold message id (`mxfwd hold`): every recipient waiting for an attempt
 * is held, never tried until released (deliveries running finish);
 * release (`mxfwd release`): every held recipient is due at once, a
 * message a filter quarantined included (docs/queue.md).  A held
 * recipient does not expire; one released after max_queue_lifetime gets
 * one attempt before it bounces.  *n gets how many changed; the change
 * is recorded (one state record).  QUEUE_ENOENT when no such message is
 * queued.
 */
int queue_hold(queue_t *q, const char *id, size_t *n);
int queue_release(queue_t *q, const char *id, size_t *n);

/* A recipient as `mxfwd queue` shows it. */
typedef struct {
    const spool_rcpt_t *rcpt;   /* address, alias, attempts, last reply and relay */
    const char *state;          /* "pending", "deferred", "active" (a delivery is running),
                                 * "bouncing" (its DSN is being queued), "sent", "bounced",
                                 * "held" (until released) */
    int64_t next_attempt_us;    /* when it is tried next (now, when it is due); 0: it is not
                                 * waiting (active, bouncing, final) */
} queue_rcpt_info_t;

typedef void (*queue_list_fn)(void *arg, const spool_msg_t *msg, const queue_rcpt_info_t *rcpts);

/* Call fn for every queued message, in queue id (arrival) order.  The
 * queue must not be changed from fn. */
void queue_list(queue_t *q, queue_list_fn fn, void *arg);

/* Call fn for message id alone (`mxfwd queue show`).  QUEUE_ENOENT when
 * no such message is queued. */
int queue_show(queue_t *q, const char *id, queue_list_fn fn, void *arg);

/* Whether there is nothing to do now: no delivery job running, no change
 * on its way to disk, nothing due.  (Tests wait for it.) */
bool queue_idle(const queue_t *q);

/* The queue's clock, unix microseconds (for ages in listings). */
int64_t queue_now(const queue_t *q);

/*
 * Stop: no new attempts; the delivery implementation is shut down (its
 * running jobs end, and their results are recorded: deliveries and
 * bounces are kept, temporary failures leave the recipients as they
 * were, to be tried at once on the next start); once the spool has
 * confirmed every change, the queue frees itself and calls closed(arg).
 * The spool may be closed after that.
 */
void queue_shutdown(queue_t *q, void (*closed)(void *arg), void *arg);

const char *queue_strerror(int err);

#endif
