/*
 * The start-up scan: loading each message file (and cutting a torn state
 * record off it), reading the journal's segments, and handing every
 * committed message over in id order, the journal's and the files'
 * together.  docs/spool.md ("Start-up", "The commit journal") has what a
 * crash can leave and what the scan makes of it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

/* Files up to this size are read whole, in one read. */
#define SPOOL_SCAN_WHOLE (64 * 1024)
/* Threads that read message files ahead, besides the caller's, and the
 * names each takes at a time. */
#define SPOOL_SCAN_THREADS 3
#define SPOOL_SCAN_BATCH 64

/* A D record: a file of its id is a stale copy of a removed message. */
typedef struct {
    char id[SPOOL_ID_SIZE];
    uint64_t seq; /* the segment that says so */
} spool_scan_gone_t;

/* Messages of the journal, to hand over in id order with the files', and
 * the ids its records say were removed. */
typedef struct {
    spool_msg_t **v;
    size_t n, cap, next;
    spool_scan_gone_t *gone;
    size_t ngone, gone_cap;
    /* Records still M whose id has a file: the file wins if it loads
     * (the record is then marked F), the record if it does not. */
    spool_msg_t **moved;
    size_t nmoved, moved_cap;
} spool_jmsgs_t;

/* A message file read ahead (spool_scan_read_ahead()): what its lstat
 * said (r: 0, -errno or SPOOL_ENOTFILE) and, for a regular file, what
 * loading it gave (r, m). */
typedef struct {
    int r;
    spool_msg_t *m;
    bool done;
} spool_scan_pre_t;

/* One scan: the spool, the caller's hooks, the spool directory's names
 * (sorted) and what the journal holds. */
typedef struct {
    spool_t *s;
    const spool_scan_ops_t *ops;
    void *arg;
    char **names;
    size_t n;
    spool_scan_pre_t *pre; /* one per name, or NULL */
    atomic_size_t pre_next; /* the next name a reader takes */
    spool_jmsgs_t jm;
    bool changed;  /* the spool directory: fsync it */
    bool jchanged; /* the journal's */
} spool_scan_t;

/* A report: what was wrong with name, and what the scan did about it. */
static void spool_scan_say(spool_scan_t *sc, const char *name, int err, const char *done)
{
    if (sc->ops->problem != NULL)
        sc->ops->problem(sc->arg, name, err, done);
}

/* "left in place: why". */
static void spool_scan_left(spool_scan_t *sc, const char *name, int err, const char *why)
{
    char done[256];

    str_fmt(done, sizeof(done), "left in place: %s", why);
    spool_scan_say(sc, name, err, done);
}

/* Hand a message over: its id is in use, and new ids start above it. */
static void spool_scan_give(spool_scan_t *sc, spool_msg_t *m)
{
    spool__id_hold(sc->s, m->id);
    spool__id_raise(sc->s, m->id);
    sc->ops->message(sc->arg, m);
}

/* An entry named like a message (ID or ID.TAIL) that stays where it is:
 * its id stays in use until the next start. */
static void spool_scan_keep_id(spool_scan_t *sc, const char *name)
{
    char id[SPOOL_ID_SIZE];

    str_lcpy(id, name, sizeof(id));
    spool__id_hold(sc->s, id);
    spool__id_raise(sc->s, id);
}

/* The spool directory's entry name, or the journal's, which is no regular
 * file, renamed out of the way. */
static void spool_scan_aside(spool_scan_t *sc, bool journal, const char *name)
{
    const char *dir = journal ? SPOOL__JOURNAL "/" : "";
    char out[SPOOL__ASIDE_SIZE], label[SPOOL__ASIDE_SIZE], done[2 * SPOOL__ASIDE_SIZE];
    int r = spool__set_aside(sc->s, journal ? sc->s->jdirfd : sc->s->dirfd, name, out);

    str_fmt(label, sizeof(label), "%s%s", dir, name);
    if (r != 0) {
        if (!journal)
            spool_scan_keep_id(sc, name);
        spool_scan_left(sc, label, SPOOL_ENOTFILE, spool_strerror(r));
        return;
    }
    *(journal ? &sc->jchanged : &sc->changed) = true;
    str_fmt(done, sizeof(done), "moved aside as %s%s", dir, out);
    spool_scan_say(sc, label, SPOOL_ENOTFILE, done);
}

static int spool_scan_cmp_msgs(const void *a, const void *b)
{
    return strcmp((*(spool_msg_t *const *)a)->id, (*(spool_msg_t *const *)b)->id);
}

static int spool_scan_cmp_gone(const void *a, const void *b)
{
    return strcmp(((const spool_scan_gone_t *)a)->id, ((const spool_scan_gone_t *)b)->id);
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
    unsigned char *trailer = NULL, *whole = NULL;
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
    err = SPOOL_ENOTFILE; /* replaced since it was listed */
    if (!S_ISREG(st.st_mode))
        goto fail;
    err = SPOOL_EPARTIAL;
    if ((uint64_t)st.st_size < SPOOL__BODY_OFFSET)
        goto fail;
    if ((uint64_t)st.st_size <= SPOOL_SCAN_WHOLE) {
        /* Small: one read of the whole file, body and all. */
        whole = xmalloc((size_t)st.st_size);
        if ((err = spool__read_at(fd, whole, (size_t)st.st_size, 0)) != 0)
            goto fail;
        memcpy(head, whole, sizeof(head));
    } else if ((err = spool__read_at(fd, head, sizeof(head), 0)) != 0) {
        goto fail;
    }
    if ((err = spool_record_parse_head(head, (uint64_t)st.st_size, &body_len)) != 0)
        goto fail;
    body_end = SPOOL__BODY_OFFSET + body_len;
    tlen = (uint64_t)st.st_size - body_end;
    err = SPOOL_ECORRUPT;
    if (tlen > SPOOL__TRAILER_MAX)
        goto fail;
    if (whole == NULL) {
        trailer = xmalloc(tlen ? tlen : 1);
        if ((err = spool__read_at(fd, trailer, tlen, body_end)) != 0)
            goto fail;
    }

    m = spool_record_msg_alloc(spool__path(dir, name), name, SPOOL__BODY_OFFSET);
    m->body_length = body_len;
    if ((err = spool_record_parse_trailer(m, whole != NULL ? whole + body_end : trailer, tlen,
                                          &valid)) != 0)
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
    free(whole);
    close(fd);
    return err;
}

static const spool_scan_gone_t *spool_scan_gone(const spool_jmsgs_t *j, const char *id);

/* What spool_scan_file() needs of a message file: whether it is a
 * regular file and, if so and not stale, what loading it gives.  Made by
 * spool_scan_read_ahead() on several threads. */
static void spool_scan_read_one(spool_scan_t *sc, size_t i)
{
    spool_t *s = sc->s;
    spool_scan_pre_t *p = &sc->pre[i];
    const char *name = sc->names[i];
    struct stat st;
    int r = 0;

    /* The directory says what it is, as a rule: no lstat then (the open
     * does not follow a symlink, and the load checks it has a file). */
    if (spool__list_type(name) != DT_REG) {
        if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            r = -errno;
        else if (!S_ISREG(st.st_mode))
            r = SPOOL_ENOTFILE;
    }
    /* A stale copy (its id has a D record) is removed unread. */
    if (r == 0 && spool_scan_gone(&sc->jm, name) == NULL)
        r = spool_scan_load(s->dirfd, s->dir, name, &s->io, &p->m);
    p->r = r;
    p->done = true;
}

static void *spool_scan_reader(void *arg)
{
    spool_scan_t *sc = arg;
    uint64_t id;
    size_t i;

    while ((i = atomic_fetch_add(&sc->pre_next, SPOOL_SCAN_BATCH)) < sc->n)
        for (size_t k = i; k < i + SPOOL_SCAN_BATCH && k < sc->n; k++)
            if (spool__classify(sc->names[k], &id) == SPOOL__NAME_MSG)
                spool_scan_read_one(sc, k);
    return NULL;
}

/*
 * Read every message file ahead, on SPOOL_SCAN_THREADS threads at once:
 * the opens, reads and parsing of a big queue take most of a start's time
 * (docs/spool.md, Start-up), and nothing orders them.  What is done with
 * each result stays in id order on this thread (spool_scan_file()).
 * Without threads (one cannot be made) each file is read when its turn
 * comes.
 */
static void spool_scan_read_ahead(spool_scan_t *sc)
{
    pthread_t t[SPOOL_SCAN_THREADS];
    size_t nt = 0, nmsg = 0;
    uint64_t id;

    for (size_t i = 0; i < sc->n; i++)
        nmsg += spool__classify(sc->names[i], &id) == SPOOL__NAME_MSG;
    if (nmsg < SPOOL_SCAN_BATCH)
        return;
    sc->pre = xcalloc(sc->n, sizeof(*sc->pre));
    atomic_init(&sc->pre_next, 0);
    while (nt < SPOOL_SCAN_THREADS && pthread_create(&t[nt], NULL, spool_scan_reader, sc) == 0)
        nt++;
    spool_scan_reader(sc);
    while (nt > 0)
        pthread_join(t[--nt], NULL);
}

/* ---- The journal's segments ---- */

/* A segment's name in reports: "journal/SEQ". */
static void spool_scan_seg_label(uint64_t seq, char out[SPOOL__ASIDE_SIZE])
{
    char name[SPOOL__JSEQ_LEN + 1];

    spool__seg_name(seq, name);
    str_fmt(out, SPOOL__ASIDE_SIZE, "%s/%s", SPOOL__JOURNAL, name);
}

/*
 * A whole record that is not to be taken for a message nor dropped: one
 * whose state byte is unknown (m: its message, if the image parses; err
 * SPOOL_EJOURNAL), or a queued one whose image is no message (m NULL, err
 * SPOOL_ECORRUPT).  Its image is written out for the admin as ID.corrupt,
 * or journal-SEQ-OFFSET.corrupt without an id to read, durably, and only
 * then marked failed (X) so that its segment may go.  true when it is
 * accounted for; false keeps the segment.
 */
static bool spool_scan_keep_record(spool_scan_t *sc, spool_seg_t *g, size_t pos,
                                   const unsigned char *rec, size_t len, const spool_msg_t *m,
                                   int err)
{
    spool_t *s = sc->s;
    char label[SPOOL__ASIDE_SIZE], base[SPOOL__ASIDE_SIZE], kept[SPOOL__ASIDE_SIZE],
        what[64], done[2 * SPOOL__ASIDE_SIZE];
    char seg[SPOOL__JSEQ_LEN + 1], failed = SPOOL__J_FAILED;
    int r;

    spool_scan_seg_label(g->seq, label);
    spool__seg_name(g->seq, seg);
    if (m != NULL)
        str_lcpy(base, m->id, sizeof(base));
    else
        str_fmt(base, sizeof(base), "%s-%s-%zu", SPOOL__JOURNAL, seg, pos);
    if (spool_record_jstate_known(rec[0]))
        str_fmt(what, sizeof(what), "record at offset %zu", pos);
    else
        str_fmt(what, sizeof(what), "record at offset %zu, state byte 0x%02X", pos, rec[0]);
    r = spool__write_aside(s, base, rec + SPOOL__JREC_HDR, len, kept);
    if (r != 0) {
        str_fmt(done, sizeof(done), "%s, left in place: %s", what, spool_strerror(r));
        spool_scan_say(sc, label, err, done);
        return false;
    }
    str_fmt(done, sizeof(done), "%s, kept as %s", what, kept);
    spool_scan_say(sc, label, err, done);
    /* Kept, but if the mark does not hold the segment stays: the next
     * scan finds the same copy there already. */
    return spool__pwrite_all(&s->io, g->fd, &failed, 1, pos) == 0 && s->io.fsync(g->fd) == 0;
}

/* Whether p[0..n) is all zero bytes. */
static bool spool_scan_all_zero(const unsigned char *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Read one segment: every record still queued becomes a message, unless
 * the message has a file of its own (names: the spool directory's), which
 * then holds its state.  Records are read up to the first that is torn
 * (cut short, or failing its CRC): a commit lane's pass appends after the
 * last one's fdatasync, and a segment takes no appends after a failed
 * pass, so what follows was never acknowledged.  A whole record that
 * cannot be read as it says is kept for the admin
 * (spool_scan_keep_record()), and reading goes on.  0, or -errno.
 */
static int spool_scan_segment(spool_scan_t *sc, const char *name, uint64_t seq)
{
    spool_t *s = sc->s;
    spool_jmsgs_t *out = &sc->jm;
    unsigned char *data = NULL;
    char label[SPOOL__ASIDE_SIZE];
    spool_seg_t *g;
    struct stat st;
    size_t size, pos = SPOOL__JMAGIC_LEN;
    unsigned live = 0;
    int fd, err;

    spool_scan_seg_label(seq, label);
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
        spool_scan_left(sc, label, SPOOL_EJOURNAL, "longer than a segment can be");
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
    /* A segment made just before a crash may not even have its magic;
     * one made ahead may have its size and none of its bytes (a file
     * system that writes the size first): all zeros, never used. */
    if (size >= SPOOL__JMAGIC_LEN && memcmp(data, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN) != 0) {
        if (!spool_scan_all_zero(data, size)) {
            spool_scan_left(sc, label, SPOOL_EJOURNAL, "not a journal segment (bad magic)");
            live++; /* kept for the admin */
        }
        pos = size;
    }
    while (pos + SPOOL__JREC_HDR <= size) {
        const unsigned char *rec = data + pos;
        spool_msg_t *m = NULL;
        size_t len;
        int state, r;

        if (spool_record_jrec_frame(rec, size - pos, &len) != 0)
            break;
        state = rec[0];
        r = spool_record_parse_image(g->path, pos + SPOOL__JREC_HDR, rec + SPOOL__JREC_HDR, len,
                                     &m);
        if (r == 0) {
            /* Every id the journal names stays taken, as the files' do;
             * and in use while its record is on disk. */
            spool__seg_hold(s, g, m->id);
            spool__id_raise(s, m->id);
        }
        if (!spool_record_jstate_known(state) || (r != 0 && state == SPOOL__J_QUEUED)) {
            if (!spool_scan_keep_record(sc, g, pos, rec, len, m,
                                        r == 0 ? SPOOL_EJOURNAL : SPOOL_ECORRUPT))
                live++;
        } else if (r != 0) {
            /* Whole by its CRC, not a message, and not queued: nothing to
             * keep. */
        } else if (state == SPOOL__J_QUEUED && spool_scan_has_name(sc->names, sc->n, m->id)) {
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
            str_lcpy(out->gone[out->ngone].id, m->id, SPOOL_ID_SIZE);
            out->gone[out->ngone++].seq = seq;
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

/* The journal's segments, oldest first.  An entry named like one that is
 * no regular file is moved aside. */
static int spool_scan_journal(spool_scan_t *sc)
{
    spool_t *s = sc->s;
    spool_jmsgs_t *out = &sc->jm;
    char **segs = NULL;
    size_t nsegs = 0;
    int err = 0;

    if (s->jdirfd < 0)
        return 0;
    if ((err = spool__list(s->jdirfd, &segs, &nsegs)) != 0)
        return err;
    for (size_t i = 0; i < nsegs; i++) {
        struct stat st;
        uint64_t seq;

        if (err == 0 && spool__seq_name(segs[i], &seq)) {
            if (seq > s->jseq)
                s->jseq = seq;
            if (fstatat(s->jdirfd, segs[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
                err = errno == ENOENT ? 0 : -errno;
            else if (!S_ISREG(st.st_mode))
                spool_scan_aside(sc, true, segs[i]);
            else
                err = spool_scan_segment(sc, segs[i], seq);
        }
        free(segs[i]);
    }
    free(segs);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), spool_scan_cmp_msgs);
    if (out->ngone > 1)
        qsort(out->gone, out->ngone, sizeof(*out->gone), spool_scan_cmp_gone);
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
 * durable.  A segment that cannot be removed keeps its ids in use.
 */
static int spool_scan_drop_segments(spool_scan_t *sc)
{
    spool_t *s = sc->s;
    bool changed = sc->jchanged;

    for (spool_seg_t *g = s->segs, *next; g != NULL; g = next) {
        char name[SPOOL__JSEQ_LEN + 1];

        next = g->next;
        if (g->live > 0)
            continue;
        spool__seg_name(g->seq, name);
        if (unlinkat(s->jdirfd, name, 0) == 0) {
            changed = true;
            spool__seg_release_ids(s, g);
        }
        spool__seg_free(s, g);
    }
    if (changed && s->io.fsync(s->jdirfd) != 0)
        return errno ? -errno : -EIO;
    return 0;
}

static const spool_scan_gone_t *spool_scan_gone(const spool_jmsgs_t *j, const char *id)
{
    spool_scan_gone_t key;

    if (j->ngone == 0)
        return NULL;
    str_lcpy(key.id, id, sizeof(key.id));
    return bsearch(&key, j->gone, j->ngone, sizeof(*j->gone), spool_scan_cmp_gone);
}

static void spool_scan_jmsgs_free(spool_jmsgs_t *j)
{
    for (size_t i = j->next; i < j->n; i++)
        spool_msg_free(j->v[i]);
    free(j->v);
    for (size_t i = 0; i < j->nmoved; i++)
        spool_msg_free(j->moved[i]);
    free(j->moved);
    free(j->gone);
}

/* Hand over the journal's messages whose ids sort before name (all: NULL). */
static void spool_scan_until(spool_scan_t *sc, const char *name)
{
    spool_jmsgs_t *j = &sc->jm;

    while (j->next < j->n && (name == NULL || strcmp(j->v[j->next]->id, name) < 0))
        spool_scan_give(sc, j->v[j->next++]);
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

/* ---- The spool directory's entries ---- */

/* ID.tmp: a writer's file that never reached the rename.  The client was
 * never told 250, so it is dropped. */
static void spool_scan_tmp(spool_scan_t *sc, const char *name)
{
    spool_t *s = sc->s;
    struct stat st;
    int e;

    if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if ((e = errno) != ENOENT) {
            spool_scan_keep_id(sc, name);
            spool_scan_left(sc, name, -e, "cannot look at it");
        }
    } else if (!S_ISREG(st.st_mode)) {
        spool_scan_aside(sc, false, name);
    } else if (unlinkat(s->dirfd, name, 0) == 0) {
        sc->changed = true;
        spool_scan_say(sc, name, SPOOL_EPARTIAL, "removed");
    } else if ((e = errno) != ENOENT) {
        spool_scan_keep_id(sc, name);
        spool_scan_left(sc, name, SPOOL_EPARTIAL, spool_strerror(-e));
    }
}

/* A file whose id has a D record: a stale copy of a removed message.  If
 * it cannot go, the record stays to say so (its segment is kept). */
static void spool_scan_stale(spool_scan_t *sc, const char *name, const spool_scan_gone_t *gone)
{
    spool_seg_t *g;
    int e;

    if (unlinkat(sc->s->dirfd, name, 0) == 0) {
        sc->changed = true;
        return;
    }
    if ((e = errno) == ENOENT)
        return;
    spool_scan_keep_id(sc, name);
    spool_scan_left(sc, name, -e, "a stale copy of a removed message");
    if ((g = spool__seg_find(sc->s, gone->seq)) != NULL)
        g->live++;
}

/* What a file that is not a whole message becomes: removed (partial),
 * kept as ID.corrupt (corrupt), moved aside (no regular file). */
static void spool_scan_not_message(spool_scan_t *sc, const char *name, int r)
{
    spool_t *s = sc->s;
    char out[SPOOL__ASIDE_SIZE], done[SPOOL__ASIDE_SIZE + 16];
    int err;

    if (r == SPOOL_EPARTIAL) {
        if (unlinkat(s->dirfd, name, 0) == 0) {
            sc->changed = true;
            spool_scan_say(sc, name, r, "removed");
        } else {
            err = -errno;
            spool_scan_keep_id(sc, name);
            spool_scan_left(sc, name, r, spool_strerror(err));
        }
    } else if (r == SPOOL_ECORRUPT) {
        /* Never deleted: an acknowledged message might be recoverable
         * by hand. */
        if ((err = spool__set_aside(s, s->dirfd, name, out)) == 0) {
            sc->changed = true;
            str_fmt(done, sizeof(done), "kept as %s", out);
            spool_scan_say(sc, name, r, done);
        } else {
            spool_scan_keep_id(sc, name);
            spool_scan_left(sc, name, r, spool_strerror(err));
        }
    } else if (r == SPOOL_ENOTFILE) {
        spool_scan_aside(sc, false, name);
    } else {
        spool_scan_keep_id(sc, name);
        spool_scan_left(sc, name, r, "cannot read it");
    }
}

/* ID: a message file, loaded and handed over, or what it is instead
 * (pre: read ahead, or NULL).  0, or -errno when the scan must fail. */
static int spool_scan_file(spool_scan_t *sc, const char *name, spool_scan_pre_t *pre)
{
    spool_t *s = sc->s;
    const spool_scan_gone_t *gone;
    spool_msg_t *m = NULL, *copy;
    struct stat st;
    int r, err;

    if (pre != NULL && pre->done) {
        r = pre->r;
        m = pre->m;
        pre->m = NULL;
        if (r == 0 && m == NULL) {
            spool_scan_stale(sc, name, spool_scan_gone(&sc->jm, name));
            return 0;
        }
    } else if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = SPOOL_ENOTFILE;
    else if ((gone = spool_scan_gone(&sc->jm, name)) != NULL) {
        spool_scan_stale(sc, name, gone);
        return 0;
    } else
        r = spool_scan_load(s->dirfd, s->dir, name, &s->io, &m);
    copy = spool_scan_moved(&sc->jm, name);
    if (copy != NULL && (err = spool_scan_settle(s, copy, r == 0)) != 0) {
        spool_msg_free(copy);
        spool_msg_free(m);
        return err;
    }
    if (r == 0)
        spool_scan_give(sc, m);
    else if (r != -ENOENT)
        spool_scan_not_message(sc, name, r);
    /* A file that is not the message: its journal record is. */
    if (copy != NULL && (r == SPOOL_EPARTIAL || r == SPOOL_ECORRUPT || r == SPOOL_ENOTFILE ||
                         r == -ENOENT)) {
        spool_scan_give(sc, copy);
        copy = NULL;
    }
    spool_msg_free(copy);
    return 0;
}

/* ---- The scan ---- */

int spool_scan(spool_t *s, const spool_scan_ops_t *ops, void *arg)
{
    spool_scan_t sc = {.s = s, .ops = ops, .arg = arg};
    size_t i = 0;
    int err;

    if (s->scanned || s->used)
        return SPOOL_EBUSY;
    if ((err = spool__list(s->dirfd, &sc.names, &sc.n)) != 0)
        return err;
    s->scanned = true; /* once, even if it fails */
    /* What is in use, and where new ids start, is what the scan finds
     * live (docs/spool.md, "Queue ids"). */
    s->last_id = 0;
    htab_free(s->ids, NULL);
    s->ids = htab_new(64);
    err = spool_scan_journal(&sc);
    if (err == 0)
        spool_scan_read_ahead(&sc);
    for (; err == 0 && i < sc.n; i++) {
        uint64_t id;

        switch (spool__classify(sc.names[i], &id)) {
        case SPOOL__NAME_TMP:
            spool_scan_tmp(&sc, sc.names[i]);
            break;
        case SPOOL__NAME_MSG:
            spool_scan_until(&sc, sc.names[i]);
            err = spool_scan_file(&sc, sc.names[i], sc.pre != NULL ? &sc.pre[i] : NULL);
            break;
        default:
            break;
        }
    }
    for (i = 0; i < sc.n; i++) {
        if (sc.pre != NULL)
            spool_msg_free(sc.pre[i].m); /* not handed over: the scan failed */
        free(sc.names[i]);
    }
    free(sc.pre);
    free(sc.names);
    if (err == 0)
        spool_scan_until(&sc, NULL);
    spool_scan_jmsgs_free(&sc.jm);
    if (err != 0)
        return err;
    /* The removals need not be durable (a crash replays them), but
     * settle the directory before new files come, and before the
     * journal's empty segments, whose D records mark stale files, go. */
    if (sc.changed && s->io.fsync(s->dirfd) != 0)
        return -errno;
    return s->jdirfd >= 0 ? spool_scan_drop_segments(&sc) : 0;
}
