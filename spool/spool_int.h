/*
 * spool_int - what the spool's files share.  Not for other modules.
 *
 *     spool.c          open, close, names, stats, errors; update, remove
 *     spool_record.c   the record format (spool_record.h): no I/O
 *     spool_writer.c   writers: a message streaming in, its commit
 *     spool_group.c    the group commit: lanes, passes, sync jobs
 *     spool_journal.c  the commit journal: segments, appends, marks, moves
 *     spool_scan.c     the start-up scan: files and segments read back
 *     spool_aside.c    what the scan keeps for the admin: NAME.corrupt
 *
 * The formats are described in spool_record.h, the reasoning in
 * docs/spool.md.
 */
#ifndef MXFWD_SPOOL_INT_H
#define MXFWD_SPOOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "htab.h"
#include "spool.h"
#include "spool_record.h"

/* The commit journal. */
#define SPOOL__JOURNAL "journal"
#define SPOOL__JSEQ_LEN 16
/* Segment numbers are 1 to this (0 means "not in the journal"). */
#define SPOOL__JSEQ_MAX (UINT64_C(1) << 60)
/* A segment takes no more appends once this long. */
#define SPOOL__JSEG_MAX (4u * 1024 * 1024)
/* The file system's room below which no segment is made ahead. */
#define SPOOL__PREPARE_ROOM (4 * (uint64_t)SPOOL__JSEG_MAX)
/* A writer keeps a message in memory, for the journal, up to this many
 * bytes of its image (the header and the body: messages up to 256 KiB);
 * the largest image the journal takes, trailer included, is a little
 * more.  Bigger ones get a file. */
#define SPOOL__JBUF_MAX (256u * 1024 + SPOOL__BODY_OFFSET)
#define SPOOL__JIMAGE_MAX (SPOOL__JBUF_MAX + 64u * 1024)

/*
 * One segment of the journal.  The loop thread owns every field but the
 * sync lock and error count; a pass's thread uses fd, and path and seq
 * read-only.
 */
typedef struct spool_seg {
    struct spool_seg *next;     /* s->segs, by seq */
    uint64_t seq;
    char *path;                 /* absolute: the message bytes are read from it */
    int fd;
    uint64_t size;              /* where the next record goes */
    bool full;                  /* takes no more records (size, a failure, a scan) */
    bool dir_synced;            /* its directory entry is durable */
    uint64_t dir_errors;        /* jdir_sync_errors when it was created */
    bool dropping;              /* its removal is queued */
    unsigned live;              /* records not yet removed (M or F on disk) */
    unsigned refs;              /* items of passes that use it */
    /* The ids its records name, each held in s->ids until the file is
     * gone (spool__seg_release_ids()): a removed message's D record says
     * a file of its id is stale. */
    char (*ids)[SPOOL_ID_SIZE];
    size_t nids, ids_cap;
    /* fdatasyncs of fd, one at a time, and the count of those that failed:
     * the kernel reports a write-back error once per open file, and both
     * lanes sync through this one (see spool_journal_seg_sync()). */
    pthread_mutex_t sync_mu;
    atomic_uint_fast64_t sync_errors;
} spool_seg_t;

typedef struct spool_item spool_item_t;
typedef struct spool_pass spool_pass_t;

typedef enum {
    SPOOL_ITEM_COMMIT,  /* sync the writer's file, rename it, fsync the directory */
    SPOOL_ITEM_JCOMMIT, /* append a message to the journal, fdatasync it */
    SPOOL_ITEM_UPDATE,  /* append a state record to a message file, sync it */
    SPOOL_ITEM_MOVE,    /* a journal message's first state record: its own file */
    SPOOL_ITEM_REMOVE,  /* unlink a message file, fsync the directory; mark it
                         * removed in the journal */
    SPOOL_ITEM_DROP,    /* unlink a journal segment nothing is queued in */
    SPOOL_ITEM_PREPARE, /* make the next journal segment, written through */
} spool_item_kind_t;

/*
 * One piece of work for a pass.  Between the hand-over to the executor and
 * the completion, only the pass's thread touches it.
 */
struct spool_item {
    spool_item_t *next;
    spool_item_kind_t kind;
    char id[SPOOL_ID_SIZE];
    int fd;            /* commit: the written file; update: opened by the pass */
    int status;        /* 0 or the first error */
    bool before_ack;   /* commit: waits for the spool's before_ack hook */
    unsigned job;      /* the index of the pass's job that handles it */
    bool renamed;      /* commit: the final name exists */
    bool unlinked;     /* remove: the name is gone */
    unsigned char *rec; /* update: the record to append */
    size_t rec_len;
    spool_msg_t *msg;  /* commit: handed to the callback */
    spool_seg_t *seg;  /* the journal segment it uses (a reference), or NULL */
    uint64_t joff;     /* its record there */
    uint64_t jlen;     /* move: the image's length */
    bool has_file;     /* remove of a journal message: it may have a file */
    bool jwritten;     /* bytes went to seg, not yet synced (spool_journal_flush()) */
    int jstatus;       /* what the last flush says of them */
    bool jlanded;      /* journal commit: its record's bytes were written */
    bool fmarked;      /* move: its record says F, durably */
    uint64_t seq;      /* prepare: the new segment's number */
    int jfd;           /* prepare: its descriptor, once made */
    uint64_t seg_errors; /* seg's sync_errors when they began to be written */
    spool_commit_cb commit_cb;
    spool_done_cb done_cb;
    void *arg;
    uint64_t errors_seen; /* sync_errors when its bytes began to be written */
};

/* One executor job of a pass (see spool_group.c). */
typedef struct {
    spool_pass_t *pass;
    unsigned index;
    unsigned fsyncs; /* counted by the job's thread, read on completion */
} spool_job_t;

#define SPOOL_SYNC_JOBS_MAX 16
/* Items a sync job gets before the pass is split into more jobs. */
#define SPOOL_ITEMS_PER_JOB 4

/*
 * Work waits in one of two lanes, each running one pass at a time: new
 * messages, whose 250 waits, and the queue's state records and removals,
 * which nobody on the wire waits for.  The lanes' passes run side by
 * side, so a commit never waits for unlinks (slow where the file system
 * discards freed blocks) or appends.  Nothing orders one lane's work
 * after the other's: the queue learns of a message only from its commit
 * callback, and commits a DSN before it records the bounce.  A message
 * that lives only in the journal has no state work before its removal
 * (its first update moves it to a file), so that removal goes in the
 * commit lane: its D mark is written beside the appends and shares their
 * fdatasync (spool__remove_in_journal()).
 */
enum { SPOOL__LANE_COMMIT, SPOOL__LANE_STATE, SPOOL__LANES };

typedef struct {
    spool_item_t *pending;     /* waiting for the next pass, FIFO */
    spool_item_t **pending_tail;
    bool in_flight;            /* a pass is submitted and its callbacks not done */
} spool_lane_t;

struct spool {
    /* Fixed at open; read by the executor's threads too. */
    char *dir;       /* absolute */
    int dirfd;       /* open, flock()ed */
    spool_io_t io;   /* members never NULL */
    spool_sync_t sync;

    /* Syncs through dirfd (syncfs, the directory's fsync), one at a time,
     * and the count of those that failed (see spool_group_shared_sync()). */
    pthread_mutex_t sync_mu;
    atomic_uint_fast64_t sync_errors;

    /* The commit journal: its directory, and its segments. */
    int jdirfd;                /* -1 with files_only */
    char *jdir;
    bool files_only;
    spool_seg_t *segs;         /* loop thread */
    spool_seg_t *jcur;         /* takes new records; NULL: make one */
    spool_seg_t *jnext;        /* made ahead, to follow jcur; or NULL */
    bool jpreparing;           /* a prepare item is queued */
    uint64_t jprep_failed;     /* the current segment's number when making one failed */
    /* Syncs of the journal's directory, one at a time, and the count of
     * those that failed, as for the spool directory's (both lanes make
     * segments: spool__journal_dir_sync()). */
    pthread_mutex_t jdir_sync_mu;
    atomic_uint_fast64_t jdir_sync_errors;
    uint64_t jseq;             /* the last segment number used */
    htab_t *moving;            /* journal message id -> SPOOL__MOVING or SPOOL__MOVED */

    /* Loop thread only. */
    spool_executor_t exec;
    int (*before_ack)(void *arg);
    void *before_ack_arg;
    int64_t (*clock_us)(void *arg);
    void *clock_arg;
    unsigned max_batch;
    unsigned sync_jobs;
    size_t wbuf_bytes;         /* writers' buffers beyond their first SPOOL_WRITE_BUF */
    size_t wbuf_max;           /* buffer_memory */
    uint64_t last_id;
    /* The ids in use, each with the count of what holds it: a writer or a
     * queued message, a journal record in a segment on disk, an entry the
     * scan could not remove.  Allocation skips them (docs/spool.md, "Queue
     * ids"). */
    htab_t *ids;
    /* Renames where renameat2() cannot refuse to replace: the check and
     * the rename, one at a time (spool__rename()). */
    pthread_mutex_t rename_mu;
    bool scanned;
    bool used;                 /* a writer was opened: too late to scan */
    unsigned writers;
    spool_lane_t lanes[SPOOL__LANES];
    spool_stats_t stats;
};

/* The items a lane hands to the executor at once, and the jobs that sync
 * them (spool_group.c). */
struct spool_pass {
    spool_t *s;
    spool_lane_t *lane;
    spool_item_t *items;
    unsigned njobs;
    int before_ack_status;      /* the before_ack hook's run */
    bool hook_apart;            /* the hook runs in job 1, beside job 0's appends */
    unsigned jobs_left;         /* loop thread: sync jobs not yet completed */
    atomic_uint workers_left;   /* executor threads: sync jobs still working */
    spool_job_t jobs[SPOOL_SYNC_JOBS_MAX];
};

/* ---- Names and I/O (spool.c) ---- */

#define SPOOL__TMP_SUFFIX ".tmp"
#define SPOOL__CORRUPT_SUFFIX ".corrupt"

/* What a directory entry's name says it is. */
typedef enum {
    SPOOL__NAME_OTHER,   /* not ours: left alone */
    SPOOL__NAME_MSG,     /* ID */
    SPOOL__NAME_TMP,     /* ID.tmp: a writer's file, partial after a crash */
    SPOOL__NAME_CORRUPT, /* ID.corrupt: quarantined */
} spool__name_t;

spool__name_t spool__classify(const char *name, uint64_t *id);
void spool__format_id(uint64_t id, char out[SPOOL_ID_SIZE]);
/* The ids in use (s->ids): hold one more time, release once, ask. */
void spool__id_hold(spool_t *s, const char *id);
void spool__id_release(spool_t *s, const char *id);
bool spool__id_held(const spool_t *s, const char *id);
/* New ids start above id (a queue id string; anything else is ignored). */
void spool__id_raise(spool_t *s, const char *id);
/*
 * Rename from to to in dirfd, never over an existing entry: 0,
 * SPOOL_EEXIST when to exists, or -errno.  With RENAME_NOREPLACE, or
 * where the file system refuses it (EINVAL), by a check and a rename
 * under the spool's lock: only this process names entries in its spool.
 */
int spool__rename(spool_t *s, int dirfd, const char *from, const char *to);
/* The name of a writer's (or a move's) temporary file, ID.tmp. */
void spool__tmp_name(const char *id, char *name, size_t size);
/* dir/name, allocated. */
char *spool__path(const char *dir, const char *name);
/* A journal segment's file name. */
void spool__seg_name(uint64_t seq, char out[SPOOL__JSEQ_LEN + 1]);
/* Whether name is a segment's (16 hex digits), and its number. */
bool spool__seq_name(const char *name, uint64_t *seq);

/* Every entry name of the directory, sorted; the caller frees names[i]
 * and names.  0 or -errno.  Each name's type as the directory gave it
 * is kept after its NUL: spool__list_type(). */
int spool__list(int dirfd, char ***names, size_t *n);
/* The d_type (DT_REG, DT_DIR, ..., DT_UNKNOWN) of a name spool__list()
 * gave. */
static inline unsigned char spool__list_type(const char *name)
{
    return (unsigned char)name[strlen(name) + 1];
}
/* strcmp() of two char * for qsort() and bsearch(), as spool__list() sorts. */
int spool__cmp_names(const void *a, const void *b);

/* pread exactly n bytes: 0, -errno, or SPOOL_EPARTIAL at the end of file. */
int spool__read_at(int fd, void *p, size_t n, uint64_t off);
/* pwrite all of p, retrying short writes.  0 or -errno. */
int spool__pwrite_all(const spool_io_t *io, int fd, const void *p, size_t n, uint64_t off);

/* ---- The group commit (spool_group.c) ---- */

/* A new item of the given kind for message id ("" for none). */
spool_item_t *spool__item_new(spool_t *s, spool_item_kind_t kind, const char *id);
/* The item uses segment g: it stays until the item is done. */
void spool__item_use(spool_item_t *it, spool_seg_t *g);
/* Queue it in its lane, and start a pass unless one is running. */
void spool__enqueue(spool_t *s, spool_item_t *it);
/* One fsync or syncfs, counted in the job: 0 or a negative errno. */
int spool__job_sync(spool_job_t *job, int (*sync)(int fd), int fd);

/* ---- The commit journal (spool_journal.c) ---- */

/* A journal message's state in s->moving. */
#define SPOOL__MOVING ((void *)1) /* its file is being made */
#define SPOOL__MOVED ((void *)2)  /* its file is durable: updates go there */
/* Its file is durable, but its record may still say M (the F mark
 * failed): it is read from the segment until removed, and its removal
 * marks the record D. */
#define SPOOL__MOVED_UNMARKED ((void *)3)

/* The journal's directory, made (durably) if missing.  0 or -errno. */
int spool__journal_open(spool_t *s);
/* The segment numbered seq, or NULL. */
spool_seg_t *spool__seg_find(spool_t *s, uint64_t seq);
/* A segment object for a file already open (fd) or -1; on s->segs. */
spool_seg_t *spool__seg_add(spool_t *s, uint64_t seq, int fd);
/* Take g off s->segs, close it, free it.  The ids its records name stay
 * held unless its file is gone and spool__seg_release_ids() said so. */
void spool__seg_free(spool_t *s, spool_seg_t *g);
/* g's record of id is on disk: id is held while g's file is. */
void spool__seg_hold(spool_t *s, spool_seg_t *g, const char *id);
/* g's file is gone: the ids its records named are free of it. */
void spool__seg_release_ids(spool_t *s, spool_seg_t *g);
/* Queue g's removal if it is full, has nothing queued and no pass uses it. */
void spool__seg_maybe_drop(spool_t *s, spool_seg_t *g);

/* When a commit pass starts, on the loop thread: its records' places. */
void spool__journal_place(spool_t *s, spool_item_t *items);
/* fsync the journal's directory: 0, its error, or -EIO when a sync of it
 * failed since since (a jdir_sync_errors count): the kernel may have
 * reported that entry's error to the other one. */
int spool__journal_dir_sync(spool_job_t *job, uint64_t since);
/* A prepare item's work, in its pass (a job of the state lane). */
void spool__journal_prepare(spool_job_t *job, spool_item_t *it);
/* Its pass is done, on the loop thread: the segment is next, or gone. */
void spool__journal_prepared(spool_t *s, spool_item_t *it);
/* Whether it is the removal of a message that lives only in the journal
 * (nothing to unlink): it goes in the commit lane, its D mark with the
 * appends. */
bool spool__remove_in_journal(const spool_item_t *it);
/* Stage one, job 0: the pass's records and in-journal removals' D marks
 * written and synced. */
void spool__journal_append(spool_job_t *job);
/* Stage one: a journal message's first state record gives it a file. */
void spool__journal_move(spool_job_t *job, spool_item_t *it);
/* Stage two, after the directory fsync: F and D marks, synced. */
void spool__journal_marks(spool_job_t *job);

/* ---- What the scan keeps for the admin (spool_aside.c) ---- */

/* The longest name spool__set_aside() and spool__write_aside() give. */
#define SPOOL__ASIDE_SIZE 300

/*
 * Rename dirfd's entry name to a free name that the scan never takes
 * again: NAME.corrupt, or NAME.1.corrupt to NAME.9.corrupt when that is
 * taken, never over an existing entry.  0 and the new name in out, or
 * SPOOL_EEXIST (all taken) or -errno.  Not durable until the directory
 * is fsynced.
 */
int spool__set_aside(spool_t *s, int dirfd, const char *name, char out[SPOOL__ASIDE_SIZE]);
/*
 * Write p[0..n) as a new file of the spool directory named as above from
 * base (BASE.corrupt, ...), durably: the file and the directory fsynced.
 * A file of such a name that holds exactly these bytes already is taken
 * for the copy (a scan before a crash made it).  0 and the name in out,
 * or a negative code, and then no file of it is left.
 */
int spool__write_aside(spool_t *s, const char *base, const void *p, size_t n,
                       char out[SPOOL__ASIDE_SIZE]);

#endif
