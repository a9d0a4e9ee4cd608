/*
 * The commit journal: its segments, placing a commit pass's records in
 * them, writing and syncing records and their state marks in a pass,
 * moving a journal message to a file of its own, and relocating it there.
 * docs/spool.md ("The commit journal") has the protocol and its reasons.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "file.h"
#include "htab.h"
#include "spool_int.h"
#include "xalloc.h"

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
    free(g->ids);
    free(g->path);
    free(g);
}

void spool__seg_hold(spool_t *s, spool_seg_t *g, const char *id)
{
    if (g->nids == g->ids_cap)
        g->ids = xgrow(g->ids, &g->ids_cap, g->nids + 1, sizeof(*g->ids));
    memcpy(g->ids[g->nids++], id, SPOOL_ID_SIZE);
    spool__id_hold(s, id);
}

void spool__seg_release_ids(spool_t *s, spool_seg_t *g)
{
    for (size_t i = 0; i < g->nids; i++)
        spool__id_release(s, g->ids[i]);
    g->nids = 0;
}

int spool__journal_open(spool_t *s)
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
/*
 * The segment a record of need bytes goes to: the current one, or a new
 * one when it is full: the one made ahead (spool_journal_prepare_next()),
 * or else one created here, on the loop thread (one open and an 8-byte
 * write), whose directory entry the first pass that writes to it makes
 * durable.  NULL when no segment can be made: the message then gets a
 * file.
 */
static spool_seg_t *spool_journal_seg(spool_t *s, size_t need)
{
    spool_seg_t *g = s->jcur;
    char name[SPOOL__JSEQ_LEN + 1];
    int fd = -1;

    if (g != NULL && !g->full && g->size + need <= SPOOL__JSEG_MAX)
        return g;
    if (g != NULL) {
        g->full = true;
        s->jcur = NULL;
        spool__seg_maybe_drop(s, g);
    }
    if (s->jnext != NULL) {
        s->jcur = s->jnext;
        s->jnext = NULL;
        return s->jcur;
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
    g->dir_errors = atomic_load(&s->jdir_sync_errors);
    s->jcur = g;
    return g;
}

/*
 * A segment that takes no more records, has nothing queued and no pass
 * using it is removed by the next pass of the state lane.  Its records
 * all say removed, moved or failed by then, so if the unlink is lost in a
 * crash the next scan drops it.
 */
void spool__seg_maybe_drop(spool_t *s, spool_seg_t *g)
{
    spool_item_t *it;

    if (!g->full || g->live > 0 || g->refs > 0 || g->dropping)
        return;
    g->dropping = true;
    if (s->jcur == g)
        s->jcur = NULL;
    it = spool__item_new(s, SPOOL_ITEM_DROP, "");
    spool__item_use(it, g);
    spool__enqueue(s, it);
}

/* ---- The journal's directory ---- */

int spool__journal_dir_sync(spool_job_t *job, uint64_t since)
{
    spool_t *s = job->pass->s;
    uint64_t errors;
    int err;

    pthread_mutex_lock(&s->jdir_sync_mu);
    if ((err = spool__job_sync(job, s->io.fsync, s->jdirfd)) != 0)
        atomic_fetch_add(&s->jdir_sync_errors, 1);
    errors = atomic_load(&s->jdir_sync_errors);
    pthread_mutex_unlock(&s->jdir_sync_mu);
    return err != 0 ? err : errors != since ? -EIO : 0;
}

/* ---- Segments made ahead ---- */

/*
 * A segment that is appended to changes its size with every pass, so each
 * fdatasync writes the inode as well as the records (and, on a journalling
 * file system, commits a transaction for it).  A segment written through
 * to its full size first, zeros after its magic, takes its records in
 * place: a pass's sync writes only their blocks.  (Measured on ext4: half
 * the time and the processor of an append's sync, docs/spool.md.)  The
 * zeros end the records for the scan, as a torn record would: the header
 * of a record must carry the CRC-32C of its length and image, which four
 * zero bytes of length do not have.
 *
 * The next segment is made so, in a pass of the state lane, once the
 * current one is half full; it is there, durable with its directory
 * entry, by the time the current one fills (at 4 MiB in a few hundred
 * messages, against some milliseconds to write it).  If it is not, or it
 * could not be made (a full disk), a segment is created the old way.
 */
static void spool_journal_prepare_next(spool_t *s)
{
    spool_item_t *it;

    if (s->jnext != NULL || s->jpreparing || s->jcur == NULL ||
        s->jcur->size < SPOOL__JSEG_MAX / 2 || s->jseq >= SPOOL__JSEQ_MAX ||
        s->jprep_failed == s->jcur->seq)
        return;
    s->jpreparing = true;
    it = spool__item_new(s, SPOOL_ITEM_PREPARE, "");
    it->seq = ++s->jseq;
    it->jfd = -1;
    spool__enqueue(s, it);
}

void spool__journal_prepare(spool_job_t *job, spool_item_t *it)
{
    static const char zeros[64 * 1024];
    spool_t *s = job->pass->s;
    uint64_t since = atomic_load(&s->jdir_sync_errors), off;
    char name[SPOOL__JSEQ_LEN + 1];
    struct statvfs fs;

    /* Never the last of the file system's room: the zeros would take it
     * from commits and state records for as long as they are written. */
    if (fstatvfs(s->jdirfd, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < SPOOL__PREPARE_ROOM) {
        it->status = -ENOSPC;
        return;
    }
    spool__seg_name(it->seq, name);
    it->jfd = openat(s->jdirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (it->jfd < 0) {
        it->status = -errno;
        return;
    }
    it->status = spool__pwrite_all(&s->io, it->jfd, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN, 0);
    for (off = SPOOL__JMAGIC_LEN; it->status == 0 && off < SPOOL__JSEG_MAX; off += sizeof(zeros)) {
        size_t n = SPOOL__JSEG_MAX - off < sizeof(zeros) ? SPOOL__JSEG_MAX - off : sizeof(zeros);

        it->status = spool__pwrite_all(&s->io, it->jfd, zeros, n, off);
    }
    if (it->status == 0)
        it->status = spool__job_sync(job, s->io.fdatasync, it->jfd);
    if (it->status == 0)
        it->status = spool__journal_dir_sync(job, since);
    if (it->status != 0) {
        close(it->jfd);
        it->jfd = -1;
        unlinkat(s->jdirfd, name, 0);
    }
}

void spool__journal_prepared(spool_t *s, spool_item_t *it)
{
    spool_seg_t *g;

    s->jpreparing = false;
    /* Its file is gone already (spool__journal_prepare()).  One try
     * while the current segment lasts: a disk too full for it is not
     * asked again at every pass. */
    if (it->status != 0) {
        if (s->jcur != NULL)
            s->jprep_failed = s->jcur->seq;
        return;
    }
    /* One is made at a time (jpreparing), and only while none is next. */
    g = spool__seg_add(s, it->seq, it->jfd);
    g->size = SPOOL__JMAGIC_LEN;
    g->dir_synced = true;
    s->jnext = g;
}

/* ---- Placing records ---- */

/*
 * Place a pass's journal records, in commit order, one after the other at
 * the end of the current segment, now that the last pass is over: a
 * segment whose pass failed has been closed by then, so no record goes
 * after one that may be torn (the scan stops at the first such).  An
 * item that gets no segment becomes a commit of a file of its own, which
 * the pass writes from the record's image (spool_group_write_image()).
 */
void spool__journal_place(spool_t *s, spool_item_t *items)
{
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        spool_msg_t *m = it->msg;
        spool_seg_t *g;

        if (it->kind != SPOOL_ITEM_JCOMMIT)
            continue;
        if ((g = spool_journal_seg(s, it->rec_len)) == NULL) {
            it->kind = SPOOL_ITEM_COMMIT; /* fd -1: the image still to write */
            continue;
        }
        spool__item_use(it, g);
        spool__seg_hold(s, g, it->id);
        it->joff = g->size;
        g->size += it->rec_len;
        g->live++;
        free(m->path);
        m->path = xstrdup(g->path);
        m->body_offset = it->joff + SPOOL__JREC_HDR + SPOOL__BODY_OFFSET;
        m->jseq = g->seq;
        m->joff = it->joff;
    }
    spool_journal_prepare_next(s);
}

/* ---- The journal in a pass ---- */

/*
 * fdatasync a segment, as spool_group_shared_sync() does the directory:
 * both lanes write to a segment (appends, marks) and sync it through its
 * one descriptor, so one sync at a time and a count of those that failed.
 */
static int spool_journal_seg_sync(spool_job_t *job, spool_seg_t *g, uint64_t *errors)
{
    int err;

    pthread_mutex_lock(&g->sync_mu);
    if ((err = spool__job_sync(job, job->pass->s->io.fdatasync, g->fd)) != 0)
        atomic_fetch_add(&g->sync_errors, 1);
    *errors = atomic_load(&g->sync_errors);
    pthread_mutex_unlock(&g->sync_mu);
    return err;
}

/* Whether it is the first item of the pass with bytes written to its
 * segment: the one whose sync covers the others'. */
static bool spool_journal_seg_first(const spool_item_t *items, const spool_item_t *it)
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

        if (!spool_journal_seg_first(job->pass->items, it))
            continue;
        err = spool_journal_seg_sync(job, it->seg, &errors);
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

bool spool__remove_in_journal(const spool_item_t *it)
{
    return it->kind == SPOOL_ITEM_REMOVE && it->seg != NULL && !it->has_file;
}

/* The D marks of the pass's in-journal removals, written for the next
 * flush: nothing else of theirs is on disk, so they need not wait for
 * stage two. */
static void spool_journal_remove_marks(spool_t *s, spool_item_t *items)
{
    for (spool_item_t *it = items; it != NULL; it = it->next) {
        char removed = SPOOL__J_REMOVED;

        if (spool__remove_in_journal(it) && it->status == 0)
            it->status = spool_journal_write(s, it, &removed, 1);
    }
}

/*
 * Stage one of a commit pass, in job 0: the new messages' records,
 * written where the loop thread placed them when the pass started (one
 * after the other, in commit order), then synced, and with them the D
 * marks of the removals that ride in the commit lane.  A new segment's
 * directory entry is made durable first.  A record whose sync failed is
 * marked failed, so that if its bytes reached the disk all the same a
 * restart does not take it for a message the client was told about.
 */
void spool__journal_append(spool_job_t *job)
{
    spool_t *s = job->pass->s;
    bool any = false, new_seg = false;
    uint64_t since = UINT64_MAX;
    int err;

    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (spool__remove_in_journal(it))
            any = true;
        if (it->kind != SPOOL_ITEM_JCOMMIT || it->seg == NULL)
            continue;
        any = true;
        if (!it->seg->dir_synced) {
            new_seg = true;
            if (it->seg->dir_errors < since)
                since = it->seg->dir_errors;
        }
    }
    if (!any)
        return;
    if (new_seg && (err = spool__journal_dir_sync(job, since)) != 0) {
        for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
            if (it->kind == SPOOL_ITEM_JCOMMIT && it->status == 0)
                it->status = err;
        new_seg = false;
    }
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind != SPOOL_ITEM_JCOMMIT || it->status != 0)
            continue;
        spool_record_jrec_seal(it->rec, (uint32_t)(it->rec_len - SPOOL__JREC_HDR));
        it->status = spool_journal_write(s, it, it->rec, it->rec_len);
        it->jlanded = it->status == 0;
        if (it->status != 0)
            spool_journal_fail_after(job->pass->items, it);
    }
    spool_journal_remove_marks(s, job->pass->items);
    spool_journal_flush(job);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next)
        if (((it->kind == SPOOL_ITEM_JCOMMIT && it->jlanded) || spool__remove_in_journal(it)) &&
            it->status == 0)
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
void spool__journal_move(spool_job_t *job, spool_item_t *it)
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
    spool__tmp_name(it->id, tmp, sizeof(tmp));
    fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        it->status = -errno;
        free(img);
        return;
    }
    it->status = spool__pwrite_all(&s->io, fd, img, len, 0);
    if (it->status == 0)
        it->status = spool__job_sync(job, s->io.fsync, fd);
    close(fd);
    free(img);
    /* Never over an entry of its name (docs/spool.md, "Queue ids"). */
    if (it->status == 0)
        it->status = spool__rename(s, s->dirfd, tmp, it->id);
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
void spool__journal_marks(spool_job_t *job)
{
    spool_t *s = job->pass->s;

    /* The before_ack hook failed (it may have run beside the appends, so
     * only now is its word known): its commits' records are whole and
     * stay, marked failed with the other marks, so that a restart does
     * not take them (spool_group.c). */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        char failed = SPOOL__J_FAILED;

        if (it->kind != SPOOL_ITEM_JCOMMIT || !it->before_ack || it->status != 0 ||
            job->pass->before_ack_status == 0)
            continue;
        it->status = job->pass->before_ack_status;
        if (it->jlanded)
            (void)spool_journal_write(s, it, &failed, 1);
    }

    /* A moved message's file is durable by now, whatever its record says
     * (a file wins over an M record at the scan), so a failed mark fails
     * nothing; but until the record says F the message must keep its
     * record, for its removal to mark it D (fmarked).  Marks are written
     * in queue order: a removal's D after a move's F in the same pass. */
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        char moved = SPOOL__J_MOVED, removed = SPOOL__J_REMOVED;

        if (it->kind == SPOOL_ITEM_MOVE && it->status == 0)
            it->fmarked = spool_journal_write(s, it, &moved, 1) == 0;
        else if (it->kind == SPOOL_ITEM_REMOVE && it->seg != NULL &&
                 !spool__remove_in_journal(it) && it->status == 0)
            it->status = spool_journal_write(s, it, &removed, 1);
    }
    spool_journal_flush(job);
    for (spool_item_t *it = job->pass->items; it != NULL; it = it->next) {
        if (it->kind == SPOOL_ITEM_MOVE && it->fmarked)
            it->fmarked = it->jstatus == 0;
        else if (it->kind == SPOOL_ITEM_REMOVE && it->seg != NULL &&
                 !spool__remove_in_journal(it) && it->status == 0)
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

/* ---- Relocation ---- */

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
        spool__seg_maybe_drop(s, g);
    }
}
