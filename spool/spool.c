/*
 * The spool: opening and locking the directory, queue ids, writers, and
 * the group commit that makes commits, state updates and removals durable
 * together.  The file format lives in spool_file.c.
 */
#include "spool.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "htab.h"
#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

/*
 * Writers buffer this much before a write(2): a 4 KiB message then costs
 * one system call at commit, and memory per session in DATA stays bounded
 * whatever the message size.
 */
#define SPOOL_WRITE_BUF (16 * 1024)

typedef enum {
    SPOOL_ITEM_COMMIT,  /* sync the writer's file, rename it, fsync the directory */
    SPOOL_ITEM_JCOMMIT, /* append a message to the journal, fdatasync it */
    SPOOL_ITEM_UPDATE,  /* append a state record to a message file, sync it */
    SPOOL_ITEM_MOVE,    /* a journal message's first state record: its own file */
    SPOOL_ITEM_REMOVE,  /* unlink a message file, fsync the directory; mark it
                         * removed in the journal */
    SPOOL_ITEM_DROP,    /* unlink a journal segment nothing is queued in */
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
    uint64_t seg_errors; /* seg's sync_errors when they began to be written */
    spool_commit_cb commit_cb;
    spool_done_cb done_cb;
    void *arg;
    uint64_t errors_seen; /* sync_errors when its bytes began to be written */
};

struct spool_writer {
    spool_t *s;
    char id[SPOOL_ID_SIZE];
    int fd;
    int err;           /* first write error, sticky */
    uint64_t flushed;  /* file offset where buf starts */
    uint64_t size;     /* message bytes offered */
    unsigned char *buf;
    size_t used;
    uint64_t errors_seen; /* sync_errors at open */
};

static void spool_seg_maybe_drop(spool_t *s, spool_seg_t *g);
static void spool_item_use(spool_item_t *it, spool_seg_t *g);

/* ---- System calls through the test hook ---- */

static ssize_t spool_sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

static int spool_sys_fsync(int fd)
{
    return fsync(fd);
}

static int spool_sys_syncfs(int fd)
{
    return syncfs(fd);
}

static int64_t spool_sys_clock(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Journal segments ---- */

spool_seg_t *spool__seg_find(spool_t *s, uint64_t seq)
{
    for (spool_seg_t *g = s->segs; g != NULL; g = g->next)
        if (g->seq == seq)
            return g;
    return NULL;
}

spool_seg_t *spool__seg_add(spool_t *s, uint64_t seq, int fd)
{
    spool_seg_t *g = xcalloc(1, sizeof(*g)), **link = &s->segs;
    char name[SPOOL__JSEQ_LEN + 1];

    spool__seg_name(seq, name);
    g->seq = seq;
    g->fd = fd;
    g->path = spool__path(s->jdir, name);
    pthread_mutex_init(&g->sync_mu, NULL);
    atomic_init(&g->sync_errors, 0);
    while (*link != NULL && (*link)->seq < seq)
        link = &(*link)->next;
    g->next = *link;
    *link = g;
    return g;
}

void spool__seg_free(spool_t *s, spool_seg_t *g)
{
    for (spool_seg_t **link = &s->segs; *link != NULL; link = &(*link)->next) {
        if (*link == g) {
            *link = g->next;
            break;
        }
    }
    if (s->jcur == g)
        s->jcur = NULL;
    if (g->fd >= 0)
        close(g->fd);
    pthread_mutex_destroy(&g->sync_mu);
    free(g->path);
    free(g);
}

/* The journal's directory, made (durably) if missing. */
static int spool_open_journal(spool_t *s)
{
    char **names = NULL;
    size_t n = 0;
    int err;

    s->jdir = spool__path(s->dir, SPOOL__JOURNAL);
    if ((err = file_mkdirs(s->jdir, 0700)) != 0)
        return err;
    s->jdirfd = open(s->jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->jdirfd < 0)
        return -errno;
    s->moving = htab_new(16);
    /* New segments are numbered above every one there, scan or not. */
    if ((err = spool__list(s->jdirfd, &names, &n)) != 0)
        return err;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;

        if (spool__seq_name(names[i], &seq) && seq > s->jseq)
            s->jseq = seq;
        free(names[i]);
    }
    free(names);
    return 0;
}

/* Everything of s but its directory descriptor and path. */
static void spool_free(spool_t *s)
{
    while (s->segs != NULL)
        spool__seg_free(s, s->segs);
    if (s->moving != NULL)
        htab_free(s->moving, NULL);
    if (s->jdirfd >= 0)
        close(s->jdirfd);
    free(s->jdir);
    free(s);
}

/*
 * The segment a record of need bytes goes to: the current one, or a new
 * one when it is full.  A new segment is created here, on the loop thread
 * (one open and an 8-byte write for every 4 MiB of messages); the first
 * pass that writes to it makes its directory entry durable.  NULL when no
 * segment can be made: the message then gets a file.
 */
static spool_seg_t *spool_jseg(spool_t *s, size_t need)
{
    spool_seg_t *g = s->jcur;
    char name[SPOOL__JSEQ_LEN + 1];
    int fd = -1;

    if (g != NULL && !g->full && g->size + need <= SPOOL__JSEG_MAX)
        return g;
    if (g != NULL) {
        g->full = true;
        s->jcur = NULL;
        spool_seg_maybe_drop(s, g);
    }
    /* A name taken (by a file someone put there) is skipped. */
    for (int tries = 0; tries < 8 && s->jseq < SPOOL__JSEQ_MAX; tries++) {
        spool__seg_name(++s->jseq, name);
        fd = openat(s->jdirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0)
        return NULL;
    if ((errno = -spool__pwrite_all(&s->io, fd, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN, 0)) != 0) {
        int err = errno;

        close(fd);
        unlinkat(s->jdirfd, name, 0);
        errno = err;
        return NULL;
    }
    g = spool__seg_add(s, s->jseq, fd);
    g->size = SPOOL__JMAGIC_LEN;
    s->jcur = g;
    return g;
}

/* ---- Open, close ---- */

int spool_open(const char *dir, const spool_options_t *opt, spool_t **out)
{
    spool_t *s = NULL;
    char *abs = NULL, **names = NULL;
    size_t n = 0;
    int dirfd = -1, err;

    *out = NULL;
    if (dir == NULL || dir[0] == '\0' || opt == NULL || opt->exec.submit == NULL)
        return SPOOL_EINVAL;
    if ((err = file_mkdirs(dir, 0700)) != 0)
        goto fail;
    if ((abs = realpath(dir, NULL)) == NULL) {
        err = -errno;
        goto fail;
    }
    dirfd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        err = -errno;
        goto fail;
    }
    if (flock(dirfd, LOCK_EX | LOCK_NB) != 0) {
        err = errno == EWOULDBLOCK ? SPOOL_ELOCKED : -errno;
        goto fail;
    }
    if ((err = spool__list(dirfd, &names, &n)) != 0)
        goto fail;

    s = xcalloc(1, sizeof(*s));
    s->dir = abs;
    s->dirfd = dirfd;
    s->jdirfd = -1;
    s->files_only = opt->files_only;
    if (!s->files_only && (err = spool_open_journal(s)) != 0) {
        s->dir = NULL;
        spool_free(s);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        goto fail;
    }
    s->io.pwrite = opt->io && opt->io->pwrite ? opt->io->pwrite : spool_sys_pwrite;
    s->io.fsync = opt->io && opt->io->fsync ? opt->io->fsync : spool_sys_fsync;
    s->io.syncfs = opt->io && opt->io->syncfs ? opt->io->syncfs : spool_sys_syncfs;
    s->sync = opt->sync;
    pthread_mutex_init(&s->sync_mu, NULL);
    atomic_init(&s->sync_errors, 0);
    s->exec = opt->exec;
    s->clock_us = opt->clock_us ? opt->clock_us : spool_sys_clock;
    s->clock_arg = opt->clock_arg;
    s->max_batch = opt->max_batch ? opt->max_batch : SPOOL_MAX_BATCH;
    s->sync_jobs = opt->sync_jobs ? opt->sync_jobs : SPOOL_SYNC_JOBS;
    if (s->sync_jobs > SPOOL_SYNC_JOBS_MAX)
        s->sync_jobs = SPOOL_SYNC_JOBS_MAX;
    for (int i = 0; i < SPOOL__LANES; i++)
        s->lanes[i].pending_tail = &s->lanes[i].pending;
    /* New ids start above every id on disk, whatever the clock says. */
    for (size_t i = 0; i < n; i++) {
        uint64_t id;

        if (spool__classify(names[i], &id) != SPOOL__NAME_OTHER && id > s->last_id)
            s->last_id = id;
        free(names[i]);
    }
    free(names);
    *out = s;
    return 0;
fail:
    if (dirfd >= 0)
        close(dirfd);
    free(abs);
    return err;
}

int spool_close(spool_t *s)
{
    if (s == NULL)
        return 0;
    if (s->writers > 0)
        return SPOOL_EBUSY;
    for (int i = 0; i < SPOOL__LANES; i++)
        if (s->lanes[i].in_flight || s->lanes[i].pending != NULL)
            return SPOOL_EBUSY;
    close(s->dirfd); /* releases the flock */
    pthread_mutex_destroy(&s->sync_mu);
    free(s->dir);
    spool_free(s);
    return 0;
}

const char *spool_dir(const spool_t *s)
{
    return s->dir;
}

void spool_get_stats(const spool_t *s, spool_stats_t *st)
{
    *st = s->stats;
    st->writers = s->writers;
}

const char *spool_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SPOOL_ELOCKED:
        return "spool is in use by another process";
    case SPOOL_EPARTIAL:
        return "partial message file";
    case SPOOL_ECORRUPT:
        return "corrupt message file";
    case SPOOL_EINVAL:
        return "invalid argument";
    case SPOOL_EBUSY:
        return "spool busy";
    default:
        if (err < 0 && err > -4096)
            return strerror(-err);
        return "unknown spool error";
    }
}

/* ---- Group commit ---- */

/*
 * A pass runs in two stages.  First up to sync_jobs jobs in parallel, each
 * for the items whose id hashes to it (so every append to one file is in
 * one job, in order): append update records, unlink removed messages and,
 * with SPOOL_SYNC_FILES, start writeback and fsync each file.  Parallel
 * fsyncs matter: the block layer merges the cache flushes of concurrent
 * fsyncs and a journalling file system commits them together, while one
 * thread would wait for each flush in turn.  Then the job that finishes
 * last, with SPOOL_SYNC_FILESYSTEM, syncs the file system once, and names
 * the files: renames, the directory fsync.
 */
struct spool_pass {
    spool_t *s;
    spool_lane_t *lane;
    spool_item_t *items;
    unsigned njobs;
    unsigned jobs_left;         /* loop thread: sync jobs not yet completed */
    atomic_uint workers_left;   /* executor threads: sync jobs still working */
    spool_job_t jobs[SPOOL_SYNC_JOBS_MAX];
};

static void spool_item_free(spool_item_t *it)
{
    free(it->rec);
    free(it);
}

/* One fsync or syncfs, counted: 0 or a negative errno. */
static int spool_sync(spool_job_t *job, int (*sync)(int fd), int fd)
{
    job->fsyncs++;
    return sync(fd) == 0 ? 0 : (errno ? -errno : -EIO);
}

static void spool_tmp_name(const char *id, char *name, size_t size)
{
    str_fmt(name, size, "%s%s", id, SPOOL__TMP_SUFFIX);
}

static bool spool_job_owns(const spool_job_t *job, const spool_item_t *it)
{
    return it->job == job->index;
}

/* Update item: append its record to the message file. */
static void spool_append(spool_t *s, spool_item_t *it)
{
    struct stat st;

    it->fd = openat(s->dirfd, it->id, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (it->fd < 0 || fstat(it->fd, &st) != 0) {
        it->status = -errno;
        return;
    }
    it->status = spool__pwrite_all(&s->io, it->fd, it->rec, it->rec_len, (uint64_t)st.st_size);
    /* Take a partial append back, so the file keeps ending in whole
     * records; a crash here is handled by the loader instead. */
    if (it->status != 0 && ftruncate(it->fd, st.st_size) != 0) {
        /* Nothing more to do: the next scan cuts the torn record. */
    }
}

/*
 * A sync through the spool directory's descriptor, shared by both lanes.
 * The kernel reports a write-back error once per open file: a syncfs (or
 * a directory fsync) that writes out another pass's blocks, or a writer's
 * not yet committed, takes the error that concerns them, and theirs then
 * returns 0.  So these syncs run one at a time and count their failures,
 * and an item is durable only if no such sync failed since its bytes
 * began to be written (spool_name_work()): an error may fail more than it
 * concerns, never fewer.  *errors: the count after this sync.
 */
static int spool_shared_sync(spool_job_t *job, int (*sync)(int fd), uint64_t *errors)
{
    spool_t *s = job->pass->s;
    int err;

    pthread_mutex_lock(&s->sync_mu);
    if ((err = spool_sync(job, sync, s->dirfd)) != 0)
        atomic_fetch_add(&s->sync_errors, 1);
    *errors = atomic_load(&s->sync_errors);
    pthread_mutex_unlock(&s->sync_mu);
    return err;
}

/*
 * SPOOL_SYNC_FILESYSTEM: the bytes of every file the pass wrote, durable
 * with one syncfs(2).  An error fails them all: which file's blocks could
 * not be written is not known.  false when there was nothing to sync.
 */
static bool spool_syncfs(spool_job_t *job, uint64_t *errors)
{
    bool written = false;
    int err;

    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        written |= it->fd >= 0 && it->status == 0;
    if (!written)
        return false;
    if ((err = spool_shared_sync(job, job->pass->s->io.syncfs, errors)) != 0)
        for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
            if (it->fd >= 0 && it->status == 0)
                it->status = err;
    return true;
}

/*
 * Fail with status the items for which a sync through the directory
 * failed since their bytes began to be written, this pass's own included:
 * the error may have been theirs (spool_shared_sync()).  Nothing failed
 * may stay behind to be delivered, so a renamed file is removed again.
 * An update appended with SPOOL_SYNC_FILES was made durable by an fsync
 * of its own file, which reports that file's errors whoever saw them
 * first: it keeps its status.
 */
static void spool_fail_since(spool_t *s, spool_item_t *items, uint64_t errors, int status)
{
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        if (it->status != 0 || it->errors_seen == errors || it->kind == SPOOL_ITEM_JCOMMIT ||
            it->kind == SPOOL_ITEM_DROP || (it->kind == SPOOL_ITEM_REMOVE && !it->unlinked) ||
            (it->kind == SPOOL_ITEM_UPDATE && s->sync == SPOOL_SYNC_FILES))
            continue;
        if (it->renamed)
            unlinkat(s->dirfd, it->id, 0);
        it->renamed = false;
        it->status = status;
    }
}

/* ---- The journal in a pass ---- */

/*
 * fdatasync a segment, as spool_shared_sync() does the directory: both
 * lanes write to a segment (appends, marks) and sync it through its one
 * descriptor, so one sync at a time and a count of those that failed.
 */
static int spool_seg_sync(spool_job_t *job, spool_seg_t *g, uint64_t *errors)
{
    int err;

    pthread_mutex_lock(&g->sync_mu);
    if ((err = spool_sync(job, job->pass->s->io.fsync, g->fd)) != 0)
        atomic_fetch_add(&g->sync_errors, 1);
    *errors = atomic_load(&g->sync_errors);
    pthread_mutex_unlock(&g->sync_mu);
    return err;
}

/* Whether it is the first item of the pass with bytes written to its
 * segment: the one whose sync covers the others'. */
static bool spool_seg_first(const spool_item_t *items, const spool_item_t *it)
{
    for (const spool_item_t *o = items; o != it; o = o->next)
        if (o->jwritten && o->seg == it->seg)
            return false;
    return it->jwritten;
}

/* Write n bytes of it's record in place (the record, or its state byte);
 * spool_journal_flush() makes them durable.  0 or -errno. */
static int spool_journal_write(spool_t *s, spool_item_t *it, const void *p, size_t n)
{
    int err;

    it->seg_errors = atomic_load(&it->seg->sync_errors);
    err = spool__pwrite_all(&s->io, it->seg->fd, p, n, it->joff);
    it->jwritten = err == 0;
    return err;
}

/*
 * One fdatasync for each segment the pass's items wrote to (jwritten).
 * Each such item's jstatus: 0 once its bytes are durable, the sync's
 * error, or EIO when a sync of its segment failed since they were
 * written (the error may have been theirs); the others' 0.
 */
static void spool_journal_flush(spool_job_t *job)
{
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        it->jstatus = 0;
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        uint64_t errors;
        int err;

        if (!spool_seg_first(job->pass->items, it))
            continue;
        err = spool_seg_sync(job, it->seg, &errors);
        for (spool_item_t *o = it; o != NULL; o = o->next)
            if (o->jwritten && o->seg == it->seg)
                o->jstatus = err != 0 ? err : o->seg_errors != errors ? -EIO : 0;
    }
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        it->jwritten = false;
}

/* Fail every journal commit of the pass placed after failed in its segment. */
static void spool_journal_fail_after(spool_item_t *items, const spool_item_t *failed)
{
    for (spool_item_t *o = items; o != NULL; o = o->next)
        if (o->kind == SPOOL_ITEM_JCOMMIT && o->seg == failed->seg && o->joff > failed->joff &&
            o->status == 0)
            o->status = -EIO;
}

/*
 * Stage one of a commit pass, in job 0: the new messages' records,
 * written where the loop thread placed them when the pass started (one
 * after the other, in commit order), then synced.  A new segment's directory entry is
 * made durable first.  A record whose sync failed is marked failed, so
 * that if its bytes reached the disk all the same a restart does not
 * take it for a message the client was told about.
 */
static void spool_journal_append(spool_job_t *job)
{
    spool_t *s = job->pass->s;
    bool any = false, new_seg = false;
    int err;

    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind != SPOOL_ITEM_JCOMMIT || it->seg == NULL)
            continue;
        any = true;
        new_seg |= !it->seg->dir_synced;
    }
    if (!any)
        return;
    if (new_seg && (err = spool_sync(job, s->io.fsync, s->jdirfd)) != 0) {
        for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
            if (it->kind == SPOOL_ITEM_JCOMMIT && it->status == 0)
                it->status = err;
        return;
    }
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind != SPOOL_ITEM_JCOMMIT || it->status != 0)
            continue;
        spool__jrec_seal(it->rec, (uint32_t)(it->rec_len - SPOOL__JREC_HDR));
        it->status = spool_journal_write(s, it, it->rec, it->rec_len);
        it->jlanded = it->status == 0;
        if (it->status != 0)
            spool_journal_fail_after(job->pass->items, it);
    }
    spool_journal_flush(job);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (it->kind == SPOOL_ITEM_JCOMMIT && it->jlanded && it->status == 0)
            it->status = it->jstatus;
    /* A record that failed may be torn, and the scan reads no further:
     * every later record of its segment fails too. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (it->kind == SPOOL_ITEM_JCOMMIT && it->seg != NULL && it->status != 0)
            spool_journal_fail_after(job->pass->items, it);
    /* Best effort: the failed records marked so, durably, before the 451s
     * go out, so that a restart does not take a record whose bytes made
     * it all the same for a message. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        char failed = SPOOL__J_FAILED;

        if (it->kind == SPOOL_ITEM_JCOMMIT && it->jlanded && it->status != 0)
            (void)spool_journal_write(s, it, &failed, 1);
    }
    spool_journal_flush(job);
}

/*
 * A journal message's first state record: the message gets a file of its
 * own, its image from the journal with the record after it, synced and
 * renamed into place here (so later appends of the same pass, in this
 * job, find it); stage two fsyncs the directory and then marks the
 * journal record moved.
 */
static void spool_move(spool_job_t *job, spool_item_t *it)
{
    spool_t *s = job->pass->s;
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];
    size_t len = (size_t)it->jlen + it->rec_len;
    unsigned char *img = xmalloc(len);
    int fd;

    it->status = spool__read_at(it->seg->fd, img, (size_t)it->jlen, it->joff + SPOOL__JREC_HDR);
    if (it->status == SPOOL_EPARTIAL)
        it->status = -EIO;
    if (it->status != 0) {
        free(img);
        return;
    }
    memcpy(img + it->jlen, it->rec, it->rec_len);
    spool_tmp_name(it->id, tmp, sizeof(tmp));
    fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        it->status = -errno;
        free(img);
        return;
    }
    it->status = spool__pwrite_all(&s->io, fd, img, len, 0);
    if (it->status == 0)
        it->status = spool_sync(job, s->io.fsync, fd);
    close(fd);
    free(img);
    if (it->status == 0 && renameat(s->dirfd, tmp, s->dirfd, it->id) != 0)
        it->status = -errno;
    if (it->status == 0)
        it->renamed = true;
    else
        unlinkat(s->dirfd, tmp, 0);
}

/*
 * Stage two, the journal's part, after the directory fsync: a moved
 * message's record says so (its file is durable now), a removed one's
 * says removed (its file, if it had one, is gone durably now); then the
 * segments are synced.  A move that failed takes its file back, and the
 * state records appended to it in this pass fail with it.
 */
static void spool_journal_marks(spool_job_t *job)
{
    spool_t *s = job->pass->s;

    /* A moved message's file is durable by now, whatever its record says
     * (a file wins over an M record at the scan), so a failed mark fails
     * nothing; but until the record says F the message must keep its
     * record, for its removal to mark it D (fmarked).  Marks are written
     * in queue order: a removal's D after a move's F in the same pass. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        char moved = SPOOL__J_MOVED, removed = SPOOL__J_REMOVED;

        if (it->kind == SPOOL_ITEM_MOVE && it->status == 0)
            it->fmarked = spool_journal_write(s, it, &moved, 1) == 0;
        else if (it->kind == SPOOL_ITEM_REMOVE && it->seg != NULL && it->status == 0)
            it->status = spool_journal_write(s, it, &removed, 1);
    }
    spool_journal_flush(job);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_MOVE && it->fmarked)
            it->fmarked = it->jstatus == 0;
        else if (it->kind == SPOOL_ITEM_REMOVE && it->seg != NULL && it->status == 0)
            it->status = it->jstatus;
    }
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind != SPOOL_ITEM_MOVE || it->status == 0)
            continue;
        if (it->renamed)
            unlinkat(s->dirfd, it->id, 0);
        it->renamed = false;
        for (spool_item_t *o = it->next; o != NULL; o = o->next)
            if (o->kind == SPOOL_ITEM_UPDATE && o->status == 0 && strcmp(o->id, it->id) == 0)
                o->status = it->status;
    }
}

/*
 * Stage two: a file's final name exists only once its bytes are durable
 * (stage one, or the syncfs here), and the names are durable (directory
 * fsync) before anyone is told.
 */
static void spool_name_work(spool_job_t *job)
{
    spool_t *s = job->pass->s;
    spool_item_t *items = job->pass->items;
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];
    bool dir_changed = false;
    uint64_t errors = 0;
    int err;

    /* Checked before the renames too, so that a stale commit is not
     * named only to be unlinked again. */
    if (s->sync == SPOOL_SYNC_FILESYSTEM && spool_syncfs(job, &errors))
        spool_fail_since(s, items, errors, -EIO);
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_REMOVE) {
            dir_changed |= it->unlinked;
        } else if (it->kind == SPOOL_ITEM_MOVE) {
            dir_changed |= it->renamed;
        } else if (it->kind == SPOOL_ITEM_COMMIT && it->status == 0) {
            spool_tmp_name(it->id, tmp, sizeof(tmp));
            if (renameat(s->dirfd, tmp, s->dirfd, it->id) == 0)
                it->renamed = dir_changed = true;
            else
                it->status = -errno;
        }
    }
    /* A failure of this fsync fails every name of the pass: none is known
     * to be durable. */
    if (dir_changed) {
        err = spool_shared_sync(job, s->io.fsync, &errors);
        spool_fail_since(s, items, errors, err != 0 ? err : -EIO);
    }
    if (s->jdirfd >= 0)
        spool_journal_marks(job);

    for (spool_item_t *it = items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_COMMIT && !it->renamed) {
            spool_tmp_name(it->id, tmp, sizeof(tmp));
            unlinkat(s->dirfd, tmp, 0);
        }
        if (it->fd >= 0)
            close(it->fd);
        it->fd = -1;
    }
}

/*
 * SPOOL_SYNC_FILES: the bytes of this job's files, durable.  Starting the
 * writeback of every file before the first fsync sends their data to the
 * disk together and, on a journalling file system, puts every allocation
 * in one transaction that the first fsync commits.
 */
static void spool_fsync_files(spool_job_t *job)
{
    int err;

    /* Other jobs write their items' fd and status meanwhile: look at an
     * item's only once it is known to be this job's. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (spool_job_owns(job, it) && it->fd >= 0 && it->status == 0)
            sync_file_range(it->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (spool_job_owns(job, it) && it->fd >= 0 && it->status == 0 &&
            (err = spool_sync(job, job->pass->s->io.fsync, it->fd)) != 0)
            it->status = err;
}

/*
 * A small message that got no journal segment: its file, written here
 * from the journal record's image, then synced and named like any
 * commit's.
 */
static void spool_write_image(spool_t *s, spool_item_t *it)
{
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];

    spool_tmp_name(it->id, tmp, sizeof(tmp));
    it->fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (it->fd < 0) {
        it->status = -errno;
        return;
    }
    it->status = spool__pwrite_all(&s->io, it->fd, it->rec + SPOOL__JREC_HDR,
                                   it->rec_len - SPOOL__JREC_HDR, 0);
}

/* Stage one, on an executor thread. */
static void spool_sync_work(void *ctx)
{
    spool_job_t *job = ctx;
    spool_t *s = job->pass->s;

    if (job->index == 0)
        spool_journal_append(job);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (it->kind == SPOOL_ITEM_COMMIT && it->fd < 0 && it->rec != NULL &&
            spool_job_owns(job, it))
            spool_write_image(s, it);
    /* In queue order: a move makes the file later appends go to. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_UPDATE && spool_job_owns(job, it))
            spool_append(s, it);
        else if (it->kind == SPOOL_ITEM_MOVE && spool_job_owns(job, it))
            spool_move(job, it);
    }
    if (s->sync == SPOOL_SYNC_FILES)
        spool_fsync_files(job);
    /* Removals need no fsync of their own, only the directory's, which
     * stage two does for the whole pass. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (!spool_job_owns(job, it))
            continue;
        if (it->kind == SPOOL_ITEM_DROP) {
            char name[SPOOL__JSEQ_LEN + 1];

            spool__seg_name(it->seg->seq, name);
            unlinkat(s->jdirfd, name, 0); /* left behind: the next scan drops it */
            continue;
        }
        if (it->kind != SPOOL_ITEM_REMOVE || (it->seg != NULL && !it->has_file))
            continue;
        if (unlinkat(s->dirfd, it->id, 0) == 0)
            it->unlinked = true;
        else if (errno != ENOENT)
            it->status = -errno;
    }
    /* The job that finishes last names the files, on its own thread: a
     * trip through the loop between the stages would only add waiting.
     * The atomic decrement orders every job's item writes before it. */
    if (atomic_fetch_sub(&job->pass->workers_left, 1) == 1)
        spool_name_work(job);
}

static void spool_kick(spool_t *s, spool_lane_t *lane);

/* The pass is over, on the loop thread: tell everyone. */
static void spool_pass_done(void *ctx)
{
    spool_job_t *job = ctx;
    spool_pass_t *pass = job->pass;
    spool_t *s = pass->s;
    spool_lane_t *lane = pass->lane;
    spool_item_t *it = pass->items, *next;

    s->stats.passes++;
    for (unsigned i = 0; i < pass->njobs; i++)
        s->stats.fsyncs += pass->jobs[i].fsyncs;
    free(pass);
    /* in_flight stays set through the callbacks: work they queue is
     * gathered into the next pass, and spool_close() waits. */
    for (; it != NULL; it = next) {
        spool_seg_t *g = it->seg;

        next = it->next;
        switch (it->kind) {
        case SPOOL_ITEM_JCOMMIT:
            if (it->status == 0) {
                g->dir_synced = true;
                s->stats.journalled++;
            } else if (g != NULL) {
                /* Its tail may be torn: nothing more goes after it. */
                g->full = true;
                g->live--;
            }
            /* fall through */
        case SPOOL_ITEM_COMMIT:
            if (it->status == 0) {
                s->stats.commits++;
                it->commit_cb(it->arg, 0, it->msg);
            } else {
                s->stats.commit_errors++;
                spool_msg_free(it->msg);
                it->commit_cb(it->arg, it->status, NULL);
            }
            break;
        case SPOOL_ITEM_MOVE:
            if (it->status == 0)
                htab_put(s->moving, it->id, SPOOL_ID_LEN,
                         it->fmarked ? SPOOL__MOVED : SPOOL__MOVED_UNMARKED);
            else
                htab_remove(s->moving, it->id, SPOOL_ID_LEN);
            /* fall through */
        case SPOOL_ITEM_UPDATE:
            if (it->status == 0)
                s->stats.updates++;
            if (it->done_cb != NULL)
                it->done_cb(it->arg, it->status);
            break;
        case SPOOL_ITEM_REMOVE:
            if (g != NULL) {
                htab_remove(s->moving, it->id, SPOOL_ID_LEN);
                if (it->status == 0)
                    g->live--;
            }
            if (it->status == 0)
                s->stats.removes++;
            if (it->done_cb != NULL)
                it->done_cb(it->arg, it->status);
            break;
        case SPOOL_ITEM_DROP:
            spool__seg_free(s, g);
            g = NULL;
            break;
        }
        if (g != NULL) {
            g->refs--;
            spool_seg_maybe_drop(s, g);
        }
        spool_item_free(it);
    }
    lane->in_flight = false;
    spool_kick(s, lane);
}

/* A job completed, on the loop thread; after the last, the pass is over
 * (the job that finished its work last has named the files). */
static void spool_job_done(void *ctx)
{
    spool_job_t *job = ctx;
    spool_pass_t *pass = job->pass;

    if (--pass->jobs_left == 0)
        spool_pass_done(&pass->jobs[0]);
}

/*
 * Place a pass's journal records, in commit order, one after the other at
 * the end of the current segment, now that the last pass is over: a
 * segment whose pass failed has been closed by then, so no record goes
 * after one that may be torn (the scan stops at the first such).  An
 * item that gets no segment becomes a commit of a file of its own, which
 * the pass writes from the record's image (spool_write_image()).
 */
static void spool_journal_place(spool_t *s, spool_item_t *items)
{
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        spool_msg_t *m = it->msg;
        spool_seg_t *g;

        if (it->kind != SPOOL_ITEM_JCOMMIT)
            continue;
        if ((g = spool_jseg(s, it->rec_len)) == NULL) {
            it->kind = SPOOL_ITEM_COMMIT; /* fd -1: the image still to write */
            continue;
        }
        spool_item_use(it, g);
        it->joff = g->size;
        g->size += it->rec_len;
        g->live++;
        free(m->path);
        m->path = xstrdup(g->path);
        m->body_offset = it->joff + SPOOL__JREC_HDR + SPOOL__BODY_OFFSET;
        m->jseq = g->seq;
        m->joff = it->joff;
    }
}

/* Start a pass with what is waiting in a lane, unless one is running. */
static void spool_kick(spool_t *s, spool_lane_t *lane)
{
    spool_item_t **link = &lane->pending;
    spool_pass_t *pass;
    unsigned n = 0, nfiles = 0;

    if (lane->in_flight || lane->pending == NULL)
        return;
    while (*link != NULL && n < s->max_batch) {
        nfiles += (*link)->kind != SPOOL_ITEM_JCOMMIT;
        link = &(*link)->next;
        n++;
    }
    pass = xcalloc(1, sizeof(*pass));
    pass->s = s;
    pass->lane = lane;
    pass->items = lane->pending;
    lane->pending = *link;
    *link = NULL;
    if (lane->pending == NULL)
        lane->pending_tail = &lane->pending;
    if (lane == &s->lanes[SPOOL__LANE_COMMIT] && s->jdirfd >= 0)
        spool_journal_place(s, pass->items);
    /* Parallel jobs let the disk overlap fsyncs and unlinks, but each one
     * is a hand-off to a thread that has to be scheduled: a pass is split
     * only when its jobs get several items each. */
    pass->njobs = (nfiles + SPOOL_ITEMS_PER_JOB - 1) / SPOOL_ITEMS_PER_JOB;
    if (pass->njobs > s->sync_jobs)
        pass->njobs = s->sync_jobs;
    if (pass->njobs == 0)
        pass->njobs = 1; /* the journal's appends, in job 0 */
    pass->jobs_left = pass->njobs;
    atomic_init(&pass->workers_left, pass->njobs);
    for (unsigned i = 0; i < pass->njobs; i++) {
        pass->jobs[i].pass = pass;
        pass->jobs[i].index = i;
    }
    /* By queue id, so that every append to one file is in one job; the
     * journal's appends all in job 0. */
    for (spool_item_t *it = pass->items; it != NULL && pass->njobs > 1; it = it->next)
        it->job = it->kind == SPOOL_ITEM_JCOMMIT
                      ? 0
                      : (unsigned)(htab_hash(it->id, SPOOL_ID_LEN) % pass->njobs);
    lane->in_flight = true;
    for (unsigned i = 0; i < pass->njobs; i++)
        s->exec.submit(s->exec.impl, spool_sync_work, spool_job_done, &pass->jobs[i]);
}

static void spool_enqueue(spool_t *s, spool_item_t *it)
{
    bool commit = it->kind == SPOOL_ITEM_COMMIT || it->kind == SPOOL_ITEM_JCOMMIT;
    spool_lane_t *lane = &s->lanes[commit ? SPOOL__LANE_COMMIT : SPOOL__LANE_STATE];

    *lane->pending_tail = it;
    lane->pending_tail = &it->next;
    spool_kick(s, lane);
}

static spool_item_t *spool_item_new(spool_t *s, spool_item_kind_t kind, const char *id)
{
    spool_item_t *it = xcalloc(1, sizeof(*it));

    it->kind = kind;
    it->fd = -1;
    it->errors_seen = atomic_load(&s->sync_errors);
    str_lcpy(it->id, id, sizeof(it->id));
    return it;
}

/* The item uses segment g: it stays until the item is done. */
static void spool_item_use(spool_item_t *it, spool_seg_t *g)
{
    it->seg = g;
    g->refs++;
}

/*
 * A segment that takes no more records, has nothing queued and no pass
 * using it is removed by the next pass of the state lane.  Its records
 * all say removed, moved or failed by then, so if the unlink is lost in a
 * crash the next scan drops it.
 */
static void spool_seg_maybe_drop(spool_t *s, spool_seg_t *g)
{
    spool_item_t *it;

    if (!g->full || g->live > 0 || g->refs > 0 || g->dropping)
        return;
    g->dropping = true;
    if (s->jcur == g)
        s->jcur = NULL;
    it = spool_item_new(s, SPOOL_ITEM_DROP, "");
    spool_item_use(it, g);
    spool_enqueue(s, it);
}

/* ---- Writers ---- */

static void spool_next_id(spool_t *s, char id[SPOOL_ID_SIZE])
{
    int64_t now = s->clock_us(s->clock_arg);
    uint64_t v = now > 0 && (uint64_t)now > s->last_id ? (uint64_t)now : s->last_id + 1;

    s->last_id = v;
    spool__format_id(v, id);
}

/* The writer's temporary file, made when the first bytes go out. */
static int spool_writer_create(spool_writer_t *w)
{
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];

    spool_tmp_name(w->id, tmp, sizeof(tmp));
    w->fd = openat(w->s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    return w->fd < 0 ? -errno : 0;
}

/* Write out the buffer, then n bytes of p (either may be empty). */
static int spool_writer_flush(spool_writer_t *w, const void *p, size_t n)
{
    const spool_io_t *io = &w->s->io;
    int err = 0;

    if (w->err != 0)
        return w->err;
    if (w->fd < 0 && (err = spool_writer_create(w)) != 0) {
        w->err = err;
        return err;
    }
    if (w->used > 0 && (err = spool__pwrite_all(io, w->fd, w->buf, w->used, w->flushed)) == 0) {
        w->flushed += w->used;
        w->used = 0;
    }
    if (err == 0 && n > 0 && (err = spool__pwrite_all(io, w->fd, p, n, w->flushed)) == 0)
        w->flushed += n;
    w->err = err;
    return err;
}

static int spool_writer_put(spool_writer_t *w, const void *p, size_t n)
{
    if (w->err != 0)
        return w->err;
    if (n <= SPOOL_WRITE_BUF - w->used) {
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        return 0;
    }
    if (n >= SPOOL_WRITE_BUF)
        return spool_writer_flush(w, p, n);
    if (spool_writer_flush(w, NULL, 0) != 0)
        return w->err;
    memcpy(w->buf, p, n);
    w->used = n;
    return 0;
}

static void spool_writer_free(spool_writer_t *w, bool unlink_file)
{
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];

    if (unlink_file && w->fd >= 0) {
        spool_tmp_name(w->id, tmp, sizeof(tmp));
        unlinkat(w->s->dirfd, tmp, 0);
    }
    if (w->fd >= 0)
        close(w->fd);
    w->s->writers--;
    free(w->buf);
    free(w);
}

int spool_writer_open(spool_t *s, spool_writer_t **out)
{
    spool_writer_t *w;
    buf_t head;

    *out = NULL;
    w = xcalloc(1, sizeof(*w));
    /* Ids are above everything on disk, so the file the id names, if
     * one is made, is new: O_EXCL says so. */
    spool_next_id(s, w->id);
    s->used = true;
    s->writers++;
    w->s = s;
    w->fd = -1;
    w->errors_seen = atomic_load(&s->sync_errors);
    w->buf = xmalloc(SPOOL_WRITE_BUF);
    buf_init(&head, SIZE_MAX);
    spool__put_header(&head, 0);
    memcpy(w->buf, buf_ptr(&head), buf_used(&head));
    w->used = buf_used(&head);
    buf_free(&head);
    *out = w;
    return 0;
}

const char *spool_writer_id(const spool_writer_t *w)
{
    return w->id;
}

int spool_writer_write(spool_writer_t *w, const void *data, size_t len)
{
    w->size += len;
    return spool_writer_put(w, data, len);
}

uint64_t spool_writer_size(const spool_writer_t *w)
{
    return w->size;
}

void spool_writer_abort(spool_writer_t *w)
{
    if (w != NULL)
        spool_writer_free(w, true);
}

/* Put the body length into the header, in the buffer if it is still there. */
static int spool_writer_patch_length(spool_writer_t *w)
{
    unsigned char len[8];
    const size_t at = SPOOL__MAGIC_LEN + 1;

    spool__put_be64(len, w->size);
    if (w->flushed == 0) {
        memcpy(w->buf + at, len, sizeof(len));
        return 0;
    }
    w->err = spool__pwrite_all(&w->s->io, w->fd, len, sizeof(len), at);
    return w->err;
}

/*
 * Commit a message that is whole in its writer's buffer through the
 * journal: its image (the bytes its file would hold) becomes a record,
 * placed at the end of the current segment when its pass starts
 * (spool_journal_place()), written and synced by that pass.  false when
 * it is too big: the caller then makes the file.  On true the writer is
 * gone.
 */
static bool spool_writer_journal(spool_writer_t *w, const buf_t *trailer,
                                 const spool_envelope_t *env, int64_t arrival, char *body,
                                 spool_commit_cb cb, void *arg)
{
    spool_t *s = w->s;
    size_t ilen = w->used + buf_used(trailer);
    spool_item_t *it;
    spool_msg_t *m;

    if (s->files_only || w->fd >= 0 || w->flushed != 0 || ilen > SPOOL__JIMAGE_MAX)
        return false;
    it = spool_item_new(s, SPOOL_ITEM_JCOMMIT, w->id);
    it->rec_len = SPOOL__JREC_HDR + ilen;
    it->rec = xmalloc(it->rec_len);
    memcpy(it->rec + SPOOL__JREC_HDR, w->buf, w->used);
    memcpy(it->rec + SPOOL__JREC_HDR + w->used, buf_ptr(trailer), buf_used(trailer));
    m = spool__msg_new(s->dir, w->id, arrival, w->size, env);
    m->jlen = ilen;
    m->body = body;
    it->msg = m;
    it->commit_cb = cb;
    it->arg = arg;
    spool_writer_free(w, false);
    spool_enqueue(s, it);
    return true;
}

int spool_writer_commit(spool_writer_t *w, const spool_envelope_t *env, spool_commit_cb cb,
                        void *arg)
{
    spool_t *s = w->s;
    spool_item_t *it;
    buf_t trailer;
    int64_t arrival = env->arrival_us ? env->arrival_us : s->clock_us(s->clock_arg);
    int err = w->err;
    /* Nothing written yet: the whole body is in the buffer, before the
     * trailer goes in (which may flush it). */
    char *body = err == 0 && w->flushed == 0
                     ? xmemdup(w->buf + SPOOL__BODY_OFFSET, w->size)
                     : NULL;

    buf_init(&trailer, SIZE_MAX);
    if (err == 0 && cb == NULL)
        err = SPOOL_EINVAL;
    if (err == 0)
        err = spool__encode_trailer(&trailer, w->id, arrival, env);
    if (err == 0)
        err = spool_writer_patch_length(w);
    if (err == 0 && body != NULL &&
        spool_writer_journal(w, &trailer, env, arrival, body, cb, arg)) {
        buf_free(&trailer);
        return 0;
    }
    if (err == 0)
        err = spool_writer_put(w, buf_ptr(&trailer), buf_used(&trailer));
    if (err == 0)
        err = spool_writer_flush(w, NULL, 0);
    buf_free(&trailer);
    if (err != 0) {
        free(body);
        spool_writer_free(w, true);
        return err;
    }

    it = spool_item_new(s, SPOOL_ITEM_COMMIT, w->id);
    it->errors_seen = w->errors_seen;
    it->fd = w->fd;
    it->msg = spool__msg_new(s->dir, w->id, arrival, w->size, env);
    it->msg->body = body;
    it->commit_cb = cb;
    it->arg = arg;
    w->fd = -1; /* the pass closes it */
    spool_writer_free(w, false);
    spool_enqueue(s, it);
    return 0;
}

int spool_submit(spool_t *s, const spool_envelope_t *env, const void *data, size_t len,
                 spool_commit_cb cb, void *arg, char id[SPOOL_ID_SIZE])
{
    spool_writer_t *w;
    char wid[SPOOL_ID_SIZE];
    int err;

    if ((err = spool_writer_open(s, &w)) != 0)
        return err;
    str_lcpy(wid, w->id, sizeof(wid));
    spool_writer_write(w, data, len);
    if ((err = spool_writer_commit(w, env, cb, arg)) != 0)
        return err;
    if (id != NULL)
        str_lcpy(id, wid, SPOOL_ID_SIZE);
    return 0;
}

/* ---- State updates, removal ---- */

void spool_msg_relocate(spool_t *s, spool_msg_t *msg)
{
    spool_seg_t *g;

    if (msg->jseq == 0 || htab_get(s->moving, msg->id, SPOOL_ID_LEN) != SPOOL__MOVED)
        return;
    g = spool__seg_find(s, msg->jseq);
    htab_remove(s->moving, msg->id, SPOOL_ID_LEN);
    free(msg->path);
    msg->path = spool__path(s->dir, msg->id);
    msg->body_offset = SPOOL__BODY_OFFSET;
    msg->jseq = msg->joff = msg->jlen = 0;
    /* Its record says moved: the segment holds nothing of it now. */
    if (g != NULL) {
        g->live--;
        spool_seg_maybe_drop(s, g);
    }
}

int spool_update(spool_t *s, spool_msg_t *msg, const spool_update_t *u, size_t n,
                 spool_done_cb cb, void *arg)
{
    spool_item_kind_t kind = SPOOL_ITEM_UPDATE;
    spool_seg_t *g = NULL;
    spool_item_t *it;
    buf_t rec;
    int err;

    if ((err = spool__check_updates(msg, u, n)) != 0)
        return err;
    /* A journal message's first record moves it to a file of its own. */
    if (msg->jseq != 0 && htab_get(s->moving, msg->id, SPOOL_ID_LEN) == NULL) {
        if ((g = spool__seg_find(s, msg->jseq)) == NULL)
            return SPOOL_EINVAL;
        kind = SPOOL_ITEM_MOVE;
        htab_put(s->moving, msg->id, SPOOL_ID_LEN, SPOOL__MOVING);
    }
    buf_init(&rec, SIZE_MAX);
    spool__encode_update(&rec, u, n);
    spool__apply(msg, u, n);
    it = spool_item_new(s, kind, msg->id);
    if (g != NULL) {
        spool_item_use(it, g);
        it->joff = msg->joff;
        it->jlen = msg->jlen;
    }
    it->rec_len = buf_used(&rec);
    it->rec = xmemdup(buf_ptr(&rec), it->rec_len);
    it->done_cb = cb;
    it->arg = arg;
    buf_free(&rec);
    spool_enqueue(s, it);
    return 0;
}

int spool_remove(spool_t *s, const spool_msg_t *msg, spool_done_cb cb, void *arg)
{
    spool_item_t *it = spool_item_new(s, SPOOL_ITEM_REMOVE, msg->id);
    spool_seg_t *g;

    if (msg->jseq != 0 && (g = spool__seg_find(s, msg->jseq)) != NULL) {
        spool_item_use(it, g);
        it->joff = msg->joff;
        it->has_file = htab_get(s->moving, msg->id, SPOOL_ID_LEN) != NULL;
    }
    it->done_cb = cb;
    it->arg = arg;
    spool_enqueue(s, it);
    return 0;
}
