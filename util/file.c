#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "xalloc.h"

int file_read(const char *path, size_t max, char **text, size_t *len, struct stat *st)
{
    struct stat sb;
    size_t used = 0, cap;
    ssize_t n;
    char *buf = NULL;
    int fd, rc, saved;

    *text = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FILE_EOPEN;
    if (fstat(fd, &sb) < 0) {
        rc = FILE_EREAD;
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = FILE_ENOTREG;
        goto fail;
    }
    if ((unsigned long long)sb.st_size > max) {
        rc = FILE_ETOOBIG;
        goto fail;
    }
    /* The size is a hint: the file may change while it is read, so read
     * to the end, growing the buffer, and never hold more than max. */
    cap = (size_t)sb.st_size + 1;
    buf = xmalloc(cap + 1);
    for (;;) {
        if (used == cap) {
            if (used > max) {
                rc = FILE_ETOOBIG;
                goto fail;
            }
            cap = cap > max / 2 ? max + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        n = read(fd, buf + used, cap - used);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = FILE_EREAD;
            goto fail;
        }
        used += (size_t)n;
    }
    if (used > max) {
        rc = FILE_ETOOBIG;
        goto fail;
    }
    close(fd);
    buf[used] = '\0';
    *text = buf;
    *len = used;
    if (st != NULL)
        *st = sb;
    return 0;

fail:
    saved = errno; /* for file_strerror(): close() and free() may change it */
    free(buf);
    close(fd);
    errno = saved;
    return rc;
}

const char *file_strerror(int err)
{
    static _Thread_local char msg[160];

    switch (err) {
    case 0:
        return "ok";
    case FILE_EOPEN:
        snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
        return msg;
    case FILE_EREAD:
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
        return msg;
    case FILE_ENOTREG:
        return "not a regular file";
    case FILE_ETOOBIG:
        return "file too large";
    }
    return "cannot read the file";
}

/* fsync the directory that holds path's last component. */
static int file_sync_parent(const char *path)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, err = 0;

    if (slash == NULL)
        str_lcpy(parent, ".", sizeof(parent));
    else if (slash == path)
        str_lcpy(parent, "/", sizeof(parent));
    else
        str_fmt(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
    if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    if (fsync(fd) != 0)
        err = -errno;
    close(fd);
    return err;
}

int file_mkdirs(const char *dir, mode_t mode)
{
    char path[PATH_MAX];
    size_t len;
    int err;

    if (str_lcpy(path, dir, sizeof(path)) < 0)
        return -ENAMETOOLONG;
    len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, mode) == 0) {
            if ((err = file_sync_parent(path)) != 0)
                return err;
        } else if (errno != EEXIST) {
            return -errno;
        }
        path[i] = i < len ? '/' : '\0';
    }
    return 0;
}

int file_create(const char *path, const void *data, size_t len, mode_t mode)
{
    const char *p = data;
    int fd, err = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) != 0)
        err = -errno;
    while (err == 0 && len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? -errno : -EIO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (err == 0 && fsync(fd) != 0)
        err = -errno;
    if (close(fd) != 0 && err == 0)
        err = -errno;
    if (err == 0)
        err = file_sync_parent(path);
    if (err != 0)
        unlink(path);
    return err;
}
