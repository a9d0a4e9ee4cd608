/*
 * The queue tests' fixture (queue_fixture.h): a real spool in a temporary
 * directory on a real libuv loop, a scripted delivery implementation, an
 * injected clock and random source, and the helpers the tests share.
 */
/* Before the fixture's header: its functions have a parameter named as
 * the fixture's loop. */
#include "spool_uv.h"

#include "queue_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testdir.h"
#include "xalloc.h"

static char root[256];
char sdir[QUEUE_FIXTURE_DIR_SIZE];
static char logpath[300];
uv_loop_t loop;
int64_t now_us;
uint32_t rnd;
fake_t fake;
stats_t *stats;
spool_t *spool;
queue_t *q;
static int logfd = -1;

uint64_t schedule[] = {60, 300};
static size_t nschedule = 2;
uint64_t lifetime = 86400;

/* Injected failures for the spool's writes; syncs held on their thread. */
atomic_bool fail_writes;
atomic_bool hold_syncs;

static ssize_t io_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (atomic_load(&fail_writes)) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, p, n, off);
}

/* While hold_syncs is set, every fsync waits on its pool thread (at most
 * 5 s): spool work stays under way. */
static int io_fsync(int fd)
{
    for (int i = 0; i < 5000 && atomic_load(&hold_syncs); i++)
        usleep(1000);
    return fsync(fd);
}

static const spool_io_t failing_io = {.pwrite = io_pwrite, .fsync = io_fsync};

static int64_t test_clock(void *arg)
{
    (void)arg;
    return now_us;
}

static uint32_t test_random(void *arg)
{
    (void)arg;
    return rnd;
}

size_t body_memory; /* queue_options_t.body_memory */
uint64_t delay_warning; /* queue_options_t.delay_warning_time */
bool hide_destinations; /* queue_options_t.hide_destinations */
unsigned max_jobs, max_dom_jobs; /* queue_options_t's */
unsigned next_ret;       /* RET= and ENVID= of the next submit() */
const char *next_envid;

void open_all(void)
{
    spool_options_t so = {.exec = spool_uv_executor(&loop), .io = &failing_io,
                          .clock_us = test_clock};
    queue_options_t qo = {
        .loop = &loop,
        .hostname = "fwd.test",
        .retry_schedule = schedule,
        .nretry_schedule = nschedule,
        .max_queue_lifetime = lifetime,
        .delay_warning_time = delay_warning,
        .hide_destinations = hide_destinations,
        .clock_us = test_clock,
        .random = test_random,
    };
    size_t n;
    int err;

    cr_assert_eq(spool_open(sdir, &so, &spool), 0);
    if (fake.loop == NULL)
        fake_init(&fake, &loop);
    else
        fake_reopen(&fake);
    qo.spool = spool;
    qo.delivery = fake_delivery(&fake);
    qo.stats = stats;
    qo.body_memory = body_memory;
    qo.max_jobs = max_jobs;
    qo.max_jobs_per_domain = max_dom_jobs;
    cr_assert_eq(queue_new(&qo, &q), 0);
    cr_assert_eq(queue_load(q, &n, &err), 0, "%s", spool_strerror(err));
}

void setup(void)
{
    cr_assert_eq(test_dir_make("mxfwd-queue", root, sizeof(root)), 0);
    snprintf(sdir, sizeof(sdir), "%s/spool", root);
    snprintf(logpath, sizeof(logpath), "%s/log", root);
    logfd = open(logpath, O_CREAT | O_WRONLY | O_APPEND, 0600);
    cr_assert(logfd >= 0);
    log_set_fd(logfd);
    cr_assert_eq(uv_loop_init(&loop), 0);
    now_us = T0;
    rnd = 1000; /* no jitter */
    body_memory = 0;
    delay_warning = 0;
    hide_destinations = false;
    next_ret = 0;
    next_envid = NULL;
    schedule[0] = 60, schedule[1] = 300, nschedule = 2;
    lifetime = 86400;
    atomic_store(&fail_writes, false);
    atomic_store(&hold_syncs, false);
    max_jobs = max_dom_jobs = 0;
    stats = stats_new();
    open_all();
}

static bool closed;

static void on_closed(void *arg)
{
    (void)arg;
    closed = true;
}

/* Shut the queue down, wait for the spool, close it. */
void close_all(void)
{
    closed = false;
    queue_shutdown(q, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(closed);
    cr_assert_eq(spool_close(spool), 0);
    q = NULL;
    spool = NULL;
}

void teardown(void)
{
    if (q != NULL)
        close_all();
    fake_free(&fake);
    fake.loop = NULL;
    stats_free(stats);
    cr_expect_eq(uv_loop_close(&loop), 0);
    log_set_fd(2);
    close(logfd);
    test_dir_remove(root);
}


/* ---- Helpers ---- */

static uv_timer_t waiter;
static bool (*wait_pred)(void);

static void on_wait(uv_timer_t *t)
{
    if (wait_pred())
        uv_stop(t->loop);
}

/* Run the loop until pred() holds (checked every millisecond), at most 5 s
 * of real time. */
void run_until(bool (*pred)(void))
{
    uint64_t start = uv_now(&loop);

    wait_pred = pred;
    uv_timer_init(&loop, &waiter);
    uv_timer_start(&waiter, on_wait, 0, 1);
    while (!pred() && uv_now(&loop) - start < 5000)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&waiter, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert(pred(), "the loop did not settle");
}

static bool settled(void)
{
    return queue_idle(q) && fake_pending(&fake) == 0;
}

/* Let everything due now run to its end. */
void settle(void)
{
    run_until(settled);
}

/* Move the clock and let the queue act on it. */
void advance(int64_t secs)
{
    now_us += secs * S;
    queue_tick(q);
    settle();
}

static char last_id[SPOOL_ID_SIZE];

static size_t jobs_before;

bool committed(void)
{
    return last_id[0] != '\0';
}

static bool handed_over(void)
{
    return fake.nrec > jobs_before;
}

static void on_commit(void *arg, int status, spool_msg_t *msg)
{
    (void)arg;
    cr_assert_eq(status, 0, "commit: %s", spool_strerror(status));
    snprintf(last_id, sizeof(last_id), "%s", msg->id);
    queue_add(q, msg);
}

const char body[] = "From: Someone <someone@origin.test>\r\n"
                           "To: alice@alias.test\r\n"
                           "Subject: hello\r\n"
                           "Message-ID: <m1@origin.test>\r\n"
                           "\r\n"
                           "Body line one.\r\n"
                           ".leading dot stays as is in the spool\r\n";
const size_t body_size = sizeof(body);
const char prepend[] = "Received: from mx.origin.test (mx.origin.test [192.0.2.7])\r\n"
                              "\tby fwd.test (mxfwd) with ESMTP id 0\r\n";
const size_t prepend_size = sizeof(prepend);

/* Envelope flags of the next submit() (SPOOL_F_HELD: a milter's hold). */
unsigned submit_flags;

/* Commit a message to rcpts (pairs: address, alias or NULL) from sender,
 * as the SMTP session would, and hand it to the queue. */
const char *submit(const char *sender, const spool_env_rcpt_t *rcpts, size_t n)
{
    char srs[300];
    spool_envelope_t env = {
        .arrival_us = now_us,
        .flags = submit_flags,
        .client = "mx.origin.test[192.0.2.7]",
        .helo = "mx.origin.test",
        .sender = sender,
        .srs_sender = srs,
        .prepend = prepend,
        .prepend_len = sizeof(prepend) - 1,
        .rcpts = rcpts,
        .nrcpts = n,
        .ret = next_ret,
        .envid = next_envid,
    };

    if (sender[0] != '\0')
        snprintf(srs, sizeof(srs), "SRS0=HhHh=TT=%s@fwd.test", sender);
    else
        srs[0] = '\0';
    last_id[0] = '\0';
    cr_assert_eq(spool_submit(spool, &env, body, sizeof(body) - 1, on_commit, NULL, NULL), 0);
    jobs_before = fake.nrec;
    run_until(committed);
    /* Held jobs do not finish: wait for them to be handed over. */
    if (fake.hold)
        run_until(handed_over);
    else
        settle();
    return last_id;
}

/* What the spool holds: its file names and the ids queued in its
 * journal, sorted, joined by spaces. */
const char *listing(void)
{
    static char out[4096];

    return test_spool_listing(sdir, out, sizeof(out));
}

/* The log so far. */
char *log_text(void)
{
    static char text[65536];
    int fd = open(logpath, O_RDONLY);
    ssize_t n = read(fd, text, sizeof(text) - 1);

    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

/* Jobs whose first recipient is addr. */
size_t jobs_to(const char *addr)
{
    size_t n = 0;

    for (size_t i = 0; i < fake.nrec; i++)
        for (size_t k = 0; k < fake.rec[i].nrcpts; k++)
            n += strcmp(fake.rec[i].rcpt[k], addr) == 0;
    return n;
}

const fake_record_t *last_job_to(const char *addr)
{
    for (size_t i = fake.nrec; i-- > 0;)
        for (size_t k = 0; k < fake.rec[i].nrcpts; k++)
            if (strcmp(fake.rec[i].rcpt[k], addr) == 0)
                return &fake.rec[i];
    return NULL;
}


static void view_fn(void *arg, const spool_msg_t *m, const queue_rcpt_info_t *ri)
{
    rcpt_view_t *v = arg;

    for (size_t i = 0; i < m->nrcpts; i++) {
        if (strcmp(ri[i].rcpt->addr, v->addr) != 0)
            continue;
        v->found = true;
        snprintf(v->state, sizeof(v->state), "%s", ri[i].state);
        v->next = ri[i].next_attempt_us;
        v->attempts = ri[i].rcpt->attempts;
        snprintf(v->reply, sizeof(v->reply), "%s", ri[i].rcpt->reply);
    }
}

rcpt_view_t view(const char *addr)
{
    rcpt_view_t v = {.addr = addr};

    queue_list(q, view_fn, &v);
    return v;
}

void restart(void)
{
    close_all();
    open_all();
    settle();
}
