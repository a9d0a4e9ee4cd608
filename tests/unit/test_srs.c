/* Unit tests for srs/: forward, reverse, errors, secrets file. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "srs.h"
#include "srs_secrets.h"

#define DAY 86400
/* PostSRSd's published vector: secret tops3cr3t at this time. */
#define T0 ((time_t)1577836860)
#define VEC_SRS0 "SRS0=vmyz=2W=otherdomain.com=test@example.com"
#define VEC_SRS1 "SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@fwd2.example"

static srs_t *make(const char *domain, const char *s1, const char *s2)
{
    const char *secrets[2] = {s1, s2};
    srs_t *srs = NULL;

    cr_assert_eq(srs_new(domain, 21 * DAY, secrets, s2 != NULL ? 2 : 1, &srs), 0);
    return srs;
}

/* Forward or reverse; the result, or the error's name. */
static const char *fwd(const srs_t *srs, const char *addr, time_t now)
{
    static char out[SRS_ADDR_SIZE];
    int rc = srs_forward(srs, addr, strlen(addr), now, out, sizeof(out));

    return rc == 0 ? out : srs_errname(rc);
}

static const char *rev_n(const srs_t *srs, const char *addr, size_t len, time_t now)
{
    static char out[SRS_ADDR_SIZE];
    int rc = srs_reverse(srs, addr, len, now, out, sizeof(out), NULL);

    if (rc < 0)
        cr_assert_str_empty(out, "no partial result on error");
    return rc == 0 ? out : srs_errname(rc);
}

static const char *rev(const srs_t *srs, const char *addr, time_t now)
{
    return rev_n(srs, addr, strlen(addr), now);
}

/* ---- forward ---- */

Test(srs_forward, postsrsd_vector_srs0_and_srs1)
{
    srs_t *a = make("example.com", "tops3cr3t", NULL);
    srs_t *b = make("fwd2.example", "tops3cr3t", NULL);

    cr_assert_str_eq(fwd(a, "test@otherdomain.com", T0), VEC_SRS0);
    cr_assert_str_eq(fwd(b, VEC_SRS0, T0), VEC_SRS1);
    srs_free(a);
    srs_free(b);
}

Test(srs_forward, table)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        /* the null sender stays null */
        {"", ""},
        /* case is kept in the address; the hash is over lowercased fields */
        {"Test@OtherDomain.COM", "SRS0=vmyz=2W=OtherDomain.COM=Test@fwd.test"},
        /* our own domain is not rewritten again, in any case */
        {"SRS0=vmyz=2W=otherdomain.com=test@FWD.test",
         "SRS0=vmyz=2W=otherdomain.com=test@FWD.test"},
        {"postmaster@fwd.test", "postmaster@fwd.test"},
        /* SRS1 from elsewhere: the first forwarder's host and part stay,
         * the hash is ours (the same secret gives the vector's hash) */
        {"SRS1=xxxx=example.com==vmyz=2W=otherdomain.com=test@fwd3.example",
         "SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@fwd.test"},
        /* SRS0 with another separator keeps it */
        {"SRS0+vmyz=2W=otherdomain.com=test@example.com",
         "SRS1=VLN_=example.com=+vmyz=2W=otherdomain.com=test@fwd.test"},
        /* something that only looks like SRS1 is a plain local part
         * (Mail::SRS would write "SRS1=0N2Y==@fwd.test", losing it) */
        {"SRS1=abc@example.com", "SRS0=dZ_u=2W=example.com=SRS1=abc@fwd.test"},
        /* 14 + domain + user = 64 octets: the longest that fits */
        {"abcdefghijklmnopqrstuvwxyz01234567@abcdefghijklm.xy",
         "SRS0=uWhE=2W=abcdefghijklm.xy=abcdefghijklmnopqrstuvwxyz01234567@fwd.test"},
        {"abcdefghijklmnopqrstuvwxyz01234567@abcdefghijklmn.xy", "too-long"},
        {"abcdefghijklmnopqrstuvwxyz012345678@abcdefghijklm.xy", "too-long"},
        {"a234567890123456789012345678901234567890123456789012345678901234@x.example", "too-long"},
        /* what SRS cannot carry */
        {"\"john doe\"@example.com", "malformed"},
        {"user@[192.0.2.1]", "malformed"},
        {"no-at-sign", "malformed"},
        {"user@", "malformed"},
        {"@example.com", "malformed"},
        {"us er@example.com", "malformed"},
    };
    srs_t *srs = make("fwd.test", "tops3cr3t", NULL);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_str_eq(fwd(srs, cases[i].in, T0), cases[i].want, "forward of %s", cases[i].in);
    srs_free(srs);
}

Test(srs_forward, nul_byte_in_sender_is_malformed)
{
    static const char s[] = "us\0er@example.com";
    char out[SRS_ADDR_SIZE];
    srs_t *srs = make("fwd.test", "tops3cr3t", NULL);

    cr_assert_eq(srs_forward(srs, s, sizeof(s) - 1, T0, out, sizeof(out)), SRS_EMALFORMED);
    srs_free(srs);
}

Test(srs_forward, hashes_are_url_safe_and_reverse)
{
    srs_t *srs = make("fwd.test", "a-secret-of-sixteen-bytes", NULL);
    char sender[64], out[SRS_ADDR_SIZE];
    int safe = 0;

    for (int i = 0; i < 2000; i++) {
        snprintf(sender, sizeof(sender), "user%d@host%d.example", i, i % 7);
        cr_assert_eq(srs_forward(srs, sender, strlen(sender), T0, out, sizeof(out)), 0);
        cr_assert(strncmp(out, "SRS0=", 5) == 0 && out[9] == '=', "%s", out);
        cr_assert(strcspn(out, "+/") == strlen(out), "standard alphabet in %s", out);
        if (strcspn(out + 5, "-_") < 4)
            safe++;
        cr_assert_str_eq(rev(srs, out, T0 + 3 * DAY), sender);
    }
    /* Some hashes must have needed the URL-safe characters, else the
     * test above proves nothing. */
    cr_assert_gt(safe, 20);
    srs_free(srs);
}

Test(srs_forward, round_trips)
{
    static const char *const senders[] = {
        "a=b=c@example.com",        "SRS0@example.com",        "SRS2=x@example.com",
        "j\xc3\xbcrgen@example.de", "x@xn--bcher-kva.example", "!#$%&'*+/=?^_`{|}~-@x.example",
    };
    srs_t *a = make("a.example", "secret-of-forwarder-a", NULL);
    srs_t *b = make("b.example", "secret-of-forwarder-b", NULL);
    char at_a[SRS_ADDR_SIZE], at_b[SRS_ADDR_SIZE];

    for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
        snprintf(at_a, sizeof(at_a), "%s", fwd(a, senders[i], T0));
        snprintf(at_b, sizeof(at_b), "%s", fwd(b, at_a, T0));
        cr_expect(strncmp(at_a, "SRS", 3) == 0 && strncmp(at_b, "SRS1=", 5) == 0, "%s %s", at_a,
                  at_b);
        cr_expect_str_eq(rev(b, at_b, T0 + DAY), at_a);
        cr_expect_str_eq(rev(a, at_a, T0 + DAY), senders[i]);
        /* B's secret cannot open A's address. */
        cr_expect_str_eq(rev(b, at_a, T0), "bad-hash");
    }
    srs_free(a);
    srs_free(b);
}

/* ---- reverse ---- */

static char *huge(const char *prefix, size_t n)
{
    char *s = malloc(n + 1);
    size_t plen = strlen(prefix);

    memset(s, 'a', n);
    memcpy(s, prefix, plen);
    memcpy(s + n - 12, "@fwd.example", 12);
    s[n] = '\0';
    return s;
}

Test(srs_reverse, table)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {VEC_SRS0, "test@otherdomain.com"},
        /* SRS1 reverses to the SRS0 address at the first forwarder */
        {VEC_SRS1, VEC_SRS0},
        /* letter case smashed anywhere, tag included */
        {"srs0=VMYZ=2w=OTHERDOMAIN.com=TEST@example.com", "TEST@OTHERDOMAIN.com"},
        {"sRs1=jo9M=example.com==vmyz=2W=otherdomain.com=test@fwd2.example", VEC_SRS0},
        /* the domain is the caller's business */
        {"SRS0=vmyz=2W=otherdomain.com=test@elsewhere.example", "test@otherdomain.com"},
        /* not SRS */
        {"test@example.com", "not-srs"},
        {"SRS2=vmyz=2W=otherdomain.com=test@example.com", "not-srs"},
        {"SRS0x=vmyz=2W=otherdomain.com=test@example.com", "not-srs"},
        {"SRS0@example.com", "not-srs"},
        {"\"SRS0=vmyz=2W=otherdomain.com=test\"@example.com", "not-srs"},
        /* malformed: empty and missing fields */
        {"", "malformed"},
        {"SRS0=vmyz=2W=otherdomain.com=test", "malformed"},
        {"SRS0=@example.com", "malformed"},
        {"SRS0==2W=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz==otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz=2W==test@example.com", "malformed"},
        {"SRS0=vmyz=2W=otherdomain.com=@example.com", "malformed"},
        {"SRS0=vmyz=2W=otherdomain.com@example.com", "malformed"},
        {"SRS0=vmyz=2W@example.com", "malformed"},
        {"SRS0=vmyz@example.com", "malformed"},
        {"SRS0vmyz2Wotherdomain.comtest@example.com", "not-srs"},
        {"SRS1=@fwd2.example", "malformed"},
        {"SRS1=JO9m@fwd2.example", "malformed"},
        {"SRS1=JO9m=example.com@fwd2.example", "malformed"},
        {"SRS1=JO9m=example.com=@fwd2.example", "malformed"},
        {"SRS1==example.com==vmyz=2W=otherdomain.com=test@fwd2.example", "malformed"},
        {"SRS1=JO9m==vmyz=2W=otherdomain.com=test@fwd2.example", "malformed"},
        /* malformed: short, long and foreign-alphabet hashes */
        {"SRS0=vmy=2W=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=v=2W=otherdomain.com=test@example.com", "malformed"},
        {"SRS1=JO9=example.com==vmyz=2W=otherdomain.com=test@fwd2.example", "malformed"},
        {"SRS0=vm.z=2W=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz!=2W=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyzvmyzvmyzvmyzvmyzvmyzvmyz=2W=otherdomain.com=test@example.com", "malformed"},
        /* malformed: stamps of the wrong size or alphabet */
        {"SRS0=vmyz=2=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz=2WA=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz=ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ=otherdomain.com=test@example.com",
         "malformed"},
        {"SRS0=vmyz=28=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz=10=otherdomain.com=test@example.com", "malformed"},
        {"SRS0=vmyz=2-=otherdomain.com=test@example.com", "malformed"},
        /* malformed: bytes no address of ours holds */
        {"SRS0=vmyz=2W=otherdomain.com=te st@example.com", "malformed"},
        {"SRS0=vmyz=2W=otherdomain.com=te\tst@example.com", "malformed"},
        {"SRS0=vmyz=2W=otherdomain.com=te\x7fst@example.com", "malformed"},
        {"SRS0=vmyz=2W=other@domain.com=test@example.com", "malformed"},
        {"SRS0=vmyz=2W=otherdomain.com=test@example.com@example.com", "malformed"},
        /* bad hash: another hash, or a field changed under it */
        {"SRS0=vmyy=2W=otherdomain.com=test@example.com", "bad-hash"},
        {"SRS0=vmyz=2W=otherdomain.com=tess@example.com", "bad-hash"},
        {"SRS0=vmyz=2X=otherdomain.com=test@example.com", "bad-hash"},
        {"SRS0=vmyz=2W=otherdomain.org=test@example.com", "bad-hash"},
        {"SRS0=vmy-=2W=otherdomain.com=test@example.com", "bad-hash"},
        {"SRS1=JO9n=example.com==vmyz=2W=otherdomain.com=test@fwd2.example", "bad-hash"},
        {"SRS1=JO9m=example.org==vmyz=2W=otherdomain.com=test@fwd2.example", "bad-hash"},
    };
    srs_t *srs = make("example.com", "tops3cr3t", NULL);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_str_eq(rev(srs, cases[i].in, T0), cases[i].want, "reverse of %s", cases[i].in);
    srs_free(srs);
}

Test(srs_reverse, huge_addresses_and_nul_bytes)
{
    static const char nul[] = "SRS0=vmyz=2W=otherdomain.com=te\0st@example.com";
    static const char nul_tag[] = "SRS0\0vmyz=2W=otherdomain.com=test@example.com";
    /* Up to ADDR_INPUT_MAX an address is read (srs_long_senders = embed
     * writes such): these were not made with the secret.  Beyond, it is
     * malformed whatever it holds. */
    static const struct {
        size_t size;
        const char *srs, *plain;
    } cases[] = {
        {255, "bad-hash", "not-srs"},
        {1000, "bad-hash", "not-srs"},
        {ADDR_INPUT_MAX, "bad-hash", "not-srs"},
        {ADDR_INPUT_MAX + 1, "malformed", "malformed"},
        {10 * 1024, "malformed", "malformed"},
        {100 * 1024, "malformed", "malformed"},
    };
    srs_t *srs = make("example.com", "tops3cr3t", NULL);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *a = huge("SRS0=vmyz=2W=otherdomain.com=", cases[i].size);
        char *b = huge("SRS1=JO9m=example.com==", cases[i].size);
        char *c = huge("", cases[i].size);
        cr_expect_str_eq(rev(srs, a, T0), cases[i].srs, "%zu bytes", cases[i].size);
        cr_expect_str_eq(rev(srs, b, T0), cases[i].srs, "%zu bytes", cases[i].size);
        cr_expect_str_eq(rev(srs, c, T0), cases[i].plain, "%zu bytes", cases[i].size);
        free(a);
        free(b);
        free(c);
    }
    cr_expect_str_eq(rev_n(srs, nul, sizeof(nul) - 1, T0), "malformed");
    cr_expect_str_eq(rev_n(srs, nul_tag, sizeof(nul_tag) - 1, T0), "malformed");
    /* A length that stops short of the string's end is honoured. */
    cr_expect_str_eq(rev_n(srs, VEC_SRS0 "trailing", strlen(VEC_SRS0), T0), "test@otherdomain.com");
    srs_free(srs);
}

Test(srs_reverse, both_alphabets_and_longer_hashes)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char b64[32], addr[128], want[128];
    srs_t *srs = make("fwd.test", "a-secret-of-sixteen-bytes", NULL);
    int checked = 0;

    /* The hash computed here independently, over lc(TT . host . user);
     * tried until its first characters use '+' or '/'. */
    for (int i = 0; i < 500 && checked < 5; i++) {
        char user[32], data[128];
        snprintf(user, sizeof(user), "User%d", i);
        snprintf(data, sizeof(data), "2wexample.org%s", user);
        for (char *p = data; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        HMAC(EVP_sha1(), "a-secret-of-sixteen-bytes", 25, (unsigned char *)data, strlen(data), md,
             &mdlen);
        EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
        snprintf(want, sizeof(want), "%s@Example.org", user);
        /* Longer hashes are checked as far as they go (Mail::SRS). */
        snprintf(addr, sizeof(addr), "SRS0=%.8s=2W=Example.org=%s@fwd.test", b64, user);
        cr_expect_str_eq(rev(srs, addr, T0), want, "%s", addr);
        addr[12] = addr[12] == 'A' || addr[12] == 'a' ? 'B' : 'A';
        cr_expect_str_eq(rev(srs, addr, T0), "bad-hash", "%s", addr);
        if (strcspn(b64, "+/") >= 4)
            continue;
        /* The standard alphabet, as Mail::SRS writes it, and ours. */
        snprintf(addr, sizeof(addr), "SRS0=%.4s=2W=Example.org=%s@fwd.test", b64, user);
        cr_expect_str_eq(rev(srs, addr, T0), want, "%s", addr);
        for (char *p = addr + 5; p < addr + 9; p++)
            *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        cr_expect_str_eq(fwd(srs, want, T0), addr, "%s", want);
        cr_expect_str_eq(rev(srs, addr, T0), want, "%s", addr);
        checked++;
    }
    cr_assert_eq(checked, 5);
    srs_free(srs);
}

Test(srs_reverse, age_window_and_wrap)
{
    static const struct {
        long days;
        const char *want;
        unsigned age;
    } cases[] = {
        {0, "test@otherdomain.com", 0},
        {21, "test@otherdomain.com", 0},
        {22, "expired", 22},
        {30, "expired", 30},
        {-1, "expired", 1023},
        {1023, "expired", 1023},
        {1024, "test@otherdomain.com", 0},
        {1024 + 21, "test@otherdomain.com", 0},
        {1024 + 22, "expired", 22},
    };
    srs_t *srs = make("example.com", "tops3cr3t", NULL);
    /* The start of the stamp's day, and its last second. */
    time_t day0 = T0 - T0 % DAY;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (time_t s = 0; s < DAY; s += DAY - 1) {
            char out[SRS_ADDR_SIZE];
            unsigned age = 12345;
            time_t now = day0 + cases[i].days * DAY + s;
            int rc = srs_reverse(srs, VEC_SRS0, strlen(VEC_SRS0), now, out, sizeof(out), &age);
            cr_expect_str_eq(rc == 0 ? out : srs_errname(rc), cases[i].want, "%ld days",
                             cases[i].days);
            cr_expect_eq(age, cases[i].age, "%ld days: age %u", cases[i].days, age);
        }
    }
    /* SRS1 has no stamp: the first forwarder checks the inner one. */
    cr_expect_str_eq(rev(srs, VEC_SRS1, T0 + 400 * DAY), VEC_SRS0);
    /* Hash before age: a forged old address is a bad hash. */
    cr_expect_str_eq(rev(srs, "SRS0=vmyy=2W=otherdomain.com=test@example.com", T0 + 30 * DAY),
                     "bad-hash");
    srs_free(srs);
}

Test(srs_reverse, max_age_counts_whole_days)
{
    const char *secrets[] = {"tops3cr3t"};
    srs_t *srs = NULL;

    cr_assert_eq(srs_new("example.com", 36 * 3600, secrets, 1, &srs), 0);
    cr_expect_eq(srs_max_age_days(srs), 1);
    cr_expect_str_eq(rev(srs, VEC_SRS0, T0 + DAY), "test@otherdomain.com");
    cr_expect_str_eq(rev(srs, VEC_SRS0, T0 + 2 * DAY), "expired");
    srs_free(srs);
}

Test(srs_reverse, rotation_every_secret_verifies_first_signs)
{
    srs_t *rotated = make("example.com", "new-secret-first-0123", "tops3cr3t");
    srs_t *dropped = make("example.com", "new-secret-first-0123", NULL);

    cr_expect_str_eq(rev(rotated, VEC_SRS0, T0), "test@otherdomain.com");
    cr_expect_str_eq(rev(rotated, VEC_SRS1, T0), VEC_SRS0);
    cr_expect_str_eq(rev(dropped, VEC_SRS0, T0), "bad-hash");
    /* The first secret signs: not the vector's hash any more. */
    cr_expect_str_neq(fwd(rotated, "test@otherdomain.com", T0), VEC_SRS0);
    cr_expect_str_eq(rev(dropped, fwd(rotated, "test@otherdomain.com", T0), T0),
                     "test@otherdomain.com");
    srs_free(rotated);
    srs_free(dropped);
}

Test(srs, errors_have_names_and_sentences)
{
    static const struct {
        int err;
        const char *name;
    } names[] = {
        {SRS_ENOTSRS, "not-srs"},  {SRS_EMALFORMED, "malformed"}, {SRS_EBADHASH, "bad-hash"},
        {SRS_EEXPIRED, "expired"}, {SRS_ETOOLONG, "too-long"},    {SRS_ENOSECRET, "no-secret"},
        {SRS_ECRYPTO, "crypto"},
    };
    const char *none[] = {NULL};
    srs_t *srs = (srs_t *)1;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_expect_str_eq(srs_errname(names[i].err), names[i].name);
        cr_expect_gt(strlen(srs_strerror(names[i].err)), 20);
    }
    cr_expect_str_eq(srs_errname(-1), "unknown", "-EPERM is no SRS code");
    cr_expect_eq(srs_new("fwd.test", DAY, none, 0, &srs), SRS_ENOSECRET);
    cr_expect_null(srs);
}

/* ---- secrets file ---- */

Test(srs_secrets, sample_file_comments_blanks_and_crlf)
{
    static const char text[] = "# SRS secrets, one a line\n"
                               "\n"
                               "   \t\n"
                               "first-secret-signs-0123\r\n"
                               "#second-is-commented-out-00\n"
                               "older-secret-verifies-456";
    collect_t d = {0};
    srs_secrets_t s;

    cr_assert_eq(
        srs_secrets_parse("sec", text, strlen(text), collect_message, collect_message, &d, &s), 0);
    cr_assert_eq(d.n, 0, "%s", d.msg[0]);
    cr_assert_eq(s.n, 2);
    cr_expect_str_eq(s.secret[0], "first-secret-signs-0123");
    cr_expect_str_eq(s.secret[1], "older-secret-verifies-456");
    srs_secrets_free(&s);
    cr_expect_eq(s.n, 0);
}

Test(srs_secrets, errors_name_file_and_line)
{
    static const struct {
        const char *text;
        const char *prefix, *needle;
    } cases[] = {
        {"", "sec: ", "no secret"},
        {"# only a comment\n\n", "sec: ", "no secret"},
        {"# c\nshort\n", "sec:2: ", "5 bytes long; at least 16"},
        {"exactly-15-byte\n", "sec:1: ", "15 bytes long"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        collect_t d = {0};
        srs_secrets_t s = {(char **)1, 99};
        cr_expect_eq(srs_secrets_parse("sec", cases[i].text, strlen(cases[i].text), collect_message,
                                       NULL, &d, &s),
                     1, "case %zu", i);
        cr_expect(collect_has(&d, cases[i].prefix, cases[i].needle), "case %zu: %s", i, d.msg[0]);
        cr_expect_eq(s.n, 0);
        cr_expect_null(s.secret);
    }
}

Test(srs_secrets, every_error_is_reported_and_nothing_is_returned)
{
    char text[1200] = "good-secret-of-20-bytes\ntiny\n";
    static const char nul[] = "good-secret-of-20-bytes\nwith-a-\0-nul-byte-in-it\n";
    collect_t d = {0};
    srs_secrets_t s;
    size_t len = strlen(text);

    memset(text + len, 'x', 1001);
    strcpy(text + len + 1001, "\nalso-bad\n");
    cr_expect_eq(srs_secrets_parse("sec", text, strlen(text), collect_message, NULL, &d, &s), 3);
    cr_expect(collect_has(&d, "sec:2: ", "4 bytes"));
    cr_expect(collect_has(&d, "sec:3: ", "at most 1000"));
    cr_expect(collect_has(&d, "sec:4: ", "8 bytes"));
    cr_expect_eq(s.n, 0);

    memset(&d, 0, sizeof(d));
    cr_expect_eq(srs_secrets_parse("sec", nul, sizeof(nul) - 1, collect_message, NULL, &d, &s), 1);
    cr_expect(collect_has(&d, "sec:2: ", "NUL"));
}

Test(srs_secrets, white_space_is_kept_and_warned_about)
{
    static const char text[] = "  padded-secret-0123456 \t\r\n";
    collect_t e = {0}, w = {0};
    srs_secrets_t s;

    /* Two collectors: errors in e, warnings in w. */
    cr_assert_eq(srs_secrets_parse("sec", text, strlen(text), collect_message, NULL, &e, &s), 0);
    cr_expect_str_eq(s.secret[0], "  padded-secret-0123456 \t");
    srs_secrets_free(&s);
    cr_assert_eq(srs_secrets_parse("sec", text, strlen(text), NULL, collect_message, &w, &s), 0);
    cr_expect(collect_has(&w, "sec:1: warning: ", "white space"));
    srs_secrets_free(&s);
}

/* A file in a fresh directory of the temporary area. */
static char dir[256];

static const char *temp_file(const char *name, const char *text, mode_t mode)
{
    static char path[512];
    const char *tmp = getenv("TMPDIR");
    int fd;

    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "%s/mxfwd-srs-XXXXXX", tmp != NULL ? tmp : "/tmp");
        cr_assert_not_null(mkdtemp(dir));
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (text != NULL) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        chmod(path, mode);
    }
    return path;
}

Test(srs_secrets, load_checks_the_file_and_its_mode)
{
    collect_t e = {0}, w = {0};
    srs_secrets_t s;
    const char *path;

    path = temp_file("private", "# sample\nsample-secret-for-tests-only\n", 0600);
    cr_assert_eq(srs_secrets_load(path, collect_message, collect_message, &w, &s), 0);
    cr_expect_eq(w.n, 0, "%s", w.msg[0]);
    cr_expect_eq(s.n, 1);
    srs_secrets_free(&s);
    unlink(path);

    path = temp_file("readable", "sample-secret-for-tests-only\n", 0644);
    cr_assert_eq(srs_secrets_load(path, collect_message, collect_message, &w, &s), 0);
    cr_expect(collect_has(&w, path, "warning: group or others may read"), "%s", w.msg[0]);
    cr_expect(collect_has(&w, path, "0644"));
    srs_secrets_free(&s);
    unlink(path);

    path = temp_file("empty", "", 0600);
    cr_expect_eq(srs_secrets_load(path, collect_message, NULL, &e, &s), 1);
    cr_expect(collect_has(&e, path, "no secret"));
    unlink(path);

    memset(&e, 0, sizeof(e));
    path = temp_file("missing", NULL, 0);
    cr_expect_eq(srs_secrets_load(path, collect_message, NULL, &e, &s), 1);
    cr_expect(collect_has(&e, path, "cannot open: No such file"), "%s", e.msg[0]);

    memset(&e, 0, sizeof(e));
    cr_expect_eq(srs_secrets_load(dir, collect_message, NULL, &e, &s), 1);
    cr_expect(collect_has(&e, dir, "not a regular file"), "%s", e.msg[0]);
    rmdir(dir);
}

/* ---- long senders (docs/srs.md, "Long senders") ---- */

#define SES "0100018c5f8e9a2b-3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f-000000@amazonses.com"
#define SENDGRID "bounces+12345678-abcd-alice=example.com@em1234.example.net"

static int fwd_long(const srs_t *srs, srs_long_t mode, const char *addr, time_t now, char *out,
                    char key[SRS_KEY_SIZE])
{
    return srs_forward_long(srs, mode, addr, strlen(addr), now, out, SRS_ADDR_SIZE, key);
}

Test(srs_key, stable_secret_dependent_and_not_the_address)
{
    srs_t *a = make("fwd.test", "a-secret-of-sixteen-bytes", NULL);
    srs_t *a2 = make("other.test", "a-secret-of-sixteen-bytes", "an-older-secret-0123");
    srs_t *b = make("fwd.test", "another-secret-of-16-bytes", NULL);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char k1[SRS_KEY_SIZE], k2[SRS_KEY_SIZE], k3[SRS_KEY_SIZE], want[SRS_KEY_SIZE];
    const char *ctx = "mxfwd srs store key\n";
    char data[256];

    cr_assert_eq(srs_key(a, SES, strlen(SES), k1), 0);
    cr_assert_eq(srs_key(a2, SES, strlen(SES), k2), 0);
    cr_assert_str_eq(k1, k2, "the same sender and signing secret: the same key");
    cr_assert_eq(strlen(k1), SRS_KEY_LEN);
    cr_assert_eq(strspn(k1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), SRS_KEY_LEN);
    /* Computed here independently: base32 of HMAC-SHA256 over the
     * context and the address, its first 130 bits. */
    snprintf(data, sizeof(data), "%s%s", ctx, SES);
    HMAC(EVP_sha256(), "a-secret-of-sixteen-bytes", 25, (unsigned char *)data, strlen(data), md,
         &mdlen);
    for (size_t i = 0, bit = 0; i < SRS_KEY_LEN; i++, bit += 5) {
        unsigned v = (unsigned)md[bit / 8] << 8 | md[bit / 8 + 1];
        want[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[(v >> (11 - bit % 8)) & 31];
    }
    want[SRS_KEY_LEN] = '\0';
    cr_assert_str_eq(k1, want);
    cr_assert_eq(srs_key(b, SES, strlen(SES), k3), 0);
    cr_assert_str_neq(k1, k3, "another secret, another key");
    /* Nothing of the address is in the key, and a neighbour's key has
     * nothing to do with it. */
    cr_assert_eq(srs_key(a, SENDGRID, strlen(SENDGRID), k2), 0);
    cr_assert_str_neq(k1, k2);
    cr_assert_eq(srs_key(a, "0" SES, strlen(SES) + 1, k3), 0);
    for (size_t i = 0, same = 0; i < SRS_KEY_LEN; i++) {
        same += k1[i] == k3[i];
        cr_assert_lt(same, 12, "keys of neighbouring senders look alike: %s %s", k1, k3);
    }
    cr_assert_null(strstr(k1, "AMAZONSES"));
    srs_free(a);
    srs_free(a2);
    srs_free(b);
}

Test(srs_long, the_keyed_address_both_ways)
{
    srs_t *srs = make("fwd.test", "a-secret-of-sixteen-bytes", "an-older-secret-0123");
    char out[SRS_ADDR_SIZE], back[SRS_ADDR_SIZE], key[SRS_KEY_SIZE], lower[SRS_ADDR_SIZE];
    const char *at;

    cr_assert_eq(fwd_long(srs, SRS_LONG_STORE, SES, T0, out, key), SRS_KEYED);
    at = strchr(out, '@');
    cr_assert_leq(at - out, 64, "%s", out);
    cr_assert_str_eq(at, "@fwd.test");
    cr_assert(strncmp(out, "SRS0=", 5) == 0 && strncmp(out + 9, "=2W=-=", 6) == 0, "%s", out);
    cr_assert(strncmp(out + 15, key, SRS_KEY_LEN) == 0, "%s", out);
    cr_assert_null(strstr(out, "amazonses"));
    /* Reverse: its key, with the hash and the stamp checked first. */
    cr_assert_eq(srs_reverse(srs, out, strlen(out), T0 + 3 * DAY, back, sizeof(back), NULL),
                 SRS_KEYED);
    cr_assert_str_eq(back, key);
    for (size_t i = 0; out[i]; i++)
        lower[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
    lower[strlen(out)] = '\0';
    cr_assert_str_eq(rev(srs, lower, T0), "keyed", "a relay that smashed case");
    cr_assert_str_eq(back, key);
    cr_assert_str_eq(rev(srs, out, T0 + 40 * DAY), "expired");
    out[20] = out[20] == 'A' ? 'B' : 'A';
    cr_assert_str_eq(rev(srs, out, T0), "bad-hash", "a tampered key");
    cr_assert_eq(fwd_long(srs, SRS_LONG_STORE, "x@y.test", T0, out, key), 0, "short: standard");
    /* A sender that fits: today's address, byte for byte. */
    cr_assert_str_eq(out, fwd(srs, "x@y.test", T0));
    cr_assert_str_eq(key, "");
    /* SRS1 that no longer fits: keyed too. */
    cr_assert_eq(fwd_long(srs, SRS_LONG_STORE,
                          "SRS0=abcd=2W="
                          "aaaaaaaaaaaaaaaaaaaa.example="
                          "bbbbbbbbbbbbbbbbbbbb@first.example",
                          T0, out, key),
                 SRS_KEYED);
    srs_free(srs);
}

Test(srs_long, the_key_of_an_address_read_without_its_hash)
{
    srs_t *srs = make("fwd.test", "a-secret-of-sixteen-bytes", NULL);
    char out[SRS_ADDR_SIZE], key[SRS_KEY_SIZE], got[SRS_KEY_SIZE], lower[SRS_ADDR_SIZE];

    cr_assert_eq(fwd_long(srs, SRS_LONG_STORE, SES, T0, out, key), SRS_KEYED);
    cr_assert_eq(srs_address_key(out, strlen(out), got), SRS_KEYED);
    cr_assert_str_eq(got, key);
    for (size_t i = 0; out[i]; i++)
        lower[i] = (char)(out[i] >= 'A' && out[i] <= 'Z' ? out[i] + 32 : out[i]);
    lower[strlen(out)] = '\0';
    cr_assert_eq(srs_address_key(lower, strlen(lower), got), SRS_KEYED);
    cr_assert_str_eq(got, key, "upper case whatever the address's");
    /* Long ago or tampered with: still the key it names (the spool's own
     * addresses are not checked again). */
    out[5] = out[5] == 'A' ? 'B' : 'A';
    cr_assert_eq(srs_address_key(out, strlen(out), got), SRS_KEYED);
    /* Anything else is no key. */
    const char *others[] = {fwd(srs, "x@y.test", T0), "x@y.test", "SRS0=abcd=2W=-=short@fwd.test",
                            "SRS1=abcd=first.example==HHHH=TT=-=KEY@fwd.test",
                            "SRS0=abcd=2W=example.com=user@fwd.test"};
    for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
        cr_assert_eq(srs_address_key(others[i], strlen(others[i]), got), SRS_ENOTSRS, "%s",
                     others[i]);
        cr_assert_str_eq(got, "");
    }
    srs_free(srs);
}

Test(srs_long, embed_and_reject)
{
    srs_t *srs = make("fwd.test", "a-secret-of-sixteen-bytes", NULL);
    char out[SRS_ADDR_SIZE], key[SRS_KEY_SIZE], huge_sender[ADDR_INPUT_MAX + 16];

    cr_assert_eq(fwd_long(srs, SRS_LONG_REJECT, SES, T0, out, key), SRS_ETOOLONG);
    cr_assert_str_eq(fwd(srs, SES, T0), "too-long");
    cr_assert_eq(fwd_long(srs, SRS_LONG_EMBED, SES, T0, out, key), 0);
    cr_assert_gt(strchr(out, '@') - out, 64);
    cr_assert_str_eq(rev(srs, out, T0), SES, "the long address reverses");
    /* Beyond what is taken on input: too long whatever the mode. */
    memset(huge_sender, 'a', ADDR_INPUT_MAX - 10);
    strcpy(huge_sender + ADDR_INPUT_MAX - 10, "@x.test");
    cr_assert_eq(fwd_long(srs, SRS_LONG_EMBED, huge_sender, T0, out, key), SRS_ETOOLONG);
    srs_free(srs);
}
