/*
 * spool_int - what spool.c (writers, group commit) and spool_file.c (the
 * record format, loading, scanning) share.  Not for other modules.
 *
 * File layout (docs/spool.md has the full description):
 *
 *     "MXFSPL01"                 magic and format version
 *     B <len> <message bytes>    the body record, first, so its bytes are
 *                                one contiguous range at SPOOL__BODY_OFFSET
 *     I T C H S W F P R...       envelope records, written at commit
 *     E                          END: the message is whole
 *     U...                       recipient state updates, appended later
 *
 * A record is a type byte, an 8-byte big-endian payload length, then the
 * payload.  Integers in payloads are big-endian; strings inside a payload
 * carry a 4-byte length.
 *
 * The commit journal (journal/ in the spool directory) holds small
 * messages instead of a file each: segments named by a 16-digit hex
 * sequence number, each
 *
 *     "MXFJNL01"                 magic and format version
 *     <type> <crc> <len> <image> records, appended by the commit lane
 *
 * where image is exactly a message file as above up to END, len its
 * 4-byte big-endian length and crc (4 bytes) the CRC-32C of len and
 * image.  The
 * type byte is the record's state, rewritten in place: M (queued), D
 * (removed), F (moved to a file of its own), X (a commit that failed).
 */
#ifndef MXFWD_SPOOL_INT_H
#define MXFWD_SPOOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "htab.h"
#include "spool.h"

#define SPOOL__MAGIC "MXFSPL01"
#define SPOOL__MAGIC_LEN 8
#define SPOOL__REC_HDR 9
#define SPOOL__BODY_OFFSET (SPOOL__MAGIC_LEN + SPOOL__REC_HDR)
/* Bytes after the body that a loader accepts (envelope and updates). */
#define SPOOL__TRAILER_MAX (64u * 1024 * 1024)

enum {
    SPOOL__REC_BODY = 'B',
    SPOOL__REC_ID = 'I',
    SPOOL__REC_TIME = 'T',
    SPOOL__REC_CLIENT = 'C',
    SPOOL__REC_HELO = 'H',
    SPOOL__REC_SENDER = 'S',
    SPOOL__REC_SRS = 'W',
    SPOOL__REC_FLAGS = 'F',
    SPOOL__REC_PREPEND = 'P',
    SPOOL__REC_RCPT = 'R',
    SPOOL__REC_END = 'E',
    SPOOL__REC_UPDATE = 'U',
};

/* The commit journal. */
#define SPOOL__JOURNAL "journal"
#define SPOOL__JMAGIC "MXFJNL01"
#define SPOOL__JMAGIC_LEN 8
#define SPOOL__JREC_HDR 9
#define SPOOL__JSEQ_LEN 16
/* Segment numbers are 1 to this (0 means "not in the journal"). */
#define SPOOL__JSEQ_MAX (UINT64_C(1) << 60)
/* A segment takes no more appends once this long. */
#define SPOOL__JSEG_MAX (4u * 1024 * 1024)
/* The largest message image the journal takes; bigger ones get a file. */
#define SPOOL__JIMAGE_MAX (64u * 1024)

enum {
    SPOOL__J_QUEUED = 'M',
    SPOOL__J_REMOVED = 'D',
    SPOOL__J_MOVED = 'F',
    SPOOL__J_FAILED = 'X',
};

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
    bool dropping;              /* its removal is queued */
    unsigned live;              /* records not yet removed (M or F on disk) */
    unsigned refs;              /* items of passes that use it */
    /* fdatasyncs of fd, one at a time, and the count of those that failed:
     * the kernel reports a write-back error once per open file, and both
     * lanes sync through this one (see spool_seg_sync()). */
    pthread_mutex_t sync_mu;
    atomic_uint_fast64_t sync_errors;
} spool_seg_t;

typedef struct spool_item spool_item_t;
typedef struct spool_pass spool_pass_t;

/* One executor job of a pass (see spool.c). */
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
 * callback, and commits a DSN before it records the bounce.
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
     * and the count of those that failed (see spool_shared_sync()). */
    pthread_mutex_t sync_mu;
    atomic_uint_fast64_t sync_errors;

    /* The commit journal: its directory, and its segments. */
    int jdirfd;                /* -1 with files_only */
    char *jdir;
    bool files_only;
    spool_seg_t *segs;         /* loop thread */
    spool_seg_t *jcur;         /* takes new records; NULL: make one */
    uint64_t jseq;             /* the last segment number used */
    htab_t *moving;            /* journal message id -> SPOOL__MOVING or SPOOL__MOVED */

    /* Loop thread only. */
    spool_executor_t exec;
    int64_t (*clock_us)(void *arg);
    void *clock_arg;
    unsigned max_batch;
    unsigned sync_jobs;
    uint64_t last_id;
    bool scanned;
    bool used;                 /* a writer was opened: too late to scan */
    unsigned writers;
    spool_lane_t lanes[SPOOL__LANES];
    spool_stats_t stats;
};

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
/* dir/name, allocated. */
char *spool__path(const char *dir, const char *name);
/* A journal segment's file name. */
void spool__seg_name(uint64_t seq, char out[SPOOL__JSEQ_LEN + 1]);

/* Every entry name of the directory, sorted; the caller frees names[i]
 * and names.  0 or -errno. */
int spool__list(int dirfd, char ***names, size_t *n);

/* A journal message's state in s->moving. */
#define SPOOL__MOVING ((void *)1) /* its file is being made */
#define SPOOL__MOVED ((void *)2)  /* its file is durable: updates go there */
/* Its file is durable, but its record may still say M (the F mark
 * failed): it is read from the segment until removed, and its removal
 * marks the record D. */
#define SPOOL__MOVED_UNMARKED ((void *)3)

/* Whether name is a segment's (16 hex digits), and its number. */
bool spool__seq_name(const char *name, uint64_t *seq);
/* The segment numbered seq, or NULL. */
spool_seg_t *spool__seg_find(spool_t *s, uint64_t seq);
/* A segment object for a file already open (fd) or -1; on s->segs. */
spool_seg_t *spool__seg_add(spool_t *s, uint64_t seq, int fd);
/* Take g off s->segs, close it, free it. */
void spool__seg_free(spool_t *s, spool_seg_t *g);
uint32_t spool__crc32c(const void *p, size_t n);
/* Fill in the header of the journal record at rec whose len-byte image
 * already follows it (at rec + SPOOL__JREC_HDR): type M, the CRC, len. */
void spool__jrec_seal(unsigned char *rec, uint32_t len);
/* Parse a message image (a file's bytes up to END, updates allowed after)
 * from memory: 0 and *out, SPOOL_EPARTIAL or SPOOL_ECORRUPT.  path is
 * where the bytes live, base the image's offset in it. */
int spool__parse_image(const char *path, uint64_t base, const unsigned char *p, size_t n,
                       spool_msg_t **out);

/* The body record's header, with the length still to be patched. */
void spool__put_header(buf_t *b, uint64_t body_len);
/* Big-endian u64 into 8 bytes (for patching the body length). */
void spool__put_be64(unsigned char *p, uint64_t v);
/* Envelope records and END.  SPOOL_EINVAL for a bad envelope. */
int spool__encode_trailer(buf_t *b, const char *id, int64_t arrival_us,
                          const spool_envelope_t *env);
int spool__check_updates(const spool_msg_t *msg, const spool_update_t *u, size_t n);
void spool__encode_update(buf_t *b, const spool_update_t *u, size_t n);
/* Apply checked updates to the in-memory message. */
void spool__apply(spool_msg_t *msg, const spool_update_t *u, size_t n);
/* The message an envelope describes, as spool_msg_t (all pending). */
spool_msg_t *spool__msg_new(const char *dir, const char *id, int64_t arrival_us,
                            uint64_t body_len, const spool_envelope_t *env);

/* Load one committed file: 0 and *out, SPOOL_EPARTIAL, SPOOL_ECORRUPT or
 * -errno.  A torn update record at the end is cut off the file. */
int spool__load(int dirfd, const char *dir, const char *name, const spool_io_t *io,
                spool_msg_t **out);

/* pread exactly n bytes: 0, -errno, or SPOOL_EPARTIAL at the end of file. */
int spool__read_at(int fd, void *p, size_t n, uint64_t off);
/* pwrite all of p, retrying short writes.  0 or -errno. */
int spool__pwrite_all(const spool_io_t *io, int fd, const void *p, size_t n, uint64_t off);

#endif
