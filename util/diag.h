/*
 * diag - how file loaders report problems: "FILE:LINE: problem".
 *
 * The configuration, the forward table and the SRS secrets are all read the
 * same way: every problem in the file is reported, not only the first,
 * through the caller's callback, and the load fails when there was an
 * error.  A diag_t carries the file name, the callbacks and the error count
 * through a loader; diag_lines walks the text a line at a time.
 */
#ifndef MXFWD_DIAG_H
#define MXFWD_DIAG_H

#include <stdbool.h>
#include <stddef.h>

/* Receives one message, without a newline. */
typedef void (*diag_fn)(void *ctx, const char *message);

typedef struct {
    const char *path;
    diag_fn on_error;
    diag_fn on_warning; /* NULL: warnings are dropped */
    void *ctx;
    int errors;
} diag_t;

/* Report "PATH:LINE: problem", or "PATH: problem" when line is 0, and count
 * it.  A message longer than about 1 KB is cut. */
void diag_error(diag_t *d, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report "PATH:LINE: warning: problem"; warnings are not counted. */
void diag_warning(diag_t *d, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Lines of a mutable text.  diag_next_line() returns the next line
 * NUL-terminated in place (its "\n" or "\r\n" is overwritten) and its length,
 * and counts it in lineno; NULL at the end.  A line may still hold NUL
 * bytes of its own: compare strlen() with *len to find them.
 */
typedef struct {
    char *pos;
    char *end;
    size_t lineno;
} diag_lines_t;

void diag_lines_init(diag_lines_t *it, char *text, size_t len);
char *diag_next_line(diag_lines_t *it, size_t *len);

#endif
