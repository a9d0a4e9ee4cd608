/* Unit tests for DKIM in dns/: tag lists, canonicalization (RFC 6376 3.4.5),
 * signature and key parsing, and streaming verification of the RFC 8463
 * example with chunk boundaries everywhere. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "dkim.h"
#include "dkimsig.h"
#include "rfc8463.h"
#include "tagval.h"
#include "xalloc.h"

/* ---- tag=value lists ---- */

Test(tagval, splits_and_trims)
{
    static const char s[] = " v=1; a = rsa-sha256 ;\r\n\tb=AB CD\r\n EF;";
    tagval_list_t l;

    cr_assert_eq(tagval_parse(s, sizeof(s) - 1, false, &l), 0);
    cr_assert_eq(l.n, 3);
    cr_assert(tagval_is(tagval_get(&l, "a"), "rsa-sha256"));
    cr_assert_eq(tagval_get(&l, "b")->value_len, strlen("AB CD\r\n EF"));
    cr_assert_null(tagval_get(&l, "A"), "tag names are case-sensitive");
}

Test(tagval, strict_refuses_what_lenient_skips)
{
    static const struct {
        const char *s;
        size_t lenient_n;
    } bad[] = {{"a=1;;b=2", 2}, {"a=1; b", 1}, {"a=1; a=2", 1},
               {"1a=2", 0},     {"a=\x01", 0}, {"a=1;=2", 1}};
    tagval_list_t l;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_lt(tagval_parse(bad[i].s, strlen(bad[i].s), false, &l), 0, "%s", bad[i].s);
        cr_assert_eq(tagval_parse(bad[i].s, strlen(bad[i].s), true, &l), 0, "%s", bad[i].s);
        cr_assert_eq(l.n, bad[i].lenient_n, "%s", bad[i].s);
    }
    cr_assert_eq(tagval_parse("a=1; a=2", 8, true, &l), 0);
    cr_assert(tagval_is(tagval_get(&l, "a"), "1"), "the first of a repeated tag wins");
}

/* ---- canonicalization: RFC 6376 3.4.5 ---- */

static void collect(void *arg, const char *p, size_t n)
{
    cr_assert_eq(buf_append(arg, p, n), 0);
}

/* Canonicalize body cut into pieces of `step` bytes. */
static char *body(canon_t type, const char *in, size_t step)
{
    static char out[4096];
    canon_body_t c;
    buf_t b;
    size_t len = strlen(in);

    buf_init(&b, sizeof(out) - 1);
    canon_body_init(&c, type, collect, &b);
    for (size_t i = 0; i < len; i += step)
        canon_body_update(&c, in + i, len - i < step ? len - i : step);
    canon_body_final(&c);
    if (buf_used(&b) > 0)
        memcpy(out, buf_ptr(&b), buf_used(&b));
    out[buf_used(&b)] = '\0';
    buf_free(&b);
    return out;
}

static const char rfc_body[] = " C \r\nD \t E\r\n\r\n\r\n";

Test(canon, rfc6376_example_headers)
{
    static const char folded[] = "B : Y\t\r\n\tZ  ";
    buf_t b;

    buf_init(&b, 4096);
    cr_assert_eq(canon_header(CANON_RELAXED, "A: X", 4, true, &b), 0);
    cr_assert_eq(canon_header(CANON_RELAXED, folded, strlen(folded), true, &b), 0);
    cr_assert_eq(buf_used(&b), strlen("a:X\r\nb:Y Z\r\n"));
    cr_assert(memcmp(buf_ptr(&b), "a:X\r\nb:Y Z\r\n", buf_used(&b)) == 0);
    buf_reset(&b);
    cr_assert_eq(canon_header(CANON_SIMPLE, folded, strlen(folded), true, &b), 0);
    cr_assert(memcmp(buf_ptr(&b), "B : Y\t\r\n\tZ  \r\n", buf_used(&b)) == 0);
    buf_free(&b);
}

Test(canon, rfc6376_example_bodies_at_every_chunk_size)
{
    for (size_t step = 1; step <= sizeof(rfc_body); step++) {
        cr_assert_str_eq(body(CANON_RELAXED, rfc_body, step), " C\r\nD E\r\n", "step %zu", step);
        cr_assert_str_eq(body(CANON_SIMPLE, rfc_body, step), " C \r\nD \t E\r\n", "step %zu",
                         step);
    }
}

Test(canon, empty_and_unterminated_bodies)
{
    cr_assert_str_eq(body(CANON_SIMPLE, "", 1), "\r\n");
    cr_assert_str_eq(body(CANON_RELAXED, "", 1), "");
    cr_assert_str_eq(body(CANON_SIMPLE, "\r\n\r\n", 1), "\r\n");
    cr_assert_str_eq(body(CANON_RELAXED, " \r\n\t\r\n", 1), "");
    cr_assert_str_eq(body(CANON_SIMPLE, "abc", 1), "abc\r\n");
    cr_assert_str_eq(body(CANON_RELAXED, "abc  ", 2), "abc\r\n");
    cr_assert_str_eq(body(CANON_SIMPLE, "a\rb\r", 1), "a\rb\r\r\n", "bare CR is text");
    cr_assert_str_eq(body(CANON_RELAXED, "a\r\n\r\n\r\nb\r\n", 1), "a\r\n\r\n\r\nb\r\n",
                     "inner empty lines stay");
}

/* ---- signature and key records ---- */

static const char good_sig[] = "v=1; a=rsa-sha256; c=relaxed/simple; d=Example.COM; s=sel;"
                               " h=From : To; i=joe@mail.example.com; l=42; t=100; x=200;"
                               " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;"
                               " b=AuUoFEfDxTDkHlLXSZEp\r\n Zj79LICEps6eda7W3deTVFOk4yAUoqOB";

Test(dkimsig, parses_every_tag)
{
    dkimsig_t sig;
    const char *why = NULL;

    cr_assert_eq(dkimsig_parse(good_sig, strlen(good_sig), &sig, &why), 0, "%s", why);
    cr_assert_eq(sig.alg, DKIM_RSA_SHA256);
    cr_assert_eq(sig.hcanon, CANON_RELAXED);
    cr_assert_eq(sig.bcanon, CANON_SIMPLE);
    cr_assert_str_eq(sig.domain, "example.com");
    cr_assert_str_eq(sig.selector, "sel");
    cr_assert_str_eq(sig.auid, "joe@mail.example.com");
    cr_assert_eq(sig.nhnames, 2);
    cr_assert_str_eq(sig.hname[0], "From");
    cr_assert_str_eq(sig.hname[1], "To");
    cr_assert(sig.has_length && sig.length == 42);
    cr_assert(sig.has_expire && sig.expire == 200 && sig.timestamp == 100);
    cr_assert_str_eq(sig.b_prefix, "AuUoFEfD");
    cr_assert_eq(sig.b_len, 52 * 3 / 4);
    cr_assert(dkimsig_signs(&sig, "from"));
}

Test(dkimsig, hostile_signatures_are_refused_with_a_reason)
{
    static const struct {
        const char *sig, *why;
    } cases[] = {
        {"", "missing or unknown v="},
        {"v=2; a=rsa-sha256", "missing or unknown v="},
        {"v=1; a=rsa-sha1; b=AA==; bh=AA==; d=a.b; h=from; s=s", "rsa-sha1 is not accepted (RFC 8301)"},
        {"v=1; a=rsa-md5", "unknown algorithm"},
        {"v=1; a=rsa-sha256; bh=x", "missing b="},
        {"v=1; a=rsa-sha256; b=!!!!", "bad b="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=AAAA", "bad bh="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; h=from; s=s",
         "missing d="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a..b",
         "bad d="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a.b; "
         "h=to:subject; s=s",
         "From is not signed"},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a.b; "
         "h=from; s=s; i=x@evil.b",
         "i= is not within d="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a.b; "
         "h=from; s=s; l=-1",
         "bad l="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a.b; "
         "h=from; s=s; q=http",
         "no supported query method in q="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a.b; "
         "h=from; s=s; t=20; x=10",
         "x= is before t="},
        {"v=1; a=rsa-sha256; b=AAAA; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; d=a.b; "
         "h=from::to; s=s",
         "empty header name in h="},
        {"v=1; v=1", "malformed signature"},
    };
    dkimsig_t sig;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;

        cr_assert_eq(dkimsig_parse(cases[i].sig, strlen(cases[i].sig), &sig, &why),
                     DKIMSIG_EINVAL, "%s", cases[i].sig);
        cr_assert_str_eq(why, cases[i].why, "%s", cases[i].sig);
    }
}

Test(dkimsig, key_records)
{
    static const char ed[] = "v=DKIM1; k=ed25519; t=y:s; h=sha256; s=email; "
                             "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    static const struct {
        const char *rec, *why;
    } bad[] = {
        {"k=rsa; v=DKIM1; p=AAAA", "key record has a bad v="},
        {"v=DKIM2; p=AAAA", "key record has a bad v="},
        {"h=sha1; p=AAAA", "key does not allow sha256"},
        {"k=dsa; p=AAAA", "unknown key type"},
        {"s=web; p=AAAA", "key is not for email"},
        {"v=DKIM1; k=rsa", "key record has no p="},
        {"p=A", "bad p="},
        {"p", "malformed key record"},
    };
    dkimkey_t key;
    const char *why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(dkimsig_key_parse(bad[i].rec, strlen(bad[i].rec), &key, &why), DKIMSIG_EINVAL,
                     "%s", bad[i].rec);
        cr_assert_str_eq(why, bad[i].why, "%s", bad[i].rec);
    }
    cr_assert_eq(dkimsig_key_parse("v=DKIM1; p=", 11, &key, &why), 0);
    cr_assert_eq(key.p_len, 0, "an empty p= is a revoked key");
    cr_assert_eq(dkimsig_key_parse(ed, strlen(ed), &key, &why), 0, "%s", why);
    cr_assert_eq(key.type, DKIM_KEY_ED25519);
    cr_assert_eq(key.p_len, 32);
    cr_assert(key.testing && key.strict);
}

Test(dkimsig, base64_is_strict_about_padding)
{
    unsigned char out[16];

    cr_assert_eq(dkimsig_b64_decode("TWFu", 4, out, sizeof(out)), 3);
    cr_assert_eq(dkimsig_b64_decode("TW E=", 5, out, sizeof(out)), 2);
    cr_assert_eq(dkimsig_b64_decode("TQ==", 4, out, sizeof(out)), 1);
    cr_assert_eq(dkimsig_b64_decode("TQ=", 3, out, sizeof(out)), -1);
    cr_assert_eq(dkimsig_b64_decode("TR==", 4, out, sizeof(out)), -1, "non-zero pad bits");
    cr_assert_eq(dkimsig_b64_decode("T", 1, out, sizeof(out)), -1);
    cr_assert_eq(dkimsig_b64_decode("TQ==TQ==", 8, out, sizeof(out)), -1);
    cr_assert_eq(dkimsig_b64_decode("TWFuTWFu", 8, out, 5), -1, "no room");
}

/* ---- verification: RFC 8463 Appendix A ---- */

typedef struct {
    size_t nsig;
    char names[8][300];
    size_t nfrom;
} seen_t;

static void on_sig(void *arg, size_t index)
{
    seen_t *s = arg;

    cr_assert_eq(index, s->nsig);
    s->nsig++;
}

static void on_field(void *arg, const char *field, size_t len, size_t name_len)
{
    seen_t *s = arg;

    (void)len;
    if (name_len == 4 && strncasecmp(field, "From", 4) == 0)
        s->nfrom++;
}

typedef struct {
    const char *name, *rec;
} key_t_;

/* Verify msg fed in the given cut points, keys from the table. */
static dkim_t *verify(const char *msg, size_t len, const size_t *cuts, size_t ncuts,
                      const key_t_ *keys, size_t nkeys, time_t now, seen_t *seen)
{
    dkim_options_t opt = {.header_max = 65536, .max_signatures = 8, .now = now,
                          .on_signature = on_sig, .on_field = on_field, .arg = seen};
    dkim_t *d = dkim_new(&opt);
    size_t at = 0;

    memset(seen, 0, sizeof(*seen));
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;

        dkim_feed(d, msg + at, end - at);
        at = end;
    }
    dkim_end(d);
    for (size_t i = 0; i < dkim_count(d); i++) {
        char name[300];
        bool found = false;

        if (dkim_key_name(d, i, name, sizeof(name)) < 0)
            continue;
        for (size_t k = 0; k < nkeys; k++) {
            if (strcmp(keys[k].name, name) == 0) {
                txt_record_t r = {keys[k].rec, strlen(keys[k].rec)};

                dkim_set_key(d, i, TXT_OK, &r, 1);
                found = true;
            }
        }
        if (!found)
            dkim_set_key(d, i, TXT_NONE, NULL, 0);
    }
    dkim_finish(d);
    return d;
}

static const key_t_ rfc_keys[] = {
    {"brisbane._domainkey.football.example.com", rfc8463_ed_key},
    {"test._domainkey.football.example.com", rfc8463_rsa_key},
};

Test(dkim, rfc8463_example_verifies_at_every_cut)
{
    size_t len = sizeof(rfc8463_msg) - 1;
    seen_t seen;

    for (size_t cut = 0; cut <= len; cut++) {
        dkim_t *d = verify(rfc8463_msg, len, &cut, 1, rfc_keys, 2, 1528637909, &seen);

        cr_assert_eq(dkim_count(d), 2);
        cr_assert_eq(seen.nsig, 2);
        cr_assert_eq(seen.nfrom, 1);
        for (size_t i = 0; i < 2; i++)
            cr_assert_eq(dkim_result(d, i)->status, DKIM_PASS, "cut %zu sig %zu: %s", cut, i,
                         dkim_result(d, i)->reason);
        cr_assert_eq(dkim_result(d, 0)->key_bits, 256);
        cr_assert_eq(dkim_result(d, 1)->key_bits, 1024);
        cr_assert_str_eq(dkim_result(d, 0)->b_prefix, "/gCrinpc");
        dkim_free(d);
    }
}

Test(dkim, rfc8463_example_byte_by_byte)
{
    size_t len = sizeof(rfc8463_msg) - 1;
    size_t *cuts = xcalloc(len, sizeof(*cuts));
    seen_t seen;
    dkim_t *d;

    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    d = verify(rfc8463_msg, len, cuts, len, rfc_keys, 2, 0, &seen);
    cr_assert_eq(dkim_result(d, 0)->status, DKIM_PASS);
    cr_assert_eq(dkim_result(d, 1)->status, DKIM_PASS);
    dkim_free(d);
    free(cuts);
}

Test(dkim, a_changed_body_or_header_fails)
{
    char *msg = xstrdup(rfc8463_msg);
    size_t len = strlen(msg);
    seen_t seen;
    dkim_t *d;

    strstr(msg, "hungry")[0] = 'H';
    d = verify(msg, len, NULL, 0, rfc_keys, 2, 0, &seen);
    cr_assert_eq(dkim_result(d, 0)->status, DKIM_FAIL);
    cr_assert_str_eq(dkim_result(d, 0)->reason, "body hash did not verify");
    dkim_free(d);
    strstr(msg, "Hungry")[0] = 'h';
    strstr(msg, "dinner")[0] = 'D';
    d = verify(msg, len, NULL, 0, rfc_keys, 2, 0, &seen);
    cr_assert_eq(dkim_result(d, 0)->status, DKIM_FAIL);
    cr_assert_str_eq(dkim_result(d, 0)->reason, "signature did not verify");
    cr_assert_eq(dkim_result(d, 1)->status, DKIM_FAIL);
    dkim_free(d);
    free(msg);
}

Test(dkim, key_problems_are_permerrors_and_lookup_trouble_temperror)
{
    static const key_t_ wrong[] = {
        {"brisbane._domainkey.football.example.com", "v=DKIM1; k=ed25519; p="},
        {"test._domainkey.football.example.com", rfc8463_ed_key},
    };
    size_t len = sizeof(rfc8463_msg) - 1;
    seen_t seen;
    dkim_t *d = verify(rfc8463_msg, len, NULL, 0, wrong, 2, 0, &seen);

    cr_assert_eq(dkim_result(d, 0)->status, DKIM_PERMERROR);
    cr_assert_str_eq(dkim_result(d, 0)->reason, "key revoked");
    cr_assert_eq(dkim_result(d, 1)->status, DKIM_PERMERROR);
    cr_assert_str_eq(dkim_result(d, 1)->reason, "key type does not match a=");
    dkim_free(d);

    d = verify(rfc8463_msg, len, NULL, 0, NULL, 0, 0, &seen);
    cr_assert_str_eq(dkim_result(d, 0)->reason, "no key");
    dkim_free(d);
}

Test(dkim, expiry_uses_the_injected_clock)
{
    char msg[sizeof(rfc8463_msg) + 16];
    const char *at = strstr(rfc8463_msg, "t=1528637909;");
    size_t head = (size_t)(at - rfc8463_msg);
    seen_t seen;
    dkim_t *d;

    /* Adding x= breaks the signature, but expiry is checked before crypto. */
    snprintf(msg, sizeof(msg), "%.*sx=1528637999; %s", (int)head, rfc8463_msg, at);
    d = verify(msg, strlen(msg), NULL, 0, rfc_keys, 2, 1528638000, &seen);
    cr_assert_eq(dkim_result(d, 0)->status, DKIM_PERMERROR);
    cr_assert_str_eq(dkim_result(d, 0)->reason, "signature expired");
    dkim_free(d);
    d = verify(msg, strlen(msg), NULL, 0, rfc_keys, 2, 1528637990, &seen);
    cr_assert_eq(dkim_result(d, 0)->status, DKIM_FAIL, "not expired: goes on to verify");
    dkim_free(d);
}

Test(dkim, hostile_headers_never_crash)
{
    static const char *msgs[] = {
        "",
        "\r\n",
        "DKIM-Signature:\r\n\r\n",
        "DKIM-Signature: v=1; a=rsa-sha256; b=\r\n",
        "no colon here\r\n\tcontinued\r\n\r\nbody",
        " starts with space\r\n\r\n",
        "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=x.y; s=s; h=from; "
        "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA\r\nFrom: a@x.y",
        "\r\r\n\n\r\n",
    };
    seen_t seen;

    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        dkim_t *d = verify(msgs[i], strlen(msgs[i]), NULL, 0, NULL, 0, 0, &seen);

        for (size_t k = 0; k < dkim_count(d); k++)
            cr_assert_neq(dkim_result(d, k)->status, DKIM_PASS);
        dkim_free(d);
    }
}

/* ---- signatures made now by a real signer (python3-dkim) ---- */

#include <dirent.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data;
    long n;

    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    data = xmalloc((size_t)n + 1);
    cr_assert_eq(fread(data, 1, (size_t)n, f), (size_t)n);
    data[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return data;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];

    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static dkim_status_t want_status(const char *word)
{
    return strcmp(word, "pass") == 0 ? DKIM_PASS
           : strcmp(word, "fail") == 0 ? DKIM_FAIL
                                       : DKIM_PERMERROR;
}

Test(dkim, real_signatures_verify_with_chunk_boundaries_everywhere, .timeout = 120)
{
    const char *src = getenv("MXFWD_TEST_SRCDIR");
    char dir[] = "/tmp/mxfwd-dkim-XXXXXX", cmd[8192], manifest[4200], line[8192];
    FILE *m;
    size_t ncases = 0;

    cr_assert_not_null(src, "MXFWD_TEST_SRCDIR is not set (run through meson test)");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/dkim_sign.py' '%s'", src, dir);
    cr_assert_eq(system(cmd), 0, "the signer failed: %s", cmd);
    snprintf(manifest, sizeof(manifest), "%s/manifest", dir);
    m = fopen(manifest, "r");
    cr_assert_not_null(m);
    while (fgets(line, sizeof(line), m)) {
        char *fields[5], *cursor = line;
        key_t_ key;
        size_t len;
        char *msg;
        seen_t seen;

        line[strcspn(line, "\n")] = '\0';
        for (int i = 0; i < 5; i++)
            fields[i] = strsep(&cursor, "\t");
        cr_assert_not_null(fields[4], "bad manifest line");
        key.name = fields[1];
        key.rec = fields[2];
        msg = slurp(fields[4], &len);
        /* Every two-piece split for one case of each kind (each cut is a
         * full verification); three pieces at odd places for all. */
        bool every = strncmp(fields[0], "cli-", 4) == 0 || strcmp(fields[0], "rsa-length") == 0 ||
                     strcmp(fields[0], "r2048-relaxed-relaxed") == 0 ||
                     strcmp(fields[0], "ed-simple-simple") == 0;

        for (size_t cut = 0; cut <= len; cut += every ? 1 : 13) {
            dkim_t *d = verify(msg, len, &cut, 1, &key, 1, time(NULL), &seen);

            cr_assert_eq(dkim_count(d), 1, "%s", fields[0]);
            cr_assert_eq(dkim_result(d, 0)->status, want_status(fields[3]), "%s cut at %zu: %s",
                         fields[0], cut, dkim_result(d, 0)->reason);
            dkim_free(d);
        }
        for (size_t a = 1; a + 6 < len; a += 31) {
            size_t cuts[2] = {a, a + 1 + a % 5};
            dkim_t *d = verify(msg, len, cuts, 2, &key, 1, time(NULL), &seen);

            cr_assert_eq(dkim_result(d, 0)->status, want_status(fields[3]), "%s", fields[0]);
            dkim_free(d);
        }
        if (strcmp(fields[0], "rsa-length") == 0) {
            dkim_t *d = verify(msg, len, NULL, 0, &key, 1, time(NULL), &seen);
            const dkim_result_t *r = dkim_result(d, 0);

            cr_assert(r->has_length);
            cr_assert_lt(r->length, r->body_len, "the footer is outside l=");
            dkim_free(d);
        }
        if (strcmp(fields[0], "rsa768") == 0) {
            dkim_t *d = verify(msg, len, NULL, 0, &key, 1, time(NULL), &seen);

            cr_assert_str_eq(dkim_result(d, 0)->reason, "RSA key under 1024 bits");
            dkim_free(d);
        }
        free(msg);
        ncases++;
    }
    fclose(m);
    remove_dir(dir);
    cr_assert_geq(ncases, 14);
}

Test(dkim, an_oversized_header_section_is_a_permerror_not_silence)
{
    size_t pad = 70000;
    size_t len = pad + sizeof(rfc8463_msg) + 16;
    char *msg = xmalloc(len);
    size_t n;
    seen_t seen;
    dkim_t *d;

    /* One huge field first, over the verifier's 65536-byte store. */
    memcpy(msg, "X-Big: ", 7);
    memset(msg + 7, 'x', pad);
    n = 7 + pad;
    memcpy(msg + n, "\r\n", 2);
    n += 2;
    memcpy(msg + n, rfc8463_msg, sizeof(rfc8463_msg) - 1);
    n += sizeof(rfc8463_msg) - 1;
    d = verify(msg, n, NULL, 0, rfc_keys, 2, 0, &seen);
    cr_assert_eq(dkim_count(d), 2);
    cr_assert_eq(seen.nsig, 0, "no key lookups for signatures that cannot verify");
    cr_assert_eq(seen.nfrom, 1, "From is still seen, for DMARC");
    cr_assert_eq(dkim_result(d, 0)->status, DKIM_PERMERROR);
    cr_assert_str_eq(dkim_result(d, 0)->reason, "header section too large");
    cr_assert_str_eq(dkim_result(d, 1)->domain, "football.example.com");
    dkim_free(d);
    free(msg);
}
