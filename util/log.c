#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_ident = "mxfwd";
static log_target_t log_target = LOG_TARGET_STDERR;
static log_level_t log_level = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

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

void log_init(const char *ident, log_target_t target, log_level_t min_level)
{
    if (log_target == LOG_TARGET_SYSLOG)
        closelog();
    log_ident = ident;
    log_target = target;
    log_level = min_level;
    if (target == LOG_TARGET_SYSLOG)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

log_level_t log_min_level(void)
{
    return log_level;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

/* Replace control characters so that client-supplied text cannot forge a
 * second log line. */
static void log_sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void log_vmsg(log_level_t level, const char *fmt, va_list ap)
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

    if (log_target == LOG_TARGET_SYSLOG) {
        syslog(log_priority[level], "%s%s", log_prefix[level], text);
        return;
    }
    n = snprintf(line, sizeof(line), "%s[%ld]: %s%s\n", log_ident, (long)getpid(),
                 log_prefix[level], text);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    /* One write per line keeps lines whole when several threads log. */
    while (write(log_fd, line, (size_t)n) < 0 && errno == EINTR)
        ;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_LEVEL_FATAL, fmt, ap);
    va_end(ap);
    exit(1);
}
