/*
 * spool_fixture - what the unit tests of spool/ share: each test's spool
 * directory and loop (setup() and teardown(), for the files' TestSuite),
 * messages and envelopes to commit, scans that collect what a restart
 * reads back, the commit journal as the tests read it (independently of
 * spool/), and the system-call hook that fails writes and syncs.
 * Criterion runs each test in a process of its own, so the globals here
 * start afresh in every test.
 */
#ifndef MXFWD_TEST_SPOOL_FIXTURE_H
#define MXFWD_TEST_SPOOL_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "spool.h"
#include "spool_message.h"
#include "spool_uv.h" /* before loop, which its parameter would shadow */

/* ---- Fixture: a temporary spool directory and a loop ---- */

extern char root[256]; /* removed after each test */
extern char sdir[300]; /* the spool directory, root/var/spool: created by the spool */
extern uv_loop_t loop;

void setup(void);
void teardown(void);

/* A spool of files only (no journal), with the system-call hook io. */
spool_t *open_spool_io(const spool_io_t *io);
spool_t *open_spool(void);
/* A spool with the commit journal. */
spool_t *open_journal_spool(const spool_io_t *io);
/* A spool (files_only or with the journal) whose clock reads *now. */
spool_t *open_clock_spool(int64_t *now, bool files_only, const spool_io_t *io);
/* A spool of files only through the hook, in the given sync mode. */
spool_t *open_spool_sync(spool_sync_t mode);
void close_spool(spool_t *s);

/* Names in the spool directory, sorted, joined by spaces. */
const char *listing(void);
/* What the spool holds by the test's own reading of the journal. */
const char *held(void);
/* The journal's segment names, sorted, joined by spaces. */
const char *segments(void);
/* len bytes of path from off, NUL-terminated; the caller frees it. */
char *read_range(const char *path, uint64_t off, uint64_t len);
/* Write a file of the spool directory (name may be "journal/SEQ"), as
 * something behind the spool's back would. */
void put_file(const char *name, const void *data, size_t len);

/* ---- Messages ---- */

/* Message text of n bytes: CRLF lines with varying content. */
char *message_text(size_t n, unsigned seed);
/* A clock_us hook reading the int64_t at arg. */
int64_t fixed_clock(void *arg);

typedef struct {
    int called;
    int status;
    spool_msg_t *msg;
} commit_result_t;

void on_commit(void *arg, int status, spool_msg_t *msg);

typedef struct {
    int called;
    int status;
} done_result_t;

void on_done(void *arg, int status);

/* Write the string text and commit it with env into *r, without running
 * the loop (its pass runs when the loop does). */
void commit_start(spool_t *s, const char *text, const spool_envelope_t *env, commit_result_t *r);
/* Write text in chunks of the given size, commit, run the loop. */
commit_result_t commit_text(spool_t *s, const char *text, size_t len, size_t chunk,
                            const spool_envelope_t *env);
/* One recipient's update, or the message's removal, run to its callback. */
void update_one(spool_t *s, spool_msg_t *m, size_t index, spool_rcpt_state_t st,
                const char *reply);
void remove_one(spool_t *s, const spool_msg_t *m);
/* The state byte of the journal record of m (its first byte). */
char record_state(const spool_msg_t *m);

/* ---- Scans ---- */

typedef struct {
    spool_msg_t *msgs[64];
    int nmsgs;
    char problems[16][64];
    int problem_err[16];
    char problem_done[16][160];
    int nproblems;
} scan_result_t;

void scan_message(void *arg, spool_msg_t *msg);
void scan_problem(void *arg, const char *name, int err, const char *done);
/* The error, or what the scan said it did, of the problem reported for
 * name: 0 or NULL when none was. */
int find_problem(const scan_result_t *r, const char *name);
const char *find_done(const scan_result_t *r, const char *name);
extern const spool_scan_ops_t scan_ops;
void scan_free(scan_result_t *r);
/* Reopen the spool as a restarted daemon would and scan it. */
spool_t *restart(scan_result_t *r);
spool_t *restart_journal(scan_result_t *r);
/* Restart as a daemon would: the scan finds exactly the message id. */
void restart_finds_only(const char *id);

/* Every message of a scan through collect_ops, however many. */
extern spool_msg_t *collected[8192];
extern int collected_n;
void collect_all(void *arg, spool_msg_t *msg);
extern const spool_scan_ops_t collect_ops;

/* ---- The system-call hook ---- */

/* The system-call hook: fails writes past a byte budget, fails fsyncs of
 * files or of the directory, and records what was fsynced. */
typedef struct {
    atomic_long written;
    long fail_after; /* -1: never */
    int write_errno;
    int fsync_errno; /* 0: none */
    bool fsync_fail_dir;
    atomic_int fsync_fail_times; /* with fsync_fail_counted: fail this many, then pass */
    bool fail_marks; /* fail 1-byte writes (the journal's state marks) with EIO */
    bool fail_segments; /* fail writing a journal segment's magic with ENOSPC */
    atomic_int segment_tries; /* writes of a journal segment's magic, failed or not */
    bool fsync_fail_counted;
    bool rename_einval;      /* renameat2 answers EINVAL, as some file systems do */
    char rename_fail[64];    /* renames to names starting so fail with rename_errno */
    int rename_errno;
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
} spool_hook_t;

extern spool_hook_t hook;

ssize_t hook_pwrite(int fd, const void *buf, size_t n, off_t off);
int hook_fsync(int fd);
int hook_syncfs(int fd);
int hook_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                   unsigned flags);
extern const spool_io_t hook_io;

#endif
