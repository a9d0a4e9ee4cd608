/*
 * diag - how file loaders report problems: "FILE:LINE: problem".
 *
 * The configuration, the forward table and the SRS secrets are all read the
 * same way (util/lines.h): every problem in the file is reported, not only
 * the first, through the caller's callback, and the load fails when there
 * was an error.  A diag_t carries the file name, the callbacks and the
 * counts of errors and warnings through a loader.
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
    int warnings; /* dropped ones too */
} diag_t;

/* Report "PATH:LINE: problem", or "PATH: problem" when line is 0, and count
 * it.  A message longer than about 1 KB is cut. */
void diag_error(diag_t *d, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report "PATH:LINE: warning: problem" and count it in warnings, not in
 * errors: a warning does not fail a load. */
void diag_warning(diag_t *d, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
