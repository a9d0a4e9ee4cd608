/*
 * Unit tests for the queue manager, continued from test_queue.c (same
 * fixture, queue_fixture.h): the admin's commands, held messages, and
 * the bounds on jobs at the delivery interface.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_fixture.h"
#include "testdir.h"
#include "xalloc.h"

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Admin commands ---- */

Test(queue, flush_retries_deferred_recipients_now)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    submit("someone@origin.test", r, 1);
    cr_assert_eq(fake.nrec, 1);
    fake_clear_rules(&fake);
    cr_assert_eq(queue_flush(q, NULL), 1);
    settle();
    cr_assert_eq(fake.nrec, 2, "tried without waiting for the schedule");
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(queue_flush(q, NULL), 0);
}

Test(queue, delete_drops_a_message_without_a_dsn)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};
    char idc[SPOOL_ID_SIZE], want[128];
    unsigned running = 0;

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 1));
    cr_assert_eq(queue_delete(q, "18C3F2A9B47D1", NULL), QUEUE_ENOENT);
    cr_assert_eq(queue_delete(q, idc, &running), 0);
    cr_assert_eq(running, 0);
    settle();
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(queue_delete(q, idc, NULL), QUEUE_ENOENT);
    snprintf(want, sizeof(want), "%s: deleted by the administrator", idc);
    cr_assert(strstr(log_text(), want) != NULL);
    advance(3600);
    cr_assert_eq(fake.nrec, 1, "no further attempt");
    stats_refresh(stats);
    cr_assert_eq(stats_get(stats, "queue_messages", NULL), 0);
}

Test(queue, delete_during_a_delivery_waits_for_it_and_sends_no_dsn)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", NULL}};
    char idc[SPOOL_ID_SIZE];
    unsigned running = 0;

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    fake.hold = true;
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 1));
    cr_assert_eq(queue_delete(q, idc, &running), 0);
    cr_assert_eq(running, 1);
    /* The file stays while the delivery may still read it. */
    cr_assert_str_eq(listing(), idc);
    fake_release(&fake);
    settle();
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(fake.nrec, 1, "no DSN for a deleted message");
}

/* ---- Held messages (docs/queue.md) ---- */

Test(queue, a_message_held_at_arrival_waits_for_its_release)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", "alice@alias.test"}};
    char idc[SPOOL_ID_SIZE], want[128];
    rcpt_view_t v;
    size_t n = 99;

    submit_flags = SPOOL_F_HELD;
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 1));
    submit_flags = 0;
    cr_assert_eq(fake.nrec, 0, "a held message is not tried");
    v = view("b@y.test");
    cr_assert_str_eq(v.state, "held");
    cr_assert_eq(v.next, 0, "not waiting for an attempt");
    /* Past its lifetime, and across a restart: still held, no bounce. */
    advance(2 * 86400);
    restart();
    cr_assert_eq(fake.nrec, 0);
    cr_assert_str_eq(view("b@y.test").state, "held");
    cr_assert_eq(queue_flush(q, NULL), 0, "a flush does not release");
    settle();
    cr_assert_eq(fake.nrec, 0);
    cr_assert_eq(queue_release(q, "18C3F2A9B47D1", &n), QUEUE_ENOENT);
    cr_assert_eq(queue_release(q, idc, &n), 0);
    cr_assert_eq(n, 1);
    settle();
    cr_assert_eq(fake.nrec, 1, "tried at once once released");
    cr_assert_str_eq(listing(), "");
    snprintf(want, sizeof(want), "%s: released by the administrator (1 recipient)", idc);
    cr_assert(strstr(log_text(), want) != NULL);
}

Test(queue, hold_and_release_by_the_admin)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}, {"c@fast.test", NULL}};
    char idc[SPOOL_ID_SIZE];
    size_t n = 0, jobs;

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 2));
    cr_assert_eq(fake.nrec, 2);
    /* The sent recipient is final; only the deferred one is held. */
    cr_assert_eq(queue_hold(q, idc, &n), 0);
    cr_assert_eq(n, 1);
    settle();
    cr_assert_str_eq(view("b@slow.test").state, "held");
    cr_assert_str_eq(view("b@slow.test").reply, "451 4.3.0 later", "its last reply is kept");
    advance(3600);
    cr_assert_eq(fake.nrec, 2, "no attempt while held");
    /* Recorded: a restart keeps it held. */
    restart();
    cr_assert_str_eq(view("b@slow.test").state, "held");
    cr_assert_eq(queue_hold(q, idc, &n), 0);
    cr_assert_eq(n, 0, "nothing left to hold");
    fake_clear_rules(&fake);
    jobs = fake.nrec;
    cr_assert_eq(queue_release(q, idc, &n), 0);
    cr_assert_eq(n, 1);
    settle();
    cr_assert_eq(fake.nrec, jobs + 1, "tried at once once released");
    cr_assert_str_eq(listing(), "");
}

Test(queue, flush_by_domain_or_id_leaves_the_rest_waiting)
{
    static const spool_env_rcpt_t ab[] = {{"b@slow.test", NULL}, {"c@other.test", NULL}};
    static const spool_env_rcpt_t c[] = {{"d@other.test", NULL}};
    char id1[SPOOL_ID_SIZE], id2[SPOOL_ID_SIZE];
    size_t n = 0;

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    fake_rule(&fake, "@other.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    snprintf(id1, sizeof(id1), "%s", submit("someone@origin.test", ab, 2));
    snprintf(id2, sizeof(id2), "%s", submit("someone@origin.test", c, 1));
    cr_assert_eq(fake.nrec, 3);
    /* By domain, in any case: the two recipients at other.test only. */
    cr_assert_eq(queue_flush(q, "OTHER.test"), 2);
    settle();
    cr_assert_eq(fake.nrec, 5);
    cr_assert_eq(jobs_to("b@slow.test"), 1, "slow.test still waits for its schedule");
    /* By id: that message's recipients, whatever their domain. */
    cr_assert_eq(queue_flush_id(q, "18C3F2A9B47D1", &n), QUEUE_ENOENT);
    cr_assert_eq(queue_flush_id(q, id1, &n), 0);
    cr_assert_eq(n, 2);
    settle();
    cr_assert_eq(fake.nrec, 7);
    cr_assert_eq(jobs_to("d@other.test"), 2, "the other message was not flushed");
}

Test(queue, delete_all_drops_every_message)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};
    unsigned running = 0;

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    for (int i = 0; i < 3; i++)
        submit("someone@origin.test", r, 1);
    cr_assert_eq(queue_delete_all(q, &running), 3);
    cr_assert_eq(running, 0);
    settle();
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(queue_delete_all(q, &running), 0);
    advance(3600);
    cr_assert_eq(fake.nrec, 3, "no further attempt, no DSN");
}

static void show_one(void *arg, const spool_msg_t *m, const queue_rcpt_info_t *rcpts)
{
    snprintf(arg, 256, "%s %s %s %s", m->id, m->sender, rcpts[0].rcpt->addr, rcpts[0].state);
}

Test(queue, show_describes_one_message)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};
    char id[SPOOL_ID_SIZE], got[256] = "", want[256];

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    snprintf(id, sizeof(id), "%s", submit("someone@origin.test", r, 1));
    cr_assert_eq(queue_show(q, "18C3F2A9B47D1", show_one, got), QUEUE_ENOENT);
    cr_assert_str_eq(got, "");
    cr_assert_eq(queue_show(q, id, show_one, got), 0);
    snprintf(want, sizeof(want), "%s someone@origin.test b@slow.test deferred", id);
    cr_assert_str_eq(got, want);
}

/* ---- Concurrency ---- */

Test(queue, jobs_over_the_delivery_limit_wait_there_and_nothing_is_handed_twice)
{
    spool_env_rcpt_t r[2] = {{"x@a.test", NULL}, {"y@b.test", NULL}};

    fake.limit = 3;
    fake.hold = true;
    for (int i = 0; i < 10; i++)
        submit("someone@origin.test", r, 2);
    /* Within the queue's own limits (DEFAULT_QUEUE_JOBS, 20 per domain)
     * every job is handed over, and the implementation runs them at its
     * pace. */
    cr_assert_eq(fake.nrec, 20);
    cr_assert_eq(fake_pending(&fake), 20);
    /* A flush while they are out must not start any recipient again. */
    cr_assert_eq(queue_flush(q, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(fake.nrec, 20);
    cr_assert_str_eq(view("x@a.test").state, "active");
    fake_release(&fake);
    settle();
    cr_assert_eq(fake.max_running, 3);
    cr_assert_eq(fake.nrec, 20);
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(stats_get(stats, "delivered", NULL), 20);
}

/* n messages to rcpt, each tried once and deferred. */
static void queue_deferred(const char *rcpt, int n)
{
    spool_env_rcpt_t r[] = {{rcpt, NULL}};

    for (int i = 0; i < n; i++)
        submit("someone@origin.test", r, 1);
}

Test(queue, a_flush_hands_jobs_over_as_slots_free_up)
{
    max_dom_jobs = 4;
    close_all();
    open_all();
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    queue_deferred("b@slow.test", 30);
    cr_assert_eq(fake.nrec, 30);
    fake_clear_rules(&fake);
    fake.max_running = 0;
    fake.hold = true;
    cr_assert_eq(queue_flush(q, NULL), 30);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    /* Four jobs at the delivery interface; the other 26 wait their turn. */
    cr_assert_eq(fake.nrec, 34);
    cr_assert_eq(fake_pending(&fake), 4);
    cr_assert_str_eq(view("b@slow.test").state, "active");
    fake_release(&fake);
    settle();
    /* As each ended, the next went: all 30 delivered, never over 4 at once. */
    cr_assert_eq(fake.nrec, 60);
    cr_assert_eq(fake.max_running, 4);
    cr_assert_eq(stats_get(stats, "delivered", NULL), 30);
    cr_assert_str_eq(listing(), "");
}

Test(queue, jobs_in_all_are_capped_across_domains)
{
    char rcpt[64];

    max_jobs = 3;
    close_all();
    open_all();
    for (int i = 0; i < 12; i++) {
        snprintf(rcpt, sizeof(rcpt), "u@d%d.test", i);
        fake_rule(&fake, rcpt, DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
        queue_deferred(rcpt, 1);
    }
    fake_clear_rules(&fake);
    fake.max_running = 0;
    cr_assert_eq(queue_flush(q, NULL), 12);
    settle();
    cr_assert_eq(fake.nrec, 24);
    cr_assert_eq(fake.max_running, 3, "twelve domains, three jobs at a time");
    cr_assert_str_eq(listing(), "");
}

Test(queue, a_busy_domain_does_not_hold_up_another)
{
    static const spool_env_rcpt_t fast[] = {{"c@fast.test", NULL}};

    max_dom_jobs = 2;
    close_all();
    open_all();
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    queue_deferred("b@slow.test", 20);
    fake.hold = true;
    cr_assert_eq(queue_flush(q, NULL), 20);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(fake.nrec, 22, "two slow.test jobs out, 18 waiting");
    /* Mail for another domain goes at once, past the 18 waiting. */
    submit("someone@origin.test", fast, 1);
    cr_assert_eq(fake.nrec, 23);
    cr_assert_str_eq(fake.rec[22].domain, "fast.test");
    fake_release(&fake);
    settle();
    cr_assert_eq(jobs_to("b@slow.test"), 40);
    cr_assert_eq(jobs_to("c@fast.test"), 1);
}

Test(queue, messages_deleted_while_they_wait_for_a_slot_are_skipped)
{
    unsigned running = 0;

    max_dom_jobs = 2;
    close_all();
    open_all();
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    queue_deferred("b@slow.test", 8);
    fake_clear_rules(&fake);
    fake.hold = true;
    queue_flush(q, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(fake.nrec, 10);
    /* Six wait for a slot; all eight go, two of them still running. */
    cr_assert_eq(queue_delete_all(q, &running), 8);
    cr_assert_eq(running, 2);
    fake_release(&fake);
    settle();
    cr_assert_eq(fake.nrec, 10, "no deleted message got a job");
    cr_assert_str_eq(listing(), "");
    stats_refresh(stats);
    cr_assert_eq(stats_get(stats, "queue_messages", NULL), 0);
}

static bool removal_logged(void)
{
    return strstr(log_text(), ": removed") != NULL;
}

Test(queue, a_message_counts_until_its_removal_is_durable)
{
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    queue_deferred("b@slow.test", 1);
    fake_clear_rules(&fake);
    stats_refresh(stats);
    cr_assert_eq(stats_get(stats, "queue_messages", NULL), 1);
    /* Delivered; its removal's directory fsync held on the pool. */
    atomic_store(&hold_syncs, true);
    queue_flush(q, NULL);
    run_until(removal_logged);
    stats_refresh(stats);
    cr_assert_eq(stats_get(stats, "queue_messages", NULL), 1, "its file is still there");
    atomic_store(&hold_syncs, false);
    settle();
    stats_refresh(stats);
    cr_assert_eq(stats_get(stats, "queue_messages", NULL), 0);
    cr_assert_str_eq(listing(), "");
}

static void show_path(void *arg, const spool_msg_t *m, const queue_rcpt_info_t *rcpts)
{
    (void)rcpts;
    snprintf(arg, 512, "%s", m->path);
}

Test(queue, a_deferred_message_is_read_from_its_own_file_at_once)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};
    char id[SPOOL_ID_SIZE], path[512] = "", want[512];

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    snprintf(id, sizeof(id), "%s", submit("someone@origin.test", r, 1));
    /* Deferred for a minute: its bytes are in its own file already, not
     * in the journal segment it came in, which may go (docs/spool.md). */
    cr_assert_eq(queue_show(q, id, show_path, path), 0);
    snprintf(want, sizeof(want), "%s/%s", spool_dir(spool), id);
    cr_assert_str_eq(path, want);
    cr_assert_eq(fake.nrec, 1, "no second attempt was needed for it");
}
