#include "lines.h"

#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "xalloc.h"

/* The line at *pos, before end: NUL-terminated in place and its length in
 * *len, or NULL at the end.  The terminator of the last line may be the
 * byte at end, which the caller's buffer has room for. */
static char *lines_next(char **pos, char *end, size_t *len)
{
    char *line = *pos, *nl;
    size_t n;

    if (line >= end)
        return NULL;
    nl = memchr(line, '\n', (size_t)(end - line));
    n = nl != NULL ? (size_t)(nl - line) : (size_t)(end - line);
    *pos = line + n + (nl != NULL);
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    *len = n;
    return line;
}

/* Run the hooks over text (len bytes and room for one more), then free
 * it. */
static int lines_walk(diag_t *d, const lines_loader_t *loader, char *text, size_t len,
                      const struct stat *st, void *parser)
{
    char *pos = text, *line;
    size_t n, lineno = 0;

    /* An editor's UTF-8 byte order mark is no part of the first line: it
     * would be folded into the first key or alias. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        diag_warning(d, 1, "UTF-8 byte order mark at the start of the file ignored");
        pos += 3;
    }
    if (loader->start != NULL)
        loader->start(parser, pos, len - (size_t)(pos - text), st);
    while ((line = lines_next(&pos, text + len, &n)) != NULL)
        loader->line(parser, line, n, ++lineno);
    if (loader->finish != NULL)
        loader->finish(parser);
    if (loader->wipe)
        explicit_bzero(text, len + 1);
    free(text);
    return d->errors;
}

int lines_load(diag_t *d, const lines_loader_t *loader, void *parser)
{
    struct stat st;
    char *text;
    size_t len;
    int rc = file_read(d->path, loader->max, &text, &len, &st);

    if (rc == FILE_ETOOBIG && loader->report_max)
        diag_error(d, 0, "larger than %zu bytes", loader->max);
    else if (rc < 0)
        diag_error(d, 0, "%s", file_strerror(rc));
    if (rc < 0)
        return d->errors;
    return lines_walk(d, loader, text, len, &st, parser);
}

int lines_parse(diag_t *d, const lines_loader_t *loader, const char *text, size_t len, void *parser)
{
    char *copy = xmalloc(len + 1);

    if (len > 0)
        memcpy(copy, text, len);
    return lines_walk(d, loader, copy, len, NULL, parser);
}
