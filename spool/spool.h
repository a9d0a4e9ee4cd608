/*
 * spool - the durable on-disk message store.
 *
 * The spool owns one directory.  A queued message is a file in it, named
 * by its queue id, holding the message bytes, the envelope and the
 * recipients' delivery state as typed, length-prefixed records ending in
 * END; later state changes are appended after END.  A small message is
 * first a record of the same bytes in the commit journal, a few segment
 * files that many messages share, and gets a file of its own only if it
 * stays queued after its first delivery (docs/spool.md has the formats
 * and the exact crash guarantees).  One process owns a spool at a time
 * (an exclusive flock on the directory).
 *
 * Writing a message (the SMTP session, and the queue for DSNs):
 *
 *     spool_writer_open()    at DATA: a temporary file and the queue id
 *     spool_writer_write()   message bytes as they arrive: CRLF lines,
 *                            already un-dot-stuffed; buffered, never whole
 *     spool_writer_commit()  at the end of data, with the envelope and the
 *                            headers mxfwd prepends; the callback runs once
 *                            the file and its directory entry are durable
 *     spool_writer_abort()   at any time before commit: the file is removed
 *
 * Commits are grouped: every commit waiting when a pass starts shares that
 * pass's one append to the journal and its fdatasync, or for messages too
 * big for the journal its sync of the file data (one syncfs(2), or
 * parallel fsyncs) and its one directory fsync, so N concurrent commits
 * cost far fewer than N fsync passes.  Recipient updates and removals are grouped the same way in a
 * second lane of passes that runs beside the first, so a commit never
 * waits behind them.  Each callback still fires only once its own bytes
 * and directory entry are durable.
 *
 * Threads: every function here is for the loop thread only.  Blocking work
 * (fsync, rename, unlink) runs through the executor the caller supplies,
 * normally libuv's thread pool, and completes on the loop thread, where
 * every callback runs.  The loop thread only touches a pass's files before
 * submitting it and after it completes; the one lock orders the syncs the
 * two lanes' passes make through the spool directory (docs/spool.md).
 * spool_scan() blocks and is meant for start-up.
 *
 * Ownership: a writer belongs to the caller until spool_writer_commit() or
 * spool_writer_abort(), and to the spool after (it is freed by the spool).
 * A spool_msg_t handed out (commit callback, scan) belongs to the receiver,
 * who releases it with spool_msg_free(); the spool keeps no pointer to it.
 * Strings passed in are copied.
 *
 * Errors: functions return 0 or a negative code: -errno for system errors
 * (-ENOSPC, -EDQUOT, -EIO, ...) or a SPOOL_E* code; spool_strerror() names
 * both.  A call that returns an error never calls its callback.  Nothing
 * here logs.
 */
#ifndef MXFWD_SPOOL_H
#define MXFWD_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Queue ids: the arrival time in microseconds since the epoch as 13
 * upper-case hex digits ("18C3F2A9B47D1"), made increasing within the
 * process and started above every live id in the spool, so they sort by
 * arrival as strings and are safe as file names.  The id space is 1 to
 * SPOOL_ID_MAX; past it, allocation starts again from the lowest id, and
 * it always skips every id in use (held by a writer, a queued message, a
 * journal record on disk, or an entry the scan could not remove), so no
 * two messages share an id (docs/spool.md, "Queue ids").
 */
#define SPOOL_ID_LEN 13
#define SPOOL_ID_MIN UINT64_C(1)
#define SPOOL_ID_MAX ((UINT64_C(1) << (4 * SPOOL_ID_LEN)) - 1)
#define SPOOL_ID_SIZE (SPOOL_ID_LEN + 1)

/* The spool band of error codes (docs/development.md, "Error codes"). */
#define SPOOL_EBASE (-1000)
#define SPOOL_ELOCKED (SPOOL_EBASE - 1)  /* another process has the spool open */
#define SPOOL_EPARTIAL (SPOOL_EBASE - 2) /* a file without a whole message (removed at scan) */
#define SPOOL_ECORRUPT (SPOOL_EBASE - 3) /* a message file that does not parse (now ID.corrupt) */
#define SPOOL_EINVAL (SPOOL_EBASE - 4)   /* bad argument: envelope, recipient index, too long */
#define SPOOL_EBUSY (SPOOL_EBASE - 5)    /* writers or passes still outstanding */
#define SPOOL_EEXIST (SPOOL_EBASE - 6)   /* a commit's name is taken by a file already there */
#define SPOOL_ENOTFILE (SPOOL_EBASE - 7) /* an entry named like a message that is no file (scan) */
#define SPOOL_EJOURNAL (SPOOL_EBASE - 8) /* a damaged journal segment or record (scan) */

/* DSN parameters (RFC 3461): RET= of MAIL, NOTIFY= of RCPT (the values of
 * smtpd/proto.h's PROTO_RET_* and PROTO_NOTIFY_*). */
#define SPOOL_RET_FULL 1u
#define SPOOL_RET_HDRS 2u
#define SPOOL_NOTIFY_NEVER 0x1u
#define SPOOL_NOTIFY_SUCCESS 0x2u
#define SPOOL_NOTIFY_FAILURE 0x4u
#define SPOOL_NOTIFY_DELAY 0x8u
/* Longest ENVID=. */
#define SPOOL_ENVID_MAX 100

/* Envelope flags, from MAIL FROM. */
#define SPOOL_F_8BITMIME 0x1u /* BODY=8BITMIME */
#define SPOOL_F_SMTPUTF8 0x2u /* SMTPUTF8 */
/* Held at arrival (a filter's quarantine): its recipients start held. */
#define SPOOL_F_HELD 0x4u

/* Longest string field (address, HELO, reply) and prepended header block. */
#define SPOOL_STR_MAX 4096
#define SPOOL_PREPEND_MAX (1024 * 1024)

typedef struct spool spool_t;
typedef struct spool_writer spool_writer_t;

/* ---- Wiring ---- */

/*
 * How blocking work leaves the loop thread.  submit() must run work(ctx)
 * on some other thread and then done(ctx) on the loop thread, exactly once
 * each, never inside submit() itself, and cannot fail.  With libuv:
 * uv_queue_work(), work in the work callback, done in the after-work
 * callback.  The spool has at most 2 * sync_jobs submissions outstanding
 * (a pass in each lane), and they only wait for the disk; a pool that also
 * runs work that can block for long (DNS lookups) needs threads enough for
 * both.
 */
typedef struct {
    void (*submit)(void *impl, void (*work)(void *ctx), void (*done)(void *ctx), void *ctx);
    void *impl;
} spool_executor_t;

/*
 * The file-level system calls the spool's data goes through: every byte of
 * every file is written with pwrite and made durable with fsync or syncfs,
 * and every message file is named with renameat2.
 * Tests replace them to inject ENOSPC, EDQUOT or EIO and to count syncs;
 * NULL members (or a NULL table) mean the real system calls.  They run on
 * the loop thread (writes while a message streams in) and on the
 * executor's threads (appends and syncs), so a replacement must be
 * thread-safe.
 */
typedef struct {
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fsync)(int fd);
    /* Journal segments' syncs.  NULL: the hook's fsync if it has one (so
     * that a test failing fsyncs fails these too), else fdatasync(2). */
    int (*fdatasync)(int fd);
    int (*syncfs)(int fd); /* called with the spool directory */
    /* Every rename into a message's name, always with RENAME_NOREPLACE
     * (EINVAL: the spool checks the name under its own lock instead). */
    int (*renameat2)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned flags);
} spool_io_t;

/*
 * How a pass makes the bytes of its files durable before it names them
 * (the directory fsync that follows is the same either way):
 *
 * SPOOL_SYNC_FILES       fsync(2) each file, from up to sync_jobs threads.
 * SPOOL_SYNC_FILESYSTEM  one syncfs(2) of the spool's file system for the
 *                        whole pass: the file system writes every dirty
 *                        block and inode in one go and flushes the disk
 *                        cache once, where an fsync per file may each wait
 *                        for their own.  It also writes whatever else is
 *                        dirty on that file system: best where the spool
 *                        has a file system of its own or shares it with
 *                        little.  Linux 5.17 or later reports every
 *                        write-back error through it (5.8 data errors
 *                        only).  The kernel reports each error once per
 *                        open file: the spool counts them (docs/spool.md).
 */
typedef enum {
    SPOOL_SYNC_FILES,
    SPOOL_SYNC_FILESYSTEM,
} spool_sync_t;

typedef struct {
    spool_executor_t exec;
    const spool_io_t *io;           /* NULL: pwrite(2), fsync(2), syncfs(2), renameat2(2) */
    int64_t (*clock_us)(void *arg); /* NULL: the real time of day */
    void *clock_arg;
    unsigned max_batch;             /* most items per pass; 0: SPOOL_MAX_BATCH */
    unsigned sync_jobs;             /* parallel jobs per pass; 0: SPOOL_SYNC_JOBS */
    spool_sync_t sync;              /* 0: SPOOL_SYNC_FILES */
    bool files_only;                /* no commit journal: a file per message */
    /*
     * Something else that must be durable before a message's 250 (the
     * SRS envelope store, docs/srs.md): run once by a commit pass, on an
     * executor thread beside the journal's appends (the pass acknowledges
     * nothing before both are done), when one of its messages asked for
     * it (spool_envelope_t.before_ack).  0, or a negative code that fails
     * those commits (and only those) with it.  NULL: none.
     */
    int (*before_ack)(void *arg);
    void *before_ack_arg;
    /* Writers keep a message of up to 256 KiB in memory for the journal
     * while their buffers beyond the first 16 KiB take at most this many
     * bytes in all; past it a message gets a file.  0: SPOOL_BUFFER_MEMORY. */
    size_t buffer_memory;
} spool_options_t;

#define SPOOL_MAX_BATCH 512
#define SPOOL_BUFFER_MEMORY (32u << 20)
#define SPOOL_SYNC_JOBS 4 /* libuv's default pool size; at most 16 */

/*
 * Open (creating it and missing parents, mode 0700) and lock the spool
 * directory.  Nothing in it is changed until spool_scan().
 */
int spool_open(const char *dir, const spool_options_t *opt, spool_t **out);
/* Release the spool: SPOOL_EBUSY while a writer is open or work is
 * outstanding (run the loop until the callbacks came). */
int spool_close(spool_t *s);
/* The directory as an absolute path. */
const char *spool_dir(const spool_t *s);

/* ---- Messages ---- */

typedef enum {
    SPOOL_RCPT_PENDING,  /* not tried yet */
    SPOOL_RCPT_DEFERRED, /* temporary failure; retry at next_attempt */
    SPOOL_RCPT_SENT,     /* final: accepted by the next hop */
    SPOOL_RCPT_BOUNCED,  /* final: permanent failure or expired */
    SPOOL_RCPT_HELD,     /* never tried until the admin releases it (docs/queue.md) */
} spool_rcpt_state_t;

static inline bool spool_rcpt_final(spool_rcpt_state_t st)
{
    return st == SPOOL_RCPT_SENT || st == SPOOL_RCPT_BOUNCED;
}

typedef struct {
    char *addr;             /* destination address */
    char *orig;             /* the alias it came from; "" when none */
    spool_rcpt_state_t state;
    uint32_t attempts;      /* delivery attempts made */
    int64_t next_attempt;   /* unix seconds; 0: as soon as possible */
    char *reply;            /* last reply or reason; "" when none */
    char *relay;            /* host that gave it, "mx.example[192.0.2.1]:25"; "" */
    bool remote_reply;      /* reply came from the remote host, not from mxfwd */
    unsigned notify;        /* NOTIFY= of its RCPT (SPOOL_NOTIFY_*); 0: not given */
    char *orcpt;            /* ORCPT= of its RCPT, "rfc822;a@b" decoded; "" when none */
} spool_rcpt_t;

/*
 * A committed message.  The message bytes are prepend[0..prepend_len)
 * followed by body_length bytes of the file at path from body_offset:
 * exactly queue/delivery.h's job layout.  For a message in the commit
 * journal, path is the journal segment's (kept on disk for it), also
 * once its state moved to a file of its own, until spool_msg_relocate().
 * Fields are read-only for the holder; recipient state changes go
 * through spool_update().
 */
typedef struct spool_msg {
    char id[SPOOL_ID_SIZE];
    int64_t arrival_us;  /* microseconds since the epoch */
    char *client;        /* "host[192.0.2.1]" or as the session wrote it; "" */
    char *helo;          /* "" when none (a DSN) */
    char *sender;        /* original envelope sender; "" is <> */
    char *srs_sender;    /* MAIL FROM for delivery (SRS-rewritten); "" is <> */
    unsigned flags;      /* SPOOL_F_* */
    unsigned ret;        /* RET= of MAIL: SPOOL_RET_*, 0 not given */
    char *envid;         /* ENVID= of MAIL, decoded; "" when none */
    char *prepend;       /* headers mxfwd prepends, CRLF lines */
    size_t prepend_len;
    char *path;          /* absolute path of the file */
    uint64_t body_offset;
    uint64_t body_length;
    /* The first body_skip of those bytes are stored but not sent: the
     * message's own header section, replaced by the one at the end of
     * prepend.  Delivery sends prepend, then the rest of the body. */
    uint64_t body_skip;
    /* The same body_length bytes in memory, or NULL: a message small
     * enough to be still whole in its writer's buffer at commit keeps
     * them, so that its first delivery need not read the file (the file
     * is durable all the same).  spool_msg_drop_body() lets them go; a
     * message from spool_scan() has none. */
    char *body;
    /* The allocation body points into (a journal record's), or NULL when
     * body is one of its own; freed with it.  body_held: the bytes the
     * body keeps in memory (its record's, headers and trailer included). */
    void *body_mem;
    size_t body_held;
    spool_rcpt_t *rcpts;
    size_t nrcpts;
    /* The spool's own: 0, or the journal segment holding the message,
     * with its record's offset there and the length of its image. */
    uint64_t jseq;
    uint64_t joff;
    uint64_t jlen;
} spool_msg_t;

void spool_msg_free(spool_msg_t *msg);
/*
 * A journal message whose state has moved to a file of its own (its first
 * spool_update() made it) goes on reading its bytes from the journal
 * segment, which stays on disk for it.  This points path and body_offset
 * at its file instead and lets the segment go.  Call it when nothing
 * reads the message through path or may still open it (no delivery of it
 * under way); for any other message it does nothing.
 */
void spool_msg_relocate(spool_t *s, spool_msg_t *msg);
/* Free msg->body, if any (the file still has the bytes). */
void spool_msg_drop_body(spool_msg_t *msg);
/* prepend_len + body_length - body_skip: the size delivered and listed. */
uint64_t spool_msg_size(const spool_msg_t *msg);
/* Whether every recipient is final (the message may be removed). */
bool spool_msg_done(const spool_msg_t *msg);

/* ---- Writing ---- */

typedef struct {
    const char *addr; /* destination */
    const char *orig; /* the alias it came from; NULL or "" when none */
    unsigned notify;  /* NOTIFY= (SPOOL_NOTIFY_*); 0: not given */
    const char *orcpt; /* ORCPT=; NULL or "" when none */
} spool_env_rcpt_t;

typedef struct {
    int64_t arrival_us;        /* 0: now */
    const char *client;        /* NULL: "" */
    const char *helo;          /* NULL: "" */
    const char *sender;        /* "" for <> */
    const char *srs_sender;    /* "" for <> */
    unsigned flags;            /* SPOOL_F_* */
    unsigned ret;              /* SPOOL_RET_*; 0: not given */
    const char *envid;         /* NULL or "" when none; at most SPOOL_ENVID_MAX */
    const char *prepend;       /* Received:, Authentication-Results:, ... */
    size_t prepend_len;
    /* Bytes at the start of the message not sent: its own header section,
     * when prepend carries a rewritten one (docs/spool.md); 0: none. */
    uint64_t body_skip;
    const spool_env_rcpt_t *rcpts;
    size_t nrcpts;             /* at least one */
    bool before_ack;           /* the commit waits for spool_options_t.before_ack */
} spool_envelope_t;

/* Called on the loop thread.  status 0: msg is durable and now the
 * callee's; otherwise msg is NULL and nothing of the message is left. */
typedef void (*spool_commit_cb)(void *arg, int status, spool_msg_t *msg);

/* A writer, with its queue id.  Its temporary file is created when the
 * message outgrows the writer's buffer (a small message may never need
 * one), so a disk error shows at a write or the commit. */
int spool_writer_open(spool_t *s, spool_writer_t **out);
const char *spool_writer_id(const spool_writer_t *w);
/*
 * Append message bytes.  The first write error sticks: it is returned by
 * this call and every later one, and by commit, and later bytes are only
 * counted; the session keeps reading to the end of data and replies 451.
 */
int spool_writer_write(spool_writer_t *w, const void *data, size_t len);
/* Message bytes passed to write so far (for the size limit). */
uint64_t spool_writer_size(const spool_writer_t *w);
/*
 * Finish the file with env (copied) and queue it for the next group
 * commit.  The writer is the spool's from here on, success or not.
 * 0: cb(arg, status, msg) will be called once, on the loop thread; a
 * failure then (fsync, rename, directory fsync) removes the file.  A
 * rename never replaces an entry of the message's name: one there (put
 * there behind the spool's back) fails the commit with SPOOL_EEXIST.
 * Negative (a sticky write error, ENOSPC writing the envelope, a bad
 * envelope): the file is already removed and cb is not called.
 */
int spool_writer_commit(spool_writer_t *w, const spool_envelope_t *env, spool_commit_cb cb,
                        void *arg);
/* Drop the writer and remove its file.  Not after commit. */
void spool_writer_abort(spool_writer_t *w);

/*
 * A message from bytes already in memory (a DSN): open, write, commit.
 * id (may be NULL) receives the queue id when 0 is returned.
 */
int spool_submit(spool_t *s, const spool_envelope_t *env, const void *data, size_t len,
                 spool_commit_cb cb, void *arg, char id[SPOOL_ID_SIZE]);

/* ---- Recipient state, removal (the queue manager) ---- */

typedef struct {
    size_t index;               /* into msg->rcpts */
    spool_rcpt_state_t state;
    uint32_t attempts;
    int64_t next_attempt;
    const char *reply;          /* NULL: "" */
    const char *relay;          /* NULL: "" */
    bool remote_reply;
} spool_update_t;

/* Called on the loop thread; status 0 or a negative code. */
typedef void (*spool_done_cb)(void *arg, int status);

/*
 * Record recipient state changes (1 to msg->nrcpts of them): applied to
 * msg at once (the caller's view), made durable as one record appended to
 * the file by the next pass; cb (may be NULL) runs once it is durable or
 * failed (SPOOL_EEXIST: a journal message's file would have replaced an
 * entry of its name, which is left alone; the message stays in the
 * journal).  The n changes land together or not at all.  msg may be freed
 * once this returns.  A failed append leaves the file as it was, so a
 * restart sees the old state (at worst a recipient is tried again).
 * SPOOL_EINVAL for a bad index or state or a string over SPOOL_STR_MAX.
 */
int spool_update(spool_t *s, spool_msg_t *msg, const spool_update_t *u, size_t n,
                 spool_done_cb cb, void *arg);

/*
 * Remove msg's file (every recipient final, or the admin deleted it); the
 * removal is durable (directory fsync) when cb (may be NULL) runs with 0.
 * msg may be freed once this returns.
 */
int spool_remove(spool_t *s, const spool_msg_t *msg, spool_done_cb cb, void *arg);

/* ---- Start-up ---- */

typedef struct {
    /* A committed message, in queue id (arrival) order; msg is the callee's. */
    void (*message)(void *arg, spool_msg_t *msg);
    /*
     * Something that was not a usable message, and what the scan did
     * about it.  name: relative to the spool directory ("ID", "ID.tmp",
     * "journal/SEQ"); err: what is wrong, SPOOL_EPARTIAL (a temporary file
     * or a file without END), SPOOL_ECORRUPT (a message that does not
     * parse), SPOOL_ENOTFILE (a directory, symlink or other entry named
     * like a message), SPOOL_EJOURNAL (a damaged journal segment or
     * record) or -errno; done: what was done, in words: "removed", "kept
     * as ID.corrupt", "moved aside as NAME.corrupt", "record at offset N,
     * kept as ID.corrupt", "left in place: REASON".  May be NULL.
     */
    void (*problem)(void *arg, const char *name, int err, const char *done);
} spool_scan_ops_t;

/*
 * Recover and read the whole spool: remove partial files, cut torn state
 * records off the end of messages, and hand over every committed message
 * with its recipients' last recorded state.  Blocks; call it once, after
 * spool_open() and before the first writer (SPOOL_EBUSY otherwise).
 */
int spool_scan(spool_t *s, const spool_scan_ops_t *ops, void *arg);

/* ---- Observability ---- */

typedef struct {
    uint64_t commits;       /* messages made durable */
    uint64_t commit_errors; /* commits that failed after being queued */
    uint64_t updates;       /* state records made durable */
    uint64_t removes;
    uint64_t journalled;    /* of the commits: through the journal */
    uint64_t passes;        /* passes run (each: file syncs + one directory fsync) */
    uint64_t fsyncs;        /* fsync and syncfs calls */
    unsigned writers;       /* writers open now */
} spool_stats_t;

void spool_get_stats(const spool_t *s, spool_stats_t *st);

const char *spool_strerror(int err);

#endif
