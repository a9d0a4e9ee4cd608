/*
 * The spool: opening and locking the directory, its names and the I/O
 * every part shares, stats and errors, and the entry points that queue
 * state updates and removals.  Writers are in spool_writer.c, the group
 * commit in spool_group.c, the commit journal in spool_journal.c, the
 * start-up scan in spool_scan.c and the record format in spool_record.c.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* ---- System calls through the test hook ---- */

static ssize_t spool_sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

static int spool_sys_fsync(int fd)
{
    return fsync(fd);
}

static int spool_sys_fdatasync(int fd)
{
    return fdatasync(fd);
}

static int spool_sys_syncfs(int fd)
{
    return syncfs(fd);
}

static int spool_sys_renameat2(int olddirfd, const char *oldpath, int newdirfd,
                               const char *newpath, unsigned flags)
{
    return renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

static int64_t spool_sys_clock(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- Open, close ---- */

/* Everything of s but its directory descriptor and path. */
static void spool_free(spool_t *s)
{
    while (s->segs != NULL)
        spool__seg_free(s, s->segs);
    if (s->moving != NULL)
        htab_free(s->moving, NULL);
    if (s->jdirfd >= 0)
        close(s->jdirfd);
    if (s->ids != NULL)
        htab_free(s->ids, NULL);
    free(s->jdir);
    free(s);
}

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
    s->ids = htab_new(64);
    if (!s->files_only && (err = spool__journal_open(s)) != 0) {
        s->dir = NULL;
        spool_free(s);
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        goto fail;
    }
    s->io.pwrite = opt->io && opt->io->pwrite ? opt->io->pwrite : spool_sys_pwrite;
    s->io.fsync = opt->io && opt->io->fsync ? opt->io->fsync : spool_sys_fsync;
    s->io.fdatasync = opt->io && opt->io->fdatasync ? opt->io->fdatasync
                      : opt->io && opt->io->fsync       ? opt->io->fsync
                                                        : spool_sys_fdatasync;
    s->io.syncfs = opt->io && opt->io->syncfs ? opt->io->syncfs : spool_sys_syncfs;
    s->io.renameat2 =
        opt->io && opt->io->renameat2 ? opt->io->renameat2 : spool_sys_renameat2;
    s->sync = opt->sync;
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_mutex_init(&s->jdir_sync_mu, NULL);
    pthread_mutex_init(&s->rename_mu, NULL);
    atomic_init(&s->sync_errors, 0);
    atomic_init(&s->jdir_sync_errors, 0);
    s->exec = opt->exec;
    s->before_ack = opt->before_ack;
    s->before_ack_arg = opt->before_ack_arg;
    s->clock_us = opt->clock_us ? opt->clock_us : spool_sys_clock;
    s->clock_arg = opt->clock_arg;
    s->max_batch = opt->max_batch ? opt->max_batch : SPOOL_MAX_BATCH;
    s->sync_jobs = opt->sync_jobs ? opt->sync_jobs : SPOOL_SYNC_JOBS;
    s->wbuf_max = opt->buffer_memory ? opt->buffer_memory : SPOOL_BUFFER_MEMORY;
    if (s->sync_jobs > SPOOL_SYNC_JOBS_MAX)
        s->sync_jobs = SPOOL_SYNC_JOBS_MAX;
    for (int i = 0; i < SPOOL__LANES; i++)
        s->lanes[i].pending_tail = &s->lanes[i].pending;
    /* New ids start above every message file, whatever the clock says;
     * spool_scan() replaces this with what it finds live. */
    for (size_t i = 0; i < n; i++) {
        uint64_t id;

        if (spool__classify(names[i], &id) == SPOOL__NAME_MSG && id > s->last_id)
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
    pthread_mutex_destroy(&s->jdir_sync_mu);
    pthread_mutex_destroy(&s->rename_mu);
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
    case SPOOL_EEXIST:
        return "an entry of the message's name exists already";
    case SPOOL_ENOTFILE:
        return "not a regular file";
    case SPOOL_EJOURNAL:
        return "damaged journal segment";
    default:
        if (err < 0 && err > -4096)
            return strerror(-err);
        return "unknown spool error";
    }
}

/* ---- Names ---- */

spool__name_t spool__classify(const char *name, uint64_t *id)
{
    size_t len = strlen(name);

    if (len < SPOOL_ID_LEN || !spool_record_hex(name, SPOOL_ID_LEN, id))
        return SPOOL__NAME_OTHER;
    if (len == SPOOL_ID_LEN)
        return SPOOL__NAME_MSG;
    if (strcmp(name + SPOOL_ID_LEN, SPOOL__TMP_SUFFIX) == 0)
        return SPOOL__NAME_TMP;
    if (strcmp(name + SPOOL_ID_LEN, SPOOL__CORRUPT_SUFFIX) == 0)
        return SPOOL__NAME_CORRUPT;
    return SPOOL__NAME_OTHER;
}

void spool__format_id(uint64_t id, char out[SPOOL_ID_SIZE])
{
    spool_record_format_hex(id, SPOOL_ID_LEN, out);
}

void spool__id_hold(spool_t *s, const char *id)
{
    uintptr_t n = (uintptr_t)htab_get(s->ids, id, SPOOL_ID_LEN);

    htab_put(s->ids, id, SPOOL_ID_LEN, (void *)(n + 1));
}

void spool__id_release(spool_t *s, const char *id)
{
    uintptr_t n = (uintptr_t)htab_get(s->ids, id, SPOOL_ID_LEN);

    if (n > 1)
        htab_put(s->ids, id, SPOOL_ID_LEN, (void *)(n - 1));
    else
        htab_remove(s->ids, id, SPOOL_ID_LEN);
}

bool spool__id_held(const spool_t *s, const char *id)
{
    return htab_get(s->ids, id, SPOOL_ID_LEN) != NULL;
}

void spool__id_raise(spool_t *s, const char *id)
{
    uint64_t v;

    if (spool__classify(id, &v) == SPOOL__NAME_MSG && v > s->last_id)
        s->last_id = v;
}

void spool__tmp_name(const char *id, char *name, size_t size)
{
    str_fmt(name, size, "%s%s", id, SPOOL__TMP_SUFFIX);
}

char *spool__path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = xmalloc(n);

    if (str_fmt(p, n, "%s/%s", dir, name) != 0)
        abort();
    return p;
}

void spool__seg_name(uint64_t seq, char out[SPOOL__JSEQ_LEN + 1])
{
    spool_record_format_hex(seq, SPOOL__JSEQ_LEN, out);
}

bool spool__seq_name(const char *name, uint64_t *seq)
{
    return strlen(name) == SPOOL__JSEQ_LEN && spool_record_hex(name, SPOOL__JSEQ_LEN, seq) &&
           *seq != 0 && *seq <= SPOOL__JSEQ_MAX;
}

int spool__cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int spool__list(int dirfd, char ***names, size_t *n)
{
    DIR *d = NULL;
    struct dirent *de;
    char **v = NULL;
    size_t nv = 0, cap = 0;
    int fd, err;

    /* fdopendir() takes over the descriptor: give it a copy. */
    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        err = -errno;
        close(fd);
        return err;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        size_t len = strlen(de->d_name);

        if (nv == cap)
            v = xgrow(v, &cap, nv + 1, sizeof(*v));
        /* The name, its NUL, its type (spool__list_type()). */
        v[nv] = xmalloc(len + 2);
        memcpy(v[nv], de->d_name, len + 1);
        v[nv][len + 1] = (char)de->d_type;
        nv++;
        errno = 0;
    }
    err = -errno;
    closedir(d);
    if (err != 0) {
        for (size_t i = 0; i < nv; i++)
            free(v[i]);
        free(v);
        return err;
    }
    if (nv > 1)
        qsort(v, nv, sizeof(*v), spool__cmp_names);
    *names = v;
    *n = nv;
    return 0;
}

/* ---- I/O ---- */

int spool__rename(spool_t *s, int dirfd, const char *from, const char *to)
{
    struct stat st;
    int err = 0;

    if (s->io.renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return SPOOL_EEXIST;
    if (errno != EINVAL && errno != ENOSYS)
        return errno ? -errno : -EIO;
    /* A file system without RENAME_NOREPLACE: nothing else names entries
     * in the spool (it is flock()ed by this process), so a check and a
     * rename under one lock are as good. */
    pthread_mutex_lock(&s->rename_mu);
    if (fstatat(dirfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0)
        err = SPOOL_EEXIST;
    else if (errno != ENOENT)
        err = -errno;
    else if (renameat(dirfd, from, dirfd, to) != 0)
        err = -errno;
    pthread_mutex_unlock(&s->rename_mu);
    return err;
}

int spool__read_at(int fd, void *p, size_t n, uint64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = pread(fd, (char *)p + done, n - done, (off_t)(off + done));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return SPOOL_EPARTIAL;
        done += (size_t)r;
    }
    return 0;
}

int spool__pwrite_all(const spool_io_t *io, int fd, const void *p, size_t n, uint64_t off)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = io->pwrite(fd, (const char *)p + done, n - done, (off_t)(off + done));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno ? -errno : -EIO;
        if (r == 0)
            return -EIO;
        done += (size_t)r;
    }
    return 0;
}

/* ---- State updates, removal ---- */

int spool_update(spool_t *s, spool_msg_t *msg, const spool_update_t *u, size_t n,
                 spool_done_cb cb, void *arg)
{
    spool_item_kind_t kind = SPOOL_ITEM_UPDATE;
    spool_seg_t *g = NULL;
    spool_item_t *it;
    buf_t rec;
    int err;

    if ((err = spool_record_check_updates(msg, u, n)) != 0)
        return err;
    /* A journal message's first record moves it to a file of its own. */
    if (msg->jseq != 0 && htab_get(s->moving, msg->id, SPOOL_ID_LEN) == NULL) {
        if ((g = spool__seg_find(s, msg->jseq)) == NULL)
            return SPOOL_EINVAL;
        kind = SPOOL_ITEM_MOVE;
        htab_put(s->moving, msg->id, SPOOL_ID_LEN, SPOOL__MOVING);
    }
    buf_init(&rec, SIZE_MAX);
    spool_record_encode_update(&rec, u, n);
    spool_record_apply(msg, u, n);
    it = spool__item_new(s, kind, msg->id);
    if (g != NULL) {
        spool__item_use(it, g);
        it->joff = msg->joff;
        it->jlen = msg->jlen;
    }
    it->rec_len = buf_used(&rec);
    it->rec = xmemdup(buf_ptr(&rec), it->rec_len);
    it->done_cb = cb;
    it->arg = arg;
    buf_free(&rec);
    spool__enqueue(s, it);
    return 0;
}

int spool_remove(spool_t *s, const spool_msg_t *msg, spool_done_cb cb, void *arg)
{
    spool_item_t *it = spool__item_new(s, SPOOL_ITEM_REMOVE, msg->id);
    spool_seg_t *g;

    if (msg->jseq != 0 && (g = spool__seg_find(s, msg->jseq)) != NULL) {
        spool__item_use(it, g);
        it->joff = msg->joff;
        it->has_file = htab_get(s->moving, msg->id, SPOOL_ID_LEN) != NULL;
    }
    it->done_cb = cb;
    it->arg = arg;
    spool__enqueue(s, it);
    return 0;
}
