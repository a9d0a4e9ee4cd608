/*
 * queue.c - the index of queued messages, the schedule of next attempts
 * and delivery jobs.  The admin's commands are in queue_admin.c; results,
 * state records and DSNs in queue_result.c.
 */
#include "queue_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "default.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

static int64_t queue_sys_clock(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * QUEUE_US_PER_S + ts.tv_nsec / 1000;
}

static uint32_t queue_sys_random(void *arg)
{
    (void)arg;
    return arc4random();
}

bool queue_idle(const queue_t *q)
{
    const heap_node_t *first = heap_min(&q->due);

    return q->jobs == 0 && q->io == 0 && (q->closing || first == NULL || first->key > queue_now(q));
}

int64_t queue_now(const queue_t *q)
{
    return q->clock_us(q->clock_arg);
}

static void queue_on_timer(uv_timer_t *t)
{
    queue_tick(t->data);
}

/*
 * The queue's gauges, read when the registry is (the index scanned; readers
 * are an admin's command and a metrics scrape, not the mail path), so they
 * are always what the index holds.
 */
static uint64_t queue_messages(void *arg)
{
    const queue_t *q = arg;

    /* A message leaves the index when its removal is queued, but its file
     * is there until the removal is durable: it still counts. */
    return htab_count(q->index) + q->removing;
}

/* Recipients not final yet. */
static uint64_t queue_recipients(void *arg)
{
    const queue_t *q = arg;
    size_t pos = 0, klen;
    const char *key;
    void *value;
    uint64_t n = 0;

    while (htab_next(q->index, &pos, &key, &klen, &value)) {
        const spool_msg_t *m = ((const queue__msg_t *)value)->m;

        for (size_t i = 0; i < m->nrcpts; i++)
            n += !spool_rcpt_final(m->rcpts[i].state);
    }
    return n;
}

/* How long the oldest message has waited. */
static uint64_t queue_oldest_age(void *arg)
{
    queue_t *q = arg;
    int64_t oldest = INT64_MAX, now = queue_now(q);
    size_t pos = 0, klen;
    const char *key;
    void *value;

    while (htab_next(q->index, &pos, &key, &klen, &value)) {
        const queue__msg_t *qm = value;
        if (qm->m->arrival_us < oldest)
            oldest = qm->m->arrival_us;
    }
    return oldest < now ? (uint64_t)(now - oldest) / QUEUE_US_PER_S : 0;
}

/* Until stats_detach() at close (the registry outlives the queue). */
static void queue_register_gauges(queue_t *q)
{
    stats_register_fn(q->stats, STATS_GAUGE, "queue_messages", NULL, NULL, "messages in the queue",
                      queue_messages, q);
    stats_register_fn(q->stats, STATS_GAUGE, "queue_recipients", NULL, NULL,
                      "recipients in the queue not yet delivered or bounced", queue_recipients, q);
    stats_register_fn(q->stats, STATS_GAUGE, "queue_oldest_age_seconds", NULL, NULL,
                      "seconds since the oldest queued message arrived (0: none queued)",
                      queue_oldest_age, q);
}

int queue_new(const queue_options_t *opt, queue_t **out)
{
    queue_t *q;

    *out = NULL;
    if (opt->loop == NULL || opt->spool == NULL || opt->delivery.ops == NULL ||
        opt->stats == NULL || opt->hostname == NULL || opt->nretry_schedule == 0)
        return QUEUE_EINVAL;
    q = xcalloc(1, sizeof(*q));
    q->loop = opt->loop;
    q->spool = opt->spool;
    q->delivery = opt->delivery;
    q->hostname = xstrdup(opt->hostname);
    q->signer = opt->signer;
    q->nretry = opt->nretry_schedule;
    q->retry = xcalloc(q->nretry, sizeof(*q->retry));
    for (size_t i = 0; i < q->nretry; i++)
        /* A zero delay would retry a destination that fails at once in a
         * tight loop. */
        q->retry[i] = opt->retry_schedule[i] > 0 ? opt->retry_schedule[i] : 1;
    q->lifetime = opt->max_queue_lifetime;
    q->delay_warning = opt->delay_warning_time;
    q->hide_destinations = opt->hide_destinations;
    q->postmaster = opt->postmaster != NULL ? xstrdup(opt->postmaster) : NULL;
    q->double_bounce = xmalloc(strlen("double-bounce@") + strlen(opt->hostname) + 1);
    strcpy(q->double_bounce, "double-bounce@");
    strcat(q->double_bounce, opt->hostname);
    q->clock_us = opt->clock_us != NULL ? opt->clock_us : queue_sys_clock;
    q->clock_arg = opt->clock_arg;
    q->random = opt->random != NULL ? opt->random : queue_sys_random;
    q->random_arg = opt->random_arg;
    q->body_max = opt->body_memory ? opt->body_memory : DEFAULT_QUEUE_BODY_MEMORY;
    q->max_jobs = opt->max_jobs ? opt->max_jobs : DEFAULT_QUEUE_JOBS;
    q->max_dom_jobs =
        opt->max_jobs_per_domain ? opt->max_jobs_per_domain : DEFAULT_QUEUE_JOBS_PER_DOMAIN;
    q->index = htab_new_borrowed(256);
    q->doms = htab_new_borrowed(64);
    heap_init(&q->due);
    uv_timer_init(q->loop, &q->timer);
    q->timer.data = q;
    q->timer_at = INT64_MAX;

    q->n_delivered = stats_register(opt->stats, STATS_COUNTER, "delivered", NULL, NULL,
                                    "recipients delivered to the next hop");
    q->n_deferred = stats_register(opt->stats, STATS_COUNTER, "deferred", NULL, NULL,
                                   "delivery attempts deferred, per recipient");
    q->n_bounced = stats_register(opt->stats, STATS_COUNTER, "bounced", NULL, NULL,
                                  "recipients bounced (refused for good, or expired)");
    q->n_dsn = stats_register(opt->stats, STATS_COUNTER, "dsn", NULL, NULL,
                              "non-delivery notifications created");
    {
        /* From a second to the default lifetime (5 days). */
        static const double bounds[] = {1, 5, 15, 60, 300, 900, 3600, 14400, 86400, 432000};
        q->delay = stats_histogram_new(opt->stats, "delivery_delay_seconds",
                                       "time from arrival to a recipient's final result "
                                       "(sent or bounced), in seconds",
                                       bounds, sizeof(bounds) / sizeof(bounds[0]));
    }
    q->stats = opt->stats;
    queue_register_gauges(q);
    *out = q;
    return 0;
}

/* ---- The index ---- */

void queue__drop_body(queue__msg_t *qm)
{
    if (qm->m->body == NULL)
        return;
    qm->q->body_bytes -= qm->m->body_held;
    spool_msg_drop_body(qm->m);
}

static void queue_dom_maybe_free(queue_t *q, queue__dom_t *dom);

/* qm waits for no domain's slot any more. */
static void queue_unwait_all(queue__msg_t *qm)
{
    while (qm->waits != NULL) {
        queue__wait_t *w = qm->waits;

        qm->waits = w->next;
        list_remove(&w->dom->waiting, &w->dnode);
        queue_dom_maybe_free(qm->q, w->dom);
        free(w);
    }
}

static void queue_free_msg(void *value)
{
    queue__msg_t *qm = value;

    queue_unwait_all(qm);
    queue__drop_body(qm);
    for (size_t i = 0; i < qm->m->nrcpts; i++)
        queue__free_bounce(&qm->r[i]);
    spool_msg_free(qm->m);
    free(qm->r);
    free(qm);
}

/* Index m and schedule it; new (just committed) says it in the log. */
static void queue_index(queue_t *q, spool_msg_t *m, bool new)
{
    queue__msg_t *qm;

    if (htab_get(q->index, m->id, strlen(m->id)) != NULL) {
        /* The spool never gives an id in use (docs/spool.md, "Queue
         * ids"): this is a caller's bug, and queueing the message twice
         * would deliver it twice. */
        log_error("%s: queued twice; the second copy is ignored", m->id);
        spool_msg_free(m);
        return;
    }
    /* The body in memory spares the first delivery reading the file it
     * was just written to, as long as the bodies held stay bounded. */
    if (m->body != NULL && m->body_held > q->body_max - q->body_bytes)
        spool_msg_drop_body(m);
    else if (m->body != NULL)
        q->body_bytes += m->body_held;
    qm = xcalloc(1, sizeof(*qm));
    qm->q = q;
    qm->m = m;
    qm->r = xcalloc(m->nrcpts, sizeof(*qm->r));
    for (size_t i = 0; i < m->nrcpts; i++)
        qm->r[i].due = m->rcpts[i].next_attempt * QUEUE_US_PER_S;
    htab_put(q->index, m->id, strlen(m->id), qm);
    /* Postfix's qmgr line: pflogsumm takes the sender and size from it.
     * The sender delivery uses, the SRS address, follows. */
    if (new)
        log_info("%s: from=<%s>, size=%" PRIu64 ", nrcpt=%zu, srs_from=<%s> (queue active)", m->id,
                 m->sender, spool_msg_size(m), m->nrcpts, m->srs_sender);
    queue__settle(qm);
}

void queue_add(queue_t *q, spool_msg_t *m)
{
    queue_index(q, m, true);
}

typedef struct {
    spool_msg_t **m;
    size_t n, cap;
} queue_scan_t;

static void queue_scan_message(void *arg, spool_msg_t *msg)
{
    queue_scan_t *s = arg;

    s->m = xgrow(s->m, &s->cap, s->n + 1, sizeof(*s->m));
    s->m[s->n++] = msg;
}

/* The spool says what it found and what it did about it. */
static void queue_scan_problem(void *arg, const char *name, int err, const char *done)
{
    (void)arg;
    log_warning("spool: %s: %s; %s", name, spool_strerror(err), done);
}

int queue_load(queue_t *q, size_t *nmsgs, int *err)
{
    spool_scan_ops_t ops = {queue_scan_message, queue_scan_problem};
    queue_scan_t s = {NULL, 0, 0};
    int rc = spool_scan(q->spool, &ops, &s);

    if (err != NULL)
        *err = rc;
    /* Indexed only once the scan is over: a finished message is removed
     * at once, and the scan must not meet its own removals. */
    for (size_t i = 0; i < s.n; i++)
        queue_index(q, s.m[i], false);
    free(s.m);
    if (nmsgs != NULL)
        *nmsgs = s.n;
    return rc < 0 ? QUEUE_ESPOOL : 0;
}

typedef struct {
    queue_t *q;
    char id[SPOOL_ID_SIZE];
} queue_removal_t;

static void queue_removed(void *arg, int status)
{
    queue_removal_t *r = arg;
    queue_t *q = r->q;

    if (status < 0)
        log_error("%s: cannot remove from the spool: %s", r->id, spool_strerror(status));
    free(r);
    q->removing--;
    q->io--;
    queue__maybe_closed(q);
}

void queue__remove(queue__msg_t *qm)
{
    queue_t *q = qm->q;
    spool_msg_t *m = qm->m;
    queue_removal_t *r = xcalloc(1, sizeof(*r));
    int rc;

    heap_remove(&q->due, &qm->node);
    htab_remove(q->index, m->id, strlen(m->id));
    r->q = q;
    str_lcpy(r->id, m->id, sizeof(r->id));
    if ((rc = spool_remove(q->spool, m, queue_removed, r)) < 0) {
        log_error("%s: cannot remove from the spool: %s", m->id, spool_strerror(rc));
        free(r);
    } else {
        q->io++;
        q->removing++;
        log_info("%s: removed", m->id);
    }
    queue_free_msg(qm);
}

/* ---- The schedule ---- */

static void queue_arm(queue_t *q)
{
    heap_node_t *first = heap_min(&q->due);
    int64_t wait_ms;

    /* With max_jobs at the delivery interface, the next job's end arms
     * it again (queue__dom_job_done()). */
    if (q->closing || first == NULL || q->jobs >= q->max_jobs) {
        uv_timer_stop(&q->timer);
        q->timer_at = INT64_MAX;
        return;
    }
    if (first->key == q->timer_at)
        return;
    wait_ms = (first->key - queue_now(q) + 999) / 1000;
    if (wait_ms < 0)
        wait_ms = 0;
    if (wait_ms > QUEUE_MAX_SLEEP_MS)
        wait_ms = QUEUE_MAX_SLEEP_MS;
    q->timer_at = first->key;
    uv_timer_start(&q->timer, queue_on_timer, (uint64_t)wait_ms, 0);
}

/* Whether recipient i of qm waits for a slot of its domain. */
static bool queue_rcpt_waits(const queue__msg_t *qm, size_t i)
{
    for (const queue__wait_t *w = qm->waits; w != NULL; w = w->next)
        if (str_eq_ci(queue__domain_of(qm->m->rcpts[i].addr), w->dom->name))
            return true;
    return false;
}

void queue__schedule(queue__msg_t *qm)
{
    queue_t *q = qm->q;
    int64_t due = INT64_MAX;

    /* While a change of the message is on its way to disk, the message
     * waits: the queue acts only on recorded state.  Recipients waiting
     * for their domain's slot come back when one is free. */
    if (!qm->deleted && qm->io == 0 && !q->closing)
        for (size_t i = 0; i < qm->m->nrcpts; i++)
            if (queue__waiting(qm, i) && qm->r[i].due < due &&
                (qm->waits == NULL || !queue_rcpt_waits(qm, i)))
                due = qm->r[i].due;
    if (due == INT64_MAX)
        heap_remove(&q->due, &qm->node);
    else
        heap_set(&q->due, &qm->node, due);
    queue_arm(q);
}

int64_t queue__next_attempt(queue_t *q, const queue__msg_t *qm, uint32_t attempts, int64_t now)
{
    size_t step = attempts > 0 ? attempts - 1 : 0;
    int64_t delay, jitter, next, expiry;

    if (step >= q->nretry)
        step = q->nretry - 1;
    delay = (int64_t)q->retry[step] * QUEUE_US_PER_S;
    /* Uniform in [-JITTER%, +JITTER%] of the delay, in steps of 1/1000 of
     * that. */
    jitter = delay / 100 * QUEUE_JITTER_PERCENT *
             ((int64_t)(q->random(q->random_arg) % 2001) - 1000) / 1000;
    next = now + delay + jitter;
    /* The last attempt is made when the lifetime ends, not up to a whole
     * retry step after it. */
    expiry = qm->m->arrival_us + (int64_t)q->lifetime * QUEUE_US_PER_S;
    return next < expiry ? next : expiry;
}

/* ---- Destination domains: jobs at once ---- */

/* The domain's entry, made when missing.  domain: lowercased. */
static queue__dom_t *queue_dom_get(queue_t *q, const char *domain)
{
    queue__dom_t *dom = htab_get(q->doms, domain, strlen(domain));

    if (dom == NULL) {
        dom = xcalloc(1, sizeof(*dom));
        dom->name = xstrdup(domain);
        htab_put(q->doms, dom->name, strlen(dom->name), dom);
    }
    return dom;
}

static void queue_dom_maybe_free(queue_t *q, queue__dom_t *dom)
{
    if (dom->jobs > 0 || list_len(&dom->waiting) > 0)
        return;
    htab_remove(q->doms, dom->name, strlen(dom->name));
    free(dom->name);
    free(dom);
}

/* qm's due recipients at dom wait for a slot (it waits once per domain). */
static void queue_wait(queue__msg_t *qm, queue__dom_t *dom)
{
    queue__wait_t *w;

    for (w = qm->waits; w != NULL; w = w->next)
        if (w->dom == dom)
            return;
    w = xcalloc(1, sizeof(*w));
    w->qm = qm;
    w->dom = dom;
    w->next = qm->waits;
    qm->waits = w;
    list_push_back(&dom->waiting, &w->dnode);
}

/*
 * Wake the messages first in line at dom, one for each free slot: back in
 * the heap, due now, they start their jobs at the next tick (or wait again
 * behind a job that took the slot first).  A deleted message gives its
 * turn to the next.
 */
static void queue_dom_wake(queue_t *q, queue__dom_t *dom)
{
    unsigned free_slots = dom->jobs < q->max_dom_jobs ? q->max_dom_jobs - dom->jobs : 0;

    while (free_slots > 0 && list_len(&dom->waiting) > 0) {
        queue__wait_t *w = LIST_ITEM(list_first(&dom->waiting), queue__wait_t, dnode);
        queue__msg_t *qm = w->qm;

        list_remove(&dom->waiting, &w->dnode);
        for (queue__wait_t **link = &qm->waits; *link != NULL; link = &(*link)->next) {
            if (*link == w) {
                *link = w->next;
                break;
            }
        }
        free(w);
        if (qm->deleted)
            continue;
        free_slots--;
        queue__schedule(qm);
    }
}

void queue__dom_job_done(queue_t *q, queue__dom_t *dom)
{
    dom->jobs--;
    q->jobs--;
    queue_dom_wake(q, dom);
    queue_dom_maybe_free(q, dom);
    /* A slot in all: the heap's first may go. */
    queue_arm(q);
}

/* ---- Jobs ---- */

void queue__job_free(queue__job_t *j)
{
    free(j->job.rcpts);
    free(j->index);
    free(j->domain);
    free(j);
}

_Static_assert(DELIVERY_RET_FULL == SPOOL_RET_FULL && DELIVERY_RET_HDRS == SPOOL_RET_HDRS &&
                   DELIVERY_NOTIFY_NEVER == SPOOL_NOTIFY_NEVER &&
                   DELIVERY_NOTIFY_SUCCESS == SPOOL_NOTIFY_SUCCESS &&
                   DELIVERY_NOTIFY_FAILURE == SPOOL_NOTIFY_FAILURE &&
                   DELIVERY_NOTIFY_DELAY == SPOOL_NOTIFY_DELAY,
               "a job's DSN parameters are the spool's");

/* One job for the due recipients in idx[0..n) of qm, all in dom. */
static void queue_job_start(queue__msg_t *qm, queue__dom_t *dom, const size_t *idx, size_t n,
                            int64_t now)
{
    queue_t *q = qm->q;
    spool_msg_t *m = qm->m;
    queue__job_t *j = xcalloc(1, sizeof(*j));
    int rc;

    /* No delivery of it reads the journal now: a message that has moved
     * to a file of its own is read from there, and lets its segment go. */
    if (qm->jobs == 0)
        spool_msg_relocate(q->spool, m);
    j->qm = qm;
    j->dom = dom;
    j->index = xmemdup(idx, n * sizeof(*idx));
    j->domain = xstrdup(dom->name);
    j->job = (delivery_job_t){
        .queue_id = m->id,
        .sender = m->srs_sender,
        .domain = j->domain,
        .rcpts = xcalloc(n, sizeof(delivery_rcpt_t)),
        .nrcpts = n,
        .prepend = m->prepend,
        .prepend_len = m->prepend_len,
        .path = m->path,
        /* A rewritten header section is in prepend; the message's own is
         * skipped (docs/spool.md, File format). */
        .offset = m->body_offset + m->body_skip,
        .length = m->body_length - m->body_skip,
        .body = m->body != NULL ? m->body + m->body_skip : NULL,
        .size = spool_msg_size(m),
        .body_8bitmime = (m->flags & SPOOL_F_8BITMIME) != 0,
        .smtputf8 = (m->flags & SPOOL_F_SMTPUTF8) != 0,
        .ret = m->ret,
        .envid = m->envid,
    };
    for (size_t i = 0; i < n; i++) {
        j->job.rcpts[i].addr = m->rcpts[idx[i]].addr;
        j->job.rcpts[i].orig_addr = m->rcpts[idx[i]].orig;
        j->job.rcpts[i].notify = m->rcpts[idx[i]].notify;
        j->job.rcpts[i].orcpt = m->rcpts[idx[i]].orcpt;
        j->job.rcpts[i].status = DELIVERY_PENDING;
        qm->r[idx[i]].st = QUEUE__ACTIVE;
    }
    qm->jobs++;
    q->jobs++;
    dom->jobs++;
    rc = q->delivery.ops->deliver(q->delivery.impl, &j->job, queue__job_done, j);
    if (rc == 0)
        return;
    /* Not started (the implementation is stopping): no attempt was made,
     * so none is counted; the recipients wait for the first retry step. */
    log_warning("%s: delivery to %s not started (%d); retried later", m->id, j->domain, rc);
    for (size_t i = 0; i < n; i++) {
        qm->r[idx[i]].st = QUEUE__IDLE;
        qm->r[idx[i]].due = now + (int64_t)q->retry[0] * QUEUE_US_PER_S;
    }
    qm->jobs--;
    q->jobs--;
    dom->jobs--;
    queue_dom_maybe_free(q, dom);
    queue__job_free(j);
}

/*
 * Start a job for each destination domain with due recipients, while the
 * delivery interface has room (max_jobs); a domain with max_jobs_per_domain
 * jobs already makes those recipients wait for one of them to end.
 */
static void queue_start(queue__msg_t *qm, int64_t now)
{
    queue_t *q = qm->q;
    spool_msg_t *m = qm->m;
    size_t *idx = xcalloc(m->nrcpts, sizeof(*idx));
    bool *taken = xcalloc(m->nrcpts, sizeof(*taken));
    char lower[SPOOL_STR_MAX + 1];

    for (size_t i = 0; i < m->nrcpts && q->jobs < q->max_jobs; i++) {
        const char *domain;
        queue__dom_t *dom;
        size_t n = 0;

        if (taken[i] || !queue__waiting(qm, i) || qm->r[i].due > now ||
            (qm->waits != NULL && queue_rcpt_waits(qm, i)))
            continue;
        /* Recipients of a message are few (max_recipients): a quadratic
         * grouping is simpler than a table and as fast. */
        domain = queue__domain_of(m->rcpts[i].addr);
        for (size_t k = i; k < m->nrcpts; k++) {
            if (taken[k] || !queue__waiting(qm, k) || qm->r[k].due > now ||
                !str_eq_ci(queue__domain_of(m->rcpts[k].addr), domain))
                continue;
            taken[k] = true;
            idx[n++] = k;
        }
        str_lcpy(lower, domain, sizeof(lower));
        dom = queue_dom_get(q, str_lower(lower));
        if (dom->jobs >= q->max_dom_jobs)
            queue_wait(qm, dom);
        else
            queue_job_start(qm, dom, idx, n, now);
    }
    free(taken);
    free(idx);
}

void queue_tick(queue_t *q)
{
    int64_t now = queue_now(q);
    heap_node_t *first;

    q->timer_at = INT64_MAX;
    /* Beyond max_jobs the rest stays in the heap as it is; each job's end
     * lets the next one go. */
    while (!q->closing && q->jobs < q->max_jobs && (first = heap_min(&q->due)) != NULL &&
           first->key <= now) {
        queue__msg_t *qm = queue__msg_of(first);

        heap_remove(&q->due, first);
        queue_start(qm, now);
        /* Back in the heap for recipients not due yet; the started ones
         * come back through their results. */
        queue__schedule(qm);
    }
    queue_arm(q);
}

/* ---- Shutdown ---- */

static void queue_timer_closed(uv_handle_t *h)
{
    queue_t *q = h->data;
    void (*closed)(void *) = q->closed;
    void *arg = q->closed_arg;

    free(q->retry);
    free(q->hostname);
    free(q->postmaster);
    free(q->double_bounce);
    free(q);
    if (closed != NULL)
        closed(arg);
}

void queue__maybe_closed(queue_t *q)
{
    if (!q->closing || !q->delivery_closed || q->jobs > 0 || q->io > 0 ||
        uv_is_closing((uv_handle_t *)&q->timer))
        return;
    stats_detach(q->stats, q); /* the gauges keep their last values */
    /* The messages stay in the spool for the next start.  Their ids are
     * the table's borrowed keys, which htab_free() only looks at before it
     * frees each value. */
    heap_free(&q->due);
    htab_free(q->index, queue_free_msg);
    q->index = NULL;
    htab_free(q->doms, NULL); /* empty: no job left, no message waiting */
    q->doms = NULL;
    uv_close((uv_handle_t *)&q->timer, queue_timer_closed);
}

static void queue_delivery_closed(void *arg)
{
    queue_t *q = arg;

    q->delivery_closed = true;
    queue__maybe_closed(q);
}

void queue_shutdown(queue_t *q, void (*closed)(void *arg), void *arg)
{
    q->closing = true;
    q->closed = closed;
    q->closed_arg = arg;
    uv_timer_stop(&q->timer);
    q->timer_at = INT64_MAX;
    q->delivery.ops->shutdown(q->delivery.impl, queue_delivery_closed, q);
}

const char *queue_strerror(int err)
{
    switch (err) {
    case 0:
        return "no error";
    case QUEUE_EINVAL:
        return "invalid queue options";
    case QUEUE_ENOENT:
        return "no such message in the queue";
    case QUEUE_ESPOOL:
        return "the spool cannot be read";
    default:
        return "unknown queue error";
    }
}
