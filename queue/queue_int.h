/*
 * queue_int.h - the queue manager's state, shared by queue.c (index,
 * schedule, jobs), queue_admin.c (the admin's commands) and
 * queue_result.c (results, state records, DSNs, removal).  Not for other
 * modules.
 */
#ifndef MXFWD_QUEUE_INT_H
#define MXFWD_QUEUE_INT_H

#include <string.h>

#include "heap.h"
#include "htab.h"
#include "list.h"
#include "queue.h"

/* Where a recipient stands in the queue, beyond its recorded state. */
typedef enum {
    QUEUE__IDLE,     /* waiting for its due time (or final) */
    QUEUE__ACTIVE,   /* in a job at the delivery interface */
    QUEUE__BOUNCING, /* failed for good; waits for the message's other jobs */
    QUEUE__IN_DSN,   /* its DSN is being committed */
} queue__rstate_t;

/* What a bouncing recipient's DSN and state record will say. */
typedef struct {
    char status[DELIVERY_DSN_MAX];
    char *reply;
    char *relay;
    bool remote_reply;
    bool expired;
    int64_t when; /* the attempt, unix microseconds */
} queue__bounce_t;

typedef struct {
    int64_t due; /* unix microseconds from when it may be tried; 0: at once */
    queue__rstate_t st;
    queue__bounce_t *bounce; /* BOUNCING and IN_DSN only */
    bool delay_noticed;      /* its NOTIFY=DELAY notice went (in memory only) */
} queue__rcpt_t;

typedef struct queue__wait queue__wait_t;

typedef struct queue__msg {
    queue_t *q;
    spool_msg_t *m;
    queue__rcpt_t *r; /* m->nrcpts of them */
    heap_node_t node; /* in q->due while some idle recipient waits */
    /* Domains whose due recipients wait for a job of that domain to end
     * (max_jobs_per_domain); those recipients do not count in node. */
    queue__wait_t *waits;
    unsigned jobs;    /* at the delivery interface */
    unsigned io;      /* state records or a DSN commit not yet confirmed */
    bool deleted;     /* by the admin: removed once jobs and io are done */
    bool finished;    /* every recipient final, the last results not recorded */
} queue__msg_t;

/* A destination domain with jobs at the delivery interface, or messages
 * waiting for one of them to end (docs/queue.md, Concurrency). */
typedef struct {
    char *name;     /* lowercased: the key in q->doms */
    unsigned jobs;  /* at the delivery interface */
    list_t waiting; /* queue__wait_t (dnode), first come first woken */
} queue__dom_t;

/* Message qm waits for a slot of domain dom. */
struct queue__wait {
    list_node_t dnode;   /* in dom->waiting */
    queue__wait_t *next; /* qm->waits */
    queue__msg_t *qm;
    queue__dom_t *dom;
};

/* A job at the delivery interface: one message, the recipients of one
 * domain. */
typedef struct {
    delivery_job_t job;
    queue__msg_t *qm;
    queue__dom_t *dom;
    size_t *index; /* job recipient i is message recipient index[i] */
    char *domain;
} queue__job_t;

struct queue {
    uv_loop_t *loop;
    spool_t *spool;
    delivery_t delivery;
    char *hostname;
    uint64_t *retry; /* seconds, each at least 1 */
    size_t nretry;
    uint64_t lifetime;
    uint64_t delay_warning; /* seconds; 0: no delay notices */
    bool hide_destinations; /* DSNs name aliases, not mailboxes */
    char *postmaster;       /* double bounces go there; NULL: logged only */
    char *double_bounce;    /* "double-bounce@hostname": the sender of those reports */
    int64_t (*clock_us)(void *arg);
    void *clock_arg;
    uint32_t (*random)(void *arg);
    void *random_arg;
    queue_signer_t signer; /* DSNs; sign NULL: unsigned */

    htab_t *index; /* queue id -> queue__msg_t (keys borrowed from the messages) */
    heap_t due;    /* messages by their earliest idle recipient's due time */
    uv_timer_t timer;
    int64_t timer_at; /* the due time the timer is set for; INT64_MAX: stopped */

    size_t body_bytes; /* message bodies held in memory (spool_msg_t.body) */
    size_t body_max;
    htab_t *doms;  /* domain -> queue__dom_t, while it has jobs or waiters */
    unsigned jobs; /* at the delivery interface, all messages */
    unsigned max_jobs, max_dom_jobs;
    unsigned io;   /* spool callbacks to come, removals included */
    size_t removing; /* messages out of the index whose removal is not durable yet */
    bool closing;
    bool delivery_closed;
    void (*closed)(void *arg);
    void *closed_arg;

    /* Counters in the stats registry (borrowed). */
    stats_t *stats;
    uint64_t *n_delivered;
    uint64_t *n_deferred;
    uint64_t *n_bounced;
    uint64_t *n_dsn;
    stats_histogram_t *delay; /* arrival to a final result */
};

static inline queue__msg_t *queue__msg_of(heap_node_t *node)
{
    return (queue__msg_t *)((char *)node - offsetof(queue__msg_t, node));
}

/* Whether recipient i waits for an attempt: idle in the queue, neither
 * final nor held. */
/* The domain of a recipient address ("" when it has none). */
static inline const char *queue__domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at != NULL ? at + 1 : "";
}

static inline bool queue__waiting(const queue__msg_t *qm, size_t i)
{
    spool_rcpt_state_t st = qm->m->rcpts[i].state;

    return qm->r[i].st == QUEUE__IDLE && !spool_rcpt_final(st) && st != SPOOL_RCPT_HELD;
}

/* queue.c */
void queue__schedule(queue__msg_t *qm);
void queue__remove(queue__msg_t *qm);
int64_t queue__next_attempt(queue_t *q, const queue__msg_t *qm, uint32_t attempts, int64_t now);
void queue__maybe_closed(queue_t *q);
void queue__job_free(queue__job_t *j);
/* A job of dom has ended: a slot for the messages waiting for one. */
void queue__dom_job_done(queue_t *q, queue__dom_t *dom);
/* The first attempt is over: read the file from now on. */
void queue__drop_body(queue__msg_t *qm);

/* queue_result.c */
/* Record u[0..n) (applied to the message at once); the message settles
 * once they are durable. */
void queue__record(queue__msg_t *qm, const spool_update_t *u, size_t n);
void queue__job_done(delivery_job_t *job, void *arg);
/* After a job or a spool callback: DSN, removal or the next schedule. */
void queue__settle(queue__msg_t *qm);
void queue__free_bounce(queue__rcpt_t *r);

#endif
