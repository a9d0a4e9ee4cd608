/*
 * log - one line per event, key=value, to stderr or syslog.
 *
 * Lines look the same on both targets, as Postfix's do, so that its log
 * tools (pflogsumm, fail2ban's filters, mailgraph) read them:
 * "mxfwd/SERVICE[PID]: QUEUEID: key=value, key=value ...".  SERVICE names
 * the part of mxfwd that speaks, as Postfix names its daemons: each
 * library's files are compiled with LOG_SERVICE set (smtpd, qmgr, smtp,
 * master: docs/admin-guide.md, "Reading the logs"), and a line of
 * another service says so with log_svc(); without one the tag is
 * "mxfwd[PID]:".
 * Levels other than info carry a "warning: ", "error: ", "fatal: " or
 * "debug: " prefix, as Postfix does, so grep finds them.
 *
 * Syslog is spoken here rather than through syslog(3), so that the socket
 * can be named (tests point it at a socket of their own) and a lost
 * syslog daemon is noticed: each line is one datagram (or, on a stream
 * socket, one NUL-terminated record) to the local socket, /dev/log unless
 * log_set_syslog_path() says otherwise, as "<PRI>Mmm dd hh:mm:ss
 * mxfwd[PID]: text" with facility mail (RFC 3164's format, which
 * syslog(3), rsyslog and journald speak).  After a send fails the socket
 * is opened again once (the daemon restarted); a line that still cannot be
 * sent goes to stderr, so nothing is lost in silence.  A send waits at most
 * LOG_SYSLOG_TIMEOUT_MS for a syslog daemon that is behind.
 *
 * Logging is for the top layers (main, sessions, queue manager).  Lower
 * layers return error codes and leave the wording to their callers.
 * The functions are safe to call from the libuv thread pool: each line is
 * formatted into a local buffer and written with one write(2) or syslog(3).
 */
#ifndef MXFWD_LOG_H
#define MXFWD_LOG_H

#include <stdarg.h>

typedef enum {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_FATAL,
} log_level_t;

typedef enum {
    LOG_TARGET_STDERR,
    LOG_TARGET_SYSLOG,
} log_target_t;

/* Longest line written; longer ones are cut and end with "...". */
#define LOG_LINE_MAX 2048
/* Longest wait for room at the syslog socket. */
#define LOG_SYSLOG_TIMEOUT_MS 1000
/* The local syslog socket. */
#define LOG_SYSLOG_PATH "/dev/log"

/* Set the program name, target and the lowest level written.  May be called
 * again (for example after the config names a target).  Before the first
 * call, lines go to stderr at info level as "mxfwd". */
void log_init(const char *ident, log_target_t target, log_level_t min_level);

/* Lowest level written now. */
log_level_t log_min_level(void);

/* The service of the file being compiled: NULL for none. */
#ifndef LOG_SERVICE
#define LOG_SERVICE NULL
#endif

/* A line from service (NULL: none) at level. */
void log_svc(const char *service, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vsvc(const char *service, log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_msg(level, ...) log_svc(LOG_SERVICE, level, __VA_ARGS__)
#define log_vmsg(level, fmt, ap) log_vsvc(LOG_SERVICE, level, fmt, ap)
#define log_debug(...) log_svc(LOG_SERVICE, LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_svc(LOG_SERVICE, LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warning(...) log_svc(LOG_SERVICE, LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) log_svc(LOG_SERVICE, LOG_LEVEL_ERROR, __VA_ARGS__)

/* Log at fatal level and exit(1).  Only for start-up and main. */
void log_fatal_svc(const char *service, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
#define log_fatal(...) log_fatal_svc(LOG_SERVICE, __VA_ARGS__)

/*
 * Batched lines, for the thread that runs the event loop: after
 * log_batch_begin() the calling thread's lines (below error level) wait in
 * a buffer of up to LOG_BATCH_LINES lines until log_batch_flush(), which
 * writes them with one system call (one write(2), or one sendmmsg(2) to
 * syslog); the loop calls it each time before it waits for events, so a
 * line is out before the loop sleeps.  An error or fatal line flushes the
 * batch with it, and a full batch is flushed before it takes more.  Lines
 * of other threads are written at once, as before.  log_batch_end()
 * flushes and stops batching.
 */
#define LOG_BATCH_LINES 64
void log_batch_begin(void);
void log_batch_flush(void);
void log_batch_end(void);

/* Redirect stderr-target output to a file descriptor (tests). */
void log_set_fd(int fd);

/* The syslog socket to use from the next log_init() on; NULL for
 * LOG_SYSLOG_PATH.  0, or -1 for a path that does not fit a socket
 * address. */
int log_set_syslog_path(const char *path);

#endif
