/*
 * Unit tests for spool/: what is on disk after commits, aborts, failures
 * and crashes, and what a restart reads back.  The spool runs on a real
 * libuv loop and thread pool; failures are real (a file size limit) or
 * injected through the spool's system-call hook.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "spool.h"
#include "spool_uv.h"
#include "str.h"
#include "testdir.h"
#include "xalloc.h"

/* ---- Fixture: a temporary spool directory and a loop ---- */

static char root[256];   /* removed after each test */
static char sdir[300];   /* the spool directory, root/var/spool: created by the spool */
static uv_loop_t loop;

static void setup(void)
{
    cr_assert_eq(test_dir_make("mxfwd-spool", root, sizeof(root)), 0);
    snprintf(sdir, sizeof(sdir), "%s/var/spool", root);
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    cr_expect_eq(uv_loop_close(&loop), 0);
    test_dir_remove(root);
}

TestSuite(spool, .init = setup, .fini = teardown, .timeout = 30);

static spool_t *open_spool_io(const spool_io_t *io)
{
    /* These tests are of the file protocol; the journal's are below. */
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = io, .files_only = true};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

static spool_t *open_journal_spool(const spool_io_t *io);

static spool_t *open_spool(void)
{
    return open_spool_io(NULL);
}

static void close_spool(spool_t *s)
{
    cr_assert_eq(spool_close(s), 0);
}

/* Names in the spool directory, sorted, joined by spaces. */
static const char *listing(void)
{
    static char out[4096];

    return test_dir_listing(sdir, out, sizeof(out));
}

static char *read_range(const char *path, uint64_t off, uint64_t len)
{
    char *p = xmalloc(len + 1);
    int fd = open(path, O_RDONLY);

    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(pread(fd, p, len, (off_t)off), (ssize_t)len);
    close(fd);
    p[len] = '\0';
    return p;
}

/* Message text of n bytes: CRLF lines with varying content. */
static char *message_text(size_t n, unsigned seed)
{
    char *p = xmalloc(n + 1);

    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + seed) % 26);
    for (size_t i = 76; i + 1 < n; i += 78) {
        p[i] = '\r';
        p[i + 1] = '\n';
    }
    if (n >= 2) {
        p[n - 2] = '\r';
        p[n - 1] = '\n';
    }
    p[n] = '\0';
    return p;
}

static const char prepend[] =
    "Received: from mx.origin.test (mx.origin.test [192.0.2.7])\r\n"
    "\tby fwd.test (mxfwd) with ESMTPS id 0\r\n"
    "Authentication-Results: fwd.test; spf=pass smtp.mailfrom=origin.test\r\n";

static const spool_env_rcpt_t rcpts3[] = {
    {"alice@example.com", "alice@alias.test"},
    {"bob@example.org", "team@alias.test"},
    {"carol@example.net", NULL},
};

static spool_envelope_t envelope(size_t nrcpts)
{
    spool_envelope_t env = {
        .arrival_us = 1795000000123456,
        .client = "mx.origin.test[192.0.2.7]",
        .helo = "mx.origin.test",
        .sender = "someone@origin.test",
        .srs_sender = "SRS0=AbCd=XY=origin.test=someone@fwd.test",
        .flags = SPOOL_F_8BITMIME,
        .prepend = prepend,
        .prepend_len = sizeof(prepend) - 1,
        .rcpts = rcpts3,
        .nrcpts = nrcpts,
    };
    return env;
}

typedef struct {
    int called;
    int status;
    spool_msg_t *msg;
} commit_result_t;

static void on_commit(void *arg, int status, spool_msg_t *msg)
{
    commit_result_t *r = arg;

    r->called++;
    r->status = status;
    r->msg = msg;
}

typedef struct {
    int called;
    int status;
} done_result_t;

static void on_done(void *arg, int status)
{
    done_result_t *r = arg;

    r->called++;
    r->status = status;
}

/* Write text in chunks of the given size, commit, run the loop. */
static commit_result_t commit_text(spool_t *s, const char *text, size_t len, size_t chunk,
                                   const spool_envelope_t *env)
{
    commit_result_t r = {0};
    spool_writer_t *w;

    cr_assert_eq(spool_writer_open(s, &w), 0);
    for (size_t off = 0; off < len; off += chunk)
        cr_assert_eq(spool_writer_write(w, text + off, len - off < chunk ? len - off : chunk), 0);
    cr_assert_eq(spool_writer_size(w), len);
    cr_assert_eq(spool_writer_commit(w, env, on_commit, &r), 0);
    cr_assert_eq(r.called, 0, "the callback waits for the fsync pass");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(r.called, 1);
    return r;
}

typedef struct {
    spool_msg_t *msgs[64];
    int nmsgs;
    char problems[16][64];
    int problem_err[16];
    int nproblems;
} scan_result_t;

static void scan_message(void *arg, spool_msg_t *msg)
{
    scan_result_t *r = arg;

    cr_assert_lt(r->nmsgs, 64);
    r->msgs[r->nmsgs++] = msg;
}

static void scan_problem(void *arg, const char *name, int err)
{
    scan_result_t *r = arg;

    cr_assert_lt(r->nproblems, 16);
    snprintf(r->problems[r->nproblems], sizeof(r->problems[0]), "%s", name);
    r->problem_err[r->nproblems++] = err;
}

static const spool_scan_ops_t scan_ops = {scan_message, scan_problem};

static void scan_free(scan_result_t *r)
{
    for (int i = 0; i < r->nmsgs; i++)
        spool_msg_free(r->msgs[i]);
}

/* Reopen the spool as a restarted daemon would and scan it. */
static spool_t *restart(scan_result_t *r)
{
    spool_t *s = open_spool();

    memset(r, 0, sizeof(*r));
    cr_assert_eq(spool_scan(s, &scan_ops, r), 0);
    return s;
}

static void assert_envelope(const spool_msg_t *m, const spool_envelope_t *env)
{
    cr_assert_eq(m->arrival_us, env->arrival_us);
    cr_assert_str_eq(m->client, env->client);
    cr_assert_str_eq(m->helo, env->helo);
    cr_assert_str_eq(m->sender, env->sender);
    cr_assert_str_eq(m->srs_sender, env->srs_sender);
    cr_assert_eq(m->flags, env->flags);
    cr_assert_eq(m->prepend_len, env->prepend_len);
    cr_assert(memcmp(m->prepend, env->prepend, env->prepend_len) == 0);
    cr_assert_eq(m->nrcpts, env->nrcpts);
    for (size_t i = 0; i < env->nrcpts; i++) {
        cr_assert_str_eq(m->rcpts[i].addr, env->rcpts[i].addr);
        cr_assert_str_eq(m->rcpts[i].orig, env->rcpts[i].orig ? env->rcpts[i].orig : "");
    }
}

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

static int64_t fixed_clock(void *arg)
{
    return *(int64_t *)arg;
}

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

/* ---- Recovery ---- */

static void write_file(const char *name, const void *data, size_t len)
{
    char path[400];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int find_problem(const scan_result_t *r, const char *name)
{
    for (int i = 0; i < r->nproblems; i++)
        if (strcmp(r->problems[i], name) == 0)
            return r->problem_err[i];
    return 0;
}

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
    write_file(tmpname, junk, sizeof(junk) - 1);
    /* A message file that is not ours to understand. */
    write_file("0000000000002", "this is not a spool file at all, whatever it is\n", 48);
    /* Something else an admin put there. */
    write_file("README", "keep\n", 5);

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

static spool_msg_t *collected[8192];
static int collected_n;

static void collect_all(void *arg, spool_msg_t *msg)
{
    (void)arg;
    cr_assert_lt(collected_n, 8192);
    collected[collected_n++] = msg;
}

static const spool_scan_ops_t collect_ops = {collect_all, scan_problem};

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

/* ---- Write and fsync failures ---- */

/* The system-call hook: fails writes past a byte budget, fails fsyncs of
 * files or of the directory, and records what was fsynced. */
static struct {
    atomic_long written;
    long fail_after; /* -1: never */
    int write_errno;
    int fsync_errno; /* 0: none */
    bool fsync_fail_dir;
    atomic_int fsync_fail_times; /* with fsync_fail_counted: fail this many, then pass */
    bool fail_marks; /* fail 1-byte writes (the journal's state marks) with EIO */
    bool fail_segments; /* fail writing a journal segment's magic with ENOSPC */
    bool fsync_fail_counted;
    int syncfs_errno; /* 0: none */
    atomic_int dir_syncs;
    atomic_int file_syncs;
    atomic_int fs_syncs;
    atomic_int fs_sync_starts;
    atomic_int fs_sync_done_start; /* the start number of the last syncfs done */
    /* Appends (writes off the loop thread) wait while this is set. */
    atomic_bool hold_appends;
    atomic_int appends_held;
    pthread_t loop_thread;
    pthread_mutex_t mu;
    ino_t synced[8192];
    int nsynced;
} hook = {.fail_after = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static ssize_t hook_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (atomic_load(&hook.hold_appends) && !pthread_equal(pthread_self(), hook.loop_thread)) {
        atomic_fetch_add(&hook.appends_held, 1);
        while (atomic_load(&hook.hold_appends))
            usleep(1000);
    }
    if (hook.fail_segments && n == 8 && memcmp(buf, "MXFJNL01", 8) == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (hook.fail_marks && n == 1) {
        errno = EIO;
        return -1;
    }
    if (hook.fail_after >= 0 && atomic_load(&hook.written) + (long)n > hook.fail_after) {
        errno = hook.write_errno;
        return -1;
    }
    atomic_fetch_add(&hook.written, (long)n);
    return pwrite(fd, buf, n, off);
}

static int hook_fsync(int fd)
{
    struct stat st;
    bool dir;

    cr_assert_eq(fstat(fd, &st), 0);
    dir = S_ISDIR(st.st_mode);
    if (hook.fsync_errno != 0 && dir == hook.fsync_fail_dir &&
        (!hook.fsync_fail_counted || atomic_fetch_sub(&hook.fsync_fail_times, 1) > 0)) {
        errno = hook.fsync_errno;
        return -1;
    }
    if (fsync(fd) != 0)
        return -1;
    if (dir) {
        atomic_fetch_add(&hook.dir_syncs, 1);
    } else {
        atomic_fetch_add(&hook.file_syncs, 1);
        pthread_mutex_lock(&hook.mu);
        if (hook.nsynced < 8192)
            hook.synced[hook.nsynced++] = st.st_ino;
        pthread_mutex_unlock(&hook.mu);
    }
    return 0;
}

static int hook_syncfs(int fd)
{
    int n = atomic_fetch_add(&hook.fs_sync_starts, 1) + 1;
    struct stat st;

    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert(S_ISDIR(st.st_mode), "syncfs through the spool directory");
    if (hook.syncfs_errno != 0) {
        errno = hook.syncfs_errno;
        return -1;
    }
    if (syncfs(fd) != 0)
        return -1;
    atomic_fetch_add(&hook.fs_syncs, 1);
    atomic_store(&hook.fs_sync_done_start, n);
    return 0;
}

static const spool_io_t hook_io = {hook_pwrite, hook_fsync, hook_syncfs};

static spool_t *open_spool_sync(spool_sync_t mode)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = &hook_io, .sync = mode,
                           .files_only = true};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

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

static void assert_rcpt(const spool_rcpt_t *r, spool_rcpt_state_t state, uint32_t attempts,
                        int64_t next, const char *reply, const char *relay, bool remote)
{
    cr_assert_eq(r->state, state, "%s", r->addr);
    cr_assert_eq(r->attempts, attempts);
    cr_assert_eq(r->next_attempt, next);
    cr_assert_str_eq(r->reply, reply);
    cr_assert_str_eq(r->relay, relay);
    cr_assert_eq(r->remote_reply, remote);
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

/* ---- The commit journal ---- */

static spool_t *open_journal_spool(const spool_io_t *io)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = io};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

static spool_t *restart_journal(scan_result_t *r)
{
    spool_t *s = open_journal_spool(NULL);

    memset(r, 0, sizeof(*r));
    cr_assert_eq(spool_scan(s, &scan_ops, r), 0);
    return s;
}

/* Restart as a daemon would: the scan finds exactly the message id. */
static void restart_finds_only(const char *id)
{
    scan_result_t sr;
    spool_t *s = restart_journal(&sr);

    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, id);
    scan_free(&sr);
    close_spool(s);
}

/* What the spool holds by the test's own reading of the journal. */
static const char *held(void)
{
    static char out[4096];

    return test_spool_listing(sdir, out, sizeof(out));
}

/* The journal's segment names, sorted, joined by spaces. */
static const char *segments(void)
{
    static char out[4096];
    char jdir[400];

    snprintf(jdir, sizeof(jdir), "%s/journal", sdir);
    return test_dir_listing(jdir, out, sizeof(out));
}

/* The state byte of the journal record of m (its first byte). */
static char record_state(const spool_msg_t *m)
{
    char c = 0;
    int fd = open(m->path, O_RDONLY);

    cr_assert(fd >= 0, "open %s: %s", m->path, strerror(errno));
    cr_assert_eq(pread(fd, &c, 1, (off_t)m->joff), 1);
    close(fd);
    return c;
}

static void update_one(spool_t *s, spool_msg_t *m, size_t index, spool_rcpt_state_t st,
                       const char *reply)
{
    spool_update_t u = {.index = index, .state = st, .attempts = 1, .reply = reply,
                        .relay = "mx.example.com[192.0.2.25]:25", .remote_reply = true};
    done_result_t d = {0};

    cr_assert_eq(spool_update(s, m, &u, 1, on_done, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.called, 1);
    cr_assert_eq(d.status, 0, "update: %s", spool_strerror(d.status));
}

static void remove_one(spool_t *s, const spool_msg_t *m)
{
    done_result_t d = {0};

    cr_assert_eq(spool_remove(s, m, on_done, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.called, 1);
    cr_assert_eq(d.status, 0, "remove: %s", spool_strerror(d.status));
}

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

Test(spool, a_big_message_gets_its_own_file_beside_the_journal)
{
    size_t len = 100000;
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

    /* Fill the rest of the segment, each message removed at once: when it
     * is full nothing holds it, though m is still queued. */
    while (strcmp(segments(), "0000000000000001") == 0) {
        commit_result_t c = commit_text(s, text, 15000, 15000, &env);

        cr_assert_eq(c.status, 0);
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

Test(spool, a_full_segment_with_nothing_queued_is_removed)
{
    spool_envelope_t env = envelope(1);
    char *text = message_text(15000, 9);
    spool_t *s = open_journal_spool(NULL);
    spool_msg_t *first = NULL;
    int n = 0;

    /* Fill the first segment (4 MiB) and start the second. */
    while (strcmp(segments(), "0000000000000001") == 0 || n == 0) {
        commit_result_t r = commit_text(s, text, 15000, 15000, &env);

        cr_assert_eq(r.status, 0);
        if (first == NULL)
            first = r.msg;
        else if (r.msg->jseq == 1)
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
