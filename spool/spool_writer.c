/*
 * Writers: a message streaming in through a buffer and, once it outgrows
 * it, a temporary file; its commit, as a journal record or as the file,
 * queued for the next pass of the commit lane (spool_group.c); and
 * spool_submit() for a message already in memory.  docs/spool.md
 * ("Writing a message") has the protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

/*
 * Writers buffer this much before a write(2): a 4 KiB message then costs
 * one system call at commit.  A message that may still go to the commit
 * journal (up to SPOOL__JBUF_MAX) grows its buffer instead of making a
 * file, while the writers' buffers beyond this take no more than the
 * spool's buffer_memory in all: memory per session in DATA stays bounded
 * whatever the message size.
 */
#define SPOOL_WRITE_BUF (16 * 1024)

struct spool_writer {
    spool_t *s;
    char id[SPOOL_ID_SIZE];
    int fd;
    int err;           /* first write error, sticky */
    uint64_t flushed;  /* file offset where the image in buf starts */
    uint64_t size;     /* message bytes offered */
    /* SPOOL__JREC_HDR bytes of room, then cap bytes for the image (what
     * the file holds from flushed on): a journal commit's record is the
     * buffer itself. */
    unsigned char *buf;
    size_t cap;
    size_t used;       /* image bytes in buf */
    uint64_t errors_seen; /* sync_errors at open */
};

/* The image bytes of w's buffer. */
static unsigned char *spool_writer_img(const spool_writer_t *w)
{
    return w->buf + SPOOL__JREC_HDR;
}

/* Buffer room for an image of need bytes, if the message may still go
 * to the journal (nothing of it written out, at most max bytes) and the
 * writers' buffers stay within the spool's budget. */
static bool spool_writer_grow(spool_writer_t *w, size_t need, size_t max)
{
    spool_t *s = w->s;
    size_t cap = w->cap;

    if (need <= cap)
        return true;
    if (s->files_only || w->fd >= 0 || w->flushed != 0 || need > max)
        return false;
    while (cap < need)
        cap *= 2;
    if (cap > max)
        cap = max;
    if (cap - w->cap > s->wbuf_max - s->wbuf_bytes)
        return false;
    w->buf = xrealloc(w->buf, SPOOL__JREC_HDR + cap);
    s->wbuf_bytes += cap - w->cap;
    w->cap = cap;
    return true;
}

/* Give back the buffer's growth to the budget (its memory stays). */
static void spool_writer_release(spool_writer_t *w)
{
    w->s->wbuf_bytes -= w->cap - SPOOL_WRITE_BUF;
    w->cap = SPOOL_WRITE_BUF;
}

/*
 * The clock's microseconds when they are above the last id and within
 * the id space, else the last id plus one; past SPOOL_ID_MAX, the lowest
 * id again; and every id in use skipped (docs/spool.md, "Queue ids").
 * The set of ids in use is finite, so a free one comes.  It is held for
 * the writer from here on.
 */
static void spool_writer_next_id(spool_t *s, char id[SPOOL_ID_SIZE])
{
    int64_t now = s->clock_us(s->clock_arg);
    uint64_t v = s->last_id + 1;

    if (now > 0 && (uint64_t)now > s->last_id && (uint64_t)now <= SPOOL_ID_MAX)
        v = (uint64_t)now;
    for (;; v++) {
        if (v > SPOOL_ID_MAX || v < SPOOL_ID_MIN)
            v = SPOOL_ID_MIN;
        spool__format_id(v, id);
        if (!spool__id_held(s, id))
            break;
    }
    s->last_id = v;
    spool__id_hold(s, id);
}

/* The writer's temporary file, made when the first bytes go out. */
static int spool_writer_create(spool_writer_t *w)
{
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];

    spool__tmp_name(w->id, tmp, sizeof(tmp));
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
    if (w->used > 0 &&
        (err = spool__pwrite_all(io, w->fd, spool_writer_img(w), w->used, w->flushed)) == 0) {
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
    if (n <= w->cap - w->used || spool_writer_grow(w, w->used + n, SPOOL__JBUF_MAX)) {
        memcpy(spool_writer_img(w) + w->used, p, n);
        w->used += n;
        return 0;
    }
    /* Too big for the journal (or no memory for it): the file, through a
     * buffer of the first size. */
    spool_writer_release(w);
    if (n >= w->cap)
        return spool_writer_flush(w, p, n);
    if (spool_writer_flush(w, NULL, 0) != 0)
        return w->err;
    memcpy(spool_writer_img(w), p, n);
    w->used = n;
    return 0;
}

static void spool_writer_free(spool_writer_t *w, bool unlink_file)
{
    char tmp[SPOOL_ID_SIZE + sizeof(SPOOL__TMP_SUFFIX)];

    if (unlink_file && w->fd >= 0) {
        spool__tmp_name(w->id, tmp, sizeof(tmp));
        unlinkat(w->s->dirfd, tmp, 0);
    }
    if (w->fd >= 0)
        close(w->fd);
    w->s->writers--;
    if (w->buf != NULL)
        spool_writer_release(w);
    free(w->buf);
    free(w);
}

int spool_writer_open(spool_t *s, spool_writer_t **out)
{
    spool_writer_t *w;
    buf_t head;

    *out = NULL;
    w = xcalloc(1, sizeof(*w));
    /* No id in use is given again, so the file the id names, if one is
     * made, is new: O_EXCL says so. */
    spool_writer_next_id(s, w->id);
    s->used = true;
    s->writers++;
    w->s = s;
    w->fd = -1;
    w->errors_seen = atomic_load(&s->sync_errors);
    w->cap = SPOOL_WRITE_BUF;
    w->buf = xmalloc(SPOOL__JREC_HDR + w->cap);
    buf_init(&head, SIZE_MAX);
    spool_record_put_header(&head, 0);
    memcpy(spool_writer_img(w), buf_ptr(&head), buf_used(&head));
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
    if (w == NULL)
        return;
    spool__id_release(w->s, w->id);
    spool_writer_free(w, true);
}

/* Put the body length into the header, in the buffer if it is still there. */
static int spool_writer_patch_length(spool_writer_t *w)
{
    unsigned char len[8];
    const size_t at = SPOOL__MAGIC_LEN + 1;

    spool_record_put_be64(len, w->size);
    if (w->flushed == 0) {
        memcpy(spool_writer_img(w) + at, len, sizeof(len));
        return 0;
    }
    w->err = spool__pwrite_all(&w->s->io, w->fd, len, sizeof(len), at);
    return w->err;
}

/*
 * Commit a message that is whole in its writer's buffer through the
 * journal: its image (the bytes its file would hold) becomes a record,
 * placed at the end of the current segment when its pass starts
 * (spool__journal_place()), written and synced by that pass.  The
 * record is the writer's buffer, the trailer appended; once durable, the
 * message's body in memory points into it (spool_group.c).  false when
 * it is too big: the caller then makes the file.  On true the writer is
 * gone.
 */
static bool spool_writer_journal(spool_writer_t *w, const buf_t *trailer,
                                 const spool_envelope_t *env, int64_t arrival, spool_commit_cb cb,
                                 void *arg)
{
    spool_t *s = w->s;
    size_t ilen = w->used + buf_used(trailer);
    spool_item_t *it;
    spool_msg_t *m;

    if (s->files_only || w->fd >= 0 || w->flushed != 0 || ilen > SPOOL__JIMAGE_MAX)
        return false;
    if (ilen > w->cap) {
        /* The trailer's room, beyond the budget for a moment: the buffer
         * is the record now, freed with its pass. */
        w->buf = xrealloc(w->buf, SPOOL__JREC_HDR + ilen);
    }
    memcpy(spool_writer_img(w) + w->used, buf_ptr(trailer), buf_used(trailer));
    it = spool__item_new(s, SPOOL_ITEM_JCOMMIT, w->id);
    it->rec_len = SPOOL__JREC_HDR + ilen;
    it->rec = w->buf;
    w->buf = NULL;
    spool_writer_release(w);
    m = spool_record_msg_new(spool__path(s->dir, w->id), w->id, arrival, w->size, env);
    m->jlen = ilen;
    it->msg = m;
    it->commit_cb = cb;
    it->arg = arg;
    it->before_ack = env->before_ack && s->before_ack != NULL;
    spool_writer_free(w, false);
    spool__enqueue(s, it);
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
    char *body = NULL;

    buf_init(&trailer, SIZE_MAX);
    if (err == 0 && (cb == NULL || env->body_skip > w->size))
        err = SPOOL_EINVAL;
    if (err == 0)
        err = spool_record_encode_trailer(&trailer, w->id, arrival, env);
    if (err == 0)
        err = spool_writer_patch_length(w);
    if (err == 0 && w->flushed == 0 && spool_writer_journal(w, &trailer, env, arrival, cb, arg)) {
        buf_free(&trailer);
        return 0;
    }
    /* Nothing written yet: the whole body is in the buffer, before the
     * trailer goes in (which may flush it). */
    if (err == 0 && w->flushed == 0)
        body = xmemdup(spool_writer_img(w) + SPOOL__BODY_OFFSET, w->size);
    if (err == 0)
        err = spool_writer_put(w, buf_ptr(&trailer), buf_used(&trailer));
    if (err == 0)
        err = spool_writer_flush(w, NULL, 0);
    buf_free(&trailer);
    if (err != 0) {
        free(body);
        spool__id_release(s, w->id);
        spool_writer_free(w, true);
        return err;
    }

    it = spool__item_new(s, SPOOL_ITEM_COMMIT, w->id);
    it->errors_seen = w->errors_seen;
    it->fd = w->fd;
    it->msg = spool_record_msg_new(spool__path(s->dir, w->id), w->id, arrival, w->size, env);
    it->msg->body = body;
    it->msg->body_held = body != NULL ? w->size : 0;
    it->commit_cb = cb;
    it->arg = arg;
    it->before_ack = env->before_ack && s->before_ack != NULL;
    w->fd = -1; /* the pass closes it */
    spool_writer_free(w, false);
    spool__enqueue(s, it);
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
