/* Unit tests for auth/dmarc.c: records good and hostile, policy discovery,
 * From domains, organizational domains at PSL boundaries, alignment and
 * the evaluation with pct. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "dmarc.h"

static int parse(const char *s, dmarc_record_t *r, const char **why)
{
    return dmarc_record_parse(s, strlen(s), r, why);
}

Test(dmarc_record, every_tag)
{
    dmarc_record_t r;
    const char *why;

    cr_assert_eq(parse("v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=50; "
                       "rua=mailto:a@example.com,mailto:b@example.com!10m; "
                       "ruf=mailto:f@example.com; fo=1; rf=afrf; ri=86400",
                       &r, &why),
                 0);
    cr_assert_eq(r.p, DMARC_P_REJECT);
    cr_assert(r.has_sp && r.sp == DMARC_P_QUARANTINE);
    cr_assert_eq(r.adkim, DMARC_ALIGN_STRICT);
    cr_assert_eq(r.aspf, DMARC_ALIGN_RELAXED);
    cr_assert_eq(r.pct, 50);
    cr_assert_eq(r.nrua, 2);
    cr_assert(!r.p_from_rua);

    cr_assert_eq(parse("v=DMARC1;p=NONE", &r, &why), 0, "values are case-insensitive");
    cr_assert_eq(r.p, DMARC_P_NONE);
    cr_assert(!r.has_sp);
    cr_assert_eq(r.adkim, DMARC_ALIGN_RELAXED);
    cr_assert_eq(r.pct, 100);
}

Test(dmarc_record, not_dmarc_records)
{
    static const char *not[] = {
        "", "v=spf1 -all", "p=reject; v=DMARC1", "v=dmarc1; p=reject", "v=DMARC2; p=reject",
        "vv=DMARC1; p=reject", "\x01\x02\x03", "; v=DMARC1; p=reject",
    };
    dmarc_record_t r;
    const char *why;

    for (size_t i = 0; i < sizeof(not) / sizeof(not[0]); i++)
        cr_assert_eq(parse(not[i], &r, &why), DMARC_REC_NOT, "%s", not[i]);
}

Test(dmarc_record, hostile_records_fall_back_per_rfc)
{
    static const struct {
        const char *rec;
        int rc;
        dmarc_policy_t p;
        unsigned pct;
        const char *why;
    } cases[] = {
        /* Bad optional values take their defaults (RFC 7489 6.3). */
        {"v=DMARC1; p=reject; pct=abc", 0, DMARC_P_REJECT, 100, NULL},
        {"v=DMARC1; p=reject; pct=101", 0, DMARC_P_REJECT, 100, NULL},
        {"v=DMARC1; p=reject; pct=-1", 0, DMARC_P_REJECT, 100, NULL},
        {"v=DMARC1; p=reject; pct=0", 0, DMARC_P_REJECT, 0, NULL},
        {"v=DMARC1; p=reject; adkim=x; aspf=", 0, DMARC_P_REJECT, 100, NULL},
        /* Malformed tags are ignored, the first of a repeat wins. */
        {"v=DMARC1; p=reject;;; junk; =x; 9=1; p=none", 0, DMARC_P_REJECT, 100, NULL},
        {"v=DMARC1; p=quarantine; p=reject", 0, DMARC_P_QUARANTINE, 100, NULL},
        /* No usable p=: p=none with a valid rua=, else unusable (6.6.3 step 6). */
        {"v=DMARC1; p=bogus; rua=mailto:r@example.com", 0, DMARC_P_NONE, 100, NULL},
        {"v=DMARC1; rua=mailto:r@example.com", 0, DMARC_P_NONE, 100, NULL},
        {"v=DMARC1", DMARC_REC_INVALID, 0, 0, "DMARC record has no valid p="},
        {"v=DMARC1; p=bogus; rua=not a uri", DMARC_REC_INVALID, 0, 0,
         "DMARC record has no valid p="},
        {"v=DMARC1; p=reject; sp=bogus", DMARC_REC_INVALID, 0, 0, "DMARC record has a bad sp="},
    };
    dmarc_record_t r;
    const char *why;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].rec, &r, &why);

        cr_assert_eq(rc, cases[i].rc, "%s", cases[i].rec);
        if (rc == 0) {
            cr_assert_eq(r.p, cases[i].p, "%s", cases[i].rec);
            cr_assert_eq(r.pct, cases[i].pct, "%s", cases[i].rec);
        } else {
            cr_assert_str_eq(why, cases[i].why, "%s", cases[i].rec);
        }
    }
}

Test(dmarc_record, huge_and_binary_records)
{
    static char big[70000];
    dmarc_record_t r;
    const char *why;

    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "v=DMARC1; p=reject; x=", 22);
    cr_assert_eq(dmarc_record_parse(big, sizeof(big) - 1, &r, &why), 0);
    cr_assert_eq(r.p, DMARC_P_REJECT);
    /* A NUL makes the first p= malformed, hence ignored: the second counts. */
    cr_assert_eq(dmarc_record_parse("v=DMARC1; p=reject\0; p=none", 27, &r, &why), 0);
    cr_assert_eq(r.p, DMARC_P_NONE);
    cr_assert_eq(parse("v = DMARC1 ; p = reject", &r, &why), 0, "white space around = is fine");
}

static dmarc_lookup_t select_of(const char *const *recs, size_t n, dmarc_record_t *r,
                                const char **why)
{
    txt_record_t t[8];

    for (size_t i = 0; i < n; i++) {
        t[i].data = recs[i];
        t[i].len = strlen(recs[i]);
    }
    return dmarc_select(TXT_OK, t, n, r, why);
}

Test(dmarc_record, policy_discovery)
{
    static const char *one[] = {"v=spf1 -all", "v=DMARC1; p=quarantine", "other"};
    static const char *two[] = {"v=DMARC1; p=reject", "v=DMARC1; p=none"};
    static const char *none[] = {"v=spf1 -all", "hello"};
    static const char *bad[] = {"v=DMARC1; p=what"};
    dmarc_record_t r;
    const char *why;

    cr_assert_eq(select_of(one, 3, &r, &why), DMARC_LOOKUP_FOUND);
    cr_assert_eq(r.p, DMARC_P_QUARANTINE);
    cr_assert_eq(select_of(two, 2, &r, &why), DMARC_LOOKUP_INVALID);
    cr_assert_str_eq(why, "several DMARC records");
    cr_assert_eq(select_of(none, 2, &r, &why), DMARC_LOOKUP_NONE);
    cr_assert_eq(select_of(bad, 1, &r, &why), DMARC_LOOKUP_INVALID);
    cr_assert_eq(dmarc_select(TXT_NONE, NULL, 0, &r, &why), DMARC_LOOKUP_NONE);
    cr_assert_eq(dmarc_select(TXT_TEMPFAIL, NULL, 0, &r, &why), DMARC_LOOKUP_TEMPFAIL);
}

/* ---- From ---- */

static const char *from(const char *value, int *rc, size_t *n)
{
    static char joined[1024];
    char d[DMARC_FROM_MAX][DMARC_DOMAIN_MAX];
    size_t used = 0;

    *n = 0;
    *rc = dmarc_from_domains(value, strlen(value), d, n);
    joined[0] = '\0';
    for (size_t i = 0; i < *n; i++)
        used += (size_t)snprintf(joined + used, sizeof(joined) - used, "%s%s", i ? " " : "", d[i]);
    return joined;
}

Test(dmarc_from, address_lists)
{
    static const struct {
        const char *value, *want;
    } cases[] = {
        {" joe@Example.COM", "example.com"},
        {" Joe Q. Public <joe@example.com>", "example.com"},
        {" \"joe@evil.test\" <joe@good.test>", "good.test"},
        {" joe@evil.test <joe@good.test>", "good.test"},
        {" (joe@evil.test) joe@good.test (comment (nested@evil.test))", "good.test"},
        {" a@x.test, b@y.test", "x.test y.test"},
        {" a@x.test, A@X.TEST.", "x.test"},
        {" Friends: a@g1.test, \"b, c\" <b@g2.test>;", "g1.test g2.test"},
        {" <@route.test,@other.test:joe@real.test>", "real.test"},
        {" \"quoted@local\"@real.test", "real.test"},
        {"\r\n\t<joe@folded.test>", "folded.test"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        size_t n;
        const char *got = from(cases[i].value, &rc, &n);

        cr_assert_eq(rc, 0, "%s", cases[i].value);
        cr_assert_str_eq(got, cases[i].want, "%s", cases[i].value);
    }
}

Test(dmarc_from, unusable_from_fields)
{
    static const char *bad[] = {
        "", " ", " undisclosed-recipients:;", " joe", " joe@", " a@[192.0.2.1]",
        " a@bad..test", " <>", " \"a@b.test\"", " (a@b.test)", " a@example.com..", " a@.",
    };
    int rc;
    size_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        from(bad[i], &rc, &n);
        cr_assert_eq(rc, DMARC_FROM_ENONE, "%s", bad[i]);
        cr_assert_eq(n, 0);
    }
    from(" a@d1.test, a@d2.test, a@d3.test, a@d4.test, a@d5.test, a@d6.test, a@d7.test, "
         "a@d8.test, a@d9.test",
         &rc, &n);
    cr_assert_eq(rc, DMARC_FROM_EMANY);
}

/* ---- organizational domain, alignment ---- */

Test(dmarc_align, psl_boundaries)
{
    cr_assert_str_eq(dmarc_org_domain("mail.example.com"), "example.com");
    cr_assert_str_eq(dmarc_org_domain("a.b.example.co.uk"), "example.co.uk");
    cr_assert_str_eq(dmarc_org_domain("example.co.uk"), "example.co.uk");
    cr_assert_str_eq(dmarc_org_domain("co.uk"), "co.uk", "a public suffix is its own");
    cr_assert_str_eq(dmarc_org_domain("user.github.io"), "user.github.io", "private suffixes count");
}

Test(dmarc_align, relaxed_and_strict)
{
    static const struct {
        const char *a, *b;
        bool relaxed, strict;
    } cases[] = {
        {"example.com", "example.com", true, true},
        {"EXAMPLE.com", "example.COM", true, true},
        {"mail.example.com", "example.com", true, false},
        {"a.example.com", "b.example.com", true, false},
        {"example.com", "example.net", false, false},
        {"a.example.co.uk", "b.example.co.uk", true, false},
        {"example.co.uk", "other.co.uk", false, false},
        {"co.uk", "example.co.uk", false, false},
        {"alice.github.io", "bob.github.io", false, false},
        {"notexample.com", "example.com", false, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(dmarc_aligned(cases[i].a, cases[i].b, DMARC_ALIGN_RELAXED), cases[i].relaxed,
                     "%s %s relaxed", cases[i].a, cases[i].b);
        cr_assert_eq(dmarc_aligned(cases[i].a, cases[i].b, DMARC_ALIGN_STRICT), cases[i].strict,
                     "%s %s strict", cases[i].a, cases[i].b);
    }
}

/* ---- evaluation ---- */

static unsigned sample_of(void *arg)
{
    return *(const unsigned *)arg;
}

static dmarc_result_t eval(const char *from_domain, const char *record, bool at_org,
                           dmarc_id_t spf, const dmarc_id_t *dkim, size_t ndkim, unsigned sample)
{
    dmarc_record_t rec;
    const char *why = NULL;
    dmarc_result_t out;
    dmarc_input_t in = {.from_domain = from_domain, .rec = &rec, .at_org = at_org, .spf = spf,
                        .dkim = dkim, .ndkim = ndkim, .sample = sample_of,
                        .sample_arg = &sample};

    if (record == NULL)
        in.lookup = DMARC_LOOKUP_NONE;
    else if (strcmp(record, "tempfail") == 0)
        in.lookup = DMARC_LOOKUP_TEMPFAIL;
    else if (dmarc_record_parse(record, strlen(record), &rec, &why) == 0)
        in.lookup = DMARC_LOOKUP_FOUND;
    else
        in.lookup = DMARC_LOOKUP_INVALID;
    in.lookup_why = why;
    dmarc_evaluate(&in, &out);
    return out;
}

#define PASS(d) ((dmarc_id_t){DMARC_ID_PASS, d})
#define FAILS(d) ((dmarc_id_t){DMARC_ID_FAIL, d})
#define TEMP(d) ((dmarc_id_t){DMARC_ID_TEMPERROR, d})

Test(dmarc_eval, outcomes)
{
    dmarc_id_t dk_pass_sub[] = {PASS("mail.example.com")};
    dmarc_id_t dk_fail[] = {FAILS("example.com"), PASS("esp.example.net")};
    dmarc_id_t dk_temp[] = {TEMP("example.com")};
    dmarc_result_t r;

    r = eval("example.com", "v=DMARC1; p=reject", false, PASS("example.com"), NULL, 0, 0);
    cr_assert_eq(r.status, DMARC_PASS);
    cr_assert(r.spf_aligned && !r.dkim_aligned);

    r = eval("example.com", "v=DMARC1; p=reject", false, PASS("bounce.example.com"), NULL, 0, 0);
    cr_assert_eq(r.status, DMARC_PASS, "relaxed SPF alignment");
    r = eval("example.com", "v=DMARC1; p=reject; aspf=s", false, PASS("bounce.example.com"), NULL,
             0, 0);
    cr_assert_eq(r.status, DMARC_FAIL, "strict SPF alignment");

    r = eval("example.com", "v=DMARC1; p=reject", false, FAILS("example.com"), dk_pass_sub, 1, 0);
    cr_assert_eq(r.status, DMARC_PASS, "relaxed DKIM alignment");
    cr_assert(r.dkim_aligned);
    r = eval("example.com", "v=DMARC1; p=reject; adkim=s", false, FAILS("example.com"),
             dk_pass_sub, 1, 0);
    cr_assert_eq(r.status, DMARC_FAIL, "strict DKIM alignment");

    r = eval("example.com", "v=DMARC1; p=reject", false, PASS("example.net"), dk_fail, 2, 0);
    cr_assert_eq(r.status, DMARC_FAIL, "passing but unaligned identifiers");
    cr_assert_eq(r.policy, DMARC_P_REJECT);
    cr_assert_eq(r.applied, DMARC_P_REJECT);

    r = eval("example.com", "v=DMARC1; p=reject", false, FAILS("example.com"), dk_temp, 1, 0);
    cr_assert_eq(r.status, DMARC_TEMPERROR, "an aligned key could not be fetched");
    cr_assert(r.dkim_unknown);

    r = eval("example.com", NULL, false, FAILS("example.com"), NULL, 0, 0);
    cr_assert_eq(r.status, DMARC_NONE);
    r = eval("example.com", "tempfail", false, FAILS("example.com"), NULL, 0, 0);
    cr_assert_eq(r.status, DMARC_TEMPERROR);
    r = eval("example.com", "v=DMARC1; p=nonsense", false, FAILS("example.com"), NULL, 0, 0);
    cr_assert_eq(r.status, DMARC_PERMERROR);
    cr_assert_str_eq(r.reason, "DMARC record has no valid p=");
}

Test(dmarc_eval, subdomain_policy_and_pct)
{
    dmarc_result_t r;

    /* Found at the organizational domain: sp= governs a subdomain. */
    r = eval("mail.example.com", "v=DMARC1; p=reject; sp=none", true, FAILS("x.test"), NULL, 0, 0);
    cr_assert_eq(r.status, DMARC_FAIL);
    cr_assert_eq(r.policy, DMARC_P_NONE);
    /* Found at the From domain itself: p= governs, sp= is not looked at. */
    r = eval("mail.example.com", "v=DMARC1; p=reject; sp=none", false, FAILS("x.test"), NULL, 0, 0);
    cr_assert_eq(r.policy, DMARC_P_REJECT);
    /* Without sp=, the org's p= applies to subdomains. */
    r = eval("mail.example.com", "v=DMARC1; p=quarantine", true, FAILS("x.test"), NULL, 0, 0);
    cr_assert_eq(r.policy, DMARC_P_QUARANTINE);

    /* pct: sampled messages get the policy, others the next less strict. */
    r = eval("example.com", "v=DMARC1; p=reject; pct=30", false, FAILS("x.test"), NULL, 0, 29);
    cr_assert_eq(r.applied, DMARC_P_REJECT);
    r = eval("example.com", "v=DMARC1; p=reject; pct=30", false, FAILS("x.test"), NULL, 0, 30);
    cr_assert_eq(r.applied, DMARC_P_QUARANTINE);
    r = eval("example.com", "v=DMARC1; p=quarantine; pct=0", false, FAILS("x.test"), NULL, 0, 0);
    cr_assert_eq(r.applied, DMARC_P_NONE);
    r = eval("example.com", "v=DMARC1; p=reject; pct=100", false, FAILS("x.test"), NULL, 0, 99);
    cr_assert_eq(r.applied, DMARC_P_REJECT);
}
