#include "srs_secrets.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "diag.h"
#include "file.h"
#include "xalloc.h"

/* Far more than any number of secrets one rotates through. */
#define SRS_SECRETS_FILE_MAX (64 * 1024)

static bool srs_secrets_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

void srs_secrets_free(srs_secrets_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        OPENSSL_cleanse(s->secret[i], strlen(s->secret[i]));
        free(s->secret[i]);
    }
    free(s->secret);
    s->secret = NULL;
    s->n = 0;
}

/* Check one line (without its ending) and add it when it is a secret. */
static void srs_secrets_line(diag_t *r, size_t lineno, const char *p, size_t n,
                             srs_secrets_t *out, size_t *cap)
{
    if (n == 0 || p[0] == '#' || srs_secrets_blank(p, n))
        return;
    if (memchr(p, '\0', n) != NULL) {
        diag_error(r, lineno, "the secret contains a NUL byte");
        return;
    }
    if (n < DEFAULT_SRS_SECRET_MIN) {
        diag_error(r, lineno,
                           "the secret is %zu bytes long; at least %d are needed "
                           "(openssl rand -base64 32 makes a good one)",
                           n, DEFAULT_SRS_SECRET_MIN);
        return;
    }
    if (n > DEFAULT_SRS_SECRET_MAX) {
        diag_error(r, lineno, "the secret is %zu bytes long; at most %d are allowed",
                           n, DEFAULT_SRS_SECRET_MAX);
        return;
    }
    if (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t')
        diag_warning(r, lineno,
                           "the secret starts or ends with white space, which is part of it");
    out->secret = xgrow(out->secret, cap, out->n + 1, sizeof(*out->secret));
    out->secret[out->n++] = xstrndup(p, n);
}

int srs_secrets_parse(const char *path, const char *text, size_t len, srs_report_fn on_error,
                      srs_report_fn on_warning, void *ctx, srs_secrets_t *out)
{
    diag_t r = {path, on_error, on_warning, ctx, 0};
    size_t cap = 0, lineno = 0, pos = 0;

    out->secret = NULL;
    out->n = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;

        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        srs_secrets_line(&r, lineno, line, n, out, &cap);
    }
    if (r.errors == 0 && out->n == 0)
        diag_error(&r, 0, "no secret in the file");
    if (r.errors > 0)
        srs_secrets_free(out);
    return r.errors;
}

int srs_secrets_load(const char *path, srs_report_fn on_error, srs_report_fn on_warning,
                     void *ctx, srs_secrets_t *out)
{
    diag_t r = {path, on_error, on_warning, ctx, 0};
    struct stat st;
    char *text = NULL;
    size_t len;
    int rc;

    out->secret = NULL;
    out->n = 0;
    rc = file_read(path, SRS_SECRETS_FILE_MAX, &text, &len, &st);
    if (rc == FILE_ETOOBIG) {
        diag_error(&r, 0, "larger than %d bytes", SRS_SECRETS_FILE_MAX);
        return r.errors;
    }
    if (rc < 0) {
        diag_error(&r, 0, "%s", file_strerror(rc));
        return r.errors;
    }
    /* Anyone who can read the secrets can forge SRS addresses that turn
     * mxfwd into a relay for bounces; anyone who can write them can
     * break every address in flight.  A warning, as Postfix gives for
     * its own files: the admin may have reasons (a group for a
     * PostSRSd that shares the file). */
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        diag_warning(&r, 0, "group or others may read or write it (mode %04o); chmod 600 %s",
                           (unsigned)(st.st_mode & 07777), path);
    rc = srs_secrets_parse(path, text, len, on_error, on_warning, ctx, out);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}
