/*
 * Unit tests for the spool's commit journal: small messages committed as
 * records of a shared segment, moved to a file of their own by their
 * first state record, removed by a mark, and segments made and dropped;
 * with failures of appends, syncs and marks injected through the hook.
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
#include "str.h"

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 30);

/* ---- The commit journal ---- */

Test(spool, a_small_message_is_committed_through_the_journal_and_survives_restart)
{
    size_t len = 4096;
    char *text = message_text(len, 7);
    spool_envelope_t env = envelope(3);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, text, len, 1000, &env);
    spool_stats_t st;
    scan_result_t sr;
    char *got, id[SPOOL_ID_SIZE];

    cr_assert_eq(r.status, 0, "%s", spool_strerror(r.status));
    str_lcpy(id, r.msg->id, sizeof(id));
    cr_assert_str_eq(listing(), "journal", "no file of its own, no temporary file");
    cr_assert_str_eq(segments(), "0000000000000001");
    cr_assert_str_eq(held(), id);
    cr_assert_neq(r.msg->jseq, 0);
    cr_assert_eq(record_state(r.msg), 'M');
    got = read_range(r.msg->path, r.msg->body_offset, r.msg->body_length);
    cr_assert(memcmp(got, text, len) == 0, "the body is read where the message says");
    free(got);
    spool_get_stats(s, &st);
    cr_assert_eq(st.commits, 1);
    cr_assert_eq(st.journalled, 1);
    spool_msg_free(r.msg);
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_eq(sr.nproblems, 0);
    cr_assert_str_eq(sr.msgs[0]->id, id);
    assert_envelope(sr.msgs[0], &env);
    cr_assert_null(sr.msgs[0]->body);
    got = read_range(sr.msgs[0]->path, sr.msgs[0]->body_offset, sr.msgs[0]->body_length);
    cr_assert(memcmp(got, text, len) == 0);
    free(got);

    /* A new message after the restart goes to a new segment, with a
     * later id. */
    r = commit_text(s, text, 100, 100, &env);
    cr_assert_eq(r.status, 0);
    cr_assert_gt(strcmp(r.msg->id, id), 0);
    cr_assert_str_eq(segments(), "0000000000000001 0000000000000002");
    spool_msg_free(r.msg);
    scan_free(&sr);
    close_spool(s);
    free(text);
}

Test(spool, a_medium_message_goes_through_the_journal_with_its_body_in_memory)
{
    size_t len = 200000; /* under the journal's 256 KiB */
    char *text = message_text(len, 11);
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, text, len, 7000, &env);
    scan_result_t sr;
    char *got;

    cr_assert_eq(r.status, 0, "%s", spool_strerror(r.status));
    cr_assert_str_eq(listing(), "journal", "no file of its own, no temporary file");
    cr_assert_neq(r.msg->jseq, 0);
    cr_assert_not_null(r.msg->body, "kept for the first delivery");
    cr_assert(memcmp(r.msg->body, text, len) == 0);
    got = read_range(r.msg->path, r.msg->body_offset, r.msg->body_length);
    cr_assert(memcmp(got, text, len) == 0, "and durable where the message says");
    free(got);
    spool_msg_drop_body(r.msg);
    cr_assert_null(r.msg->body);
    spool_msg_free(r.msg);
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    assert_envelope(sr.msgs[0], &env);
    got = read_range(sr.msgs[0]->path, sr.msgs[0]->body_offset, sr.msgs[0]->body_length);
    cr_assert_eq(sr.msgs[0]->body_length, len);
    cr_assert(memcmp(got, text, len) == 0);
    free(got);
    scan_free(&sr);
    close_spool(s);
    free(text);
}

/* Writers' buffers beyond their first 16 KiB share buffer_memory: past
 * it a message that would fit the journal gets a file instead, whole. */
Test(spool, writers_over_the_buffer_budget_get_files)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .buffer_memory = 128 * 1024};
    size_t len = 100000;
    char *text = message_text(len, 12);
    spool_envelope_t env = envelope(1);
    commit_result_t ra = {0}, rb = {0}, rc;
    spool_writer_t *a, *b;
    spool_t *s = NULL;
    char *got;

    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    cr_assert_eq(spool_writer_open(s, &a), 0);
    cr_assert_eq(spool_writer_open(s, &b), 0);
    for (size_t off = 0; off < len; off += 5000)
        cr_assert_eq(spool_writer_write(a, text + off, 5000), 0);
    for (size_t off = 0; off < len; off += 5000)
        cr_assert_eq(spool_writer_write(b, text + off, 5000), 0);
    cr_assert_eq(spool_writer_commit(a, &env, on_commit, &ra), 0);
    cr_assert_eq(spool_writer_commit(b, &env, on_commit, &rb), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(ra.status, 0);
    cr_assert_eq(rb.status, 0);
    cr_assert_neq(ra.msg->jseq, 0, "the first had the room: the journal");
    cr_assert_eq(rb.msg->jseq, 0, "the second had none: a file");
    got = read_range(rb.msg->path, rb.msg->body_offset, rb.msg->body_length);
    cr_assert(memcmp(got, text, len) == 0);
    free(got);
    /* Once committed, the room is there again. */
    rc = commit_text(s, text, len, 5000, &env);
    cr_assert_eq(rc.status, 0);
    cr_assert_neq(rc.msg->jseq, 0);
    spool_msg_free(ra.msg);
    spool_msg_free(rb.msg);
    spool_msg_free(rc.msg);
    close_spool(s);
    free(text);
}

Test(spool, a_big_message_gets_its_own_file_beside_the_journal)
{
    size_t len = 300000; /* over the journal's 256 KiB */
    char *text = message_text(len, 8);
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, text, len, 7000, &env);
    char want[64];

    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.msg->jseq, 0);
    snprintf(want, sizeof(want), "%s journal", r.msg->id);
    cr_assert_str_eq(listing(), want);
    spool_msg_free(r.msg);
    close_spool(s);
    free(text);
}

Test(spool, the_first_state_record_moves_a_journal_message_to_its_own_file)
{
    spool_envelope_t env = envelope(3);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, "Subject: x\r\n\r\nhi\r\n", 18, 18, &env);
    spool_msg_t *m = r.msg;
    scan_result_t sr;
    char want[64], *got;

    cr_assert_eq(r.status, 0);
    update_one(s, m, 0, SPOOL_RCPT_SENT, "250 2.0.0 queued as A1");
    snprintf(want, sizeof(want), "%s journal", m->id);
    cr_assert_str_eq(listing(), want, "the file, and no temporary one");
    cr_assert_eq(record_state(m), 'F', "the journal says where it went");
    /* The in-memory message still reads from the segment, which stays. */
    got = read_range(m->path, m->body_offset, m->body_length);
    cr_assert_str_eq(got, "Subject: x\r\n\r\nhi\r\n");
    free(got);
    /* Later records are appended to the file. */
    update_one(s, m, 1, SPOOL_RCPT_DEFERRED, "451 4.3.0 try later");
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1, "once, from its file");
    cr_assert_str_eq(sr.msgs[0]->id, m->id);
    cr_assert_eq(sr.msgs[0]->jseq, 0);
    cr_assert_eq(sr.msgs[0]->rcpts[0].state, SPOOL_RCPT_SENT);
    cr_assert_str_eq(sr.msgs[0]->rcpts[0].reply, "250 2.0.0 queued as A1");
    cr_assert_eq(sr.msgs[0]->rcpts[1].state, SPOOL_RCPT_DEFERRED);
    cr_assert_eq(sr.msgs[0]->rcpts[2].state, SPOOL_RCPT_PENDING);
    assert_envelope(sr.msgs[0], &env);
    got = read_range(sr.msgs[0]->path, sr.msgs[0]->body_offset, sr.msgs[0]->body_length);
    cr_assert_str_eq(got, "Subject: x\r\n\r\nhi\r\n");
    free(got);
    cr_assert_str_eq(segments(), "", "nothing queued in the segment: dropped at the scan");
    remove_one(s, sr.msgs[0]);
    cr_assert_str_eq(listing(), "journal");
    scan_free(&sr);
    spool_msg_free(m);
    close_spool(s);
}

Test(spool, a_moved_message_relocated_to_its_file_lets_its_full_segment_go)
{
    spool_envelope_t env = envelope(2);
    char *text = message_text(15000, 10);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, "moved\r\n", 7, 7, &env);
    spool_msg_t *m = r.msg;
    char want[400], *got;
    int n = 0;

    update_one(s, m, 0, SPOOL_RCPT_DEFERRED, "451 4.3.0 later");
    spool_msg_relocate(s, m); /* no delivery of it under way */
    snprintf(want, sizeof(want), "%s/%s", spool_dir(s), m->id);
    cr_assert_str_eq(m->path, want);
    cr_assert_eq(m->jseq, 0);
    got = read_range(m->path, m->body_offset, m->body_length);
    cr_assert_str_eq(got, "moved\r\n");
    free(got);
    spool_msg_relocate(s, m); /* again: nothing to do */
    cr_assert_str_eq(m->path, want);

    /* Fill the rest of the segment, each message removed at once, until
     * one goes to the next: when it is full nothing holds it, though m is
     * still queued. */
    for (bool next = false; !next;) {
        commit_result_t c = commit_text(s, text, 15000, 15000, &env);

        cr_assert_eq(c.status, 0);
        next = c.msg->jseq != 1;
        remove_one(s, c.msg);
        spool_msg_free(c.msg);
        cr_assert_lt(++n, 1000);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_str_eq(segments(), "0000000000000002");
    update_one(s, m, 1, SPOOL_RCPT_SENT, "250 ok");
    remove_one(s, m);
    snprintf(want, sizeof(want), "journal");
    cr_assert_str_eq(listing(), want);
    spool_msg_free(m);
    close_spool(s);
    free(text);
}

Test(spool, a_commit_queued_behind_a_failed_pass_goes_to_a_new_segment)
{
    spool_envelope_t env = envelope(1);
    commit_result_t a = {0}, b = {0};
    spool_writer_t *w;
    spool_t *s;

    hook.fsync_errno = EIO;
    hook.fsync_fail_dir = false;
    hook.fsync_fail_counted = true;
    atomic_store(&hook.fsync_fail_times, 1); /* the first segment sync */
    s = open_journal_spool(&hook_io);
    cr_assert_eq(spool_writer_open(s, &w), 0);
    spool_writer_write(w, "a\r\n", 3);
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &a), 0);
    /* b waits while a's pass runs. */
    cr_assert_eq(spool_writer_open(s, &w), 0);
    spool_writer_write(w, "b\r\n", 3);
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.status, -EIO);
    cr_assert_eq(b.status, 0, "%s", spool_strerror(b.status));
    cr_assert_eq(b.msg->jseq, 2, "not behind the record that may be torn");
    close_spool(s);

    restart_finds_only(b.msg->id);
    spool_msg_free(b.msg);
}

Test(spool, a_removed_journal_message_does_not_come_back)
{
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t a = commit_text(s, "a\r\n", 3, 3, &env);
    commit_result_t b = commit_text(s, "b\r\n", 3, 3, &env);
    scan_result_t sr;

    remove_one(s, a.msg);
    cr_assert_eq(record_state(a.msg), 'D');
    cr_assert_str_eq(held(), b.msg->id);
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, b.msg->id);
    remove_one(s, sr.msgs[0]);
    scan_free(&sr);
    close_spool(s);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 0);
    cr_assert_str_eq(segments(), "", "a segment with nothing queued goes at the scan");
    close_spool(s);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
}

Test(spool, a_journal_removal_rides_with_a_commit_and_shares_its_sync)
{
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(&hook_io);
    commit_result_t a = commit_text(s, "a\r\n", 3, 3, &env), b = {0}, c = {0};
    done_result_t removed = {0};
    spool_stats_t before, after;
    int syncs;

    spool_get_stats(s, &before);
    syncs = atomic_load(&hook.file_syncs);
    /* While b's pass runs, a's delivery ends and c comes in: one pass
     * for both, one fdatasync for a's mark and c's record. */
    commit_start(s, "b\r\n", &env, &b);
    cr_assert_eq(spool_remove(s, a.msg, on_done, &removed), 0);
    commit_start(s, "c\r\n", &env, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(removed.called, 1);
    cr_assert_eq(removed.status, 0);
    cr_assert_eq(b.status, 0);
    cr_assert_eq(c.status, 0);
    cr_assert_eq(record_state(a.msg), 'D');
    spool_get_stats(s, &after);
    cr_assert_eq(after.passes - before.passes, 2, "b's pass, then a's removal with c");
    cr_assert_eq(atomic_load(&hook.file_syncs) - syncs, 2, "a sync for each pass, none more");
    close_spool(s);

    scan_result_t sr;

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 2, "b and c, not a");
    cr_assert_str_eq(sr.msgs[0]->id, b.msg->id);
    cr_assert_str_eq(sr.msgs[1]->id, c.msg->id);
    scan_free(&sr);
    close_spool(s);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
    spool_msg_free(c.msg);
}

Test(spool, a_journal_removal_whose_sync_failed_says_so)
{
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(&hook_io);
    commit_result_t a = commit_text(s, "a\r\n", 3, 3, &env);
    done_result_t removed = {0};

    hook.fsync_errno = EIO;
    hook.fsync_fail_dir = false; /* the segment's fdatasync */
    cr_assert_eq(spool_remove(s, a.msg, on_done, &removed), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(removed.called, 1);
    cr_assert_eq(removed.status, -EIO, "%s", spool_strerror(removed.status));
    hook.fsync_errno = 0;
    close_spool(s);
    spool_msg_free(a.msg);
}

Test(spool, a_full_segment_with_nothing_queued_is_removed)
{
    spool_envelope_t env = envelope(1);
    char *text = message_text(15000, 9);
    spool_t *s = open_journal_spool(NULL);
    spool_msg_t *first = NULL;
    int n = 0;

    /* Fill the first segment (4 MiB) and start the second. */
    for (bool next = false; !next;) {
        commit_result_t r = commit_text(s, text, 15000, 15000, &env);

        cr_assert_eq(r.status, 0);
        next = r.msg->jseq != 1;
        if (first == NULL)
            first = r.msg;
        else if (!next)
            remove_one(s, r.msg), spool_msg_free(r.msg);
        else
            spool_msg_free(r.msg);
        cr_assert_lt(++n, 1000);
    }
    cr_assert_str_eq(segments(), "0000000000000001 0000000000000002",
                     "the first stays while a message in it is queued");
    remove_one(s, first);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_str_eq(segments(), "0000000000000002");
    spool_msg_free(first);
    close_spool(s);
    free(text);
}

Test(spool, a_failed_journal_sync_fails_the_commit_and_it_never_comes_back)
{
    spool_envelope_t env = envelope(1);
    spool_t *s;
    commit_result_t r, ok;

    hook.fsync_errno = EIO;
    hook.fsync_fail_dir = false; /* the segment's fdatasync */
    s = open_journal_spool(&hook_io);
    r = commit_text(s, "lost\r\n", 6, 6, &env);
    cr_assert_eq(r.status, -EIO, "%s", spool_strerror(r.status));
    cr_assert_null(r.msg);
    cr_assert_str_eq(held(), "", "the record says failed: nothing is queued");
    hook.fsync_errno = 0;
    ok = commit_text(s, "kept\r\n", 6, 6, &env);
    cr_assert_eq(ok.status, 0);
    cr_assert_str_eq(segments(), "0000000000000002",
                     "no more appends to a segment whose sync failed, and with "
                     "nothing queued in it, it went");
    close_spool(s);

    restart_finds_only(ok.msg->id);
    spool_msg_free(ok.msg);
}

Test(spool, a_full_disk_in_the_journal_fails_the_commit_with_enospc)
{
    spool_envelope_t env = envelope(1);
    spool_t *s;
    commit_result_t r;

    hook.fail_after = 100; /* the segment's magic fits, the record does not */
    hook.write_errno = ENOSPC;
    s = open_journal_spool(&hook_io);
    r = commit_text(s, "x\r\n", 3, 3, &env);
    cr_assert_eq(r.status, -ENOSPC, "%s", spool_strerror(r.status));
    cr_assert_str_eq(held(), "");
    close_spool(s);
}

Test(spool, concurrent_journal_commits_share_one_sync_and_each_waits_for_it)
{
    enum { N = 32 };
    spool_envelope_t env = envelope(1);
    commit_result_t r[N] = {{0}};
    spool_t *s = open_journal_spool(&hook_io);
    spool_stats_t st;

    for (int i = 0; i < N; i++) {
        spool_writer_t *w;

        cr_assert_eq(spool_writer_open(s, &w), 0);
        cr_assert_eq(spool_writer_write(w, "m\r\n", 3), 0);
        cr_assert_eq(spool_writer_commit(w, &env, on_commit, &r[i]), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r[i].status, 0);
        spool_msg_free(r[i].msg);
    }
    spool_get_stats(s, &st);
    cr_assert_eq(st.journalled, N);
    /* The first commit's pass, then one more for all that waited. */
    cr_assert_leq(st.passes, 2);
    cr_assert_leq(atomic_load(&hook.file_syncs), 2);
    close_spool(s);
}

Test(spool, a_move_whose_mark_failed_keeps_its_record_until_removed)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(&hook_io);
    commit_result_t a = commit_text(s, "a\r\n", 3, 3, &env);
    commit_result_t b = commit_text(s, "b\r\n", 3, 3, &env); /* keeps the segment */
    char seg_path[400];
    scan_result_t sr;

    hook.fail_marks = true;
    update_one(s, a.msg, 0, SPOOL_RCPT_SENT, "250 ok"); /* the file is durable: 0 */
    hook.fail_marks = false;
    cr_assert_eq(record_state(a.msg), 'M');
    snprintf(seg_path, sizeof(seg_path), "%s", a.msg->path);
    spool_msg_relocate(s, a.msg);
    cr_assert_str_eq(a.msg->path, seg_path, "kept on its record, which must be marked at removal");
    remove_one(s, a.msg);
    cr_assert_eq(record_state(a.msg), 'D');
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1, "the removed message does not come back");
    cr_assert_str_eq(sr.msgs[0]->id, b.msg->id);
    scan_free(&sr);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
    close_spool(s);
}

Test(spool, a_small_message_that_gets_no_segment_gets_a_file)
{
    spool_envelope_t env = envelope(1);
    spool_t *s;
    commit_result_t r;
    scan_result_t sr;
    char want[64];

    hook.fail_segments = true;
    s = open_journal_spool(&hook_io);
    r = commit_text(s, "small\r\n", 7, 7, &env);
    cr_assert_eq(r.status, 0, "%s", spool_strerror(r.status));
    cr_assert_eq(r.msg->jseq, 0);
    snprintf(want, sizeof(want), "%s journal", r.msg->id);
    cr_assert_str_eq(listing(), want, "its file, no segment, no temporary file");
    cr_assert_str_eq(segments(), "");
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, r.msg->id);
    assert_envelope(sr.msgs[0], &env);
    scan_free(&sr);
    spool_msg_free(r.msg);
    close_spool(s);
}

/* The size of journal segment seq, or -1. */
static long segment_size(unsigned seq)
{
    char path[400];
    struct stat st;

    snprintf(path, sizeof(path), "%s/journal/%016X", sdir, seq);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/*
 * Commit messages of text to the first segment until the second is made
 * ahead, each removed but the last, which is returned; *n: how many.
 */
static spool_msg_t *fill_until_made_ahead(spool_t *s, const char *text,
                                          const spool_envelope_t *env, int *n)
{
    commit_result_t r = {0};

    *n = 0;
    while (segment_size(2) < 0) {
        if (r.msg != NULL) {
            remove_one(s, r.msg);
            spool_msg_free(r.msg);
        }
        r = commit_text(s, text, strlen(text), strlen(text), env);
        cr_assert_eq(r.status, 0);
        cr_assert_eq(r.msg->jseq, 1);
        cr_assert_lt(++*n, 200);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    return r.msg;
}

Test(spool, the_next_segment_is_made_ahead_at_full_size_and_takes_records_in_place)
{
    spool_envelope_t env = envelope(1);
    char *text = message_text(15000, 11);
    spool_t *s = open_journal_spool(NULL);
    spool_msg_t *last = NULL;
    commit_result_t r;
    scan_result_t sr;
    int n;

    /* Half the first segment: the second is made, 4 MiB from the start. */
    last = fill_until_made_ahead(s, text, &env, &n);
    cr_assert_eq(segment_size(2), 4L * 1024 * 1024);
    cr_assert_gt(n, 100, "not before the first is half full");
    cr_assert_str_eq(held(), last->id, "zeros are no records to a reader");

    /* Its records go in place: its size never changes. */
    while (last == NULL || last->jseq == 1) {
        if (last != NULL) {
            remove_one(s, last);
            spool_msg_free(last);
        }
        r = commit_text(s, text, 15000, 15000, &env);
        cr_assert_eq(r.status, 0);
        last = r.msg;
        cr_assert_lt(++n, 1000);
    }
    cr_assert_eq(last->jseq, 2);
    cr_assert_eq(segment_size(2), 4L * 1024 * 1024);
    r = commit_text(s, "after\r\n", 7, 7, &env);
    cr_assert_eq(r.msg->jseq, 2);
    cr_assert_eq(segment_size(2), 4L * 1024 * 1024);
    close_spool(s);

    /* The scan reads its records and stops at the zeros, without a word;
     * the first segment, with nothing queued, goes. */
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 2);
    cr_assert_str_eq(sr.msgs[0]->id, last->id);
    cr_assert_str_eq(sr.msgs[1]->id, r.msg->id);
    cr_assert_eq(sr.nproblems, 0, "%s", sr.problems[0]);
    scan_free(&sr);
    close_spool(s);
    cr_assert_eq(segment_size(1), -1);
    spool_msg_free(last);
    spool_msg_free(r.msg);
    free(text);
}

Test(spool, a_segment_made_ahead_and_never_used_goes_at_the_next_start)
{
    spool_envelope_t env = envelope(1);
    char *text = message_text(15000, 12);
    spool_t *s = open_journal_spool(NULL);
    scan_result_t sr;
    int n;
    spool_msg_t *kept = fill_until_made_ahead(s, text, &env, &n);

    close_spool(s);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1, "the first segment's message still queued");
    cr_assert_str_eq(sr.msgs[0]->id, kept->id);
    cr_assert_eq(sr.nproblems, 0, "%s", sr.problems[0]);
    scan_free(&sr);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(segment_size(2), -1, "empty: removed");
    close_spool(s);
    spool_msg_free(kept);
    free(text);
}

Test(spool, a_segment_that_cannot_be_made_ahead_leaves_nothing_and_records_go_on)
{
    spool_envelope_t env = envelope(1);
    char *text = message_text(15000, 13);
    spool_t *s = open_journal_spool(&hook_io);
    commit_result_t r;
    int n = 0;

    /* The first segment is made; then no more magic can be written. */
    r = commit_text(s, text, 15000, 15000, &env);
    cr_assert_eq(r.msg->jseq, 1);
    spool_msg_free(r.msg);
    hook.fail_segments = true;
    for (bool next = false; !next;) {
        r = commit_text(s, text, 15000, 15000, &env);
        cr_assert_eq(r.status, 0, "%s", spool_strerror(r.status));
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(segment_size(2), -1, "a failed making leaves no file");
        next = r.msg->jseq != 1;
        spool_msg_free(r.msg);
        cr_assert_lt(++n, 1000);
    }
    /* The first is full and no segment can be made: a file of its own.
     * Making one ahead was tried once for the first segment, not at every
     * pass after it was half full; then the fallback, for the last. */
    cr_assert_eq(segment_size(3), -1);
    cr_assert_eq(atomic_load(&hook.segment_tries), 1 + 1 + 1, "the first's, one ahead, the fallback");
    hook.fail_segments = false;
    r = commit_text(s, "again\r\n", 7, 7, &env);
    cr_assert_eq(r.status, 0);
    cr_assert_neq(r.msg->jseq, 0, "a segment made as before, once it can be");
    spool_msg_free(r.msg);
    close_spool(s);
    free(text);
}

Test(spool, a_segment_made_ahead_whose_bytes_never_reached_the_disk_goes_quietly)
{
    size_t size = 4 * 1024 * 1024;
    char *zeros = calloc(1, size);
    scan_result_t sr;
    spool_t *s;

    /* Its size made durable before its magic and zeros (a crash while it
     * was made, on a file system that writes the size first). */
    close_spool(open_journal_spool(NULL));
    put_file("journal/0000000000000007", zeros, size);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 0);
    cr_assert_eq(sr.nproblems, 0, "%s", sr.problems[0]);
    scan_free(&sr);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(segment_size(7), -1, "nothing queued in it: removed");
    close_spool(s);
    free(zeros);
}
