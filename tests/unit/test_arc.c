/* Unit tests for auth/arc.c: the chain's structure from hand-made fields;
 * chains sealed by mxfwd (RSA and Ed25519 keys made now by openssl)
 * validated by mxfwd's own validator and by python3-dkim and Perl's
 * Mail::DKIM; a chain made upstream by python3-dkim's arc_sign, validated
 * here and extended to i=2; a tampered chain failing, sealed cv=fail, and
 * then not extended. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "arc.h"
#include "authres.h"
#include "dkimsign.h"
#include "signing.h"
#include "xalloc.h"

#define NOW ((time_t)time(NULL))

/* ---- the structure ---- */

/* Fields of a fake ARC set of instance i (b= and bh= need only parse). */
#define AAR(i) "ARC-Authentication-Results: i=" #i "; mx.test; spf=pass"
#define AMS(i)                                                                                 \
    "ARC-Message-Signature: i=" #i "; a=rsa-sha256; c=relaxed/relaxed; d=a.test; s=s; "     \
    "h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA"
#define AS(i, cv) "ARC-Seal: i=" #i "; a=rsa-sha256; cv=" cv "; d=a.test; s=s; b=AAAA"

static int collect(const char *const *lines, arc_chain_t *chain, const char **why)
{
    canon_field_t f[32];
    size_t n = 0;

    for (; lines[n] != NULL; n++) {
        f[n].ptr = lines[n];
        f[n].len = strlen(lines[n]);
    }
    return arc_chain_collect(f, n, chain, why);
}

Test(arc_structure, chains_and_their_faults)
{
    static const struct {
        const char *lines[12];
        unsigned n;
        const char *why; /* NULL: the structure holds */
        bool latest_fail;
    } cases[] = {
        {{"From: a@b.test", "Subject: no chain", NULL}, 0, NULL, false},
        {{AS(1, "none"), AMS(1), AAR(1), "From: a@b.test", NULL}, 1, NULL, false},
        {{AS(2, "pass"), AMS(2), AAR(2), AS(1, "none"), AMS(1), AAR(1), NULL}, 2, NULL, false},
        {{"arc-seal: i=1; a=rsa-sha256; cv=none; d=a.test; s=s; b=AAAA", AMS(1), AAR(1), NULL},
         1, NULL, false},
        {{AS(1, "none"), AAR(1), NULL}, 1, "ARC sets not complete from 1 up", false},
        {{AS(2, "pass"), AMS(2), AAR(2), NULL}, 2, "ARC sets not complete from 1 up", false},
        {{AS(1, "none"), AMS(1), AAR(1), AAR(1), NULL}, 1, "an ARC field twice in one instance",
         false},
        {{AS(51, "pass"), AMS(1), AAR(1), NULL}, 1, "more than 50 ARC sets", false},
        {{AS(1, "pass"), AMS(1), AAR(1), NULL}, 1, "the first ARC-Seal does not say cv=none",
         false},
        {{AS(2, "none"), AMS(2), AAR(2), AS(1, "none"), AMS(1), AAR(1), NULL}, 2,
         "an ARC-Seal after the first does not say cv=pass", false},
        {{AS(2, "pass"), AMS(2), AAR(2), AS(1, "fail"), AMS(1), AAR(1), NULL}, 2,
         "the first ARC-Seal does not say cv=none", false},
        {{AS(2, "fail"), AMS(2), AAR(2), AS(1, "none"), AMS(1), AAR(1), NULL}, 2,
         "the latest ARC-Seal says cv=fail", true},
        {{"ARC-Seal: i=1; cv=maybe; a=rsa-sha256; d=a.test; s=s; b=AAAA", AMS(1), AAR(1), NULL},
         1, "malformed ARC-Seal", false},
        {{AS(1, "none"), "ARC-Message-Signature: i=1; a=rsa-sha256; d=a.test; s=s; "
                         "h=from:arc-seal; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA",
          AAR(1), NULL},
         1, "malformed ARC-Message-Signature", false},
        {{AS(1, "none"), AMS(1), "ARC-Authentication-Results: mx.test; spf=pass", NULL}, 1,
         "malformed ARC-Authentication-Results", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arc_chain_t chain;
        const char *why;
        int rc = collect(cases[i].lines, &chain, &why);

        cr_assert_eq(chain.n, cases[i].n, "case %zu", i);
        cr_assert_eq(chain.latest_fail, cases[i].latest_fail, "case %zu", i);
        if (cases[i].why == NULL) {
            cr_assert_eq(rc, 0, "case %zu: %s", i, why);
        } else {
            cr_assert_eq(rc, ARC_ESTRUCT, "case %zu", i);
            cr_assert_str_eq(why, cases[i].why, "case %zu", i);
        }
    }
}

Test(arc_structure, aar_instances)
{
    static const struct {
        const char *v;
        int rc;
        unsigned i;
    } cases[] = {{" i=1; mx.test; none", 0, 1},  {"i = 42 ;x", 0, 42},  {" i=0; x", ARC_ESTRUCT, 0},
                 {" i=1000; x", ARC_ESTRUCT, 0}, {" I=1; x", ARC_ESTRUCT, 0}, {" i=1 x", ARC_ESTRUCT, 0},
                 {"", ARC_ESTRUCT, 0},           {" i=\r\n 7;", 0, 7}};

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        unsigned i = 0;
        size_t payload = 0;

        cr_assert_eq(arc_aar_parse(cases[k].v, strlen(cases[k].v), &i, &payload), cases[k].rc,
                     "%s", cases[k].v);
        if (cases[k].rc == 0)
            cr_assert_eq(i, cases[k].i, "%s", cases[k].v);
    }
}

/* ---- validating and sealing real chains ---- */

typedef struct {
    dkim_t *d;
    arc_t *a;
} rig_t;

static void rig_field(void *arg, const char *field, size_t len, size_t name_len)
{
    arc_field(((rig_t *)arg)->a, field, len, name_len);
}

static void rig_headers_done(void *arg)
{
    rig_t *r = arg;

    arc_headers_done(r->a, r->d);
}

/* mxfwd's validation of msg fed in chunks of step bytes. */
static arc_result_t validate(const char *msg, size_t step, const signing_key_t *const *keys,
                             size_t nkeys)
{
    rig_t r;
    dkim_options_t o = {.header_max = 262144, .max_signatures = 10, .now = NOW,
                        .on_field = rig_field, .on_headers_done = rig_headers_done, .arg = &r};
    size_t len = strlen(msg);
    arc_result_t res;

    r.a = arc_new(NOW);
    r.d = dkim_new(&o);
    for (size_t i = 0; i < len; i += step)
        dkim_feed(r.d, msg + i, len - i < step ? len - i : step);
    dkim_end(r.d);
    for (size_t k = 0; k < arc_key_count(r.a); k++) {
        char name[400];
        bool found = false;

        cr_assert_eq(arc_key_name(r.a, k, name, sizeof(name)), 0);
        for (size_t j = 0; j < nkeys && !found; j++) {
            if (strcmp(keys[j]->name, name) == 0) {
                txt_record_t rec = {keys[j]->record, strlen(keys[j]->record)};

                arc_set_key(r.a, k, TXT_OK, &rec, 1);
                found = true;
            }
        }
        if (!found)
            arc_set_key(r.a, k, TXT_NONE, NULL, 0);
    }
    arc_finish(r.a, r.d);
    res = *arc_result(r.a);
    arc_free(r.a);
    dkim_free(r.d);
    return res;
}

/* The results mxfwd would put in its Authentication-Results, as the text
 * after the prefix authres_write() is given. */
static void aar_text(const arc_result_t *chain, buf_t *out)
{
    authres_t r;

    memset(&r, 0, sizeof(r));
    r.spf_done = true;
    r.spf.status = SPF_PASS;
    strcpy(r.spf.domain, "example.org");
    r.arc_done = true;
    r.arc = *chain;
    cr_assert_eq(authres_write(&r, "mx.fwd.test", "", out), 0);
}

/* Seal msg as fwd.test with key, the chain validated as res says: the
 * sealed message (ARC set on top), or NULL with *rc. */
static char *seal(const signing_key_t *k, const char *msg, const arc_result_t *res, int *rc)
{
    canon_field_t f[SIGNING_FIELDS_MAX];
    size_t body, n = signing_fields(msg, strlen(msg), f, &body);
    dkimsign_t signer = {.key = k->key, .domain = "fwd.test", .selector = "arc", .time = NOW - 50};
    unsigned char bh[32];
    dkimsign_body_t b;
    buf_t aar, out;
    char *sealed = NULL;

    cr_assert_eq(dkimsign_body_init(&b), 0);
    dkimsign_body_feed(&b, msg, strlen(msg));
    cr_assert_eq(dkimsign_body_final(&b, bh), 0);
    buf_init(&aar, 4096);
    aar_text(res, &aar);
    buf_init(&out, 1 << 20);
    *rc = arc_seal(&signer, f, n, bh, buf_ptr(&aar), buf_used(&aar), res->cv, res->instances,
                   &out);
    if (*rc == 0) {
        sealed = xmalloc(buf_used(&out) + strlen(msg) + 1);
        memcpy(sealed, buf_ptr(&out), buf_used(&out));
        strcpy(sealed + buf_used(&out), msg);
    } else {
        cr_assert_eq(buf_used(&out), 0, "nothing written on error");
    }
    buf_free(&aar);
    buf_free(&out);
    return sealed;
}

static const char original[] = "Authentication-Results: upstream.test; spf=pass "
                               "smtp.mailfrom=example.org; dkim=pass header.d=example.org\r\n"
                               "From: Alice <alice@example.org>\r\n"
                               "To: list@lists.example\r\n"
                               "Subject: the  minutes\r\n"
                               "\tof the meeting\r\n"
                               "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
                               "Message-ID: <m1@example.org>\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "Hello,  \r\n"
                               "\r\n"
                               "the minutes are attached.\r\n"
                               "\r\n";

/* Both independent verifiers say the chain of n sets passes: every seal
 * verifies, and the latest message signature. */
static void expect_external_pass(const signing_dir_t *dir, const char *msg,
                                 const signing_key_t *const *keys, size_t nkeys, unsigned n)
{
    const char *py = signing_ext(dir, "py", "arc", msg, strlen(msg), keys, nkeys);
    const char *pl;
    char want[40];

    cr_assert(strncmp(py, "cv=pass success\n", 16) == 0, "python3-dkim: %s", py);
    snprintf(want, sizeof(want), "i=%u ams=pass as=pass", n);
    cr_assert_not_null(strstr(py, want), "python3-dkim: %s", py);
    for (unsigned i = 1; i < n; i++) {
        snprintf(want, sizeof(want), "i=%u ams=", i);
        cr_assert_not_null(strstr(py, want), "python3-dkim: %s", py);
        cr_assert_not_null(strstr(strstr(py, want), "as=pass"), "python3-dkim: %s", py);
    }
    pl = signing_ext(dir, "pl", "arc", msg, strlen(msg), keys, nkeys);
    cr_assert(strncmp(pl, "cv=pass", 7) == 0, "Mail::DKIM: %s", pl);
}

static void seal_from_scratch(const char *type)
{
    signing_dir_t dir;
    signing_key_t key;
    const signing_key_t *keys[1] = {&key};
    arc_result_t none = {.cv = DKIM_CV_NONE}, r;
    char *sealed;
    int rc;

    signing_dir_init(&dir);
    signing_key(&dir, type, "arc", "fwd.test", &key);
    sealed = seal(&key, original + strcspn(original, "\n") + 1, &none, &rc);
    cr_assert_eq(rc, 0, "%s", arc_strerror(rc));
    cr_assert(strncmp(sealed, "ARC-Seal: i=1; a=", 17) == 0, "%s", sealed);
    cr_assert_not_null(strstr(sealed, "cv=none;"));
    cr_assert_not_null(strstr(sealed, "\r\nARC-Message-Signature: i=1; a="));
    cr_assert_not_null(strstr(sealed, "\r\nARC-Authentication-Results: i=1; mx.fwd.test;\r\n"
                                      "\tspf=pass smtp.mailfrom=example.org;\r\n\tarc=none\r\n"
                                      "From: Alice"));
    for (size_t step = 1; step < 200; step += 37) {
        r = validate(sealed, step, keys, 1);
        cr_assert_eq(r.cv, DKIM_CV_PASS, "step %zu: %s", step, r.reason);
        cr_assert(r.present && r.instances == 1);
        cr_assert_str_eq(r.domain, "fwd.test");
    }
    r = validate(sealed, 4096, keys, 0);
    cr_assert_eq(r.cv, DKIM_CV_FAIL);
    cr_assert_str_eq(r.reason, "no key");
    /* python3-dkim 1.1.4 and Mail::DKIM 1.20230212 verify rsa-sha256 ARC
     * only (python3-dkim's ARC_HASH_ALGORITHMS; Mail::DKIM has no Ed25519). */
    if (strcmp(type, "rsa") == 0)
        expect_external_pass(&dir, sealed, keys, 1, 1);
    free(sealed);
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}

Test(arc, an_rsa_seal_from_scratch_validates_here_in_python3_dkim_and_in_perl, .timeout = 60)
{
    seal_from_scratch("rsa");
}

Test(arc, an_ed25519_seal_from_scratch_validates_here, .timeout = 60)
{
    seal_from_scratch("ed25519");
}

/* python3-dkim's arc_sign seals original as upstream.test. */
static char *upstream_seal(const signing_dir_t *dir, const char *msg)
{
    const char *src = getenv("MXFWD_TEST_SRCDIR");
    char cmd[1024], path[256];
    size_t len;
    char *sealed;
    FILE *f;

    snprintf(path, sizeof(path), "%s/orig.eml", dir->dir);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    fputs(msg, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 '%s/ext_arc_sign.py' '%s/up.pem' up upstream.test upstream.test"
             " < '%s'",
             src, dir->dir, path);
    f = popen(cmd, "r");
    cr_assert_not_null(f);
    sealed = xcalloc(1, 65536);
    len = fread(sealed, 1, 65535, f);
    cr_assert_eq(pclose(f), 0, "%s", cmd);
    sealed[len] = '\0';
    return sealed;
}

static void extend_upstream_chain(const char *type)
{
    signing_dir_t dir;
    signing_key_t up, ours;
    const signing_key_t *keys[2] = {&up, &ours};
    arc_result_t r;
    char *upstream, *sealed;
    int rc;

    signing_dir_init(&dir);
    signing_key(&dir, "rsa", "up", "upstream.test", &up);
    signing_key(&dir, type, "arc", "fwd.test", &ours);
    upstream = upstream_seal(&dir, original);
    cr_assert(strncmp(upstream, "ARC-Seal: i=1;", 14) == 0, "%s", upstream);
    r = validate(upstream, 1000, keys, 2);
    cr_assert_eq(r.cv, DKIM_CV_PASS, "%s", r.reason);
    cr_assert_eq(r.instances, 1);
    cr_assert_str_eq(r.domain, "upstream.test");

    sealed = seal(&ours, upstream, &r, &rc);
    cr_assert_eq(rc, 0, "%s", arc_strerror(rc));
    cr_assert(strncmp(sealed, "ARC-Seal: i=2; a=", 17) == 0, "%s", sealed);
    cr_assert_not_null(strstr(sealed, "cv=pass;"));
    cr_assert_not_null(strstr(sealed, "\tarc=pass (i=1 d=upstream.test)\r\n"));
    for (size_t step = 1; step < 400; step += 101) {
        arc_result_t r2 = validate(sealed, step, keys, 2);

        cr_assert_eq(r2.cv, DKIM_CV_PASS, "%s", r2.reason);
        cr_assert_eq(r2.instances, 2);
        cr_assert_str_eq(r2.domain, "fwd.test");
    }
    if (strcmp(type, "rsa") == 0)
        expect_external_pass(&dir, sealed, keys, 2, 2);
    free(sealed);
    free(upstream);
    dkimkey_free(up.key);
    dkimkey_free(ours.key);
    signing_dir_free(&dir);
}

Test(arc, an_upstream_chain_validates_and_is_extended_with_rsa, .timeout = 60)
{
    extend_upstream_chain("rsa");
}

Test(arc, an_upstream_chain_validates_and_is_extended_with_ed25519, .timeout = 60)
{
    extend_upstream_chain("ed25519");
}

Test(arc, a_tampered_chain_fails_is_sealed_cv_fail_and_then_not_extended, .timeout = 60)
{
    signing_dir_t dir;
    signing_key_t up, ours;
    const signing_key_t *keys[2] = {&up, &ours};
    const char *py, *pl;
    arc_result_t r;
    char *upstream, *sealed, *again;
    int rc;

    signing_dir_init(&dir);
    signing_key(&dir, "rsa", "up", "upstream.test", &up);
    signing_key(&dir, "rsa", "arc", "fwd.test", &ours);
    upstream = upstream_seal(&dir, original);

    /* A byte of the body, then a byte of a signed field. */
    strstr(upstream, "attached")[0] = 'A';
    r = validate(upstream, 1000, keys, 2);
    cr_assert_eq(r.cv, DKIM_CV_FAIL);
    cr_assert_str_eq(r.reason, "ARC-Message-Signature body hash did not verify");
    strstr(upstream, "Attached")[0] = 'a';
    strstr(upstream, "minutes\r\n")[0] = 'M';
    r = validate(upstream, 1000, keys, 2);
    cr_assert_eq(r.cv, DKIM_CV_FAIL);
    cr_assert_str_eq(r.reason, "ARC-Message-Signature did not verify");
    cr_assert_eq(r.instances, 1);
    py = signing_ext(&dir, "py", "arc", upstream, strlen(upstream), keys, 2);
    cr_assert(strncmp(py, "cv=fail", 7) == 0, "python3-dkim: %s", py);

    /* Sealed as failed: i=2, cv=fail, and everyone sees a failed chain. */
    sealed = seal(&ours, upstream, &r, &rc);
    cr_assert_eq(rc, 0, "%s", arc_strerror(rc));
    cr_assert(strncmp(sealed, "ARC-Seal: i=2; a=rsa-sha256; cv=fail;", 37) == 0, "%s", sealed);
    r = validate(sealed, 1000, keys, 2);
    cr_assert_eq(r.cv, DKIM_CV_FAIL);
    cr_assert_str_eq(r.reason, "the latest ARC-Seal says cv=fail");
    py = signing_ext(&dir, "py", "arc", sealed, strlen(sealed), keys, 2);
    cr_assert(strncmp(py, "cv=None ARC-Seal[2] reported failure", 36) == 0, "python3-dkim: %s",
              py);
    pl = signing_ext(&dir, "pl", "arc", sealed, strlen(sealed), keys, 2);
    cr_assert(strncmp(pl, "cv=fail", 7) == 0, "Mail::DKIM: %s", pl);

    /* Whoever validates next, the chain ends there. */
    r.cv = DKIM_CV_FAIL;
    r.instances = 2;
    again = seal(&ours, sealed, &r, &rc);
    cr_assert_null(again);
    cr_assert_eq(rc, ARC_ECHAINFAILED);
    free(sealed);
    free(upstream);
    dkimkey_free(up.key);
    dkimkey_free(ours.key);
    signing_dir_free(&dir);
}

Test(arc, sealing_refuses_what_does_not_match_the_chain, .timeout = 60)
{
    signing_dir_t dir;
    signing_key_t key;
    arc_result_t r = {.cv = DKIM_CV_PASS, .instances = 1};
    const char *msg = original + strcspn(original, "\n") + 1;
    int rc;

    signing_dir_init(&dir);
    signing_key(&dir, "ed25519", "arc", "fwd.test", &key);
    cr_assert_null(seal(&key, msg, &r, &rc), "no chain, but told i=1 passed");
    cr_assert_eq(rc, ARC_EINVAL);
    r.cv = DKIM_CV_NONE;
    r.instances = 0;
    {
        char *one = seal(&key, msg, &r, &rc), *two;

        cr_assert_not_null(one);
        two = seal(&key, one, &r, &rc);
        cr_assert_null(two, "a chain, but told there was none");
        cr_assert_eq(rc, ARC_EINVAL);
        free(one);
    }
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}
