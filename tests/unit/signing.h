/* Test helpers for signing (test_dkimsign.c, test_arc.c): a scratch
 * directory, keys made by the openssl command and loaded by dkimkey, a
 * message's header fields as canon_field_t, and the independent verifiers
 * (python3-dkim and Perl's Mail::DKIM, through ext_verify.py and
 * ext_verify.pl) run on a message with the keys given on their command
 * line. */
#ifndef MXFWD_TEST_SIGNING_H
#define MXFWD_TEST_SIGNING_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "canon.h"
#include "dkimkey.h"

#define SIGNING_FIELDS_MAX 200

typedef struct {
    char dir[64];
} signing_dir_t;

static inline void signing_dir_init(signing_dir_t *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/mxfwd-sign-XXXXXX");
    cr_assert_not_null(mkdtemp(d->dir));
}

static inline void signing_dir_free(signing_dir_t *d)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
    cr_assert_eq(system(cmd), 0);
}

typedef struct {
    dkimkey_private_t *key;
    char record[4096]; /* its DKIM TXT record */
    char name[300];    /* SELECTOR._domainkey.DOMAIN */
} signing_key_t;

/* A fresh key ("rsa" 2048 bits or "ed25519") published at selector. */
static inline void signing_key(const signing_dir_t *d, const char *type, const char *selector,
                               const char *domain, signing_key_t *k)
{
    char cmd[512], path[256], why[DKIMKEY_WHY_MAX];
    buf_t b;

    snprintf(path, sizeof(path), "%s/%s.pem", d->dir, selector);
    if (strcmp(type, "rsa") == 0)
        snprintf(cmd, sizeof(cmd),
                 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s' 2>/dev/null",
                 path);
    else
        snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 -out '%s'", path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    cr_assert_eq(dkimkey_load(path, &k->key, why, sizeof(why)), 0, "%s", why);
    buf_init(&b, sizeof(k->record) - 1);
    cr_assert_eq(dkimkey_record(k->key, &b), 0);
    memcpy(k->record, buf_ptr(&b), buf_used(&b));
    k->record[buf_used(&b)] = '\0';
    buf_free(&b);
    snprintf(k->name, sizeof(k->name), "%s._domainkey.%s", selector, domain);
}

/* The header fields of msg, top to bottom, folding kept, without their
 * CRLFs; *body the offset of the body (after the empty line). */
static inline size_t signing_fields(const char *msg, size_t len, canon_field_t *f, size_t *body)
{
    size_t n = 0, i = 0;

    while (i < len) {
        const char *eol = strstr(msg + i, "\r\n");
        size_t end = eol ? (size_t)(eol - msg) : len;

        if (end == i) { /* the empty line */
            i += 2;
            break;
        }
        if (msg[i] == ' ' || msg[i] == '\t') {
            cr_assert_gt(n, 0);
            f[n - 1].len = end - (size_t)(f[n - 1].ptr - msg);
        } else {
            cr_assert_lt(n, SIGNING_FIELDS_MAX);
            f[n].ptr = msg + i;
            f[n].len = end - i;
            n++;
        }
        i = eol ? end + 2 : len;
    }
    *body = i;
    return n;
}

/* Run an independent verifier (tool "py" or "pl", mode "dkim" or "arc")
 * over msg, keys given as NAME=RECORD; its output, in a static buffer. */
static inline const char *signing_ext(const signing_dir_t *d, const char *tool, const char *mode,
                                      const char *msg, size_t len, const signing_key_t *const *keys,
                                      size_t nkeys)
{
    static char output[8192];
    const char *src = getenv("MXFWD_TEST_SRCDIR");
    char path[256], *cmd;
    size_t n, at;
    FILE *f;

    cr_assert_not_null(src, "MXFWD_TEST_SRCDIR is not set (run through meson test)");
    snprintf(path, sizeof(path), "%s/msg.eml", d->dir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(msg, 1, len, f), len);
    fclose(f);
    cmd = calloc(1, 65536);
    cr_assert_not_null(cmd);
    at = (size_t)snprintf(cmd, 65536, "%s '%s/ext_verify.%s' %s",
                          strcmp(tool, "py") == 0 ? "/usr/bin/python3" : "/usr/bin/perl", src,
                          tool, mode);
    for (size_t k = 0; k < nkeys; k++)
        at += (size_t)snprintf(cmd + at, 65536 - at, " '%s=%s'", keys[k]->name, keys[k]->record);
    snprintf(cmd + at, 65536 - at, " < '%s' 2>&1", path);
    f = popen(cmd, "r");
    cr_assert_not_null(f);
    n = fread(output, 1, sizeof(output) - 1, f);
    output[n] = '\0';
    cr_assert_eq(pclose(f), 0, "%s: %s", tool, output);
    free(cmd);
    return output;
}

#endif
