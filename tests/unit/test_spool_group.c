/*
 * Unit tests for the spool's group commit: commits waiting together share
 * a pass and its syncs while each callback waits for its own durability,
 * the two lanes do not wait for each other, a sync failure in one lane
 * fails what it may have concerned in the other, and appends to one file
 * stay in order across a pass's parallel jobs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool.h"
#include "spool_fixture.h"
#include "testdir.h"
#include "str.h"

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Group commit ---- */

#define WRITERS 64
#define PER_WRITER 8

typedef struct {
    spool_t *s;
    int left;
    int dir_syncs_at_commit;
    int fs_sync_starts_at_commit;
    int committed;
} gc_writer_t;

static int gc_failures;

static void gc_start(gc_writer_t *g);

static bool inode_synced(ino_t ino)
{
    bool found = false;

    pthread_mutex_lock(&hook.mu);
    for (int i = 0; i < hook.nsynced && !found; i++)
        found = hook.synced[i] == ino;
    pthread_mutex_unlock(&hook.mu);
    return found;
}

static void gc_committed(void *arg, int status, spool_msg_t *msg)
{
    gc_writer_t *g = arg;
    char tmp[400];
    struct stat st;

    /* Durable means: the file's bytes were synced (an fsync of it, or a
     * syncfs that began after the commit was queued and is done), its
     * final name exists (and no temporary one), and a directory fsync ran
     * after the commit was queued. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", msg ? msg->path : "");
    if (status != 0 || stat(msg->path, &st) != 0 ||
        !(inode_synced(st.st_ino) ||
          atomic_load(&hook.fs_sync_done_start) > g->fs_sync_starts_at_commit) ||
        access(tmp, F_OK) == 0 || atomic_load(&hook.dir_syncs) <= g->dir_syncs_at_commit)
        gc_failures++;
    g->committed++;
    spool_msg_free(msg);
    if (g->left > 0)
        gc_start(g);
}

static void gc_start(gc_writer_t *g)
{
    static char text[4096];
    spool_envelope_t env = envelope(1);
    spool_writer_t *w;

    if (text[0] == '\0') {
        char *t = message_text(sizeof(text), 7);

        memcpy(text, t, sizeof(text));
        free(t);
    }
    g->left--;
    cr_assert_eq(spool_writer_open(g->s, &w), 0);
    cr_assert_eq(spool_writer_write(w, text, sizeof(text)), 0);
    g->dir_syncs_at_commit = atomic_load(&hook.dir_syncs);
    g->fs_sync_starts_at_commit = atomic_load(&hook.fs_sync_starts);
    cr_assert_eq(spool_writer_commit(w, &env, gc_committed, g), 0);
}

/*
 * A sync through the spool directory reports a write-back error once, to
 * whichever pass syncs first; a commit whose bytes were written before
 * that failure fails too, even when its own pass's syncs succeed.  The
 * failure comes from the other lane's pass: a recipient update's syncfs,
 * or a removal's directory fsync.
 */
static void earlier_failure_fails_the_commit(spool_sync_t mode)
{
    spool_envelope_t env = envelope(3);
    spool_t *s = open_spool_sync(mode);
    commit_result_t first = commit_text(s, "x\r\n", 3, 3, &env), held = {0}, later;
    const spool_update_t u = {0, SPOOL_RCPT_DEFERRED, 1, 1795000300, "451 later", "", true};
    done_result_t d = {0};
    spool_writer_t *w;
    spool_stats_t st;
    char listed[64];

    cr_assert_eq(first.status, 0);
    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_eq(spool_writer_write(w, "written before the failure\r\n", 28), 0);
    if (mode == SPOOL_SYNC_FILESYSTEM) {
        hook.syncfs_errno = EIO;
        cr_assert_eq(spool_update(s, first.msg, &u, 1, on_done, &d), 0);
    } else {
        hook.fsync_errno = EIO;
        hook.fsync_fail_dir = true;
        cr_assert_eq(spool_remove(s, first.msg, on_done, &d), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.called, 1);
    cr_assert_eq(d.status, -EIO);
    hook.syncfs_errno = 0;
    hook.fsync_errno = 0;

    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &held), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(held.called, 1);
    cr_assert_eq(held.status, -EIO, "the commit's own syncs succeeded: %s",
                 spool_strerror(held.status));
    cr_assert_null(held.msg);
    spool_get_stats(s, &st);
    cr_assert_eq(st.commit_errors, 1);

    /* Written after the failure: nothing stands against it. */
    later = commit_text(s, "y\r\n", 3, 3, &env);
    cr_assert_eq(later.status, 0);
    if (mode == SPOOL_SYNC_FILESYSTEM)
        snprintf(listed, sizeof(listed), "%s %s", first.msg->id, later.msg->id);
    else
        snprintf(listed, sizeof(listed), "%s", later.msg->id);
    cr_assert_str_eq(listing(), listed, "nothing of the failed commit is left");
    spool_msg_free(first.msg);
    spool_msg_free(later.msg);
    close_spool(s);
}

Test(spool, a_syncfs_failure_in_the_other_lane_fails_a_commit_written_before_it)
{
    earlier_failure_fails_the_commit(SPOOL_SYNC_FILESYSTEM);
}

Test(spool, a_directory_fsync_failure_in_the_other_lane_fails_a_commit_written_before_it)
{
    earlier_failure_fails_the_commit(SPOOL_SYNC_FILES);
}

Test(spool, an_update_fsynced_on_its_own_file_survives_a_directory_failure_in_its_pass)
{
    spool_envelope_t env = envelope(3);
    spool_t *s = open_spool_sync(SPOOL_SYNC_FILES);
    commit_result_t m = commit_text(s, "x\r\n", 3, 3, &env), n = commit_text(s, "y\r\n", 3, 3, &env);
    const spool_update_t u = {1, SPOOL_RCPT_DEFERRED, 1, 1795000300, "451 later", "", true};
    done_result_t updated = {0}, removed = {0};
    scan_result_t sr;

    hook.fsync_errno = EIO;
    hook.fsync_fail_dir = true;
    cr_assert_eq(spool_update(s, m.msg, &u, 1, on_done, &updated), 0);
    cr_assert_eq(spool_remove(s, n.msg, on_done, &removed), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(removed.status, -EIO, "the removal needed the directory");
    cr_assert_eq(updated.status, 0, "the append was fsynced on its own file: %s",
                 spool_strerror(updated.status));
    hook.fsync_errno = 0;
    spool_msg_free(m.msg);
    spool_msg_free(n.msg);
    close_spool(s);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    assert_rcpt(&sr.msgs[0]->rcpts[1], SPOOL_RCPT_DEFERRED, 1, 1795000300, "451 later", "", true);
    scan_free(&sr);
    close_spool(s);
}

/* WRITERS writers commit PER_WRITER messages each, every one starting its
 * next on its last's callback. */
static void group_commit(spool_sync_t mode)
{
    spool_t *s = open_spool_sync(mode);
    static gc_writer_t g[WRITERS];
    spool_stats_t st;
    scan_result_t sr = {0};
    int total = WRITERS * PER_WRITER;

    for (int i = 0; i < WRITERS; i++) {
        g[i] = (gc_writer_t){.s = s, .left = PER_WRITER};
        gc_start(&g[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < WRITERS; i++)
        cr_assert_eq(g[i].committed, PER_WRITER);
    cr_assert_eq(gc_failures, 0, "every callback came after its own durability");

    spool_get_stats(s, &st);
    cr_assert_eq(st.commits, (uint64_t)total);
    cr_assert_eq(st.commit_errors, 0);
    cr_assert_eq(st.writers, 0);
    /* 64 writers at once: passes carry dozens of commits each. */
    cr_assert_leq(st.passes * 8, (uint64_t)total, "%lu passes for %d commits",
                  (unsigned long)st.passes, total);
    cr_assert_eq(atomic_load(&hook.dir_syncs), (int)st.passes, "one directory fsync per pass");
    if (mode == SPOOL_SYNC_FILES) {
        cr_assert_eq(atomic_load(&hook.file_syncs), total);
        cr_assert_eq(atomic_load(&hook.fs_syncs), 0);
        cr_assert_eq(st.fsyncs, (uint64_t)(total + (int)st.passes));
    } else {
        cr_assert_eq(atomic_load(&hook.file_syncs), 0);
        cr_assert_eq(atomic_load(&hook.fs_syncs), (int)st.passes, "one syncfs per pass");
        cr_assert_eq(st.fsyncs, 2 * st.passes);
    }
    close_spool(s);

    s = open_spool();
    cr_assert_eq(spool_scan(s, &collect_ops, &sr), 0);
    cr_assert_eq(collected_n, total, "all of them are on disk");
    cr_assert_eq(sr.nproblems, 0);
    for (int i = 0; i < collected_n; i++)
        spool_msg_free(collected[i]);
    close_spool(s);
}

Test(spool, concurrent_commits_share_fsync_passes_and_each_waits_for_its_own)
{
    group_commit(SPOOL_SYNC_FILES);
}

Test(spool, concurrent_commits_share_one_syncfs_per_pass_and_each_waits_for_its_own)
{
    group_commit(SPOOL_SYNC_FILESYSTEM);
}

/* Run the loop until *flag is set or about five seconds have passed. */
static void run_until(const int *flag)
{
    for (int i = 0; i < 5000 && *flag == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

Test(spool, a_commit_does_not_wait_for_state_updates_or_removals)
{
    spool_envelope_t env = envelope(3);
    spool_t *s = open_spool_io(&hook_io);
    commit_result_t first = commit_text(s, "x\r\n", 3, 3, &env), second = {0};
    const spool_update_t u = {0, SPOOL_RCPT_SENT, 1, 0, "250 ok", "", true};
    done_result_t updated = {0}, removed = {0};
    spool_writer_t *w;
    int held = 0;

    /* The update's append blocks on an executor thread, as a slow disk
     * would; the commit queued after it completes all the same. */
    hook.loop_thread = pthread_self();
    atomic_store(&hook.hold_appends, true);
    cr_assert_eq(spool_update(s, first.msg, &u, 1, on_done, &updated), 0);
    for (int i = 0; i < 5000 && held == 0; i++) {
        usleep(1000);
        held = atomic_load(&hook.appends_held);
    }
    cr_assert_eq(spool_remove(s, first.msg, on_done, &removed), 0);
    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_eq(spool_writer_write(w, "y\r\n", 3), 0);
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &second), 0);
    run_until(&second.called);
    atomic_store(&hook.hold_appends, false);
    cr_assert_eq(held, 1, "the append was held");
    cr_assert_eq(second.called, 1, "the commit completed while the update was held");
    cr_assert_eq(second.status, 0);
    cr_assert_eq(updated.called, 0);
    cr_assert_eq(removed.called, 0);

    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(updated.called, 1);
    cr_assert_eq(updated.status, 0);
    cr_assert_eq(removed.called, 1);
    cr_assert_eq(removed.status, 0);
    cr_assert_str_eq(listing(), second.msg->id, "the removal is done, the new message stays");
    spool_msg_free(first.msg);
    spool_msg_free(second.msg);
    close_spool(s);
}

Test(spool, updates_queued_together_land_in_order_across_parallel_jobs)
{
    /* Ten messages, each with three updates queued back to back (one pass,
     * four fsync jobs): appends to one file stay whole and in order. */
    spool_envelope_t env = envelope(3);
    spool_t *s = open_spool();
    commit_result_t r[10];
    scan_result_t sr;
    done_result_t d[30] = {{0}};
    char reply[10][3][32], ids[10][SPOOL_ID_SIZE];

    for (int i = 0; i < 10; i++)
        r[i] = commit_text(s, "x\r\n", 3, 3, &env);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 10; i++) {
            /* Each also rewrites recipient 0: the last queued must win. */
            spool_update_t u[2] = {
                {(size_t)k, SPOOL_RCPT_DEFERRED, (uint32_t)k + 1, 1795000000 + k, reply[i][k], "",
                 true},
                {0, SPOOL_RCPT_DEFERRED, (uint32_t)k + 1, 1795000000 + k, reply[i][k], "", true},
            };

            snprintf(reply[i][k], sizeof(reply[i][k]), "451 message %d update %d", i, k);
            cr_assert_eq(spool_update(s, r[i].msg, u, k == 0 ? 1 : 2, on_done, &d[i * 3 + k]),
                         0);
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(d[i].status, 0);
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s", r[i].msg->id);
        spool_msg_free(r[i].msg);
    }
    close_spool(s);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 10);
    for (int j = 0; j < 10; j++) {
        int i = 0;

        while (i < 10 && strcmp(ids[i], sr.msgs[j]->id) != 0)
            i++;
        cr_assert_lt(i, 10);
        for (int k = 1; k < 3; k++)
            assert_rcpt(&sr.msgs[j]->rcpts[k], SPOOL_RCPT_DEFERRED, (uint32_t)k + 1,
                        1795000000 + k, reply[i][k], "", true);
        assert_rcpt(&sr.msgs[j]->rcpts[0], SPOOL_RCPT_DEFERRED, 3, 1795000002, reply[i][2], "",
                    true);
    }
    scan_free(&sr);
    close_spool(s);
}

/* ---- before_ack (docs/srs.md, "Durability") ---- */

static int before_ack_calls, before_ack_status;

static int before_ack(void *arg)
{
    (void)arg;
    before_ack_calls++;
    return before_ack_status;
}

/* The hook runs once for a pass that has a commit asking for it, before
 * the 250s; a failure fails those commits only, and a restart does not
 * take their journal records for messages. */
Test(spool, before_ack_fails_only_the_commits_that_asked_for_it)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .before_ack = before_ack};
    spool_envelope_t plain = envelope(1), asks = envelope(1);
    commit_result_t a = {0}, b = {0}, c = {0}, d = {0};
    char ida[SPOOL_ID_SIZE], idc[SPOOL_ID_SIZE];
    spool_t *s = NULL;
    scan_result_t sr;

    asks.before_ack = true;
    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    /* a alone in the first pass; b and c share the second. */
    commit_start(s, "From: a\r\n\r\nA\r\n", &plain, &a);
    before_ack_status = -EIO;
    commit_start(s, "From: b\r\n\r\nB\r\n", &asks, &b);
    commit_start(s, "From: c\r\n\r\nC\r\n", &plain, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(before_ack_calls, 1, "only the pass with b ran the hook");
    cr_assert_eq(a.status, 0);
    cr_assert_eq(b.status, -EIO);
    cr_assert_eq(c.status, 0);
    str_lcpy(ida, a.msg->id, sizeof(ida));
    str_lcpy(idc, c.msg->id, sizeof(idc));
    spool_msg_free(a.msg);
    spool_msg_free(c.msg);
    /* The hook works again: a commit that asks goes through. */
    before_ack_status = 0;
    commit_start(s, "From: d\r\n\r\nD\r\n", &asks, &d);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.status, 0);
    cr_assert_eq(before_ack_calls, 2);
    spool_msg_free(d.msg);
    close_spool(s);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 3, "a, c and d; never b");
    cr_assert_str_eq(sr.msgs[0]->id, ida);
    cr_assert_str_eq(sr.msgs[1]->id, idc);
    scan_free(&sr);
    close_spool(s);
}

/* A message too big for the journal, whose file the pass would name: not
 * named when the hook fails. */
Test(spool, before_ack_failing_keeps_a_big_message_unnamed)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .before_ack = before_ack};
    spool_envelope_t asks = envelope(1);
    char *text = message_text(300000, 5); /* over the journal's 256 KiB */
    commit_result_t r = {0};
    spool_t *s = NULL;
    scan_result_t sr;

    asks.before_ack = true;
    before_ack_status = -ENOSPC;
    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    commit_start(s, text, &asks, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.status, -ENOSPC);
    cr_assert_str_eq(listing(), "journal", "no message file: %s", listing());
    close_spool(s);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 0);
    scan_free(&sr);
    close_spool(s);
    free(text);
}

/* Bytes in the journal's segments now. */
static long long journal_bytes(void)
{
    char jdir[sizeof(sdir) + 16];

    snprintf(jdir, sizeof(jdir), "%s/journal", sdir);
    return test_dir_bytes(jdir);
}

static long long journal_before;

/* A hook that succeeds only once it has seen the pass's record written:
 * it must run beside the appends, not before them. */
static int before_ack_beside(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        if (journal_bytes() > journal_before)
            return 0;
        usleep(10 * 1000);
    }
    return -ETIMEDOUT;
}

/* The hook's sync and the journal's overlap: the pass costs the longer of
 * the two, not their sum. */
Test(spool, before_ack_runs_beside_the_journal_appends)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .before_ack = before_ack_beside};
    spool_envelope_t asks = envelope(1), plain = envelope(1);
    commit_result_t r = {0};
    spool_t *s = NULL;

    asks.before_ack = true;
    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    /* The segment made first, so that the record is what it grows by. */
    commit_start(s, "From: x\r\n\r\nX\r\n", &plain, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    spool_msg_free(r.msg);
    journal_before = journal_bytes();
    memset(&r, 0, sizeof(r));
    commit_start(s, "From: a\r\n\r\nA\r\n", &asks, &r);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.status, 0, "the hook saw the record: %s", spool_strerror(r.status));
    cr_assert_neq(r.msg->jseq, 0);
    spool_msg_free(r.msg);
    close_spool(s);
}
