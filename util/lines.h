/*
 * lines - the loader of mxfwd's line-based files: the configuration
 * (docs/configuration.md), the forward table (docs/forward-table.md) and
 * the SRS secrets (docs/srs.md).
 *
 * lines_load() reads the file whole under the caller's size limit, hands
 * the caller's hooks each line with its number, and every problem goes
 * through the caller's diag_t as "FILE:LINE: problem", counted there.  The
 * syntax (comments, blank lines, continuations) is the caller's: lines are
 * split at LF, a CR before it dropped, and nothing else is done to them.
 * The text is the loader's own and freed before it returns; it never logs.
 */
#ifndef MXFWD_LINES_H
#define MXFWD_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "diag.h"

typedef struct {
    size_t max;      /* the largest file read, in bytes */
    bool report_max; /* a larger one is "larger than MAX bytes", not "file too large" */
    bool wipe;       /* secret text: overwritten before it is freed */
    /* Optional.  Before the first line: the whole text, and the file's
     * status (NULL when lines_parse() was given the text). */
    void (*start)(void *parser, const char *text, size_t len, const struct stat *st);
    /* Each line in order, lineno from 1: NUL-terminated in place, without
     * its "\n" or "\r\n" (or a lone "\r" ending the text), and the hook may
     * change it.  strlen(line) < len when the line holds a NUL byte of its
     * own. */
    void (*line)(void *parser, char *line, size_t len, size_t lineno);
    /* Optional.  After the last line. */
    void (*finish)(void *parser);
} lines_loader_t;

/*
 * Read d->path and run loader's hooks over it, with parser.  A file that
 * cannot be read is one error, "PATH: why" in file_strerror()'s words, and
 * then no hook runs.  Returns d->errors: the number of errors reported;
 * 0 on success.
 */
int lines_load(diag_t *d, const lines_loader_t *loader, void *parser);

/* The same over a copy of text[0..len), as if it were d->path's contents
 * (for parse functions and tests); start gets no status. */
int lines_parse(diag_t *d, const lines_loader_t *loader, const char *text, size_t len,
                void *parser);

#endif
