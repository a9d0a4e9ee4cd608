#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void diag_report(diag_t *d, diag_fn fn, const char *kind, size_t line, const char *fmt,
                        va_list ap) __attribute__((format(printf, 5, 0)));

static void diag_report(diag_t *d, diag_fn fn, const char *kind, size_t line, const char *fmt,
                        va_list ap)
{
    char text[900], msg[1200], where[32] = "";

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

    d->errors++;
    va_start(ap, fmt);
    diag_report(d, d->on_error, "", line, fmt, ap);
    va_end(ap);
}

void diag_warning(diag_t *d, size_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_report(d, d->on_warning, "warning: ", line, fmt, ap);
    va_end(ap);
}

void diag_lines_init(diag_lines_t *it, char *text, size_t len)
{
    it->pos = text;
    it->end = text + len;
    it->lineno = 0;
}

char *diag_next_line(diag_lines_t *it, size_t *len)
{
    char *line = it->pos, *nl;
    size_t n;

    if (line >= it->end)
        return NULL;
    nl = memchr(line, '\n', (size_t)(it->end - line));
    n = nl != NULL ? (size_t)(nl - line) : (size_t)(it->end - line);
    it->pos = line + n + (nl != NULL);
    it->lineno++;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    /* The terminator's first byte, or the end of the text, which the
     * caller's buffer has room for (file_read() leaves a NUL there). */
    line[n] = '\0';
    *len = n;
    return line;
}
