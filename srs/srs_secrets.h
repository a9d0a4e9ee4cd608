/*
 * srs_secrets - the SRS secrets file.
 *
 *     # comment lines and blank lines are ignored
 *     secret-that-signs-new-addresses
 *     older-secret-still-verifying
 *
 * One secret a line, in order: the first signs, all of them verify, so a
 * new secret is rotated in by putting it first and the old one is dropped
 * once srs_max_age has passed.  A line is taken byte for byte, less its
 * line ending (LF or CRLF): white space inside or around a secret is part
 * of it, as PostSRSd reads the same file (it is warned about, as it is
 * rarely meant).  A line whose first byte is '#' is a comment; a line of
 * only spaces and tabs is blank.
 *
 * Errors, each reported through on_error as "FILE:LINE: problem" or
 * "FILE: problem": a missing or unreadable file, a file with no secret, a
 * secret shorter than DEFAULT_SRS_SECRET_MIN or longer than
 * DEFAULT_SRS_SECRET_MAX bytes, a NUL byte.  Warnings, through on_warning
 * (which may be NULL) as "FILE[:LINE]: warning: ...": a file group or
 * others may read or write, white space around a secret.
 *
 * The list and its strings are owned by the caller and released with
 * srs_secrets_free(), which wipes them.
 */
#ifndef MXFWD_SRS_SECRETS_H
#define MXFWD_SRS_SECRETS_H

#include <stddef.h>

#include "diag.h"

typedef struct {
    char **secret; /* NUL-terminated, in file order: secret[0] signs */
    size_t n;
} srs_secrets_t;

/* Receives one message line, without a newline. */
typedef diag_fn srs_report_fn;

/*
 * Read path.  Returns the number of errors reported; 0 on success, and then
 * *out holds the secrets, otherwise it is empty.
 */
int srs_secrets_load(const char *path, srs_report_fn on_error, srs_report_fn on_warning,
                     void *ctx, srs_secrets_t *out);

/* Parse text as the contents of the file named path (no mode check);
 * returns as srs_secrets_load() does. */
int srs_secrets_parse(const char *path, const char *text, size_t len, srs_report_fn on_error,
                      srs_report_fn on_warning, void *ctx, srs_secrets_t *out);

void srs_secrets_free(srs_secrets_t *s);

#endif
