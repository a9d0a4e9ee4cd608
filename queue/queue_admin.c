/*
 * queue_admin.c - the admin's commands on the queue (docs/queue.md, "The
 * control socket"): list, show, flush, delete, hold and release.
 */
#include "queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

/* Make qm's waiting recipients (those at domain, when it is not NULL) due
 * now; adds to *n those that were not due yet, to *matched every one.
 * Held recipients stay held. */
static void queue_admin_flush_msg(queue__msg_t *qm, const char *domain, int64_t now, size_t *n,
                                  size_t *matched)
{
    bool any = false;

    for (size_t i = 0; i < qm->m->nrcpts; i++) {
        if (!queue__waiting(qm, i))
            continue;
        if (domain != NULL && !str_eq_ci(queue__domain_of(qm->m->rcpts[i].addr), domain))
            continue;
        *n += qm->r[i].due > now;
        *matched += 1;
        qm->r[i].due = 0;
        any = true;
    }
    /* Only the heap changes, never the index a caller may be walking. */
    if (any)
        queue__schedule(qm);
}

size_t queue_flush(queue_t *q, const char *domain)
{
    int64_t now = queue_now(q);
    size_t pos = 0, n = 0, matched = 0, klen;
    const char *key;
    void *value;

    while (htab_next(q->index, &pos, &key, &klen, &value))
        if (!((queue__msg_t *)value)->deleted)
            queue_admin_flush_msg(value, domain, now, &n, &matched);
    return n;
}

int queue_flush_id(queue_t *q, const char *id, size_t *n)
{
    queue__msg_t *qm = htab_get(q->index, id, strlen(id));
    size_t matched = 0;

    if (qm == NULL || qm->deleted)
        return QUEUE_ENOENT;
    queue_admin_flush_msg(qm, NULL, queue_now(q), n, &matched);
    return 0;
}

int queue_delete(queue_t *q, const char *id, unsigned *running)
{
    queue__msg_t *qm = htab_get(q->index, id, strlen(id));

    if (qm == NULL || qm->deleted)
        return QUEUE_ENOENT;
    qm->deleted = true;
    if (running != NULL)
        *running += qm->jobs;
    log_info("%s: deleted by the administrator%s", id,
             qm->jobs > 0 ? "; deliveries in progress finish first" : "");
    queue__settle(qm);
    return 0;
}

size_t queue_delete_all(queue_t *q, unsigned *running)
{
    size_t pos = 0, klen, k = 0, n = htab_count(q->index);
    queue__msg_t **all = xcalloc(n > 0 ? n : 1, sizeof(*all));
    const char *key;
    void *value;

    /* Settling may remove a message from the index: collect first. */
    while (htab_next(q->index, &pos, &key, &klen, &value))
        if (!((queue__msg_t *)value)->deleted)
            all[k++] = value;
    for (size_t i = 0; i < k; i++)
        queue_delete(q, all[i]->m->id, running);
    free(all);
    return k;
}

/* Hold every recipient waiting for an attempt, or release every held
 * one (due at once), with one state record. */
static int queue_admin_hold(queue_t *q, const char *id, bool hold, size_t *count)
{
    queue__msg_t *qm = htab_get(q->index, id, strlen(id));
    spool_update_t *u;
    size_t n = 0;

    *count = 0;
    if (qm == NULL || qm->deleted)
        return QUEUE_ENOENT;
    u = xcalloc(qm->m->nrcpts, sizeof(*u));
    for (size_t i = 0; i < qm->m->nrcpts; i++) {
        const spool_rcpt_t *r = &qm->m->rcpts[i];

        if (hold ? !queue__waiting(qm, i) : r->state != SPOOL_RCPT_HELD)
            continue;
        /* Copies: applying the update replaces the recipient's own. */
        u[n++] = (spool_update_t){
            .index = i,
            .state = hold ? SPOOL_RCPT_HELD : SPOOL_RCPT_PENDING,
            .attempts = r->attempts,
            .reply = xstrdup(r->reply),
            .relay = xstrdup(r->relay),
            .remote_reply = r->remote_reply,
        };
        qm->r[i].due = 0;
    }
    if (n > 0) {
        log_info("%s: %s by the administrator (%zu recipient%s)", id, hold ? "held" : "released",
                 n, n == 1 ? "" : "s");
        queue__record(qm, u, n);
        queue__settle(qm);
    }
    for (size_t i = 0; i < n; i++) {
        free((char *)u[i].reply);
        free((char *)u[i].relay);
    }
    free(u);
    *count = n;
    return 0;
}

int queue_hold(queue_t *q, const char *id, size_t *held)
{
    return queue_admin_hold(q, id, true, held);
}

int queue_release(queue_t *q, const char *id, size_t *released)
{
    return queue_admin_hold(q, id, false, released);
}

static int queue_admin_cmp_id(const void *a, const void *b)
{
    const queue__msg_t *x = *(queue__msg_t *const *)a, *y = *(queue__msg_t *const *)b;

    return strcmp(x->m->id, y->m->id);
}

static const char *queue_admin_state_name(const queue__msg_t *qm, size_t i)
{
    switch (qm->r[i].st) {
    case QUEUE__ACTIVE:
        return "active";
    case QUEUE__BOUNCING:
    case QUEUE__IN_DSN:
        return "bouncing";
    case QUEUE__IDLE:
        break;
    }
    switch (qm->m->rcpts[i].state) {
    case SPOOL_RCPT_PENDING:
        return "pending";
    case SPOOL_RCPT_DEFERRED:
        return "deferred";
    case SPOOL_RCPT_SENT:
        return "sent";
    case SPOOL_RCPT_BOUNCED:
        return "bounced";
    case SPOOL_RCPT_HELD:
        return "held";
    }
    return "unknown";
}

/* Call fn for qm with its recipients' states; *info grows to fit. */
static void queue_admin_describe(queue__msg_t *qm, int64_t now, queue_rcpt_info_t **info,
                                 size_t *most, queue_list_fn fn, void *arg)
{
    if (qm->m->nrcpts > *most) {
        *most = qm->m->nrcpts;
        *info = xrealloc(*info, *most * sizeof(**info));
    }
    for (size_t r = 0; r < qm->m->nrcpts; r++) {
        bool waiting = queue__waiting(qm, r);
        (*info)[r] = (queue_rcpt_info_t){
            .rcpt = &qm->m->rcpts[r],
            .state = queue_admin_state_name(qm, r),
            .next_attempt_us = !waiting ? 0 : qm->r[r].due > now ? qm->r[r].due : now,
        };
    }
    fn(arg, qm->m, *info);
}

void queue_list(queue_t *q, queue_list_fn fn, void *arg)
{
    size_t n = htab_count(q->index), k = 0, pos = 0, klen, most = 0;
    queue__msg_t **all = xcalloc(n > 0 ? n : 1, sizeof(*all));
    queue_rcpt_info_t *info = NULL;
    int64_t now = queue_now(q);
    const char *key;
    void *value;

    while (htab_next(q->index, &pos, &key, &klen, &value))
        if (!((queue__msg_t *)value)->deleted)
            all[k++] = value;
    qsort(all, k, sizeof(*all), queue_admin_cmp_id);
    for (size_t i = 0; i < k; i++)
        queue_admin_describe(all[i], now, &info, &most, fn, arg);
    free(info);
    free(all);
}

int queue_show(queue_t *q, const char *id, queue_list_fn fn, void *arg)
{
    queue__msg_t *qm = htab_get(q->index, id, strlen(id));
    queue_rcpt_info_t *info = NULL;
    size_t most = 0;

    if (qm == NULL || qm->deleted)
        return QUEUE_ENOENT;
    queue_admin_describe(qm, queue_now(q), &info, &most, fn, arg);
    free(info);
    return 0;
}
