#include "diag.h"

#include <stdarg.h>
#include <stdio.h>

static void diag_report(diag_t *d, diag_fn fn, int *count, const char *kind, size_t line,
                        const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* Counted even without fn: a caller that drops warnings still learns how
 * many there were. */
static void diag_report(diag_t *d, diag_fn fn, int *count, const char *kind, size_t line,
                        const char *fmt, va_list ap)
{
    char text[900], msg[1200], where[32] = "";

    (*count)++;
    if (fn == NULL)
        return;
    vsnprintf(text, sizeof(text), fmt, ap);
    if (line > 0)
        snprintf(where, sizeof(where), ":%zu", line);
    snprintf(msg, sizeof(msg), "%s%s: %s%s", d->path, where, kind, text);
    fn(d->ctx, msg);
}

void diag_error(diag_t *d, size_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_report(d, d->on_error, &d->errors, "", line, fmt, ap);
    va_end(ap);
}

void diag_warning(diag_t *d, size_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_report(d, d->on_warning, &d->warnings, "warning: ", line, fmt, ap);
    va_end(ap);
}
