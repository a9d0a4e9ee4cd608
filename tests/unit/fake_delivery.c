#include "fake_delivery.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "xalloc.h"

struct fake_job {
    delivery_job_t *job;
    delivery_done_fn done;
    void *arg;
    fake_job_t *next;
};

static void fake_record(fake_t *f, const delivery_job_t *job)
{
    fake_record_t *r;
    int fd;

    if (f->nrec >= FAKE_MAX_RECORDS)
        abort();
    r = &f->rec[f->nrec++];
    memset(r, 0, sizeof(*r));
    str_lcpy(r->queue_id, job->queue_id, sizeof(r->queue_id));
    str_lcpy(r->sender, job->sender, sizeof(r->sender));
    str_lcpy(r->domain, job->domain, sizeof(r->domain));
    r->nrcpts = job->nrcpts;
    for (size_t i = 0; i < job->nrcpts && i < FAKE_MAX_RCPTS; i++) {
        str_lcpy(r->rcpt[i], job->rcpts[i].addr, sizeof(r->rcpt[i]));
        str_lcpy(r->orig[i], job->rcpts[i].orig_addr, sizeof(r->orig[i]));
        r->notify[i] = job->rcpts[i].notify;
        str_lcpy(r->orcpt[i], job->rcpts[i].orcpt, sizeof(r->orcpt[i]));
    }
    r->ret = job->ret;
    str_lcpy(r->envid, job->envid, sizeof(r->envid));
    r->body_8bitmime = job->body_8bitmime;
    r->smtputf8 = job->smtputf8;
    r->len = job->prepend_len + job->length;
    r->bytes = xmalloc(r->len + 1);
    memcpy(r->bytes, job->prepend, job->prepend_len);
    fd = open(job->path, O_RDONLY);
    if (fd < 0 || pread(fd, r->bytes + job->prepend_len, job->length, (off_t)job->offset) !=
                      (ssize_t)job->length)
        abort();
    close(fd);
    r->bytes[r->len] = '\0';
    /* A body in memory must be the file's bytes, as the job says. */
    r->from_memory = job->body != NULL;
    if (r->from_memory && memcmp(job->body, r->bytes + job->prepend_len, job->length) != 0)
        abort();
}

static const fake_rule_t *fake_match(const fake_t *f, const char *addr)
{
    const char *at = strrchr(addr, '@');

    for (size_t i = 0; i < f->nrules; i++) {
        const char *m = f->rules[i].match;
        if (m[0] == '@' ? (at != NULL && str_eq_ci(at, m)) : str_eq_ci(addr, m))
            return &f->rules[i];
    }
    return NULL;
}

static void fake_finish(fake_t *f, fake_job_t *fj, bool shutting_down)
{
    delivery_job_t *job = fj->job;

    for (size_t i = 0; i < job->nrcpts; i++) {
        delivery_rcpt_t *r = &job->rcpts[i];
        const fake_rule_t *rule = fake_match(f, r->addr);

        if (shutting_down) {
            r->status = DELIVERY_TEMPFAIL;
            str_lcpy(r->reply, "mxfwd is shutting down", sizeof(r->reply));
            str_lcpy(r->relay, "none", sizeof(r->relay));
            str_lcpy(r->dsn, "4.3.2", sizeof(r->dsn));
            r->remote_reply = false;
        } else if (rule != NULL) {
            r->status = rule->status;
            str_lcpy(r->reply, rule->reply, sizeof(r->reply));
            str_lcpy(r->relay, rule->relay != NULL ? rule->relay : "mx.fake.test[192.0.2.25]:25",
                     sizeof(r->relay));
            str_lcpy(r->dsn, rule->dsn != NULL ? rule->dsn : "", sizeof(r->dsn));
            r->remote_reply = rule->remote;
        } else {
            r->status = DELIVERY_OK;
            str_lcpy(r->reply, "250 2.0.0 Ok: queued as FAKE", sizeof(r->reply));
            str_lcpy(r->relay, "mx.fake.test[192.0.2.25]:25", sizeof(r->relay));
            str_lcpy(r->dsn, "2.0.0", sizeof(r->dsn));
            r->remote_reply = true;
            r->dsn_passed = f->dsn_hop;
        }
    }
    fj->done(job, fj->arg);
    free(fj);
}

static void fake_append(fake_job_t **list, fake_job_t *fj)
{
    while (*list != NULL)
        list = &(*list)->next;
    fj->next = NULL;
    *list = fj;
}

static void fake_on_kick(uv_timer_t *t)
{
    fake_t *f = t->data;

    for (;;) {
        while (f->waiting != NULL && (f->limit == 0 || f->nrunning < f->limit)) {
            fake_job_t *fj = f->waiting;
            f->waiting = fj->next;
            fake_append(&f->running, fj);
            if (++f->nrunning > f->max_running)
                f->max_running = f->nrunning;
        }
        if (f->hold || f->running == NULL)
            return;
        /* Finish what runs now; what that lets start is finished on the
         * next round. */
        while (f->running != NULL) {
            fake_job_t *fj = f->running;
            f->running = fj->next;
            f->nrunning--;
            fake_finish(f, fj, false);
        }
    }
}

static int fake_deliver(void *impl, delivery_job_t *job, delivery_done_fn done, void *arg)
{
    fake_t *f = impl;
    fake_job_t *fj;

    if (f->shut)
        return -1;
    fake_record(f, job);
    fj = xcalloc(1, sizeof(*fj));
    fj->job = job;
    fj->done = done;
    fj->arg = arg;
    fake_append(&f->waiting, fj);
    /* Never done() from inside deliver(). */
    uv_timer_start(&f->kick, fake_on_kick, 0, 0);
    return 0;
}

static void fake_kick_closed(uv_handle_t *h)
{
    fake_t *f = h->data;

    f->closed(f->closed_arg);
}

static void fake_shutdown(void *impl, void (*closed)(void *arg), void *arg)
{
    fake_t *f = impl;

    f->shut = true;
    f->closed = closed;
    f->closed_arg = arg;
    while (f->running != NULL || f->waiting != NULL) {
        fake_job_t **list = f->running != NULL ? &f->running : &f->waiting;
        fake_job_t *fj = *list;
        *list = fj->next;
        fake_finish(f, fj, true);
    }
    f->nrunning = 0;
    uv_close((uv_handle_t *)&f->kick, fake_kick_closed);
}

static const delivery_ops_t fake_ops = {fake_deliver, fake_shutdown};

void fake_init(fake_t *f, uv_loop_t *loop)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    uv_timer_init(loop, &f->kick);
    f->kick.data = f;
}

void fake_reopen(fake_t *f)
{
    fake_free(f);
    f->shut = false;
    f->hold = false;
    f->max_running = 0;
    uv_timer_init(f->loop, &f->kick);
    f->kick.data = f;
}

void fake_free(fake_t *f)
{
    for (size_t i = 0; i < f->nrec; i++)
        free(f->rec[i].bytes);
    f->nrec = 0;
}

delivery_t fake_delivery(fake_t *f)
{
    delivery_t d = {&fake_ops, f};

    return d;
}

void fake_rule(fake_t *f, const char *match, delivery_status_t status, const char *reply,
               const char *dsn)
{
    if (f->nrules >= FAKE_MAX_RULES)
        abort();
    f->rules[f->nrules++] = (fake_rule_t){match, status, reply, dsn, true, NULL};
}

void fake_clear_rules(fake_t *f)
{
    f->nrules = 0;
}

void fake_release(fake_t *f)
{
    f->hold = false;
    uv_timer_start(&f->kick, fake_on_kick, 0, 0);
}

unsigned fake_pending(const fake_t *f)
{
    unsigned n = 0;

    for (const fake_job_t *j = f->waiting; j != NULL; j = j->next)
        n++;
    return n + f->nrunning;
}
