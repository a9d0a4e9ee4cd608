/* Unit tests for auth/sign.c: what a forwarded message gets on top — the
 * From rewrite in its forms, when DMARC asks for it and when not, what is
 * skipped, a header section that cannot be signed — with a key made now
 * by the openssl command.  The signatures themselves are checked by real
 * verifiers in tests/e2e/test_signing.py and test_dkimsign.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"
#include "testdir.h"

static char dir[256], key[300];

static void sign_setup(void)
{
    char cmd[600];

    cr_assert_eq(test_dir_make("mxfwd-sign", dir, sizeof(dir)), 0);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null",
             key);
    cr_assert_eq(system(cmd), 0);
}

static void sign_teardown(void)
{
    test_dir_remove(dir);
}

TestSuite(sign, .init = sign_setup, .fini = sign_teardown, .timeout = 60);

static sign_ctx_t *ctx_with(sign_rewrite_t rewrite)
{
    sign_config_t cfg = {
        .key_path = key,
        .selector = "sel",
        .domain = "sign.test",
        .dkim = true,
        .arc = false,
        .rewrite = rewrite,
        .rewrite_address = "noreply@sign.test",
        .authserv_id = "mx.fwd.test",
    };
    sign_ctx_t *c = NULL;
    char why[160];

    cr_assert_eq(sign_ctx_new(&cfg, &c, why, sizeof(why)), 0, "%s", why);
    return c;
}

typedef struct {
    char *prepend; /* NUL-terminated copy */
    uint64_t skip;
    int prepared;
    bool rewrote;
} result_t;

static const char trace[] = "Received: from client.test\r\n\tby mx.fwd.test; now\r\n";

/* msg through a sign_msg in chunks of 7, with res; the result. */
static result_t sign_run(sign_ctx_t *c, const char *msg, const authres_t *res)
{
    sign_msg_t *m = sign_msg_new(c);
    const char *why, *p;
    result_t r;
    size_t len = strlen(msg), n;

    cr_assert_not_null(m);
    for (size_t i = 0; i < len; i += 7)
        sign_msg_feed(m, msg + i, len - i < 7 ? len - i : 7);
    r.prepared = sign_msg_prepare(m, res, trace, strlen(trace), "alice@alias.test", 1796601600);
    sign_msg_work(m);
    p = sign_msg_prepend(m, &n);
    r.prepend = strndup(p, n);
    r.skip = sign_msg_skip(m);
    r.rewrote = sign_msg_rewrote(m, &why);
    sign_msg_free(m);
    return r;
}

/* The part of the prepended bytes after mxfwd's trace: the rewritten
 * header section, or "". */
static const char *after_trace(const result_t *r)
{
    const char *t = strstr(r->prepend, trace);

    cr_assert_not_null(t, "%s", r->prepend);
    return t + strlen(trace);
}

static const char body[] = "\r\nHello.\r\n";

Test(sign, the_rewritten_from_keeps_the_authors_name_as_written)
{
    static const struct {
        const char *from, *want;
    } cases[] = {
        {"From: Alice Smith <alice@origin.test>\r\n",
         "From: Alice Smith \"via alice@alias.test\" <noreply@sign.test>\r\n"
         "Reply-To: Alice Smith <alice@origin.test>\r\n"
         "X-Original-From: Alice Smith <alice@origin.test>\r\n"},
        {"From: \"Smith, Alice\" <alice@origin.test>\r\n",
         "From: \"Smith, Alice\" \"via alice@alias.test\" <noreply@sign.test>\r\n"
         "Reply-To: \"Smith, Alice\" <alice@origin.test>\r\n"
         "X-Original-From: \"Smith, Alice\" <alice@origin.test>\r\n"},
        {"From: =?UTF-8?Q?J=C3=B6rg?= <jorg@origin.test>\r\n",
         "From: =?UTF-8?Q?J=C3=B6rg?= \"via alice@alias.test\" <noreply@sign.test>\r\n"
         "Reply-To: =?UTF-8?Q?J=C3=B6rg?= <jorg@origin.test>\r\n"
         "X-Original-From: =?UTF-8?Q?J=C3=B6rg?= <jorg@origin.test>\r\n"},
        /* No name: the address says who wrote it; quotes are escaped. */
        {"From: alice@origin.test\r\n",
         "From: \"alice@origin.test via alice@alias.test\" <noreply@sign.test>\r\n"
         "Reply-To: alice@origin.test\r\n"
         "X-Original-From: alice@origin.test\r\n"},
        {"From: <\"a\\\"b\"@origin.test>\r\n",
         "From: \"\\\"a\\\\\\\"b\\\"@origin.test via alice@alias.test\" <noreply@sign.test>\r\n"
         "Reply-To: <\"a\\\"b\"@origin.test>\r\n"
         "X-Original-From: <\"a\\\"b\"@origin.test>\r\n"},
        /* Folded: one line, the fold kept where it is copied whole. */
        {"From: Alice\r\n <alice@origin.test>\r\n",
         "From: Alice \"via alice@alias.test\" <noreply@sign.test>\r\n"
         "Reply-To: Alice\r\n <alice@origin.test>\r\n"
         "X-Original-From: Alice\r\n <alice@origin.test>\r\n"},
    };
    sign_ctx_t *c = ctx_with(SIGN_REWRITE_ALWAYS);
    authres_t res;

    memset(&res, 0, sizeof(res));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[512], want[1024];
        result_t r;

        snprintf(msg, sizeof(msg), "Subject: hi\r\n%sTo: a@alias.test\r\n%s", cases[i].from, body);
        snprintf(want, sizeof(want), "Subject: hi\r\n%sTo: a@alias.test\r\n", cases[i].want);
        r = sign_run(c, msg, &res);
        cr_assert_eq(r.prepared, 0);
        cr_assert(r.rewrote);
        cr_assert_str_eq(after_trace(&r), want, "case %zu", i);
        /* The message's own header section is skipped, its body sent. */
        cr_assert_eq(r.skip, strlen(msg) - strlen(body), "case %zu", i);
        cr_assert(strncmp(r.prepend,
                          "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
                          "d=sign.test; s=sel;",
                          71) == 0,
                  "%s", r.prepend);
        free(r.prepend);
    }
    sign_ctx_unref(c);
}

Test(sign, a_reply_to_is_kept_and_extra_froms_go)
{
    sign_ctx_t *c = ctx_with(SIGN_REWRITE_ALWAYS);
    authres_t res;
    result_t r;

    memset(&res, 0, sizeof(res));
    r = sign_run(c,
                 "From: A <a@origin.test>\r\nReply-To: list@origin.test\r\n"
                 "From: B <b@origin.test>\r\n\r\nbody\r\n",
                 &res);
    cr_assert_str_eq(after_trace(&r), "From: A \"via alice@alias.test\" <noreply@sign.test>\r\n"
                                      "X-Original-From: A <a@origin.test>\r\n"
                                      "Reply-To: list@origin.test\r\n");
    free(r.prepend);
    sign_ctx_unref(c);
}

/* from_rewrite = dmarc: only for reject or quarantine without an aligned
 * DKIM signature. */
Test(sign, dmarc_decides_the_rewrite)
{
    static const char msg[] = "From: A <a@origin.test>\r\nSubject: x\r\n\r\nbody\r\n";
    static const struct {
        bool has_policy;
        dmarc_policy_t policy;
        bool dkim_aligned;
        bool rewritten;
    } cases[] = {
        {true, DMARC_P_REJECT, false, true}, {true, DMARC_P_QUARANTINE, false, true},
        {true, DMARC_P_REJECT, true, false}, {true, DMARC_P_NONE, false, false},
        {false, DMARC_P_NONE, false, false},
    };
    sign_ctx_t *c = ctx_with(SIGN_REWRITE_DMARC);
    sign_ctx_t *off = ctx_with(SIGN_REWRITE_OFF);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        authres_t res;
        result_t r;

        memset(&res, 0, sizeof(res));
        res.dmarc_done = true;
        res.ndmarc = 1;
        strcpy(res.dmarc[0].domain, "origin.test");
        res.dmarc[0].has_policy = cases[i].has_policy;
        res.dmarc[0].policy = cases[i].policy;
        res.dmarc[0].dkim_aligned = cases[i].dkim_aligned;
        r = sign_run(c, msg, &res);
        cr_assert_eq(r.rewrote, cases[i].rewritten, "case %zu", i);
        cr_assert_eq(r.skip, cases[i].rewritten ? strlen(msg) - strlen("\r\nbody\r\n") : 0);
        cr_assert_str_eq(after_trace(&r), cases[i].rewritten ? after_trace(&r) : "");
        free(r.prepend);
        r = sign_run(off, msg, &res);
        cr_assert_not(r.rewrote, "from_rewrite = off, case %zu", i);
        free(r.prepend);
    }
    sign_ctx_unref(c);
    sign_ctx_unref(off);
}

Test(sign, a_header_section_that_cannot_be_signed_goes_as_it_came)
{
    sign_ctx_t *c = ctx_with(SIGN_REWRITE_ALWAYS);
    authres_t res;
    result_t r;
    char *big;

    memset(&res, 0, sizeof(res));
    r = sign_run(c, "From: A <a@origin.test>\r\nnot a field\r\n\r\nbody\r\n", &res);
    cr_assert_eq(r.prepared, SIGN_EHEADERS);
    cr_assert_str_eq(r.prepend, trace, "the trace alone");
    cr_assert_eq(r.skip, 0);
    free(r.prepend);

    big = malloc(SIGN_HEADER_MAX + 100);
    memcpy(big, "From: A <a@origin.test>\r\nX-Big: ", 32);
    memset(big + 32, 'x', SIGN_HEADER_MAX);
    strcpy(big + 32 + SIGN_HEADER_MAX, "\r\n\r\nbody\r\n");
    r = sign_run(c, big, &res);
    cr_assert_eq(r.prepared, SIGN_EHEADERS);
    cr_assert_str_eq(r.prepend, trace);
    free(r.prepend);
    free(big);
    sign_ctx_unref(c);
}

Test(sign, a_message_of_our_own_gets_a_signature_field)
{
    static const char dsn[] = "From: MAILER-DAEMON@mx.fwd.test\r\nTo: <a@origin.test>\r\n"
                              "Subject: Undelivered\r\n\r\nbody\r\n";
    sign_ctx_t *c = ctx_with(SIGN_REWRITE_OFF);
    buf_t out;

    buf_init(&out, 1 << 20);
    cr_assert_eq(sign_message(c, dsn, strlen(dsn), 1796601600, &out), 0);
    cr_assert(strncmp(buf_ptr(&out), "DKIM-Signature: v=1; a=rsa-sha256;", 34) == 0);
    cr_assert(strstr(buf_ptr(&out), "t=1796601600") != NULL);
    buf_free(&out);
    sign_ctx_unref(c);
}

/* Filters changed the header section (docs/milter.md): the new one is
 * signed, and goes on top with the skip given, signed or not. */
Test(sign, a_section_the_filters_made_is_signed_in_place_of_the_own)
{
    static const char msg[] = "From: A <a@origin.test>\r\nSubject: x\r\n\r\nbody\r\n";
    static const char section[] = "From: A <a@origin.test>\r\nSubject: [tagged] x\r\n"
                                  "X-Spam-Status: No\r\n";
    const size_t own = strlen(msg) - strlen("\r\nbody\r\n");
    sign_ctx_t *c = ctx_with(SIGN_REWRITE_OFF);
    sign_msg_t *m = sign_msg_new(c);
    const char *p;
    size_t n;
    authres_t res;

    memset(&res, 0, sizeof(res));
    sign_msg_feed(m, msg, strlen(msg));
    sign_msg_set_headers(m, section, strlen(section), own);
    cr_assert_eq(sign_msg_prepare(m, &res, trace, strlen(trace), NULL, 1796601600), 0);
    sign_msg_work(m);
    p = sign_msg_prepend(m, &n);
    cr_assert(strncmp(p, "DKIM-Signature: ", 16) == 0);
    /* The signature names the new section's fields (the e2e tests verify
     * it: tests/e2e/test_milter.py). */
    cr_assert(strstr(p, "h=From:From:Subject;") != NULL, "%.*s", (int)n, p);
    cr_assert(n > strlen(trace) + strlen(section));
    cr_assert_eq(memcmp(p + n - strlen(section), section, strlen(section)), 0);
    cr_assert_eq(sign_msg_skip(m), own);
    sign_msg_free(m);

    /* A message that cannot be signed still gets the filters' section. */
    m = sign_msg_new(c);
    sign_msg_feed(m, "From: A\r\nnot a field\r\n\r\nbody\r\n", 29);
    sign_msg_set_headers(m, section, strlen(section), 9);
    cr_assert_eq(sign_msg_prepare(m, &res, trace, strlen(trace), NULL, 1796601600),
                 SIGN_EHEADERS);
    sign_msg_work(m);
    p = sign_msg_prepend(m, &n);
    cr_assert_eq(n, strlen(trace) + strlen(section));
    cr_assert_eq(memcmp(p, trace, strlen(trace)), 0);
    cr_assert_eq(sign_msg_skip(m), 9);
    sign_msg_free(m);
    sign_ctx_unref(c);
}
