#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

static const char *log_ident = "mxfwd";
/* Taken by log_init(): getpid() is a system call for every line otherwise,
 * and nothing forks after it. */
static long log_pid;
static log_target_t log_target = LOG_TARGET_STDERR;
static log_level_t log_level = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

/* The syslog socket: opened by log_init(), opened again after a failed
 * send.  The lock keeps a reopen from racing a send of another thread. */
static pthread_mutex_t log_syslog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sockaddr_storage log_syslog_addr;
static socklen_t log_syslog_addrlen;
static int log_syslog_fd = -1;
static int log_syslog_type; /* SOCK_DGRAM, or SOCK_STREAM for a daemon that wants that */

static const char *const log_prefix[] = {
    [LOG_LEVEL_DEBUG] = "debug: ",
    [LOG_LEVEL_INFO] = "",
    [LOG_LEVEL_WARNING] = "warning: ",
    [LOG_LEVEL_ERROR] = "error: ",
    [LOG_LEVEL_FATAL] = "fatal: ",
};

static const int log_priority[] = {
    [LOG_LEVEL_DEBUG] = LOG_DEBUG,   [LOG_LEVEL_INFO] = LOG_INFO,
    [LOG_LEVEL_WARNING] = LOG_WARNING, [LOG_LEVEL_ERROR] = LOG_ERR,
    [LOG_LEVEL_FATAL] = LOG_CRIT,
};

/* ---- the syslog socket (under log_syslog_lock) ------------------------------ */

static void log_syslog_close(void)
{
    if (log_syslog_fd >= 0)
        close(log_syslog_fd);
    log_syslog_fd = -1;
}

static int log_syslog_connect_type(int type)
{
    struct timeval tv = {LOG_SYSLOG_TIMEOUT_MS / 1000, (LOG_SYSLOG_TIMEOUT_MS % 1000) * 1000};
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&log_syslog_addr, log_syslog_addrlen) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    log_syslog_fd = fd;
    log_syslog_type = type;
    return 0;
}

static int log_syslog_open(void)
{
    if (log_syslog_fd >= 0)
        return 0;
    if (log_syslog_addrlen == 0)
        parse_unix_sockaddr(LOG_SYSLOG_PATH, &log_syslog_addr, &log_syslog_addrlen);
    /* Datagrams, as syslog(3) sends; a socket of the other type says
     * EPROTOTYPE, and some daemons listen on a stream socket. */
    if (log_syslog_connect_type(SOCK_DGRAM) == 0)
        return 0;
    if (errno == EPROTOTYPE && log_syslog_connect_type(SOCK_STREAM) == 0)
        return 0;
    return -1;
}

/* One record to the socket: whole, or not at all (-1). */
static int log_syslog_write(const char *msg, size_t n)
{
    size_t done = 0;

    if (log_syslog_type == SOCK_STREAM)
        n++; /* the NUL ends a record on a stream, as syslog(3) sends it */
    while (done < n) {
        ssize_t w = send(log_syslog_fd, msg + done, n - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0 || (log_syslog_type == SOCK_DGRAM && (size_t)w != n))
            return -1;
        done += (size_t)w;
    }
    return 0;
}

#define LOG_RECORD_MAX (LOG_LINE_MAX + 192)

/* "<PRI>STAMP line" (line is "mxfwd[PID]: text", len bytes) into
 * msg[LOG_RECORD_MAX], NUL-terminated; its length, or -1. */
static int log_syslog_record(char *msg, log_level_t level, const char *line, size_t len)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    int n;

    if (localtime_r(&now, &tm) == NULL ||
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
        stamp[0] = '\0';
    n = snprintf(msg, LOG_RECORD_MAX, "<%d>%s %.*s", LOG_MAIL | log_priority[level], stamp,
                 (int)len, line);
    if (n >= 0 && n >= LOG_RECORD_MAX)
        n = LOG_RECORD_MAX - 1;
    return n;
}

/* Send "<PRI>STAMP line"; false when it could not be sent even after
 * opening the socket again. */
static bool log_syslog_send(log_level_t level, const char *line, size_t len)
{
    char msg[LOG_RECORD_MAX];
    bool sent = false;
    int n = log_syslog_record(msg, level, line, len);

    if (n < 0)
        return false;
    pthread_mutex_lock(&log_syslog_lock);
    /* A daemon that restarted left our socket connected to nothing: open
     * it again, once. */
    for (int attempt = 0; attempt < 2 && !sent; attempt++) {
        if (log_syslog_open() < 0)
            break;
        if (log_syslog_write(msg, (size_t)n) == 0)
            sent = true;
        else
            log_syslog_close();
    }
    pthread_mutex_unlock(&log_syslog_lock);
    return sent;
}

/* ---- batches -------------------------------------------------------------------- */

#define LOG_BATCH_BYTES (8 * (LOG_LINE_MAX + 128))

/* A thread's waiting lines: text holds them one after the other, each
 * ending in a newline. */
typedef struct {
    char text[LOG_BATCH_BYTES];
    size_t used;
    struct {
        size_t off, len; /* len: without the newline */
        log_level_t level;
    } line[LOG_BATCH_LINES];
    unsigned n;
    char (*rec)[LOG_RECORD_MAX]; /* the syslog records, made at a flush */
} log_batch_t;

static __thread log_batch_t *log_batch;

/* Writes to log_fd, one at a time: a batch (more than PIPE_BUF bytes, or
 * a short write that goes on) must not interleave with another thread's
 * line. */
static pthread_mutex_t log_fd_lock = PTHREAD_MUTEX_INITIALIZER;

/* Write p[0..n) to log_fd, whole (a short write goes on). */
static void log_write_all(const char *p, size_t n)
{
    pthread_mutex_lock(&log_fd_lock);
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&log_fd_lock);
}

/* The batch's lines from the first to syslog, as one sendmmsg(2) (a
 * datagram each) or one stream; how many were sent. */
static unsigned log_syslog_send_batch(log_batch_t *b)
{
    struct mmsghdr mm[LOG_BATCH_LINES];
    struct iovec iov[LOG_BATCH_LINES];
    unsigned sent = 0;

    if (b->rec == NULL)
        return 0;
    memset(mm, 0, sizeof(mm));
    for (unsigned i = 0; i < b->n; i++) {
        int n = log_syslog_record(b->rec[i], b->line[i].level, b->text + b->line[i].off,
                                  b->line[i].len);

        iov[i] = (struct iovec){b->rec[i], n < 0 ? 0 : (size_t)n};
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    pthread_mutex_lock(&log_syslog_lock);
    for (int attempt = 0; attempt < 2 && sent < b->n; attempt++) {
        if (log_syslog_open() < 0)
            break;
        while (sent < b->n) {
            int r;

            if (log_syslog_type == SOCK_STREAM) {
                /* A record on a stream ends with its NUL. */
                if (log_syslog_write(iov[sent].iov_base, iov[sent].iov_len) < 0)
                    break;
                sent++;
                continue;
            }
            r = sendmmsg(log_syslog_fd, mm + sent, b->n - sent, MSG_NOSIGNAL);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            sent += (unsigned)r;
        }
        if (sent < b->n)
            log_syslog_close();
    }
    pthread_mutex_unlock(&log_syslog_lock);
    return sent;
}

void log_batch_flush(void)
{
    log_batch_t *b = log_batch;
    unsigned sent = 0;

    if (b == NULL || b->n == 0)
        return;
    if (log_target == LOG_TARGET_SYSLOG)
        sent = log_syslog_send_batch(b);
    /* What syslog did not take goes to stderr, as a line alone would. */
    if (sent < b->n)
        log_write_all(b->text + b->line[sent].off, b->used - b->line[sent].off);
    b->n = 0;
    b->used = 0;
}

void log_batch_begin(void)
{
    if (log_batch != NULL)
        return;
    /* The syslog records' room too, made now: a flush allocates nothing
     * (it may run when memory is out). */
    log_batch = calloc(1, sizeof(*log_batch));
    if (log_batch == NULL)
        return;
    log_batch->rec = malloc(LOG_BATCH_LINES * sizeof(*log_batch->rec));
    if (log_batch->rec == NULL) {
        free(log_batch);
        log_batch = NULL;
    }
}

void log_batch_end(void)
{
    log_batch_flush();
    if (log_batch != NULL)
        free(log_batch->rec);
    free(log_batch);
    log_batch = NULL;
}

/* line[0..n) (ending in a newline) into the thread's batch. */
static void log_batch_add(log_batch_t *b, log_level_t level, const char *line, size_t n)
{
    if (b->n == LOG_BATCH_LINES || n > LOG_BATCH_BYTES - b->used)
        log_batch_flush();
    memcpy(b->text + b->used, line, n);
    b->line[b->n].off = b->used;
    b->line[b->n].len = n - 1;
    b->line[b->n].level = level;
    b->n++;
    b->used += n;
    if (level >= LOG_LEVEL_ERROR)
        log_batch_flush();
}

/* ---- set-up -------------------------------------------------------------------- */

int log_set_syslog_path(const char *path)
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (path == NULL)
        path = LOG_SYSLOG_PATH;
    if (parse_unix_sockaddr(path, &ss, &len) < 0)
        return -1;
    pthread_mutex_lock(&log_syslog_lock);
    log_syslog_addr = ss;
    log_syslog_addrlen = len;
    log_syslog_close();
    pthread_mutex_unlock(&log_syslog_lock);
    return 0;
}

void log_init(const char *ident, log_target_t target, log_level_t min_level)
{
    log_ident = ident;
    log_pid = (long)getpid();
    log_target = target;
    log_level = min_level;
    pthread_mutex_lock(&log_syslog_lock);
    log_syslog_close();
    /* Opened now, while the file system is all there (before a chroot or
     * a privilege drop); a failure is tried again at the first line. */
    if (target == LOG_TARGET_SYSLOG)
        log_syslog_open();
    pthread_mutex_unlock(&log_syslog_lock);
}

log_level_t log_min_level(void)
{
    return log_level;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

/* ---- lines ---------------------------------------------------------------------- */

/* Replace control characters so that client-supplied text cannot forge a
 * second log line. */
static void log_sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void log_vsvc(const char *service, log_level_t level, const char *fmt, va_list ap)
{
    char text[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 128];
    int n;

    if (level < log_level)
        return;
    n = vsnprintf(text, sizeof(text), fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(text))
        memcpy(text + sizeof(text) - 4, "...", 4);
    log_sanitize(text);

    /* The same line for both targets; syslog's gets its header in front. */
    n = snprintf(line, sizeof(line), "%s%s%s[%ld]: %s%s\n", log_ident, service != NULL ? "/" : "",
                 service != NULL ? service : "", log_pid != 0 ? log_pid : (long)getpid(),
                 log_prefix[level], text);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (log_batch != NULL) {
        log_batch_add(log_batch, level, line, (size_t)n);
        return;
    }
    if (log_target == LOG_TARGET_SYSLOG && log_syslog_send(level, line, (size_t)n - 1))
        return;
    /* One write per line keeps lines whole when several threads log. */
    log_write_all(line, (size_t)n);
}

void log_svc(const char *service, log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vsvc(service, level, fmt, ap);
    va_end(ap);
}

void log_fatal_svc(const char *service, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vsvc(service, LOG_LEVEL_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}
