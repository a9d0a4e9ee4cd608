/*
 * log - one line per event, key=value, to stderr or syslog.
 *
 * Lines look the same on both targets: "mxfwd[PID]: QUEUEID: key=value ...".
 * On stderr the program name and pid are written by us; syslog adds its own
 * (facility mail).  Levels other than info carry a "warning: ", "error: ",
 * "fatal: " or "debug: " prefix, as Postfix does, so grep finds them.
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

/* Set the program name, target and the lowest level written.  May be called
 * again (for example after the config names a target).  Before the first
 * call, lines go to stderr at info level as "mxfwd". */
void log_init(const char *ident, log_target_t target, log_level_t min_level);

/* Lowest level written now. */
log_level_t log_min_level(void);

void log_msg(log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Log at fatal level and exit(1).  Only for start-up and main. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Redirect stderr-target output to a file descriptor (tests). */
void log_set_fd(int fd);

#endif
