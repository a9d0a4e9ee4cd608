/*
 * What the start-up scan keeps for the admin instead of taking it for a
 * message or deleting it: entries moved aside and journal records written
 * out, each as a NAME.corrupt that the scan never takes again and that
 * never replaces anything.  docs/spool.md ("Start-up") has what is kept
 * and why.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"
#include "str.h"
#include "xalloc.h"

/* Quarantine names tried for one entry: NAME.corrupt, NAME.1.corrupt, ... */
#define SPOOL_ASIDE_TRIES 10

/* The try-th quarantine name for name: false when it does not fit. */
static bool spool_aside_name(const char *name, int try, char out[SPOOL__ASIDE_SIZE])
{
    if (try == 0)
        return str_fmt(out, SPOOL__ASIDE_SIZE, "%s%s", name, SPOOL__CORRUPT_SUFFIX) == 0;
    return str_fmt(out, SPOOL__ASIDE_SIZE, "%s.%d%s", name, try, SPOOL__CORRUPT_SUFFIX) == 0;
}

int spool__set_aside(spool_t *s, int dirfd, const char *name, char out[SPOOL__ASIDE_SIZE])
{
    int err = SPOOL_EEXIST;

    for (int try = 0; try < SPOOL_ASIDE_TRIES && err == SPOOL_EEXIST; try++) {
        if (!spool_aside_name(name, try, out))
            return -ENAMETOOLONG;
        err = spool__rename(s, dirfd, name, out);
    }
    return err;
}

/*
 * Whether the spool directory's entry name is a regular file holding
 * exactly p[0..n): then it is fsynced (a scan before a crash may have
 * made it and not synced it yet).  0 yes, 1 no, or -errno.
 */
static int spool_aside_same(spool_t *s, const char *name, const void *p, size_t n)
{
    struct stat st;
    char *have = NULL;
    int fd, err = 1;

    fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ELOOP ? 1 : -errno;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        goto done;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != n)
        goto done;
    have = xmalloc(n ? n : 1);
    if ((err = spool__read_at(fd, have, n, 0)) != 0)
        goto done;
    err = memcmp(have, p, n) != 0;
    if (err == 0 && s->io.fsync(fd) != 0)
        err = errno ? -errno : -EIO;
done:
    free(have);
    close(fd);
    return err == SPOOL_EPARTIAL ? 1 : err;
}

/* A new file name of p[0..n), its bytes durable.  0, or -errno and no
 * file left. */
static int spool_aside_create(spool_t *s, const char *name, const void *p, size_t n)
{
    int fd, err;

    fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno == EEXIST ? SPOOL_EEXIST : -errno;
    err = spool__pwrite_all(&s->io, fd, p, n, 0);
    if (err == 0 && s->io.fsync(fd) != 0)
        err = errno ? -errno : -EIO;
    close(fd);
    if (err != 0)
        unlinkat(s->dirfd, name, 0);
    return err;
}

int spool__write_aside(spool_t *s, const char *base, const void *p, size_t n,
                       char out[SPOOL__ASIDE_SIZE])
{
    int err = SPOOL_EEXIST;

    for (int try = 0; try < SPOOL_ASIDE_TRIES && err == SPOOL_EEXIST; try++) {
        if (!spool_aside_name(base, try, out))
            return -ENAMETOOLONG;
        err = spool_aside_create(s, out, p, n);
        if (err == SPOOL_EEXIST) {
            int same = spool_aside_same(s, out, p, n);

            err = same == 1 ? SPOOL_EEXIST : same;
        } else if (err == 0) {
            /* Its name durable too: only then may the record go. */
            if (s->io.fsync(s->dirfd) != 0) {
                err = errno ? -errno : -EIO;
                unlinkat(s->dirfd, out, 0);
            }
            return err;
        }
    }
    if (err == 0 && s->io.fsync(s->dirfd) != 0)
        err = errno ? -errno : -EIO;
    return err;
}
