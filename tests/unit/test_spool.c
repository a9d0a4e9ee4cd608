/*
 * Unit tests for spool/: what is on disk after commits, aborts, failures
 * and state updates of message files, and what a restart reads back.  The
 * spool runs on a real libuv loop and thread pool; failures are real (a
 * file size limit) or injected through the spool's system-call hook
 * (spool_fixture.h).  The group commit, the commit journal and the
 * start-up scan have files of their own.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool.h"
#include "spool_fixture.h"
#include "str.h"
#include "testdir.h"

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Commit and read back ---- */

Test(spool, commit_is_byte_exact_and_survives_restart)
{
    /* Larger than the writer's buffer, written in odd chunks, so both
     * buffered and direct writes happen. */
    size_t len = 100000;
    char *text = message_text(len, 1);
    spool_envelope_t env = envelope(3);
    spool_t *s = open_spool();
    commit_result_t r = commit_text(s, text, len, 1000 + 7, &env);
    scan_result_t sr;
    struct stat st;
    char *back;

    cr_assert_eq(r.status, 0, "%s", spool_strerror(r.status));
    spool_msg_t *m = r.msg;
    cr_assert_eq(strlen(m->id), SPOOL_ID_LEN);
    cr_assert_str_eq(listing(), m->id, "only the committed file, no temporary");
    cr_assert_eq(stat(m->path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(stat(sdir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "the spool directory was created private");
    assert_envelope(m, &env);
    cr_assert_eq(m->body_length, len);
    cr_assert_eq(spool_msg_size(m), len + sizeof(prepend) - 1);
    back = read_range(m->path, m->body_offset, m->body_length);
    cr_assert(memcmp(back, text, len) == 0, "message bytes are one contiguous range");
    free(back);
    for (size_t i = 0; i < m->nrcpts; i++)
        cr_assert_eq(m->rcpts[i].state, SPOOL_RCPT_PENDING);
    close_spool(s);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_eq(sr.nproblems, 0);
    cr_assert_str_eq(sr.msgs[0]->id, m->id);
    cr_assert_str_eq(sr.msgs[0]->path, m->path);
    cr_assert_eq(sr.msgs[0]->body_offset, m->body_offset);
    cr_assert_eq(sr.msgs[0]->body_length, len);
    assert_envelope(sr.msgs[0], &env);
    back = read_range(sr.msgs[0]->path, sr.msgs[0]->body_offset, sr.msgs[0]->body_length);
    cr_assert(memcmp(back, text, len) == 0);
    free(back);
    scan_free(&sr);
    spool_msg_free(m);
    close_spool(s);
    free(text);
}

Test(spool, small_message_keeps_its_body_in_memory_until_dropped)
{
    /* One that fits the writer's buffer keeps the very bytes of the file;
     * one that does not, and one read back after a restart, have none. */
    size_t small = 4096, large = 40000;
    char *text = message_text(large, 2);
    spool_envelope_t env = envelope(1);
    spool_t *s = open_spool();
    commit_result_t a = commit_text(s, text, small, 333, &env);
    commit_result_t b = commit_text(s, text, large, 1000, &env);
    scan_result_t sr;
    char *back;

    cr_assert_eq(a.status, 0);
    cr_assert_eq(b.status, 0);
    cr_assert_not_null(a.msg->body);
    back = read_range(a.msg->path, a.msg->body_offset, a.msg->body_length);
    cr_assert(memcmp(a.msg->body, back, small) == 0 && memcmp(back, text, small) == 0);
    free(back);
    cr_assert_null(b.msg->body, "a message over the buffer is read from the file");
    spool_msg_drop_body(a.msg);
    cr_assert_null(a.msg->body);
    spool_msg_drop_body(a.msg); /* twice is harmless */
    close_spool(s);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 2);
    cr_assert(sr.msgs[0]->body == NULL && sr.msgs[1]->body == NULL);
    scan_free(&sr);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
    close_spool(s);
    free(text);
}

Test(spool, message_from_memory_with_null_sender)
{
    static const char dsn[] = "From: MAILER-DAEMON@fwd.test\r\nSubject: failure\r\n\r\nbody\r\n";
    static const spool_env_rcpt_t to[] = {{"someone@origin.test", NULL}};
    spool_envelope_t env = {.sender = "", .srs_sender = "", .rcpts = to, .nrcpts = 1};
    spool_t *s = open_spool();
    commit_result_t r = {0};
    char id[SPOOL_ID_SIZE];
    char *back;

    cr_assert_eq(spool_submit(s, &env, dsn, sizeof(dsn) - 1, on_commit, &r, id), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.called, 1);
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.msg->id, id);
    cr_assert_str_eq(r.msg->sender, "");
    cr_assert_str_eq(r.msg->helo, "");
    cr_assert_eq(r.msg->prepend_len, 0);
    cr_assert_gt(r.msg->arrival_us, 0, "arrival defaults to now");
    back = read_range(r.msg->path, r.msg->body_offset, r.msg->body_length);
    cr_assert_str_eq(back, dsn);
    free(back);
    spool_msg_free(r.msg);
    close_spool(s);
}

Test(spool, abort_leaves_nothing)
{
    spool_t *s = open_spool();
    spool_writer_t *w;

    char *text = message_text(40000, 1);

    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_eq(spool_writer_write(w, "Subject: x\r\n\r\n", 14), 0);
    cr_assert_str_eq(listing(), "", "a small message stays in the writer's buffer");
    cr_assert_eq(spool_writer_write(w, text, strlen(text)), 0);
    cr_assert_str_neq(listing(), "", "a bigger one streams to the temporary file");
    cr_assert_eq(spool_close(s), SPOOL_EBUSY, "a writer is open");
    spool_writer_abort(w);
    cr_assert_str_eq(listing(), "");
    close_spool(s);
    free(text);
}

Test(spool, bad_envelope_is_refused_and_leaves_nothing)
{
    spool_envelope_t env = envelope(0); /* no recipient */
    spool_t *s = open_spool();
    spool_writer_t *w;
    commit_result_t r = {0};

    cr_assert_eq(spool_writer_open(s, &w), 0);
    spool_writer_write(w, "x\r\n", 3);
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &r), SPOOL_EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.called, 0);
    cr_assert_str_eq(listing(), "");
    close_spool(s);
}

Test(spool, second_process_cannot_open_a_locked_spool)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop)};
    spool_t *s = open_spool(), *s2 = NULL;

    cr_assert_eq(spool_open(sdir, &opt, &s2), SPOOL_ELOCKED);
    cr_assert_null(s2);
    close_spool(s);
    cr_assert_eq(spool_open(sdir, &opt, &s2), 0, "the lock goes with the spool");
    close_spool(s2);
}

/* ---- Queue ids ---- */

Test(spool, ids_increase_and_start_above_the_spool_after_a_clock_step_back)
{
    int64_t now = 0x18C3F2A9B47D1;
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .clock_us = fixed_clock,
                           .clock_arg = &now, .files_only = true};
    spool_t *s = NULL;
    spool_writer_t *w[3];
    char last[SPOOL_ID_SIZE] = "";

    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(spool_writer_open(s, &w[i]), 0);
        cr_assert_gt(strcmp(spool_writer_id(w[i]), last), 0, "ids sort by creation");
        snprintf(last, sizeof(last), "%s", spool_writer_id(w[i]));
        for (const char *p = last; *p; p++)
            cr_assert(strchr("0123456789ABCDEF", *p) != NULL, "hex id %s", last);
    }
    cr_assert_str_eq(spool_writer_id(w[0]), "18C3F2A9B47D1");
    cr_assert_str_eq(spool_writer_id(w[2]), "18C3F2A9B47D3", "same microsecond: next id");
    spool_writer_abort(w[0]);
    spool_writer_abort(w[1]);
    /* w[2] becomes a message on disk; then the clock steps back a second. */
    spool_envelope_t env = envelope(1);
    commit_result_t r = {0};
    spool_writer_write(w[2], "x\r\n", 3);
    cr_assert_eq(spool_writer_commit(w[2], &env, on_commit, &r), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.status, 0);
    spool_msg_free(r.msg);
    close_spool(s);
    now -= 1000000;
    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    cr_assert_eq(spool_writer_open(s, &w[0]), 0);
    cr_assert_str_eq(spool_writer_id(w[0]), "18C3F2A9B47D4", "above every id on disk");
    spool_writer_abort(w[0]);
    close_spool(s);
}

Test(spool, scan_is_for_start_up_only)
{
    spool_t *s = open_spool();
    spool_writer_t *w;
    scan_result_t sr = {0};

    char *text = message_text(40000, 1);

    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_eq(spool_writer_write(w, text, strlen(text)), 0);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), SPOOL_EBUSY,
                 "a scan now would take the writer's file for a crash's");
    cr_assert_str_neq(listing(), "");
    spool_writer_abort(w);
    free(text);
    close_spool(s);
}

/* ---- Write and fsync failures ---- */

Test(spool, disk_full_while_streaming_fails_the_commit_and_leaves_nothing)
{
    spool_t *s = open_spool_io(&hook_io);
    char *text = message_text(100000, 4);
    spool_envelope_t env = envelope(1);
    commit_result_t r = {0};
    spool_writer_t *w;
    int first_err = 0;

    hook.fail_after = 30000;
    hook.write_errno = ENOSPC;
    cr_assert_eq(spool_writer_open(s, &w), 0);
    for (size_t off = 0; off < 100000; off += 2000) {
        int err = spool_writer_write(w, text + off, 2000);

        if (first_err == 0)
            first_err = err;
        else
            cr_assert_eq(err, first_err, "the error sticks");
    }
    cr_assert_eq(first_err, -ENOSPC);
    cr_assert_eq(spool_writer_size(w), 100000, "bytes are still counted");
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &r), -ENOSPC);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.called, 0);
    cr_assert_str_eq(listing(), "");
    cr_assert_str_eq(spool_strerror(-ENOSPC), strerror(ENOSPC));
    close_spool(s);
    free(text);
}

Test(spool, quota_exceeded_writing_the_envelope_fails_the_commit_and_leaves_nothing)
{
    spool_t *s = open_spool_io(&hook_io);
    spool_envelope_t env = envelope(3);
    commit_result_t r = {0};
    spool_writer_t *w;

    hook.fail_after = 0; /* a small message is all buffered: the commit writes first */
    hook.write_errno = EDQUOT;
    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_eq(spool_writer_write(w, "Subject: hi\r\n\r\nhello\r\n", 22), 0);
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &r), -EDQUOT);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.called, 0);
    cr_assert_str_eq(listing(), "");
    close_spool(s);
}

static void fsync_failure(bool dir)
{
    spool_t *s = open_spool_io(&hook_io);
    spool_envelope_t env = envelope(1);
    char *text = message_text(4096, 5);
    commit_result_t r;
    spool_stats_t st;

    hook.fsync_errno = EIO;
    hook.fsync_fail_dir = dir;
    r = commit_text(s, text, 4096, 4096, &env);
    cr_assert_eq(r.status, -EIO);
    cr_assert_null(r.msg);
    cr_assert_str_eq(listing(), "", "nothing acknowledged, nothing left");
    spool_get_stats(s, &st);
    cr_assert_eq(st.commit_errors, 1);
    cr_assert_eq(st.commits, 0);
    close_spool(s);
    free(text);
}

Test(spool, file_fsync_error_fails_the_commit_and_leaves_nothing)
{
    fsync_failure(false);
}

Test(spool, directory_fsync_error_fails_the_commit_and_leaves_nothing)
{
    fsync_failure(true);
}

Test(spool, a_failed_syncfs_fails_its_commits_and_leaves_nothing)
{
    spool_t *s = open_spool_sync(SPOOL_SYNC_FILESYSTEM);
    spool_envelope_t env = envelope(1);
    commit_result_t r[3] = {{0}};
    spool_stats_t st;

    hook.syncfs_errno = EIO;
    for (int i = 0; i < 3; i++) {
        spool_writer_t *w;

        cr_assert_eq(spool_writer_open(s, &w), 0);
        cr_assert_eq(spool_writer_write(w, "Subject: hi\r\n\r\nhello\r\n", 22), 0);
        cr_assert_eq(spool_writer_commit(w, &env, on_commit, &r[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].called, 1);
        cr_assert_eq(r[i].status, -EIO);
        cr_assert_null(r[i].msg);
    }
    cr_assert_str_eq(listing(), "", "nothing acknowledged, nothing left");
    cr_assert_eq(atomic_load(&hook.file_syncs), 0);
    spool_get_stats(s, &st);
    cr_assert_eq(st.commit_errors, 3);
    cr_assert_eq(st.commits, 0);

    /* The next pass syncs again and succeeds. */
    hook.syncfs_errno = 0;
    r[0] = commit_text(s, "x\r\n", 3, 3, &env);
    cr_assert_eq(r[0].status, 0);
    cr_assert_eq(atomic_load(&hook.fs_syncs), 1);
    spool_msg_free(r[0].msg);
    close_spool(s);
}

Test(spool, real_write_error_from_the_kernel_fails_the_commit_and_leaves_nothing)
{
    /* A file size limit makes the kernel refuse the write (EFBIG), as a
     * full disk would: no hook involved.  Criterion runs each test in its
     * own process, so the limit ends with the test. */
    struct rlimit lim = {64 * 1024, 64 * 1024};
    spool_t *s = open_spool();
    char *text = message_text(200000, 6);
    spool_envelope_t env = envelope(1);
    commit_result_t r = {0};
    spool_writer_t *w;
    int err = 0;

    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_assert_eq(spool_writer_open(s, &w), 0);
    for (size_t off = 0; off < 200000 && err == 0; off += 10000)
        err = spool_writer_write(w, text + off, 10000);
    cr_assert_eq(err, -EFBIG);
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &r), -EFBIG);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.called, 0);
    cr_assert_str_eq(listing(), "");
    close_spool(s);
    free(text);
}

/* ---- Recipient state ---- */

static void update(spool_t *s, spool_msg_t *m, const spool_update_t *u, size_t n, int want)
{
    done_result_t d = {0};

    cr_assert_eq(spool_update(s, m, u, n, on_done, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.called, 1);
    cr_assert_eq(d.status, want, "update: %s", spool_strerror(d.status));
}

Test(spool, recipient_state_survives_restarts_until_the_message_is_removed)
{
    spool_envelope_t env = envelope(3);
    spool_t *s = open_spool();
    commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
    const spool_update_t first[] = {
        {0, SPOOL_RCPT_SENT, 1, 0, "250 2.0.0 Ok: queued as 4XyZ", "mx.example.com[192.0.2.1]:25",
         true},
        {1, SPOOL_RCPT_DEFERRED, 1, 1795000300, "451 4.7.1 Try again later",
         "mx.example.org[192.0.2.2]:25", true},
    };
    const spool_update_t second[] = {
        {1, SPOOL_RCPT_BOUNCED, 2, 0, "550 5.1.1 No such user", "mx.example.org[192.0.2.2]:25",
         true},
        {2, SPOOL_RCPT_SENT, 1, 0, "250 ok", NULL, true},
    };
    scan_result_t sr;
    done_result_t d = {0};
    char path[400];

    cr_assert_eq(r.status, 0);
    update(s, r.msg, first, 2, 0);
    cr_assert_eq(r.msg->rcpts[0].state, SPOOL_RCPT_SENT, "the caller's view changes at once");
    cr_assert_not(spool_msg_done(r.msg));
    snprintf(path, sizeof(path), "%s", r.msg->path);
    spool_msg_free(r.msg);
    close_spool(s);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    spool_msg_t *m = sr.msgs[0];
    assert_envelope(m, &env);
    assert_rcpt(&m->rcpts[0], SPOOL_RCPT_SENT, 1, 0, first[0].reply, first[0].relay, true);
    assert_rcpt(&m->rcpts[1], SPOOL_RCPT_DEFERRED, 1, 1795000300, first[1].reply, first[1].relay,
                true);
    assert_rcpt(&m->rcpts[2], SPOOL_RCPT_PENDING, 0, 0, "", "", false);
    update(s, m, second, 2, 0);
    close_spool(s);
    scan_free(&sr);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    m = sr.msgs[0];
    assert_rcpt(&m->rcpts[0], SPOOL_RCPT_SENT, 1, 0, first[0].reply, first[0].relay, true);
    assert_rcpt(&m->rcpts[1], SPOOL_RCPT_BOUNCED, 2, 0, second[0].reply, second[0].relay, true);
    assert_rcpt(&m->rcpts[2], SPOOL_RCPT_SENT, 1, 0, "250 ok", "", true);
    cr_assert(spool_msg_done(m));
    cr_assert_eq(spool_remove(s, m, on_done, &d), 0);
    scan_free(&sr); /* the message may go once remove() returned */
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.called, 1);
    cr_assert_eq(d.status, 0);
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_str_eq(listing(), "");
    close_spool(s);
}

Test(spool, bad_updates_are_refused)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_spool();
    commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
    spool_update_t u = {2, SPOOL_RCPT_SENT, 1, 0, NULL, NULL, false};

    cr_assert_eq(spool_update(s, r.msg, &u, 1, NULL, NULL), SPOOL_EINVAL, "no recipient 2");
    u.index = 0;
    u.state = (spool_rcpt_state_t)9;
    cr_assert_eq(spool_update(s, r.msg, &u, 1, NULL, NULL), SPOOL_EINVAL);
    cr_assert_eq(spool_update(s, r.msg, &u, 0, NULL, NULL), SPOOL_EINVAL);
    cr_assert_eq(r.msg->rcpts[0].state, SPOOL_RCPT_PENDING);
    spool_msg_free(r.msg);
    close_spool(s);
}

Test(spool, failed_update_leaves_the_file_as_it_was)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_spool_io(&hook_io);
    commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
    const spool_update_t u = {0, SPOOL_RCPT_SENT, 1, 0, "250 ok", "mx[192.0.2.1]:25", true};
    scan_result_t sr;
    struct stat before, after;

    cr_assert_eq(stat(r.msg->path, &before), 0);
    hook.fail_after = atomic_load(&hook.written) + 10; /* a torn append */
    hook.write_errno = ENOSPC;
    update(s, r.msg, &u, 1, -ENOSPC);
    cr_assert_eq(stat(r.msg->path, &after), 0);
    cr_assert_eq(after.st_size, before.st_size, "the partial record was taken back");
    spool_msg_free(r.msg);
    close_spool(s);
    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_eq(sr.msgs[0]->rcpts[0].state, SPOOL_RCPT_PENDING, "a restart tries it again");
    scan_free(&sr);
    close_spool(s);
}

static void append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    close(fd);
}

Test(spool, torn_state_record_from_a_crash_is_cut_off)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_spool();
    commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
    const spool_update_t u1 = {0, SPOOL_RCPT_DEFERRED, 1, 1795000600, "421 busy", "", true};
    const spool_update_t u2 = {1, SPOOL_RCPT_SENT, 1, 0, "250 ok", "", true};
    /* A record whose length runs past the end (the crash came mid-append),
     * and one that is whole but not what was written (bad checksum). */
    static const unsigned char torn[] = {'U', 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    static const unsigned char bad[] = {'U', 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 1, 2, 3, 4};
    char path[400];
    scan_result_t sr;
    struct stat good, st;

    update(s, r.msg, &u1, 1, 0);
    snprintf(path, sizeof(path), "%s", r.msg->path);
    spool_msg_free(r.msg);
    close_spool(s);
    cr_assert_eq(stat(path, &good), 0);

    for (int round = 0; round < 2; round++) {
        if (round == 0)
            append_bytes(path, torn, sizeof(torn));
        else
            append_bytes(path, bad, sizeof(bad));
        s = restart(&sr);
        cr_assert_eq(sr.nmsgs, 1);
        cr_assert_eq(sr.nproblems, 0);
        assert_rcpt(&sr.msgs[0]->rcpts[0], SPOOL_RCPT_DEFERRED, 1, 1795000600, "421 busy", "",
                    true);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_size, good.st_size, "the torn tail is gone");
        scan_free(&sr);
        close_spool(s);
    }

    /* Updates go on from the cut. */
    s = restart(&sr);
    update(s, sr.msgs[0], &u2, 1, 0);
    scan_free(&sr);
    close_spool(s);
    s = restart(&sr);
    assert_rcpt(&sr.msgs[0]->rcpts[0], SPOOL_RCPT_DEFERRED, 1, 1795000600, "421 busy", "", true);
    assert_rcpt(&sr.msgs[0]->rcpts[1], SPOOL_RCPT_SENT, 1, 0, "250 ok", "", true);
    scan_free(&sr);
    close_spool(s);
}

/* A rewritten header section rides in prepend; the message's own is kept
 * on disk but skipped: both commit paths, and after a restart. */
Test(spool, a_skipped_header_section_is_kept_and_skipped_after_a_restart)
{
    static const char text[] = "From: a@origin.test\r\nSubject: x\r\n\r\nbody\r\n";
    const uint64_t skip = strlen("From: a@origin.test\r\nSubject: x\r\n");

    for (int journal = 0; journal < 2; journal++) {
        spool_envelope_t env = envelope(1);
        spool_t *s = journal ? open_journal_spool(NULL) : open_spool();
        scan_result_t r = {0};
        commit_result_t c;
        char id[SPOOL_ID_SIZE];

        env.body_skip = skip;
        c = commit_text(s, text, strlen(text), 7, &env);
        cr_assert_eq(c.status, 0);
        cr_assert_eq(c.msg->body_skip, skip);
        cr_assert_eq(c.msg->body_length, strlen(text), "the whole message is stored");
        cr_assert_eq(spool_msg_size(c.msg), env.prepend_len + strlen(text) - skip);
        str_lcpy(id, c.msg->id, sizeof(id));
        spool_msg_free(c.msg);
        close_spool(s);
        s = journal ? restart_journal(&r) : restart(&r);
        cr_assert_eq(r.nmsgs, 1);
        cr_assert_str_eq(r.msgs[0]->id, id);
        cr_assert_eq(r.msgs[0]->body_skip, skip);
        scan_free(&r);
        close_spool(s);
        test_dir_remove(sdir);
    }
    /* More to skip than there is: refused at commit. */
    {
        spool_envelope_t env = envelope(1);
        spool_t *s = open_spool();
        spool_writer_t *w;
        commit_result_t c = {0};

        env.body_skip = strlen(text) + 1;
        cr_assert_eq(spool_writer_open(s, &w), 0);
        cr_assert_eq(spool_writer_write(w, text, strlen(text)), 0);
        cr_assert_eq(spool_writer_commit(w, &env, on_commit, &c), SPOOL_EINVAL);
        cr_assert_eq(c.called, 0);
        close_spool(s);
    }
}
