/*
 * Unit tests for the spool's queue ids (docs/spool.md, "Queue ids"): the
 * rollover past the highest id, which skips every id in use; what steers
 * the starting point at a restart and what does not; and commits that
 * never replace an entry of their name.
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

static int64_t ids_now;

static void ids_expect_next(spool_t *s, const char *want, const char *why)
{
    spool_writer_t *w;

    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_str_eq(spool_writer_id(w), want, "%s", why);
    spool_writer_abort(w);
}

Test(spool, past_the_highest_id_allocation_starts_again_at_the_lowest_id_not_in_use)
{
    spool_envelope_t env = envelope(1);
    char *big = message_text(300000, 1);
    spool_t *s = open_clock_spool(&ids_now, false, NULL);
    scan_result_t sr = {0};
    commit_result_t a, b, top, d;
    spool_writer_t *w;

    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    ids_now = 1;
    a = commit_text(s, "a\r\n", 3, 3, &env); /* in the journal */
    ids_now = 2;
    b = commit_text(s, big, 300000, 65536, &env); /* a file */
    ids_now = (int64_t)SPOOL_ID_MAX;
    top = commit_text(s, "t\r\n", 3, 3, &env);
    cr_assert_str_eq(a.msg->id, "0000000000001");
    cr_assert_str_eq(b.msg->id, "0000000000002");
    cr_assert_str_eq(top.msg->id, "FFFFFFFFFFFFF");
    /* The clock stays at the top: the next id would pass it. */
    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_str_eq(spool_writer_id(w), "0000000000003", "the lowest id not in use");
    ids_expect_next(s, "0000000000004", "an open writer's id is in use");
    spool_writer_write(w, "d\r\n", 3);
    d = (commit_result_t){0};
    cr_assert_eq(spool_writer_commit(w, &env, on_commit, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.status, 0);
    close_spool(s);

    /* A restart knows what is in use from the scan alone. */
    s = open_clock_spool(&ids_now, false, NULL);
    memset(&sr, 0, sizeof(sr));
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    cr_assert_eq(sr.nmsgs, 4);
    ids_expect_next(s, "0000000000004", "1, 2 and 3 are queued");
    /* A removed journal message's record is still on disk, and a file of
     * its id would be taken for a stale copy of it: its id stays taken
     * while the record is there.  A removed file's id is free again. */
    remove_one(s, sr.msgs[0]);
    ids_expect_next(s, "0000000000004", "1 has its removed record in the journal");
    remove_one(s, sr.msgs[1]);
    ids_expect_next(s, "0000000000002", "2 is free again");
    scan_free(&sr);
    close_spool(s);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
    spool_msg_free(top.msg);
    spool_msg_free(d.msg);
    free(big);
}

Test(spool, a_corrupt_file_or_one_about_to_go_does_not_steer_new_ids)
{
    static const char partial[] = "MXFSPL01B\0\0\0\0\0\0\0\x10partial";
    spool_t *s;
    scan_result_t sr = {0};

    ids_now = 0x18C3F2A9B47D1;
    s = open_clock_spool(&ids_now, true, NULL); /* makes the directory */
    close_spool(s);
    put_file("FFFFFFFFFFFFF.corrupt", "kept for the admin\n", 19);
    put_file("FFFFFFFFFFFFE", "not a spool file\n", 17);
    put_file("FFFFFFFFFFFFD", partial, sizeof(partial) - 1);
    put_file("FFFFFFFFFFFFC.tmp", partial, sizeof(partial) - 1);

    s = open_clock_spool(&ids_now, true, NULL);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    cr_assert_eq(sr.nmsgs, 0);
    cr_assert_str_eq(listing(), "FFFFFFFFFFFFE.corrupt FFFFFFFFFFFFF.corrupt");
    ids_expect_next(s, "18C3F2A9B47D1", "the clock's, nothing live is above it");
    close_spool(s);
}

/* A started spool whose clock reads 18C3F2A9B47D1, empty. */
static spool_t *ids_open_at_d1(bool files_only, const spool_io_t *io)
{
    spool_t *s;
    scan_result_t sr = {0};

    ids_now = 0x18C3F2A9B47D1;
    s = open_clock_spool(&ids_now, files_only, io);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    return s;
}

/* The file put at name behind the spool's back is as it was. */
static void ids_untouched(const char *name)
{
    char path[400], *kept;

    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    kept = read_range(path, 0, 9);
    cr_assert_str_eq(kept, "precious\n", "the file there is untouched");
    free(kept);
}

/* A file named like the next id, put there behind the spool's back. */
static void ids_clash(const spool_io_t *io)
{
    spool_envelope_t env = envelope(1);
    char *big = message_text(300000, 2);
    spool_t *s = ids_open_at_d1(true, io);
    commit_result_t r;

    put_file("18C3F2A9B47D1", "precious\n", 9);
    r = commit_text(s, big, 300000, 65536, &env);
    cr_assert_eq(r.status, SPOOL_EEXIST, "the commit fails before any 250: %s",
                 spool_strerror(r.status));
    ids_untouched("18C3F2A9B47D1");
    cr_assert_str_eq(listing(), "18C3F2A9B47D1", "nothing else is left");
    /* The next commit takes the next id. */
    r = commit_text(s, big, 300000, 65536, &env);
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.msg->id, "18C3F2A9B47D2");
    spool_msg_free(r.msg);
    close_spool(s);
    free(big);
}

Test(spool, a_commit_never_replaces_a_file_of_its_name)
{
    ids_clash(NULL);
}

Test(spool, a_commit_never_replaces_a_file_of_its_name_where_renameat2_is_refused)
{
    hook.rename_einval = true;
    ids_clash(&hook_io);
}

Test(spool, a_journal_message_moving_to_its_file_never_replaces_one_of_its_name)
{
    spool_envelope_t env = envelope(1);
    spool_update_t u = {.index = 0, .state = SPOOL_RCPT_DEFERRED, .attempts = 1,
                        .reply = "451 later"};
    done_result_t d = {0};
    spool_t *s = ids_open_at_d1(false, NULL);
    commit_result_t r;

    r = commit_text(s, "x\r\n", 3, 3, &env);
    cr_assert_eq(r.status, 0);
    cr_assert_neq(r.msg->jseq, 0);
    put_file(r.msg->id, "precious\n", 9);
    cr_assert_eq(spool_update(s, r.msg, &u, 1, on_done, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.status, SPOOL_EEXIST, "%s", spool_strerror(d.status));
    ids_untouched(r.msg->id);
    cr_assert_eq(record_state(r.msg), 'M', "the message stays in the journal");
    spool_msg_free(r.msg);
    close_spool(s);
}
