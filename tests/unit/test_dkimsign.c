/* Unit tests for auth/dkimsign.c: the streaming body hash against known
 * values (RFC 6376 and RFC 8463 examples, empty bodies, trailing empty
 * lines, chunks cut everywhere); signatures made with keys made now by the
 * openssl command, verified by mxfwd's own verifier (dkim.c) and by two
 * independent ones, python3-dkim and Perl's Mail::DKIM. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "dkim.h"
#include "dkimsign.h"
#include "rfc8463.h"
#include "signing.h"
#include "xalloc.h"

/* ---- the body hash ---- */

/* SHA-256 of nothing: an empty body, relaxed (RFC 6376 errata 3192). */
static const char empty_bh[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

/* The body hash of msg fed in pieces cut at cuts[], as base64. */
static const char *body_hash(const char *msg, size_t len, const size_t *cuts, size_t ncuts)
{
    static char b64[64];
    unsigned char bh[32];
    dkimsign_body_t b;
    size_t at = 0;

    cr_assert_eq(dkimsign_body_init(&b), 0);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        dkimsign_body_feed(&b, msg + at, end - at);
        at = end;
    }
    cr_assert_eq(dkimsign_body_final(&b, bh), 0);
    dkimsign_body_free(&b);
    EVP_EncodeBlock((unsigned char *)b64, bh, 32);
    return b64;
}

static const char *hash_of(const char *msg)
{
    return body_hash(msg, strlen(msg), NULL, 0);
}

/* SHA-256 of canonical bytes, as base64. */
static const char *sha256_of(const char *canonical)
{
    static char b64[64];
    unsigned char md[32];

    cr_assert_eq(EVP_Digest(canonical, strlen(canonical), md, NULL, EVP_sha256(), NULL), 1);
    EVP_EncodeBlock((unsigned char *)b64, md, 32);
    return b64;
}

Test(dkimsign_body, rfc8463_example_at_every_cut_and_byte_by_byte)
{
    size_t len = sizeof(rfc8463_msg) - 1;
    size_t *cuts = xcalloc(len, sizeof(*cuts));

    for (size_t cut = 0; cut <= len; cut++)
        cr_assert_str_eq(body_hash(rfc8463_msg, len, &cut, 1), rfc8463_bh, "cut at %zu", cut);
    for (size_t a = 0; a <= len; a += 7)
        for (size_t b = a; b <= len; b += 5) {
            size_t two[2] = {a, b};

            cr_assert_str_eq(body_hash(rfc8463_msg, len, two, 2), rfc8463_bh, "%zu %zu", a, b);
        }
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    cr_assert_str_eq(body_hash(rfc8463_msg, len, cuts, len), rfc8463_bh);
    free(cuts);
}

Test(dkimsign_body, rfc6376_example_body)
{
    /* RFC 6376 3.4.5: relaxed makes " C\r\nD E\r\n" of it. */
    cr_assert_str_eq(hash_of("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"),
                     sha256_of(" C\r\nD E\r\n"));
}

Test(dkimsign_body, empty_bodies_and_trailing_empty_lines)
{
    cr_assert_str_eq(hash_of("From: a@b.example\r\n\r\n"), empty_bh);
    cr_assert_str_eq(hash_of("From: a@b.example\r\n\r\n\r\n\r\n \t\r\n"), empty_bh);
    cr_assert_str_eq(hash_of("From: a@b.example\r\n"), empty_bh, "no empty line: no body");
    cr_assert_str_eq(hash_of("From: a@b.example"), empty_bh);
    cr_assert_str_eq(hash_of(""), empty_bh);
    cr_assert_str_eq(hash_of("\r\nbody\r\n"), sha256_of("body\r\n"), "empty header section");
    cr_assert_str_eq(hash_of("From: a\r\n\r\nabc\r\n\r\n\r\n"), sha256_of("abc\r\n"));
    cr_assert_str_eq(hash_of("From: a\r\n\r\nabc"), sha256_of("abc\r\n"), "no final CRLF");
    cr_assert_str_eq(hash_of("From: a\r\n\r\na\r\n\r\n\r\nb \r\n"), sha256_of("a\r\n\r\n\r\nb\r\n"));
    /* A bare CR does not end a line: "\r\r\n" is no empty line. */
    cr_assert_str_eq(hash_of("From: a\r\n\r\r\nX: y\r\n\r\nz\r\n"), sha256_of("z\r\n"));
}

Test(dkimsign_body, the_header_section_does_not_change_the_hash)
{
    cr_assert_str_eq(hash_of("From: a\r\n\r\nHello  world\r\n"),
                     hash_of("Received: from x\r\n\tby y\r\nFrom: b\r\nTo: c\r\n\r\nHello world \r\n"));
}

/* ---- signatures ---- */

static const char message[] =
    "Received: from client.test by mx.example.net\r\n"
    "From: Alice Example <alice@example.net>\r\n"
    "To: bob@alias.test\r\n"
    "Subject:  a   test\t message \r\n"
    "  folded onto a second line\r\n"
    "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <t1@example.net>\r\n"
    "X-Unsigned: anything\r\n"
    "\r\n"
    "Hello Bob,  \r\n"
    "\r\n"
    "  lines with\ttabs and   runs of spaces\t\r\n"
    "\r\n"
    "\r\n";

/* Sign msg with p, and return the signed message (the field on top). */
static char *sign(const dkimsign_t *p, const char *msg, size_t *out_len)
{
    canon_field_t f[SIGNING_FIELDS_MAX];
    size_t body, n = signing_fields(msg, strlen(msg), f, &body), len = strlen(msg);
    unsigned char bh[32];
    dkimsign_body_t b;
    buf_t out;
    char *signed_msg;

    cr_assert_eq(dkimsign_body_init(&b), 0);
    dkimsign_body_feed(&b, msg, len);
    cr_assert_eq(dkimsign_body_final(&b, bh), 0);
    buf_init(&out, 1 << 20);
    cr_assert_eq(dkimsign_sign(p, f, n, bh, &out), 0);
    signed_msg = xmalloc(buf_used(&out) + len + 1);
    memcpy(signed_msg, buf_ptr(&out), buf_used(&out));
    memcpy(signed_msg + buf_used(&out), msg, len + 1);
    *out_len = buf_used(&out) + len;
    buf_free(&out);
    return signed_msg;
}

/* mxfwd's verifier over msg, the one key given: the first signature's
 * status and reason. */
static dkim_status_t verify(const char *msg, const signing_key_t *k, const char **why)
{
    dkim_options_t opt = {.header_max = 65536, .max_signatures = 4, .now = 1800000000};
    dkim_t *d = dkim_new(&opt);
    txt_record_t r = {k->record, strlen(k->record)};
    dkim_status_t st;
    static const char *reason;

    dkim_feed(d, msg, strlen(msg));
    dkim_end(d);
    cr_assert_geq(dkim_count(d), 1);
    dkim_set_key(d, 0, TXT_OK, &r, 1);
    dkim_finish(d);
    st = dkim_result(d, 0)->status;
    reason = dkim_result(d, 0)->reason;
    *why = reason;
    dkim_free(d);
    return st;
}

static void lines_fit(const char *field, size_t len)
{
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        if (field[i] == '\n') {
            col = 0;
            continue;
        }
        col += field[i] != '\r';
        cr_assert_leq(col, DKIMSIGN_WIDTH, "%.*s", (int)len, field);
    }
}

static void round_trip(const char *type)
{
    signing_dir_t dir;
    signing_key_t key;
    const signing_key_t *keys[1] = {&key};
    dkimsign_t p = {.kind = DKIMSIG_DKIM, .domain = "Example.NET", .selector = "sel1",
                    .time = 1780000000};
    size_t len;
    char *msg, *bad;
    const char *why, *out;
    dkimsig_t sig;
    const char *end;
    bool ed = strcmp(type, "ed25519") == 0;

    signing_dir_init(&dir);
    signing_key(&dir, type, "sel1", "example.net", &key);
    p.key = key.key;
    msg = sign(&p, message, &len);
    end = strstr(msg, "\r\nReceived:");
    cr_assert_not_null(end);
    lines_fit(msg, (size_t)(end - msg));
    cr_assert(strncmp(msg, "DKIM-Signature: v=1; a=", 23) == 0, "%s", msg);
    cr_assert_eq(dkimsig_parse(msg + 15, (size_t)(end - msg) - 15, &sig, &why), 0, "%s", why);
    cr_assert_eq(sig.alg, ed ? DKIM_ED25519_SHA256 : DKIM_RSA_SHA256);
    cr_assert_eq(sig.hcanon, CANON_RELAXED);
    cr_assert_eq(sig.bcanon, CANON_RELAXED);
    cr_assert_str_eq(sig.domain, "example.net");
    cr_assert(sig.has_timestamp && sig.timestamp == 1780000000);
    cr_assert(!sig.has_length && !sig.has_expire, "no l=, no x=");
    cr_assert_eq(sig.nhnames, 6);
    {
        static const char *want[] = {"From", "From", "To", "Subject", "Date", "Message-ID"};

        for (size_t i = 0; i < 6; i++)
            cr_assert_str_eq(sig.hname[i], want[i], "h= name %zu", i);
    }

    cr_assert_eq(verify(msg, &key, &why), DKIM_PASS, "%s", why);
    out = signing_ext(&dir, "py", "dkim", msg, len, keys, 1);
    cr_assert_str_eq(out, "pass\n", "python3-dkim: %s", out);
    /* Mail::DKIM 1.20230212 knows no ed25519-sha256 ("invalid (unsupported
     * algorithm ed25519-sha256)"): RSA only there. */
    if (!ed) {
        out = signing_ext(&dir, "pl", "dkim", msg, len, keys, 1);
        cr_assert(strncmp(out, "pass", 4) == 0, "Perl: %s", out);
    }

    /* The body or a signed field changed, a From added: fail, everywhere. */
    bad = xstrdup(msg);
    strstr(bad, "Hello Bob")[6] = 'E';
    cr_assert_eq(verify(bad, &key, &why), DKIM_FAIL);
    cr_assert_str_eq(why, "body hash did not verify");
    cr_assert(strncmp(signing_ext(&dir, "py", "dkim", bad, len, keys, 1), "fail", 4) == 0);
    free(bad);
    bad = xstrdup(msg);
    strstr(bad, "a   test")[0] = 'A';
    cr_assert_eq(verify(bad, &key, &why), DKIM_FAIL);
    cr_assert_str_eq(why, "signature did not verify");
    cr_assert(strncmp(signing_ext(&dir, "py", "dkim", bad, len, keys, 1), "fail", 4) == 0);
    if (!ed)
        cr_assert(strncmp(signing_ext(&dir, "pl", "dkim", bad, len, keys, 1), "fail", 4) == 0);
    free(bad);
    {
        char *added = xmalloc(len + 64);

        snprintf(added, len + 64, "%.*sFrom: mallory@evil.test\r\n%s", (int)(end - msg + 2), msg,
                 end + 2);
        cr_assert_eq(verify(added, &key, &why), DKIM_FAIL, "From is oversigned");
        free(added);
    }
    /* Untouched unsigned fields and trace fields may change. */
    bad = xstrdup(msg);
    strstr(bad, "X-Unsigned: anything")[12] = 'A';
    strstr(bad, "client.test")[0] = 'C';
    cr_assert_eq(verify(bad, &key, &why), DKIM_PASS, "%s", why);
    free(bad);
    free(msg);
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}

Test(dkimsign, rsa_signatures_verify_here_in_python3_dkim_and_in_perl, .timeout = 60)
{
    round_trip("rsa");
}

Test(dkimsign, ed25519_signatures_verify_here_and_in_python3_dkim, .timeout = 60)
{
    round_trip("ed25519");
}

Test(dkimsign, names_are_signed_once_per_instance_and_from_once_more)
{
    static const char msg[] = "From: a@example.net\r\n"
                              "Subject: one\r\n"
                              "Received: x\r\n"
                              "Subject: two\r\n"
                              "\r\n"
                              "body\r\n";
    static const char *names[] = {"subject", "Received", "FROM", "Cc", "from", "Bad:Name"};
    signing_dir_t dir;
    signing_key_t key;
    dkimsign_t p = {.kind = DKIMSIG_DKIM, .domain = "example.net", .selector = "s",
                    .time = 1, .names = names, .nnames = 6};
    dkimsig_t sig;
    size_t len;
    char *signed_msg;
    const char *why, *end;

    signing_dir_init(&dir);
    signing_key(&dir, "ed25519", "s", "example.net", &key);
    p.key = key.key;
    signed_msg = sign(&p, msg, &len);
    end = strstr(signed_msg, "\r\nFrom:");
    cr_assert_eq(dkimsig_parse(signed_msg + 15, (size_t)(end - signed_msg) - 15, &sig, &why), 0);
    cr_assert_eq(sig.nhnames, 5);
    cr_assert_str_eq(sig.hname[0], "subject");
    cr_assert_str_eq(sig.hname[1], "subject");
    cr_assert_str_eq(sig.hname[2], "Received");
    cr_assert_str_eq(sig.hname[3], "FROM");
    cr_assert_str_eq(sig.hname[4], "FROM");
    cr_assert_eq(verify(signed_msg, &key, &why), DKIM_PASS, "%s", why);
    free(signed_msg);
    /* From is signed, and oversigned, even when the list forgets it. */
    p.names = names;
    p.nnames = 1;
    signed_msg = sign(&p, msg, &len);
    end = strstr(signed_msg, "\r\nFrom:");
    cr_assert_eq(dkimsig_parse(signed_msg + 15, (size_t)(end - signed_msg) - 15, &sig, &why), 0);
    cr_assert_eq(sig.nhnames, 4);
    cr_assert_str_eq(sig.hname[0], "From");
    cr_assert_str_eq(sig.hname[1], "From");
    cr_assert_str_eq(sig.hname[2], "subject");
    cr_assert_eq(verify(signed_msg, &key, &why), DKIM_PASS, "%s", why);
    free(signed_msg);
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}

Test(dkimsign, an_ams_is_the_same_signature_under_arcs_name)
{
    static const char *forbidden[][2] = {{"From", "ARC-Seal"}, {"From", "authentication-results"}};
    signing_dir_t dir;
    signing_key_t key;
    dkimsign_t p = {.kind = DKIMSIG_AMS, .domain = "example.net", .selector = "s", .time = 7,
                    .instance = 3};
    canon_field_t f[SIGNING_FIELDS_MAX];
    size_t body, n = signing_fields(message, strlen(message), f, &body);
    unsigned char bh[32] = {0};
    dkimsig_t sig;
    const char *why;
    buf_t out;

    signing_dir_init(&dir);
    signing_key(&dir, "ed25519", "s", "example.net", &key);
    p.key = key.key;
    buf_init(&out, 65536);
    cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), 0);
    cr_assert(strncmp(buf_ptr(&out), "ARC-Message-Signature: i=3; a=ed25519-sha256;", 45) == 0,
              "%.*s", (int)buf_used(&out), buf_ptr(&out));
    cr_assert_eq(dkimsig_parse_kind(DKIMSIG_AMS, buf_ptr(&out) + 22, buf_used(&out) - 24, &sig,
                                    &why),
                 0, "%s", why);
    cr_assert_eq(sig.instance, 3);
    cr_assert_null(memmem(buf_ptr(&out), buf_used(&out), "v=1", 3), "no v= in an AMS");
    for (size_t i = 0; i < 2; i++) {
        p.names = forbidden[i];
        p.nnames = 2;
        buf_reset(&out);
        cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), DKIMSIGN_EINVAL, "%s", forbidden[i][1]);
        cr_assert_eq(buf_used(&out), 0);
    }
    p.names = NULL;
    p.instance = 51;
    cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), DKIMSIGN_EINVAL);
    p.instance = 0;
    cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), DKIMSIGN_EINVAL);
    p.instance = 1;
    p.domain = "not a domain";
    cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), DKIMSIGN_EINVAL);
    p.domain = "example.net";
    p.key = NULL;
    cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), DKIMSIGN_EINVAL);
    buf_free(&out);
    /* No room: nothing half-written. */
    p.key = key.key;
    buf_init(&out, 100);
    cr_assert_eq(buf_append(&out, "kept", 4), 0);
    cr_assert_eq(dkimsign_sign(&p, f, n, bh, &out), BUF_EFULL);
    cr_assert_eq(buf_used(&out), 4);
    buf_free(&out);
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}

/* ---- several threads, one key (libuv's pool will do this) ---- */

typedef struct {
    const dkimsign_t *p;
    const canon_field_t *f;
    size_t n;
    const unsigned char *bh;
    char first[2048];
    int same;
} signer_job_t;

static void *signer_thread(void *arg)
{
    signer_job_t *j = arg;
    buf_t out;

    buf_init(&out, sizeof(j->first) - 1);
    for (int i = 0; i < 25; i++) {
        buf_reset(&out);
        if (dkimsign_sign(j->p, j->f, j->n, j->bh, &out) != 0)
            break;
        if (i == 0) {
            memcpy(j->first, buf_ptr(&out), buf_used(&out));
            j->first[buf_used(&out)] = '\0';
        }
        j->same += buf_used(&out) == strlen(j->first) &&
                   memcmp(buf_ptr(&out), j->first, buf_used(&out)) == 0;
    }
    buf_free(&out);
    return NULL;
}

Test(dkimsign, one_key_signs_from_several_threads_at_once, .timeout = 60)
{
    signing_dir_t dir;
    signing_key_t key;
    dkimsign_t p = {.kind = DKIMSIG_DKIM, .domain = "example.net", .selector = "s", .time = 9};
    canon_field_t f[SIGNING_FIELDS_MAX];
    size_t body, n = signing_fields(message, strlen(message), f, &body);
    unsigned char bh[32] = {1};
    signer_job_t jobs[4];
    pthread_t t[4];

    signing_dir_init(&dir);
    signing_key(&dir, "rsa", "s", "example.net", &key);
    p.key = key.key;
    for (int i = 0; i < 4; i++) {
        jobs[i] = (signer_job_t){.p = &p, .f = f, .n = n, .bh = bh};
        cr_assert_eq(pthread_create(&t[i], NULL, signer_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        /* RSA PKCS#1 v1.5 is deterministic: every signature the same. */
        cr_assert_eq(jobs[i].same, 25);
        cr_assert_str_eq(jobs[i].first, jobs[0].first);
    }
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}
