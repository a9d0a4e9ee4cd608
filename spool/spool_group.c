/*
 * The group commit.  A pass runs in two stages.  First up to sync_jobs jobs in parallel, each
 * for the items whose id hashes to it (so every append to one file is in
 * one job, in order): append update records, unlink removed messages and,
 * with SPOOL_SYNC_FILES, start writeback and fsync each file.  Parallel
 * fsyncs matter: the block layer merges the cache flushes of concurrent
 * fsyncs and a journalling file system commits them together, while one
 * thread would wait for each flush in turn.  Then the job that finishes
 * last, with SPOOL_SYNC_FILESYSTEM, syncs the file system once, and names
 * the files: renames, the directory fsync.
 *
 * Work waits in one of two lanes (spool_int.h), each running one pass at
 * a time; docs/spool.md ("Group commit", "Threads") has the reasoning.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "htab.h"
#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

static void spool_group_kick(spool_t *s, spool_lane_t *lane);

static void spool_group_item_free(spool_item_t *it)
{
    free(it->rec);
    free(it);
}

int spool__job_sync(spool_job_t *job, int (*sync)(int fd), int fd)
{
    job->fsyncs++;
    return sync(fd) == 0 ? 0 : (errno ? -errno : -EIO);
}

static bool spool_group_job_owns(const spool_job_t *job, const spool_item_t *it)
{
    return it->job == job->index;
}

/* Update item: append its record to the message file. */
static void spool_group_append(spool_t *s, spool_item_t *it)
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
 * began to be written (spool_group_name_work()): an error may fail more
 * than it concerns, never fewer.  *errors: the count after this sync.
 */
static int spool_group_shared_sync(spool_job_t *job, int (*sync)(int fd), uint64_t *errors)
{
    spool_t *s = job->pass->s;
    int err;

    pthread_mutex_lock(&s->sync_mu);
    if ((err = spool__job_sync(job, sync, s->dirfd)) != 0)
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
static bool spool_group_syncfs(spool_job_t *job, uint64_t *errors)
{
    bool written = false;
    int err;

    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        written |= it->fd >= 0 && it->status == 0;
    if (!written)
        return false;
    if ((err = spool_group_shared_sync(job, job->pass->s->io.syncfs, errors)) != 0)
        for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
            if (it->fd >= 0 && it->status == 0)
                it->status = err;
    return true;
}

/*
 * Fail with status the items for which a sync through the directory
 * failed since their bytes began to be written, this pass's own included:
 * the error may have been theirs (spool_group_shared_sync()).  Nothing
 * failed may stay behind to be delivered, so a renamed file is removed
 * again.
 * An update appended with SPOOL_SYNC_FILES was made durable by an fsync
 * of its own file, which reports that file's errors whoever saw them
 * first: it keeps its status.
 */
static void spool_group_fail_since(spool_t *s, spool_item_t *items, uint64_t errors, int status)
{
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        if (it->status != 0 || it->errors_seen == errors || it->kind == SPOOL_ITEM_JCOMMIT ||
            it->kind == SPOOL_ITEM_DROP || it->kind == SPOOL_ITEM_PREPARE ||
            (it->kind == SPOOL_ITEM_REMOVE && !it->unlinked) ||
            (it->kind == SPOOL_ITEM_UPDATE && s->sync == SPOOL_SYNC_FILES))
            continue;
        if (it->renamed)
            unlinkat(s->dirfd, it->id, 0);
        it->renamed = false;
        it->status = status;
    }
}

/*
 * Stage two: a file's final name exists only once its bytes are durable
 * (stage one, or the syncfs here), and the names are durable (directory
 * fsync) before anyone is told.
 */
static void spool_group_name_work(spool_job_t *job)
{
    spool_t *s = job->pass->s;
    spool_item_t *items = job->pass->items;
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];
    bool dir_changed = false;
    uint64_t errors = 0;
    int err;

    /* A commit whose before_ack failed is never named (job 0 is done: the
     * atomic count of workers orders its status before this). */
    for (spool_item_t *it = items; it != NULL; it = it->next)
        if (it->kind == SPOOL_ITEM_COMMIT && it->before_ack && it->status == 0)
            it->status = job->pass->before_ack_status;
    /* Checked before the renames too, so that a stale commit is not
     * named only to be unlinked again. */
    if (s->sync == SPOOL_SYNC_FILESYSTEM && spool_group_syncfs(job, &errors))
        spool_group_fail_since(s, items, errors, -EIO);
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_REMOVE) {
            dir_changed |= it->unlinked;
        } else if (it->kind == SPOOL_ITEM_MOVE) {
            dir_changed |= it->renamed;
        } else if (it->kind == SPOOL_ITEM_COMMIT && it->status == 0) {
            /* Never over an entry of its name: that fails the commit
             * before its 250 (docs/spool.md, "Queue ids"). */
            spool__tmp_name(it->id, tmp, sizeof(tmp));
            if ((err = spool__rename(s, s->dirfd, tmp, it->id)) == 0)
                it->renamed = dir_changed = true;
            else
                it->status = err;
        }
    }
    /* A failure of this fsync fails every name of the pass: none is known
     * to be durable. */
    if (dir_changed) {
        err = spool_group_shared_sync(job, s->io.fsync, &errors);
        spool_group_fail_since(s, items, errors, err != 0 ? err : -EIO);
    }
    if (s->jdirfd >= 0)
        spool__journal_marks(job);

    for (spool_item_t *it = items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_COMMIT && !it->renamed) {
            spool__tmp_name(it->id, tmp, sizeof(tmp));
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
static void spool_group_fsync_files(spool_job_t *job)
{
    int err;

    /* Other jobs write their items' fd and status meanwhile: look at an
     * item's only once it is known to be this job's. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (spool_group_job_owns(job, it) && it->fd >= 0 && it->status == 0)
            sync_file_range(it->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (spool_group_job_owns(job, it) && it->fd >= 0 && it->status == 0 &&
            (err = spool__job_sync(job, job->pass->s->io.fsync, it->fd)) != 0)
            it->status = err;
}

/*
 * A small message that got no journal segment: its file, written here
 * from the journal record's image, then synced and named like any
 * commit's.
 */
static void spool_group_write_image(spool_t *s, spool_item_t *it)
{
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];

    spool__tmp_name(it->id, tmp, sizeof(tmp));
    it->fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (it->fd < 0) {
        it->status = -errno;
        return;
    }
    it->status = spool__pwrite_all(&s->io, it->fd, it->rec + SPOOL__JREC_HDR,
                                   it->rec_len - SPOOL__JREC_HDR, 0);
}

/*
 * The before_ack hook, once, when a commit of the pass asked for it: in
 * job 1, beside job 0's journal appends (their syncs overlap: the pass
 * takes the longer of the two, not their sum), or first in job 0 when the
 * pass has one job.  A failure fails those commits in stage two, once
 * every job is done: a journal one's record is marked failed (written and
 * synced all the same, like a record whose sync failed), a file is never
 * named.
 */
static void spool_group_before_ack(spool_pass_t *pass)
{
    spool_t *s = pass->s;

    pass->before_ack_status = 0;
    for (spool_item_t *it = pass->items; it != NULL; it = it->next) {
        if (it->before_ack) {
            pass->before_ack_status = s->before_ack(s->before_ack_arg);
            return;
        }
    }
}

/* Stage one, on an executor thread. */
static void spool_group_sync_work(void *ctx)
{
    spool_job_t *job = ctx;
    spool_t *s = job->pass->s;

    if (job->index == 0 && !job->pass->hook_apart)
        spool_group_before_ack(job->pass);
    if (job->index == 1 && job->pass->hook_apart)
        spool_group_before_ack(job->pass);
    if (job->index == 0)
        spool__journal_append(job);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (it->kind == SPOOL_ITEM_COMMIT && it->fd < 0 && it->rec != NULL &&
            spool_group_job_owns(job, it))
            spool_group_write_image(s, it);
    /* In queue order: a move makes the file later appends go to. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_UPDATE && spool_group_job_owns(job, it))
            spool_group_append(s, it);
        else if (it->kind == SPOOL_ITEM_MOVE && spool_group_job_owns(job, it))
            spool__journal_move(job, it);
        else if (it->kind == SPOOL_ITEM_PREPARE && spool_group_job_owns(job, it))
            spool__journal_prepare(job, it);
    }
    if (s->sync == SPOOL_SYNC_FILES)
        spool_group_fsync_files(job);
    /* Removals need no fsync of their own, only the directory's, which
     * stage two does for the whole pass. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (!spool_group_job_owns(job, it))
            continue;
        if (it->kind == SPOOL_ITEM_DROP) {
            char name[SPOOL__JSEQ_LEN + 1];

            spool__seg_name(it->seg->seq, name);
            /* Left behind: the next scan drops it. */
            if (unlinkat(s->jdirfd, name, 0) != 0 && errno != ENOENT)
                it->status = -errno;
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
        spool_group_name_work(job);
}

/* The pass is over, on the loop thread: tell everyone. */
static void spool_group_pass_done(void *ctx)
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
                if (it->rec != NULL) {
                    /* The record was the whole message: its body, in
                     * memory for the first delivery, is in it. */
                    it->msg->body = (char *)it->rec + SPOOL__JREC_HDR + SPOOL__BODY_OFFSET;
                    it->msg->body_mem = it->rec;
                    it->msg->body_held = it->rec_len;
                    it->rec = NULL;
                }
                it->commit_cb(it->arg, 0, it->msg);
            } else {
                /* Nothing of it is left (a journal record of it stays
                 * held by its segment). */
                s->stats.commit_errors++;
                spool__id_release(s, it->id);
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
            if (it->status == 0) {
                s->stats.removes++;
                spool__id_release(s, it->id);
            }
            if (it->done_cb != NULL)
                it->done_cb(it->arg, it->status);
            break;
        case SPOOL_ITEM_DROP:
            if (it->status == 0)
                spool__seg_release_ids(s, g);
            spool__seg_free(s, g);
            g = NULL;
            break;
        case SPOOL_ITEM_PREPARE:
            spool__journal_prepared(s, it);
            break;
        }
        if (g != NULL) {
            g->refs--;
            spool__seg_maybe_drop(s, g);
        }
        spool_group_item_free(it);
    }
    lane->in_flight = false;
    spool_group_kick(s, lane);
}

/* A job completed, on the loop thread; after the last, the pass is over
 * (the job that finished its work last has named the files). */
static void spool_group_job_done(void *ctx)
{
    spool_job_t *job = ctx;
    spool_pass_t *pass = job->pass;

    if (--pass->jobs_left == 0)
        spool_group_pass_done(&pass->jobs[0]);
}

/* Start a pass with what is waiting in a lane, unless one is running. */
static void spool_group_kick(spool_t *s, spool_lane_t *lane)
{
    spool_item_t **link = &lane->pending;
    spool_pass_t *pass;
    unsigned n = 0, nfiles = 0;

    if (lane->in_flight || lane->pending == NULL)
        return;
    while (*link != NULL && n < s->max_batch) {
        nfiles += (*link)->kind != SPOOL_ITEM_JCOMMIT && !spool__remove_in_journal(*link);
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
        spool__journal_place(s, pass->items);
    /* Parallel jobs let the disk overlap fsyncs and unlinks, but each one
     * is a hand-off to a thread that has to be scheduled: a pass is split
     * only when its jobs get several items each. */
    pass->njobs = (nfiles + SPOOL_ITEMS_PER_JOB - 1) / SPOOL_ITEMS_PER_JOB;
    if (pass->njobs > s->sync_jobs)
        pass->njobs = s->sync_jobs;
    if (pass->njobs == 0)
        pass->njobs = 1; /* the journal's appends, in job 0 */
    /* A commit that needs the hook (an envelope store entry to make
     * durable) has it run in a job of its own beside the appends. */
    for (spool_item_t *it = pass->items; it != NULL && s->sync_jobs > 1; it = it->next) {
        if (it->before_ack) {
            pass->hook_apart = true;
            if (pass->njobs < 2)
                pass->njobs = 2;
            break;
        }
    }
    pass->jobs_left = pass->njobs;
    atomic_init(&pass->workers_left, pass->njobs);
    for (unsigned i = 0; i < pass->njobs; i++) {
        pass->jobs[i].pass = pass;
        pass->jobs[i].index = i;
    }
    /* By queue id, so that every append to one file is in one job; the
     * journal's appends and in-journal removals' marks all in job 0. */
    for (spool_item_t *it = pass->items; it != NULL && pass->njobs > 1; it = it->next)
        it->job = it->kind == SPOOL_ITEM_JCOMMIT || spool__remove_in_journal(it)
                      ? 0
                      : (unsigned)(htab_hash(it->id, SPOOL_ID_LEN) % pass->njobs);
    lane->in_flight = true;
    for (unsigned i = 0; i < pass->njobs; i++)
        s->exec.submit(s->exec.impl, spool_group_sync_work, spool_group_job_done, &pass->jobs[i]);
}

void spool__enqueue(spool_t *s, spool_item_t *it)
{
    bool commit = it->kind == SPOOL_ITEM_COMMIT || it->kind == SPOOL_ITEM_JCOMMIT ||
                  spool__remove_in_journal(it);
    spool_lane_t *lane = &s->lanes[commit ? SPOOL__LANE_COMMIT : SPOOL__LANE_STATE];

    *lane->pending_tail = it;
    lane->pending_tail = &it->next;
    spool_group_kick(s, lane);
}

spool_item_t *spool__item_new(spool_t *s, spool_item_kind_t kind, const char *id)
{
    spool_item_t *it = xcalloc(1, sizeof(*it));

    it->kind = kind;
    it->fd = -1;
    it->errors_seen = atomic_load(&s->sync_errors);
    str_lcpy(it->id, id, sizeof(it->id));
    return it;
}

void spool__item_use(spool_item_t *it, spool_seg_t *g)
{
    it->seg = g;
    g->refs++;
}
