/*
 * The start-up scan: loading each message file (and cutting a torn state
 * record off it), reading the journal's segments, and handing every
 * committed message over in id order, the journal's and the files'
 * together.  docs/spool.md ("Start-up", "The commit journal") has what a
 * crash can leave and what the scan makes of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

static void spool_scan_problem(const spool_scan_ops_t *ops, void *arg, const char *name, int err)
{
    if (ops->problem != NULL)
        ops->problem(arg, name, err);
}

/* Messages of the journal, to hand over in id order with the files', and
 * the ids its records say were removed. */
typedef struct {
    spool_msg_t **v;
    size_t n, cap, next;
    char **gone;
    size_t ngone, gone_cap;
    /* Records still M whose id has a file: the file wins if it loads
     * (the record is then marked F), the record if it does not. */
    spool_msg_t **moved;
    size_t nmoved, moved_cap;
} spool_jmsgs_t;

static int spool_scan_cmp_msgs(const void *a, const void *b)
{
    return strcmp((*(spool_msg_t *const *)a)->id, (*(spool_msg_t *const *)b)->id);
}

static bool spool_scan_has_name(char **names, size_t n, const char *name)
{
    return bsearch(&name, names, n, sizeof(*names), spool__cmp_names) != NULL;
}

/* Load one committed file: 0 and *out, SPOOL_EPARTIAL, SPOOL_ECORRUPT or
 * -errno.  A torn update record at the end is cut off the file. */
static int spool_scan_load(int dirfd, const char *dir, const char *name, const spool_io_t *io,
                           spool_msg_t **out)
{
    unsigned char head[SPOOL__BODY_OFFSET];
    unsigned char *trailer = NULL;
    spool_msg_t *m = NULL;
    struct stat st;
    uint64_t body_len, body_end, tlen;
    size_t valid = 0;
    int fd, err;

    *out = NULL;
    fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        goto fail;
    }
    err = SPOOL_EPARTIAL;
    if ((uint64_t)st.st_size < SPOOL__BODY_OFFSET)
        goto fail;
    if ((err = spool__read_at(fd, head, sizeof(head), 0)) != 0)
        goto fail;
    if ((err = spool_record_parse_head(head, (uint64_t)st.st_size, &body_len)) != 0)
        goto fail;
    body_end = SPOOL__BODY_OFFSET + body_len;
    tlen = (uint64_t)st.st_size - body_end;
    err = SPOOL_ECORRUPT;
    if (tlen > SPOOL__TRAILER_MAX)
        goto fail;
    trailer = xmalloc(tlen ? tlen : 1);
    if ((err = spool__read_at(fd, trailer, tlen, body_end)) != 0)
        goto fail;

    m = spool_record_msg_alloc(spool__path(dir, name), name, SPOOL__BODY_OFFSET);
    m->body_length = body_len;
    if ((err = spool_record_parse_trailer(m, trailer, tlen, &valid)) != 0)
        goto fail;
    if (valid < tlen) {
        /* A torn update from a crash mid-append: cut it off, so the next
         * append does not land behind garbage. */
        if (ftruncate(fd, (off_t)(body_end + valid)) != 0 || io->fsync(fd) != 0) {
            err = -errno;
            goto fail;
        }
    }
    *out = m;
    m = NULL;
    err = 0;
fail:
    spool_msg_free(m);
    free(trailer);
    close(fd);
    return err;
}

/* ---- The journal's segments ---- */

/*
 * Read one segment: every record still queued becomes a message, unless
 * the message has a file of its own (names: the spool directory's), which
 * then holds its state.  Records are read up to the first that is torn
 * (cut short, or failing its CRC): a commit lane's pass appends after the
 * last one's fdatasync, and a segment takes no appends after a failed
 * pass, so what follows was never acknowledged.  0, or -errno.
 */
static int spool_scan_segment(spool_t *s, const char *name, uint64_t seq, char **names,
                              size_t n, spool_jmsgs_t *out, const spool_scan_ops_t *ops,
                              void *arg)
{
    unsigned char *data = NULL;
    spool_seg_t *g;
    struct stat st;
    size_t size, pos = SPOOL__JMAGIC_LEN;
    unsigned live = 0;
    int fd, err;

    fd = openat(s->jdirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > SIZE_MAX / 2) {
        err = -errno;
        close(fd);
        return err ? err : -EFBIG;
    }
    size = (size_t)st.st_size;
    if (size > SPOOL__JMAGIC_LEN + SPOOL__JSEG_MAX) {
        /* Never written so long by the spool: kept for the admin. */
        g = spool__seg_add(s, seq, fd);
        g->full = true;
        g->dir_synced = true;
        g->live = 1;
        spool_scan_problem(ops, arg, name, SPOOL_ECORRUPT);
        return 0;
    }
    data = xmalloc(size ? size : 1);
    if ((err = spool__read_at(fd, data, size, 0)) != 0) {
        free(data);
        close(fd);
        return err == SPOOL_EPARTIAL ? -EIO : err;
    }
    g = spool__seg_add(s, seq, fd);
    g->full = true;
    g->dir_synced = true;
    g->size = size;
    /* A segment made just before a crash may not even have its magic. */
    if (size >= SPOOL__JMAGIC_LEN && memcmp(data, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN) != 0) {
        spool_scan_problem(ops, arg, name, SPOOL_ECORRUPT);
        live++; /* kept for the admin */
        pos = size;
    }
    while (pos + SPOOL__JREC_HDR <= size) {
        const unsigned char *rec = data + pos;
        spool_msg_t *m = NULL;
        uint64_t id;
        size_t len;
        int state;

        if (spool_record_jrec_parse(rec, size - pos, &state, &len) != 0)
            break;
        if (spool_record_parse_image(g->path, pos + SPOOL__JREC_HDR, rec + SPOOL__JREC_HDR, len,
                                     &m) != 0) {
            /* Whole by its CRC, yet not a message: keep the segment for
             * the admin if it may be one still queued. */
            if (state == SPOOL__J_QUEUED) {
                spool_scan_problem(ops, arg, name, SPOOL_ECORRUPT);
                live++;
            }
            pos += SPOOL__JREC_HDR + len;
            continue;
        }
        /* Every id the journal names stays taken, as the files' do. */
        if (spool__classify(m->id, &id) == SPOOL__NAME_MSG && id > s->last_id)
            s->last_id = id;
        if (state == SPOOL__J_QUEUED && spool_scan_has_name(names, n, m->id)) {
            /* Moved, and the crash came before the record said so: the
             * file has the message and its state, if it loads (the file
             * loop decides, spool_scan_moved()). */
            m->jseq = seq;
            m->joff = pos;
            m->jlen = len;
            if (out->nmoved == out->moved_cap)
                out->moved = xgrow(out->moved, &out->moved_cap, out->nmoved + 1,
                                   sizeof(*out->moved));
            out->moved[out->nmoved++] = m;
            m = NULL;
        } else if (state == SPOOL__J_QUEUED) {
            m->jseq = seq;
            m->joff = pos;
            m->jlen = len;
            if (out->n == out->cap)
                out->v = xgrow(out->v, &out->cap, out->n + 1, sizeof(*out->v));
            out->v[out->n++] = m;
            m = NULL;
            live++;
        } else if (state == SPOOL__J_REMOVED) {
            /* A file of its id is a move's that was taken back without
             * its unlink reaching the disk: stale. */
            if (out->ngone == out->gone_cap)
                out->gone = xgrow(out->gone, &out->gone_cap, out->ngone + 1, sizeof(*out->gone));
            out->gone[out->ngone++] = xstrdup(m->id);
        }
        /* X: never acknowledged.  F: the message's file has it (or had
         * it, and it was removed since). */
        spool_msg_free(m);
        pos += SPOOL__JREC_HDR + len;
    }
    free(data);
    g->live = live;
    return 0;
}

/* The journal's segments, oldest first. */
static int spool_scan_journal(spool_t *s, char **names, size_t n, spool_jmsgs_t *out,
                              const spool_scan_ops_t *ops, void *arg)
{
    char **segs = NULL;
    size_t nsegs = 0;
    int err = 0;

    if (s->jdirfd < 0)
        return 0;
    if ((err = spool__list(s->jdirfd, &segs, &nsegs)) != 0)
        return err;
    for (size_t i = 0; i < nsegs; i++) {
        uint64_t seq;

        if (err == 0 && spool__seq_name(segs[i], &seq)) {
            if (seq > s->jseq)
                s->jseq = seq;
            err = spool_scan_segment(s, segs[i], seq, names, n, out, ops, arg);
        }
        free(segs[i]);
    }
    free(segs);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), spool_scan_cmp_msgs);
    if (out->ngone > 1)
        qsort(out->gone, out->ngone, sizeof(*out->gone), spool__cmp_names);
    if (out->nmoved > 1)
        qsort(out->moved, out->nmoved, sizeof(*out->moved), spool_scan_cmp_msgs);
    return err;
}

/* The journal copy of the message whose file is name, or NULL. */
static spool_msg_t *spool_scan_moved(spool_jmsgs_t *j, const char *name)
{
    for (size_t lo = 0, hi = j->nmoved; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = j->moved[mid] != NULL ? strcmp(j->moved[mid]->id, name) : -1;

        if (c == 0) {
            spool_msg_t *m = j->moved[mid];

            j->moved[mid] = NULL;
            return m;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Remove the segments with nothing queued, last: their D records say
 * which files are stale, so they go only once those files' removal is
 * durable.
 */
static int spool_scan_drop_segments(spool_t *s)
{
    bool changed = false;

    for (spool_seg_t *g = s->segs, *next; g != NULL; g = next) {
        char name[SPOOL__JSEQ_LEN + 1];

        next = g->next;
        if (g->live > 0)
            continue;
        spool__seg_name(g->seq, name);
        if (unlinkat(s->jdirfd, name, 0) == 0)
            changed = true;
        spool__seg_free(s, g);
    }
    if (changed && s->io.fsync(s->jdirfd) != 0)
        return errno ? -errno : -EIO;
    return 0;
}

static bool spool_scan_gone(const spool_jmsgs_t *j, const char *id)
{
    return j->ngone > 0 && spool_scan_has_name(j->gone, j->ngone, id);
}

static void spool_scan_jmsgs_free(spool_jmsgs_t *j)
{
    for (size_t i = j->next; i < j->n; i++)
        spool_msg_free(j->v[i]);
    free(j->v);
    for (size_t i = 0; i < j->nmoved; i++)
        spool_msg_free(j->moved[i]);
    free(j->moved);
    for (size_t i = 0; i < j->ngone; i++)
        free(j->gone[i]);
    free(j->gone);
}

/* Hand over the journal's messages whose ids sort before name (all: NULL). */
static void spool_scan_until(spool_jmsgs_t *j, const char *name, const spool_scan_ops_t *ops,
                             void *arg)
{
    while (j->next < j->n && (name == NULL || strcmp(j->v[j->next]->id, name) < 0))
        ops->message(arg, j->v[j->next++]);
}

/*
 * The journal record of a message that also has a file: marked F and
 * synced when the file loaded (or once the file is removed the record
 * would bring the message back; a scan that cannot say so fails), kept
 * queued in its segment when the file did not.
 */
static int spool_scan_settle(spool_t *s, const spool_msg_t *copy, bool file_loaded)
{
    spool_seg_t *g = spool__seg_find(s, copy->jseq);
    char moved = SPOOL__J_MOVED;
    int err;

    if (g == NULL)
        return 0;
    if (!file_loaded) {
        g->live++;
        return 0;
    }
    if ((err = spool__pwrite_all(&s->io, g->fd, &moved, 1, copy->joff)) != 0 ||
        s->io.fsync(g->fd) != 0) {
        g->live++; /* not dropped, whatever happens next */
        return err != 0 ? err : errno ? -errno : -EIO;
    }
    return 0;
}

/* ---- The scan ---- */

int spool_scan(spool_t *s, const spool_scan_ops_t *ops, void *arg)
{
    spool_jmsgs_t jm = {0};
    char **names = NULL;
    size_t n = 0;
    bool changed = false;
    int err;

    if (s->scanned || s->used)
        return SPOOL_EBUSY;
    if ((err = spool__list(s->dirfd, &names, &n)) != 0)
        return err;
    s->scanned = true; /* once, even if it fails */
    if ((err = spool_scan_journal(s, names, n, &jm, ops, arg)) != 0) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        spool_scan_jmsgs_free(&jm);
        return err;
    }
    for (size_t i = 0; i < n; i++) {
        char quarantine[SPOOL_ID_LEN + sizeof(SPOOL__CORRUPT_SUFFIX)];
        spool_msg_t *m = NULL, *jm_copy;
        uint64_t id;
        int r;

        switch (spool__classify(names[i], &id)) {
        case SPOOL__NAME_TMP:
            /* A writer's file that never reached the rename: the client
             * was never told 250, so it is dropped. */
            if (unlinkat(s->dirfd, names[i], 0) == 0 || errno == ENOENT) {
                changed = true;
                spool_scan_problem(ops, arg, names[i], SPOOL_EPARTIAL);
            }
            break;
        case SPOOL__NAME_MSG:
            spool_scan_until(&jm, names[i], ops, arg);
            if (spool_scan_gone(&jm, names[i])) {
                if (unlinkat(s->dirfd, names[i], 0) == 0)
                    changed = true;
                break;
            }
            r = spool_scan_load(s->dirfd, s->dir, names[i], &s->io, &m);
            jm_copy = spool_scan_moved(&jm, names[i]);
            if (jm_copy != NULL && (err = spool_scan_settle(s, jm_copy, r == 0)) != 0) {
                spool_msg_free(jm_copy);
                spool_msg_free(m);
                for (size_t k = i; k < n; k++)
                    free(names[k]);
                free(names);
                spool_scan_jmsgs_free(&jm);
                return err;
            }
            if (r == 0) {
                ops->message(arg, m);
            } else if (r == SPOOL_EPARTIAL) {
                if (unlinkat(s->dirfd, names[i], 0) == 0)
                    changed = true;
                spool_scan_problem(ops, arg, names[i], r);
            } else if (r == SPOOL_ECORRUPT) {
                str_fmt(quarantine, sizeof(quarantine), "%s%s", names[i],
                        SPOOL__CORRUPT_SUFFIX);
                if (renameat(s->dirfd, names[i], s->dirfd, quarantine) == 0)
                    changed = true;
                spool_scan_problem(ops, arg, names[i], r);
            } else {
                spool_scan_problem(ops, arg, names[i], r);
            }
            /* A file that is not the message: its journal record is. */
            if (jm_copy != NULL && (r == SPOOL_EPARTIAL || r == SPOOL_ECORRUPT)) {
                ops->message(arg, jm_copy);
                jm_copy = NULL;
            }
            spool_msg_free(jm_copy);
            break;
        default:
            break;
        }
        free(names[i]);
    }
    free(names);
    spool_scan_until(&jm, NULL, ops, arg);
    spool_scan_jmsgs_free(&jm);
    /* The removals need not be durable (a crash replays them), but
     * settle the directory before new files come, and before the
     * journal's empty segments, whose D records mark stale files, go. */
    if (changed && s->io.fsync(s->dirfd) != 0)
        return -errno;
    return s->jdirfd >= 0 ? spool_scan_drop_segments(s) : 0;
}
