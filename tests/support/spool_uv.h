/*
 * spool_uv - the spool's executor on libuv's thread pool, for tests and
 * benchmarks (the daemon wires its own the same way).  Header-only: the
 * spool library itself does not depend on libuv.
 */
#ifndef MXFWD_SPOOL_UV_H
#define MXFWD_SPOOL_UV_H

#include <stdlib.h>
#include <uv.h>

#include "spool.h"
#include "xalloc.h"

typedef struct {
    uv_work_t req; /* first: the request is the job */
    void (*work)(void *ctx);
    void (*done)(void *ctx);
    void *ctx;
} spool_uv_job_t;

static void spool_uv_work(uv_work_t *req)
{
    spool_uv_job_t *job = (spool_uv_job_t *)req;

    job->work(job->ctx);
}

static void spool_uv_after(uv_work_t *req, int status)
{
    spool_uv_job_t *job = (spool_uv_job_t *)req;

    (void)status; /* never cancelled */
    job->done(job->ctx);
    free(job);
}

static void spool_uv_submit(void *impl, void (*work)(void *), void (*done)(void *), void *ctx)
{
    spool_uv_job_t *job = xcalloc(1, sizeof(*job));

    job->work = work;
    job->done = done;
    job->ctx = ctx;
    /* Fails only for a NULL work callback. */
    if (uv_queue_work((uv_loop_t *)impl, &job->req, spool_uv_work, spool_uv_after) != 0)
        abort();
}

static inline spool_executor_t spool_uv_executor(uv_loop_t *loop)
{
    spool_executor_t e = {spool_uv_submit, loop};

    return e;
}

#endif
