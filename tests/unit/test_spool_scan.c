/*
 * Unit tests for the spool's start-up scan: partial and corrupt files
 * left by a crash or the disk, a child killed with SIGKILL while it
 * commits (files or journal records), and journal segments that are torn,
 * damaged or disagree with a file of the same id.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "spool.h"
#include "spool_fixture.h"
#include "str.h"
#include "xalloc.h"

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Recovery ---- */

Test(spool, restart_removes_partial_files_and_quarantines_corrupt_ones)
{
    spool_envelope_t env = envelope(2);
    char *text = message_text(5000, 2);
    spool_t *s = open_spool();
    commit_result_t a = commit_text(s, text, 5000, 5000, &env);
    commit_result_t b = commit_text(s, text, 5000, 64, &env);
    static const char junk[] = "MXFSPL01B\0\0\0\0\0\0\0\x10partial";
    char want[512], corrupt[64], tmpname[64];
    scan_result_t sr;
    struct stat st;

    cr_assert_eq(a.status, 0);
    cr_assert_eq(b.status, 0);
    close_spool(s);
    /* b loses its END record (the last 9 bytes): a file without END. */
    cr_assert_eq(stat(b.msg->path, &st), 0);
    cr_assert_eq(truncate(b.msg->path, st.st_size - 9), 0);
    /* A temporary file left by a crash mid-write. */
    snprintf(tmpname, sizeof(tmpname), "%s.tmp", "0000000000001");
    put_file(tmpname, junk, sizeof(junk) - 1);
    /* A message file that is not ours to understand. */
    put_file("0000000000002", "this is not a spool file at all, whatever it is\n", 48);
    /* Something else an admin put there. */
    put_file("README", "keep\n", 5);

    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, a.msg->id);
    cr_assert_eq(find_problem(&sr, b.msg->id), SPOOL_EPARTIAL);
    cr_assert_eq(find_problem(&sr, tmpname), SPOOL_EPARTIAL);
    cr_assert_eq(find_problem(&sr, "0000000000002"), SPOOL_ECORRUPT);
    cr_assert_eq(sr.nproblems, 3);
    snprintf(corrupt, sizeof(corrupt), "0000000000002.corrupt");
    snprintf(want, sizeof(want), "%s %s README", corrupt, a.msg->id);
    cr_assert_str_eq(listing(), want);
    scan_free(&sr);
    close_spool(s);

    /* A second restart finds nothing more to do. */
    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_eq(sr.nproblems, 0);
    scan_free(&sr);
    close_spool(s);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
    free(text);
}

static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t r;

        if (poll(&pfd, 1, timeout_ms) != 1)
            return -1;
        r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Fork a child running fn(fd, arg), fd the write end of a pipe whose read
 * end goes to *rfd. */
static pid_t spawn(void (*fn)(int fd, int arg), int arg, int *rfd)
{
    int p[2];
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        fn(p[1], arg); /* exits */
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static void kill_child(pid_t pid)
{
    int status;

    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child ended by itself: status %d", status);
}

/* In a child: commit one message, report its id, then stream a second one
 * forever (reporting once it is well under way) until killed. */
static void child_commit_then_stream(int fd, int arg)
{
    uv_loop_t cl;
    spool_options_t opt;
    spool_t *s = NULL;
    spool_writer_t *w;
    spool_envelope_t env = envelope(3);
    commit_result_t r = {0};
    char *text = message_text(20000, 3);
    char note[SPOOL_ID_SIZE + 1];

    (void)arg;
    if (uv_loop_init(&cl) != 0)
        _exit(2);
    opt = (spool_options_t){.exec = spool_uv_executor(&cl), .files_only = true};
    if (spool_open(sdir, &opt, &s) != 0 || spool_writer_open(s, &w) != 0)
        _exit(3);
    spool_writer_write(w, text, 20000);
    if (spool_writer_commit(w, &env, on_commit, &r) != 0)
        _exit(4);
    uv_run(&cl, UV_RUN_DEFAULT);
    if (r.status != 0 || write(fd, r.msg->id, SPOOL_ID_LEN) != SPOOL_ID_LEN)
        _exit(5);
    if (spool_writer_open(s, &w) != 0)
        _exit(6);
    for (int i = 0; i < 10000; i++) {
        if (spool_writer_write(w, text, 4096) != 0)
            _exit(7);
        if (i == 64) {
            snprintf(note, sizeof(note), "%s", spool_writer_id(w));
            if (write(fd, note, SPOOL_ID_LEN) != SPOOL_ID_LEN)
                _exit(8);
        }
        usleep(1000);
    }
    _exit(9);
}

Test(spool, sigkill_mid_write_keeps_the_committed_message_and_drops_the_partial_one)
{
    char *text = message_text(20000, 3);
    char ida[SPOOL_ID_SIZE] = "", idb[SPOOL_ID_SIZE] = "", tmpname[64], *back;
    scan_result_t sr;
    int rfd;
    pid_t pid = spawn(child_commit_then_stream, 0, &rfd);
    spool_t *s;

    cr_assert_eq(read_full(rfd, ida, SPOOL_ID_LEN, 10000), 0, "child committed");
    cr_assert_eq(read_full(rfd, idb, SPOOL_ID_LEN, 10000), 0, "child is writing");
    kill_child(pid);
    close(rfd);

    snprintf(tmpname, sizeof(tmpname), "%s.tmp", idb);
    s = restart(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, ida);
    spool_envelope_t env = envelope(3);
    assert_envelope(sr.msgs[0], &env);
    back = read_range(sr.msgs[0]->path, sr.msgs[0]->body_offset, sr.msgs[0]->body_length);
    cr_assert_eq(sr.msgs[0]->body_length, 20000);
    cr_assert(memcmp(back, text, 20000) == 0);
    free(back);
    cr_assert_eq(find_problem(&sr, tmpname), SPOOL_EPARTIAL);
    cr_assert_str_eq(listing(), ida);
    scan_free(&sr);
    close_spool(s);
    free(text);
}

/* ---- A crash at any moment of a stream of commits ---- */

typedef struct {
    spool_t *s;
    int fd;
    int next_seed;
} streamer_t;

static void stream_one(streamer_t *st);

static void stream_committed(void *arg, int status, spool_msg_t *msg)
{
    streamer_t *st = arg;

    if (status != 0 || write(st->fd, msg->id, SPOOL_ID_LEN) != SPOOL_ID_LEN)
        _exit(10);
    spool_msg_free(msg);
    stream_one(st);
}

/* Message number `seed`: its size and bytes follow from the number, which
 * the HELO records, so a reader can check any message it finds. */
static size_t seed_size(int seed)
{
    /* One in eight over the journal's 256 KiB: a file; one in eight
     * between 16 and 256 KiB: the journal, in a writer's grown buffer. */
    if (seed % 8 == 7)
        return 262144 + (size_t)(seed * 7919) % 60000;
    if (seed % 8 == 3)
        return 16384 + (size_t)(seed * 7919) % 240000;
    return 100 + (size_t)(seed * 7919) % 30000;
}

static void stream_one(streamer_t *st)
{
    int seed = st->next_seed++;
    size_t len = seed_size(seed);
    char *text = message_text(len, (unsigned)seed);
    char helo[32];
    spool_envelope_t env = envelope(2);
    spool_writer_t *w;

    snprintf(helo, sizeof(helo), "seed-%d", seed);
    env.helo = helo;
    if (spool_writer_open(st->s, &w) != 0)
        _exit(11);
    for (size_t off = 0; off < len; off += 3000)
        spool_writer_write(w, text + off, len - off < 3000 ? len - off : 3000);
    if (spool_writer_commit(w, &env, stream_committed, st) != 0)
        _exit(12);
    free(text);
}

/* Whether the streaming child (and the scan after) use files only. */
static bool stream_files_only = true;

static void child_stream(int fd, int first_seed)
{
    uv_loop_t cl;
    spool_options_t opt;
    streamer_t st = {.fd = fd, .next_seed = first_seed};

    if (uv_loop_init(&cl) != 0)
        _exit(2);
    opt = (spool_options_t){.exec = spool_uv_executor(&cl), .files_only = stream_files_only};
    if (spool_open(sdir, &opt, &st.s) != 0)
        _exit(3);
    for (int i = 0; i < 8; i++)
        stream_one(&st);
    uv_run(&cl, UV_RUN_DEFAULT);
    _exit(13);
}


/*
 * Messages of 100 to 30,100 bytes: with the journal, those under the
 * writer's buffer go to segments and the rest to files, side by side.
 */
static void stream_and_kill(void)
{
    static char acked[4096][SPOOL_ID_SIZE];
    int nacked = 0, in_journal = 0, in_files = 0;

    for (int round = 0; round < 3; round++) {
        uint64_t wait_ms = 60 + (uint64_t)round * 70, start = uv_hrtime();
        scan_result_t sr;
        int rfd;
        pid_t pid = spawn(child_stream, round * 100000, &rfd);
        spool_t *s;

        /* Collect acknowledgements for a while, then kill mid-stream. */
        while ((uv_hrtime() - start) / 1000000 < wait_ms && nacked < 4096) {
            if (read_full(rfd, acked[nacked], SPOOL_ID_LEN, 1000) == 0)
                acked[nacked++][SPOOL_ID_LEN] = '\0';
        }
        kill_child(pid);
        /* Acknowledgements already in the pipe count too. */
        while (nacked < 4096 && read_full(rfd, acked[nacked], SPOOL_ID_LEN, 0) == 0)
            acked[nacked++][SPOOL_ID_LEN] = '\0';
        close(rfd);

        s = stream_files_only ? open_spool() : open_journal_spool(NULL);
        memset(&sr, 0, sizeof(sr));
        cr_assert_eq(spool_scan(s, &collect_ops, &sr), 0);
        for (int i = 0; i < sr.nproblems; i++)
            cr_assert(strstr(sr.problems[i], ".tmp") != NULL,
                      "only temporary files may be partial, not %s", sr.problems[i]);
        for (int i = 0; i < collected_n; i++) {
            spool_msg_t *m = collected[i];
            int seed = atoi(m->helo + 5);
            size_t len = seed_size(seed);
            char *want = message_text(len, (unsigned)seed);
            char *back = read_range(m->path, m->body_offset, m->body_length);

            cr_assert_eq(m->body_length, len, "message %s whole", m->id);
            cr_assert(memcmp(back, want, len) == 0, "message %s byte-exact", m->id);
            free(back);
            free(want);
        }
        for (int i = 0; i < nacked; i++) {
            int found = 0;

            for (int j = 0; j < collected_n && !found; j++)
                found = strcmp(collected[j]->id, acked[i]) == 0;
            cr_assert(found, "acknowledged message %s survived", acked[i]);
        }
        cr_assert_geq(collected_n, nacked);
        for (int i = 0; i < collected_n; i++) {
            in_journal += collected[i]->jseq != 0;
            in_files += collected[i]->jseq == 0;
            spool_msg_free(collected[i]);
        }
        collected_n = 0;
        close_spool(s);
    }
    cr_assert_gt(nacked, 0, "the children committed something");
    cr_assert_gt(in_files, 0, "files were read back");
    if (stream_files_only)
        cr_assert_eq(in_journal, 0);
    else
        cr_assert_gt(in_journal, 0, "journal records were read back");
}

Test(spool, sigkill_during_a_stream_of_commits_loses_no_acknowledged_message)
{
    stream_and_kill();
}

Test(spool, sigkill_during_a_stream_of_journal_commits_loses_no_acknowledged_message)
{
    stream_files_only = false;
    stream_and_kill();
}

/* ---- The commit journal at start-up ---- */

Test(spool, a_crash_after_the_move_before_the_journal_says_so_keeps_the_file)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
    commit_result_t other = commit_text(s, "y\r\n", 3, 3, &env); /* keeps the segment */
    spool_msg_t *m = r.msg;
    scan_result_t sr;
    int fd;

    update_one(s, m, 0, SPOOL_RCPT_SENT, "250 ok");
    /* Put the record back to M, as if the crash came before the mark. */
    fd = open(m->path, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, "M", 1, (off_t)m->joff), 1);
    close(fd);
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 2, "the file wins, the journal copy is not handed over too");
    cr_assert_str_eq(sr.msgs[0]->id, m->id);
    cr_assert_eq(sr.msgs[0]->jseq, 0);
    cr_assert_eq(sr.msgs[0]->rcpts[0].state, SPOOL_RCPT_SENT);
    cr_assert_eq(sr.msgs[1]->jseq, 1);
    cr_assert_eq(record_state(m), 'F', "the scan wrote what the crash did not");
    /* Removed as the file it is now: the record does not bring it back. */
    remove_one(s, sr.msgs[0]);
    scan_free(&sr);
    close_spool(s);
    restart_finds_only(other.msg->id);
    spool_msg_free(m);
    spool_msg_free(other.msg);
}

Test(spool, a_file_left_of_a_removed_journal_message_is_stale)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
    spool_msg_t *m = r.msg;
    char path[400], keep[400], *copy;
    scan_result_t sr;
    struct stat st;
    int fd;

    update_one(s, m, 0, SPOOL_RCPT_SENT, "250 ok");
    snprintf(path, sizeof(path), "%s/%s", sdir, m->id);
    cr_assert_eq(stat(path, &st), 0);
    copy = read_range(path, 0, (uint64_t)st.st_size);
    remove_one(s, m);
    cr_assert_eq(record_state(m), 'D');
    /* The file back, as if its unlink had not reached the disk. */
    snprintf(keep, sizeof(keep), "%s", path);
    fd = open(keep, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, copy, (size_t)st.st_size), st.st_size);
    close(fd);
    close_spool(s);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 0, "removed stays removed");
    cr_assert_neq(stat(path, &st), 0, "the stale file is gone");
    close_spool(s);
    free(copy);
    spool_msg_free(m);
}

Test(spool, a_torn_record_at_the_end_of_the_journal_is_not_a_message)
{
    spool_envelope_t env = envelope(1);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t r = commit_text(s, "whole\r\n", 7, 7, &env);
    char seg[600];
    struct stat st;
    scan_result_t sr;
    unsigned char torn[64];
    int fd;

    cr_assert_eq(r.status, 0);
    close_spool(s);
    /* A second record cut short by a crash mid-append: its header claims
     * more bytes than follow, and then one whose CRC does not match. */
    snprintf(seg, sizeof(seg), "%s/journal/0000000000000001", sdir);
    cr_assert_eq(stat(seg, &st), 0);
    memset(torn, 0, sizeof(torn));
    torn[0] = 'M';
    torn[8] = 200;
    fd = open(seg, O_WRONLY | O_APPEND);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, torn, sizeof(torn)), (ssize_t)sizeof(torn));
    close(fd);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, r.msg->id);
    cr_assert_eq(sr.nproblems, 0);
    scan_free(&sr);
    close_spool(s);

    fd = open(seg, O_WRONLY);
    torn[8] = 10; /* fits, but the CRC is zero */
    cr_assert_eq(pwrite(fd, torn, sizeof(torn), st.st_size), (ssize_t)sizeof(torn));
    close(fd);
    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 1);
    scan_free(&sr);
    spool_msg_free(r.msg);
    close_spool(s);
}

Test(spool, ids_in_removed_journal_records_stay_taken_after_a_clock_step_back)
{
    int64_t now = 0x18C3F2A9B47D1;
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .clock_us = fixed_clock,
                           .clock_arg = &now};
    spool_envelope_t env = envelope(1);
    spool_t *s = NULL;
    commit_result_t kept, gone;
    scan_result_t sr = {0};
    spool_writer_t *w;
    char gone_id[SPOOL_ID_SIZE];

    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    kept = commit_text(s, "k\r\n", 3, 3, &env);
    gone = commit_text(s, "g\r\n", 3, 3, &env);
    str_lcpy(gone_id, gone.msg->id, sizeof(gone_id));
    cr_assert_gt(strcmp(gone_id, kept.msg->id), 0);
    remove_one(s, gone.msg);
    close_spool(s);

    now -= 1000000; /* the clock steps back a second */
    cr_assert_eq(spool_open(sdir, &opt, &s), 0);
    memset(&sr, 0, sizeof(sr));
    cr_assert_eq(spool_scan(s, &scan_ops, &sr), 0);
    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_gt(strcmp(spool_writer_id(w), gone_id), 0, "%s after %s", spool_writer_id(w),
                 gone_id);
    spool_writer_abort(w);
    scan_free(&sr);
    spool_msg_free(kept.msg);
    spool_msg_free(gone.msg);
    close_spool(s);
}

Test(spool, a_moved_file_that_is_not_whole_gives_way_to_its_journal_record)
{
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    commit_result_t a = commit_text(s, "a\r\n", 3, 3, &env);
    commit_result_t b = commit_text(s, "b\r\n", 3, 3, &env);
    char path[400], *got;
    scan_result_t sr;
    int fd;

    update_one(s, a.msg, 0, SPOOL_RCPT_SENT, "250 ok");
    close_spool(s);
    /* The record back to M and the file cut short: only disk corruption
     * does this (a move syncs its file before naming it). */
    fd = open(a.msg->path, O_WRONLY);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, "M", 1, (off_t)a.msg->joff), 1);
    close(fd);
    snprintf(path, sizeof(path), "%s/%s", sdir, a.msg->id);
    cr_assert_eq(truncate(path, 20), 0);

    s = restart_journal(&sr);
    cr_assert_eq(sr.nmsgs, 2, "the journal's copy stands in for the broken file");
    cr_assert_str_eq(sr.msgs[0]->id, a.msg->id);
    cr_assert_eq(sr.msgs[0]->jseq, 1);
    cr_assert_eq(sr.msgs[0]->rcpts[0].state, SPOOL_RCPT_PENDING);
    got = read_range(sr.msgs[0]->path, sr.msgs[0]->body_offset, sr.msgs[0]->body_length);
    cr_assert_str_eq(got, "a\r\n");
    free(got);
    cr_assert_eq(find_problem(&sr, a.msg->id), SPOOL_EPARTIAL);
    cr_assert_eq(record_state(a.msg), 'M');
    scan_free(&sr);
    spool_msg_free(a.msg);
    spool_msg_free(b.msg);
    close_spool(s);
}

/* Scan a segment damaged at random places, 300 times: no crash (the
 * sanitizer build runs this too), and whatever is handed over is one of
 * the messages written, byte for byte. */
Test(spool, a_damaged_segment_never_yields_a_damaged_message)
{
    enum { N = 5 };
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    char ids[N][SPOOL_ID_SIZE], *texts[N], seg[600];
    unsigned char *orig;
    struct stat st;
    unsigned seed = 12345;

    for (int i = 0; i < N; i++) {
        commit_result_t r;

        texts[i] = message_text(200 + 300 * (size_t)i, (unsigned)i);
        r = commit_text(s, texts[i], strlen(texts[i]), 64, &env);
        cr_assert_eq(r.status, 0);
        str_lcpy(ids[i], r.msg->id, sizeof(ids[i]));
        spool_msg_free(r.msg);
    }
    close_spool(s);
    snprintf(seg, sizeof(seg), "%s/journal/0000000000000001", sdir);
    cr_assert_eq(stat(seg, &st), 0);
    orig = (unsigned char *)read_range(seg, 0, (uint64_t)st.st_size);

    for (int round = 0; round < 300; round++) {
        unsigned char *copy = xmemdup(orig, (size_t)st.st_size);
        scan_result_t sr;
        int fd, flips = 1 + (int)(rand_r(&seed) % 4);

        for (int k = 0; k < flips; k++)
            copy[rand_r(&seed) % (unsigned)st.st_size] ^= (unsigned char)(1 + rand_r(&seed) % 255);
        fd = open(seg, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, copy, (size_t)st.st_size), st.st_size);
        close(fd);
        free(copy);

        s = restart_journal(&sr);
        cr_assert_leq(sr.nmsgs, N);
        for (int m = 0; m < sr.nmsgs; m++) {
            int i = 0;
            char *got;

            while (i < N && strcmp(ids[i], sr.msgs[m]->id) != 0)
                i++;
            cr_assert_lt(i, N, "round %d: an id that was never written: %s", round,
                         sr.msgs[m]->id);
            assert_envelope(sr.msgs[m], &env);
            got = read_range(sr.msgs[m]->path, sr.msgs[m]->body_offset,
                             sr.msgs[m]->body_length);
            cr_assert_str_eq(got, texts[i], "round %d: message %s byte-exact", round, ids[i]);
            free(got);
        }
        scan_free(&sr);
        close_spool(s);
    }
    for (int i = 0; i < N; i++)
        free(texts[i]);
    free(orig);
}

/*
 * A queue big enough for the scan to read its files ahead on several
 * threads (docs/spool.md, Start-up) is read back exactly as one read file
 * by file: every message in id order with its state, and each odd entry
 * among them dealt with as the table says.
 */
Test(spool, a_big_queue_read_ahead_is_read_back_whole_and_in_order)
{
    enum { N = 300 };
    spool_envelope_t env = envelope(2);
    spool_t *s = open_journal_spool(NULL);
    spool_msg_t *m[N];
    char path[400], stale[400], *copy, dirname[64], linkname[64];
    scan_result_t sr;
    struct stat st;
    int fd, stale_i = 17;

    for (int i = 0; i < N; i++) {
        commit_result_t r = commit_text(s, "x\r\n", 3, 3, &env);
        cr_assert_eq(r.status, 0);
        m[i] = r.msg;
        /* One recipient delivered, one left: the message gets its file. */
        update_one(s, m[i], 0, SPOOL_RCPT_SENT, "250 ok");
        if (i != stale_i)
            spool_msg_relocate(s, m[i]);
    }
    /* A removed message whose unlink did not reach the disk: stale (its
     * journal record, marked D, says so). */
    snprintf(stale, sizeof(stale), "%s/%s", sdir, m[stale_i]->id);
    cr_assert_eq(stat(stale, &st), 0);
    copy = read_range(stale, 0, (uint64_t)st.st_size);
    remove_one(s, m[stale_i]);
    close_spool(s);
    fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, copy, (size_t)st.st_size), st.st_size);
    close(fd);
    /* Among the files: one that is not a message, one cut short, a
     * directory and a symlink named like messages. */
    put_file("0000000000005", "not a spool file at all\n", 24);
    snprintf(path, sizeof(path), "%s/%s", sdir, m[100]->id);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size - 20), 0, "a torn update record at its end");
    snprintf(dirname, sizeof(dirname), "0000000000003");
    snprintf(path, sizeof(path), "%s/%s", sdir, dirname);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(linkname, sizeof(linkname), "00000000000A7");
    snprintf(path, sizeof(path), "%s/%s", sdir, linkname);
    cr_assert_eq(symlink("/etc/passwd", path), 0);

    memset(&sr, 0, sizeof(sr));
    collected_n = 0;
    s = open_journal_spool(NULL);
    cr_assert_eq(spool_scan(s, &collect_ops, &sr), 0);
    cr_assert_eq(collected_n, N - 1, "every message but the removed one");
    for (int i = 0, k = 0; i < N; i++) {
        if (i == stale_i)
            continue;
        cr_assert_str_eq(collected[k]->id, m[i]->id, "in id order");
        cr_assert_eq(collected[k]->nrcpts, 2);
        cr_assert_eq(collected[k]->rcpts[0].state, i == 100 ? SPOOL_RCPT_PENDING : SPOOL_RCPT_SENT,
                     "message %d", i);
        cr_assert_eq(collected[k]->rcpts[1].state, SPOOL_RCPT_PENDING);
        spool_msg_free(collected[k++]);
    }
    cr_assert_neq(stat(stale, &st), 0, "the stale file is gone, unread");
    cr_assert_eq(find_problem(&sr, "0000000000005"), SPOOL_ECORRUPT);
    cr_assert_eq(find_problem(&sr, dirname), SPOOL_ENOTFILE);
    cr_assert_eq(find_problem(&sr, linkname), SPOOL_ENOTFILE);
    cr_assert_eq(sr.nproblems, 3);
    close_spool(s);
    for (int i = 0; i < N; i++)
        spool_msg_free(m[i]);
    free(copy);
}
