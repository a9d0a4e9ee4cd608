#include "srs_secrets.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "diag.h"
#include "lines.h"
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

typedef struct {
    diag_t diag;
    srs_secrets_t *out;
    size_t cap;
} srs_secrets_parser_t;

/* Before the first line, the file's mode (docs/srs.md): anyone who can read
 * the secrets can forge SRS addresses that turn mxfwd into a relay for
 * bounces; anyone who can write them can break every address in flight.  A
 * warning, as Postfix gives for its own files: the admin may have reasons
 * (a group for a PostSRSd that shares the file). */
static void srs_secrets_start(void *parser, const char *text, size_t len, const struct stat *st)
{
    srs_secrets_parser_t *p = parser;

    (void)text, (void)len;
    if (st != NULL && (st->st_mode & (S_IRWXG | S_IRWXO)))
        diag_warning(&p->diag, 0, "group or others may read or write it (mode %04o); chmod 600 %s",
                     (unsigned)(st->st_mode & 07777), p->diag.path);
}

/* Check one line (without its ending) and add it when it is a secret. */
static void srs_secrets_line(void *parser, char *line, size_t n, size_t lineno)
{
    srs_secrets_parser_t *p = parser;
    diag_t *r = &p->diag;
    srs_secrets_t *out = p->out;

    if (n == 0 || line[0] == '#' || srs_secrets_blank(line, n))
        return;
    if (memchr(line, '\0', n) != NULL) {
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
        diag_error(r, lineno, "the secret is %zu bytes long; at most %d are allowed", n,
                   DEFAULT_SRS_SECRET_MAX);
        return;
    }
    if (line[0] == ' ' || line[0] == '\t' || line[n - 1] == ' ' || line[n - 1] == '\t')
        diag_warning(r, lineno, "the secret starts or ends with white space, which is part of it");
    out->secret = xgrow(out->secret, &p->cap, out->n + 1, sizeof(*out->secret));
    out->secret[out->n++] = xstrndup(line, n);
}

/* After the last line: a file needs a secret, and *out stays empty when
 * there was an error. */
static void srs_secrets_finish(void *parser)
{
    srs_secrets_parser_t *p = parser;

    if (p->diag.errors == 0 && p->out->n == 0)
        diag_error(&p->diag, 0, "no secret in the file");
    if (p->diag.errors > 0)
        srs_secrets_free(p->out);
}

static const lines_loader_t srs_secrets_lines = {
    .max = SRS_SECRETS_FILE_MAX,
    .report_max = true,
    .wipe = true,
    .start = srs_secrets_start,
    .line = srs_secrets_line,
    .finish = srs_secrets_finish,
};

int srs_secrets_parse(const char *path, const char *text, size_t len, srs_report_fn on_error,
                      srs_report_fn on_warning, void *ctx, srs_secrets_t *out)
{
    srs_secrets_parser_t p = {
        .diag = {.path = path, .on_error = on_error, .on_warning = on_warning, .ctx = ctx},
        .out = out,
    };

    *out = (srs_secrets_t){0};
    return lines_parse(&p.diag, &srs_secrets_lines, text, len, &p);
}

int srs_secrets_load(const char *path, srs_report_fn on_error, srs_report_fn on_warning,
                     void *ctx, srs_secrets_t *out)
{
    srs_secrets_parser_t p = {
        .diag = {.path = path, .on_error = on_error, .on_warning = on_warning, .ctx = ctx},
        .out = out,
    };

    *out = (srs_secrets_t){0};
    return lines_load(&p.diag, &srs_secrets_lines, &p);
}
