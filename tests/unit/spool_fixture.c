/*
 * The unit tests of spool/ share this fixture: a temporary spool directory
 * and a libuv loop for each test, messages and envelopes to commit, scans
 * that collect what a restart reads back, the journal read independently
 * of spool/, and the system-call hook that injects failures.
 */
#include "spool_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testdir.h"
#include "xalloc.h"

/* ---- Fixture: a temporary spool directory and a loop ---- */

char root[256];   /* removed after each test */
char sdir[300];   /* the spool directory, root/var/spool: created by the spool */
uv_loop_t loop;

void setup(void)
{
    cr_assert_eq(test_dir_make("mxfwd-spool", root, sizeof(root)), 0);
    snprintf(sdir, sizeof(sdir), "%s/var/spool", root);
    cr_assert_eq(uv_loop_init(&loop), 0);
}

void teardown(void)
{
    cr_expect_eq(uv_loop_close(&loop), 0);
    test_dir_remove(root);
}

spool_t *open_spool_io(const spool_io_t *io)
{
    /* These tests are of the file protocol; the journal's open with
     * open_journal_spool(). */
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = io, .files_only = true};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

spool_t *open_spool(void)
{
    return open_spool_io(NULL);
}

void close_spool(spool_t *s)
{
    cr_assert_eq(spool_close(s), 0);
}

/* Names in the spool directory, sorted, joined by spaces. */
const char *listing(void)
{
    static char out[4096];

    return test_dir_listing(sdir, out, sizeof(out));
}

char *read_range(const char *path, uint64_t off, uint64_t len)
{
    char *p = xmalloc(len + 1);
    int fd = open(path, O_RDONLY);

    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(pread(fd, p, len, (off_t)off), (ssize_t)len);
    close(fd);
    p[len] = '\0';
    return p;
}

void put_file(const char *name, const void *data, size_t len)
{
    char path[400];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Message text of n bytes: CRLF lines with varying content. */
char *message_text(size_t n, unsigned seed)
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

void on_commit(void *arg, int status, spool_msg_t *msg)
{
    commit_result_t *r = arg;

    r->called++;
    r->status = status;
    r->msg = msg;
}

void on_done(void *arg, int status)
{
    done_result_t *r = arg;

    r->called++;
    r->status = status;
}

void commit_start(spool_t *s, const char *text, const spool_envelope_t *env, commit_result_t *r)
{
    spool_writer_t *w;

    cr_assert_eq(spool_writer_open(s, &w), 0);
    cr_assert_eq(spool_writer_write(w, text, strlen(text)), 0);
    cr_assert_eq(spool_writer_commit(w, env, on_commit, r), 0);
}

/* Write text in chunks of the given size, commit, run the loop. */
commit_result_t commit_text(spool_t *s, const char *text, size_t len, size_t chunk,
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

void scan_message(void *arg, spool_msg_t *msg)
{
    scan_result_t *r = arg;

    cr_assert_lt(r->nmsgs, 64);
    r->msgs[r->nmsgs++] = msg;
}

void scan_problem(void *arg, const char *name, int err, const char *done)
{
    scan_result_t *r = arg;

    cr_assert_lt(r->nproblems, 16);
    snprintf(r->problems[r->nproblems], sizeof(r->problems[0]), "%s", name);
    snprintf(r->problem_done[r->nproblems], sizeof(r->problem_done[0]), "%s", done);
    r->problem_err[r->nproblems++] = err;
}

int find_problem(const scan_result_t *r, const char *name)
{
    for (int i = 0; i < r->nproblems; i++)
        if (strcmp(r->problems[i], name) == 0)
            return r->problem_err[i];
    return 0;
}

const char *find_done(const scan_result_t *r, const char *name)
{
    for (int i = 0; i < r->nproblems; i++)
        if (strcmp(r->problems[i], name) == 0)
            return r->problem_done[i];
    return NULL;
}

const spool_scan_ops_t scan_ops = {scan_message, scan_problem};

void scan_free(scan_result_t *r)
{
    for (int i = 0; i < r->nmsgs; i++)
        spool_msg_free(r->msgs[i]);
}

/* Reopen the spool as a restarted daemon would and scan it. */
spool_t *restart(scan_result_t *r)
{
    spool_t *s = open_spool();

    memset(r, 0, sizeof(*r));
    cr_assert_eq(spool_scan(s, &scan_ops, r), 0);
    return s;
}

int64_t fixed_clock(void *arg)
{
    return *(int64_t *)arg;
}

/* ---- Collecting a whole scan ---- */

spool_msg_t *collected[8192];
int collected_n;

void collect_all(void *arg, spool_msg_t *msg)
{
    (void)arg;
    cr_assert_lt(collected_n, 8192);
    collected[collected_n++] = msg;
}

const spool_scan_ops_t collect_ops = {collect_all, scan_problem};

/* ---- The system-call hook ---- */

/* See spool_fixture.h. */
spool_hook_t hook = {.fail_after = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

ssize_t hook_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (atomic_load(&hook.hold_appends) && !pthread_equal(pthread_self(), hook.loop_thread)) {
        atomic_fetch_add(&hook.appends_held, 1);
        while (atomic_load(&hook.hold_appends))
            usleep(1000);
    }
    if (n == 8 && memcmp(buf, "MXFJNL01", 8) == 0)
        atomic_fetch_add(&hook.segment_tries, 1);
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

int hook_fsync(int fd)
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

int hook_syncfs(int fd)
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

int hook_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                   unsigned flags)
{
    if (hook.rename_einval) {
        errno = EINVAL;
        return -1;
    }
    if (hook.rename_errno != 0 && strncmp(newpath, hook.rename_fail, strlen(hook.rename_fail)) == 0) {
        errno = hook.rename_errno;
        return -1;
    }
    return renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

const spool_io_t hook_io = {
    .pwrite = hook_pwrite, .fsync = hook_fsync, .syncfs = hook_syncfs, .renameat2 = hook_renameat2};

spool_t *open_clock_spool(int64_t *now, bool files_only, const spool_io_t *io)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = io, .clock_us = fixed_clock,
                           .clock_arg = now, .files_only = files_only};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

spool_t *open_spool_sync(spool_sync_t mode)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = &hook_io, .sync = mode,
                           .files_only = true};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

/* ---- The commit journal ---- */

spool_t *open_journal_spool(const spool_io_t *io)
{
    spool_options_t opt = {.exec = spool_uv_executor(&loop), .io = io};
    spool_t *s = NULL;
    int err = spool_open(sdir, &opt, &s);

    cr_assert_eq(err, 0, "spool_open: %s", spool_strerror(err));
    return s;
}

spool_t *restart_journal(scan_result_t *r)
{
    spool_t *s = open_journal_spool(NULL);

    memset(r, 0, sizeof(*r));
    cr_assert_eq(spool_scan(s, &scan_ops, r), 0);
    return s;
}

/* Restart as a daemon would: the scan finds exactly the message id. */
void restart_finds_only(const char *id)
{
    scan_result_t sr;
    spool_t *s = restart_journal(&sr);

    cr_assert_eq(sr.nmsgs, 1);
    cr_assert_str_eq(sr.msgs[0]->id, id);
    scan_free(&sr);
    close_spool(s);
}

/* What the spool holds by the test's own reading of the journal. */
const char *held(void)
{
    static char out[4096];

    return test_spool_listing(sdir, out, sizeof(out));
}

/* The journal's segment names, sorted, joined by spaces. */
const char *segments(void)
{
    static char out[4096];
    char jdir[400];

    snprintf(jdir, sizeof(jdir), "%s/journal", sdir);
    return test_dir_listing(jdir, out, sizeof(out));
}

/* The state byte of the journal record of m (its first byte). */
char record_state(const spool_msg_t *m)
{
    char c = 0;
    int fd = open(m->path, O_RDONLY);

    cr_assert(fd >= 0, "open %s: %s", m->path, strerror(errno));
    cr_assert_eq(pread(fd, &c, 1, (off_t)m->joff), 1);
    close(fd);
    return c;
}

void update_one(spool_t *s, spool_msg_t *m, size_t index, spool_rcpt_state_t st,
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

void remove_one(spool_t *s, const spool_msg_t *m)
{
    done_result_t d = {0};

    cr_assert_eq(spool_remove(s, m, on_done, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(d.called, 1);
    cr_assert_eq(d.status, 0, "remove: %s", spool_strerror(d.status));
}
