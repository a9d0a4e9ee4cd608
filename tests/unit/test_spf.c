/* Unit tests for auth/spf.c: libspf2 evaluating real records served by a
 * dnsmasq on a loopback port, on the loop, through the loop's resolver.
 * Every result the RFC defines, the lookup limits, HELO for <>,
 * explanations, answers shared through the resolver, cancelling. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "dnsmasq.h"
#include "spf.h"

static test_dnsmasq_t dns = TEST_DNSMASQ_INIT;
static uv_loop_t loop;
static dns_resolver_t *resolver;
static spf_ctx_t *ctx;
static char dead[64];

static const char *records[] = {
    "--local=/#/", /* every other name: NXDOMAIN */
    "--txt-record=pass.test,v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all",
    "--txt-record=fail.test,v=spf1 -all",
    "--txt-record=soft.test,v=spf1 ~all",
    "--txt-record=neutral.test,v=spf1 ?all",
    "--txt-record=nospf.test,some other text",
    "--txt-record=perm.test,v=spf1 foo:bar -all",
    "--txt-record=multi.test,v=spf1 -all",
    "--txt-record=multi.test,v=spf1 +all",
    "--txt-record=inc.test,v=spf1 include:pass.test -all",
    "--txt-record=incnone.test,v=spf1 include:nx.test -all",
    "--txt-record=amech.test,v=spf1 a:host.amech.test -all",
    "--host-record=host.amech.test,192.0.2.10",
    "--txt-record=mx.test,v=spf1 mx -all",
    "--mx-host=mx.test,mail.mx.test,10",
    "--host-record=mail.mx.test,192.0.2.10",
    /* 3 includes of 4 terms each: 12 terms, more than 10 in all, though
     * never more than 10 within one record. */
    "--txt-record=limit.test,v=spf1 include:l1.test include:l2.test include:l3.test ip4:192.0.2.10 -all",
    "--txt-record=l1.test,v=spf1 a a a ?all",
    "--txt-record=l2.test,v=spf1 a a a ?all",
    "--txt-record=l3.test,v=spf1 a a a ?all",
    "--host-record=l1.test,192.0.2.99",
    "--host-record=l2.test,192.0.2.99",
    "--host-record=l3.test,192.0.2.99",
    "--txt-record=void.test,v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test ip4:192.0.2.10 -all",
    "--txt-record=twovoid.test,v=spf1 a:n1.void.test a:n2.void.test ip4:192.0.2.10 -all",
    "--txt-record=expfail.test,v=spf1 -all exp=why.expfail.test",
    "--txt-record=why.expfail.test,%{i} is not welcome here",
    "--txt-record=tempinc.test,v=spf1 include:x.dead.test -all",
    /* Kept 60 s, as records are: answers are shared through the cache. */
    "--txt-record=cached.test,v=spf1 a:host.amech.test -all",
    "--local-ttl=60",
    NULL, /* --server=/dead.test/... */
    NULL,
};

static void start(void)
{
    const char *servers[1];
    dns_options_t dopt = {.nservers = 1, .timeout_ms = 500, .tries = 1};
    spf_options_t opt = {.total_timeout_ms = 5000, .hostname = "mx.test"};
    size_t n = sizeof(records) / sizeof(records[0]);

    /* A zone forwarded to a port nobody listens on: SERVFAIL. */
    snprintf(dead, sizeof(dead), "--server=/dead.test/127.0.0.1#%u", test_dead_udp_port());
    records[n - 2] = dead;
    cr_assert_eq(test_dnsmasq_start(&dns, records), 0, "dnsmasq did not start");
    servers[0] = dns.server;
    dopt.servers = servers;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dns_resolver_new(&loop, &dopt, &resolver), 0);
    opt.resolver = resolver;
    cr_assert_eq(spf_ctx_new(&opt, &ctx), 0);
}

static void stop(void)
{
    spf_ctx_free(ctx);
    ctx = NULL;
    dns_resolver_close(resolver, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0, "handles left on the loop");
    test_dnsmasq_stop(&dns);
}

TestSuite(spf, .init = start, .fini = stop, .timeout = 60);

static struct sockaddr_storage ip(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, text, &a->sin_addr), 1);
    }
    return ss;
}

typedef struct {
    int calls;
    spf_result_t r;
} outcome_t;

static void on_done(void *arg, const spf_result_t *res)
{
    outcome_t *o = arg;

    o->calls++;
    o->r = *res;
}

/* One check, run on the loop to its end; the callback comes exactly once,
 * never from inside the start. */
static spf_result_t check(const char *client, const char *helo, const char *sender)
{
    struct sockaddr_storage ss = ip(client);
    outcome_t o = {0};
    spf_result_t now;
    spf_req_t *req;
    int rc = spf_check_start(ctx, (struct sockaddr *)&ss, helo, sender, on_done, &o, &now, &req);

    if (rc == SPF_DONE) {
        cr_assert_null(req);
        return now;
    }
    cr_assert_eq(rc, 0);
    cr_assert_not_null(req);
    cr_assert_eq(o.calls, 0, "no callback from inside the start");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.calls, 1);
    return o.r;
}

Test(spf, every_result)
{
    static const struct {
        const char *client, *sender;
        spf_status_t want;
    } cases[] = {
        {"192.0.2.10", "a@pass.test", SPF_PASS},
        {"192.0.2.11", "a@pass.test", SPF_FAIL},
        {"2001:db8::10", "a@pass.test", SPF_PASS},
        {"::ffff:192.0.2.10", "a@pass.test", SPF_PASS},
        {"192.0.2.10", "a@fail.test", SPF_FAIL},
        {"192.0.2.10", "a@soft.test", SPF_SOFTFAIL},
        {"192.0.2.10", "a@neutral.test", SPF_NEUTRAL},
        {"192.0.2.10", "a@nospf.test", SPF_NONE},
        {"192.0.2.10", "a@nx.test", SPF_NONE},
        {"192.0.2.10", "a@perm.test", SPF_PERMERROR},
        {"192.0.2.10", "a@multi.test", SPF_PERMERROR},
        {"192.0.2.10", "a@inc.test", SPF_PASS},
        {"192.0.2.11", "a@inc.test", SPF_FAIL},
        {"192.0.2.10", "a@incnone.test", SPF_PERMERROR},
        {"192.0.2.10", "a@amech.test", SPF_PASS},
        {"192.0.2.10", "a@mx.test", SPF_PASS},
        {"192.0.2.12", "a@mx.test", SPF_FAIL},
        {"192.0.2.10", "a@x.dead.test", SPF_TEMPERROR},
        {"192.0.2.10", "a@tempinc.test", SPF_TEMPERROR},
        {"127.0.0.1", "a@fail.test", SPF_FAIL}, /* no free pass for loopback */
        {"192.0.2.10", "a@twovoid.test", SPF_PASS},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        spf_result_t r = check(cases[i].client, "helo.test", cases[i].sender);

        cr_assert_eq(r.status, cases[i].want, "%s from %s: %s (%s)", cases[i].sender,
                     cases[i].client, spf_status_name(r.status), r.problem);
        cr_assert(!r.helo);
    }
}

Test(spf, ten_terms_across_includes)
{
    spf_result_t r = check("192.0.2.10", "helo.test", "a@limit.test");

    cr_assert_eq(r.status, SPF_PERMERROR, "%s", spf_status_name(r.status));
    cr_assert_str_eq(r.problem, "more than 10 DNS-querying terms");
}

Test(spf, two_void_lookups)
{
    spf_result_t r = check("192.0.2.10", "helo.test", "a@void.test");

    cr_assert_eq(r.status, SPF_PERMERROR, "%s", spf_status_name(r.status));
    cr_assert_str_eq(r.problem, "more than 2 void lookups");
    cr_assert_eq(r.void_lookups, 3);
}

Test(spf, null_sender_checks_helo)
{
    spf_result_t r = check("192.0.2.10", "pass.test", "");

    cr_assert_eq(r.status, SPF_PASS);
    cr_assert(r.helo);
    cr_assert_str_eq(r.domain, "pass.test");
    r = check("192.0.2.10", "[192.0.2.10]", "");
    cr_assert_eq(r.status, SPF_NONE, "an address literal has no SPF policy");
}

Test(spf, explanations)
{
    spf_result_t r = check("192.0.2.10", "helo.test", "a@expfail.test");

    cr_assert_eq(r.status, SPF_FAIL);
    cr_assert_str_eq(r.explanation, "expfail.test does not authorize 192.0.2.10 to send its mail");
    r = check("2001:db8::11", "helo.test", "a@soft.test");
    cr_assert_eq(r.status, SPF_SOFTFAIL);
    cr_assert_str_eq(r.explanation, "soft.test does not authorize 2001:db8::11 to send its mail");
    r = check("192.0.2.10", "helo.test", "a@perm.test");
    cr_assert_neq(r.problem[0], '\0');
}

Test(spf, bad_sender_domains_are_none)
{
    cr_assert_eq(check("192.0.2.10", "h.test", "a@localhost").status, SPF_NONE);
    cr_assert_eq(check("192.0.2.10", "h.test", "a@bad..test").status, SPF_NONE);
    cr_assert_eq(check("192.0.2.10", "h.test", "a@[192.0.2.1]").status, SPF_NONE);
}

Test(spf, answers_are_shared_through_the_resolver)
{
    dns_stats_t before, after;

    /* The first check asks for the record and the host; the second, made
     * while both are within their TTL, asks nothing. */
    cr_assert_eq(check("192.0.2.10", "helo.test", "a@cached.test").status, SPF_PASS);
    dns_resolver_stats(resolver, &before);
    cr_assert_eq(check("192.0.2.11", "helo.test", "b@cached.test").status, SPF_FAIL);
    dns_resolver_stats(resolver, &after);
    cr_assert_eq(after.queries, before.queries, "answered from the cache");
    cr_assert_geq(after.cache_hits, before.cache_hits + 2);
}

Test(spf, checks_run_side_by_side_and_cancel)
{
    struct sockaddr_storage a = ip("192.0.2.10"), b = ip("192.0.2.12");
    outcome_t o[8] = {{0}};
    spf_req_t *req[8];
    spf_result_t now;

    for (int i = 0; i < 8; i++)
        cr_assert_eq(spf_check_start(ctx, (struct sockaddr *)(i % 2 ? &b : &a), "h.test",
                                     "a@mx.test", on_done, &o[i], &now, &req[i]),
                     0);
    /* Two dropped with their lookups out: no callback, nothing leaks. */
    spf_check_cancel(req[2]);
    spf_check_cancel(req[5]);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(o[i].calls, i == 2 || i == 5 ? 0 : 1, "check %d", i);
        if (i != 2 && i != 5)
            cr_assert_eq(o[i].r.status, i % 2 ? SPF_FAIL : SPF_PASS, "check %d", i);
    }
}

Test(spf, a_closing_resolver_gives_temperror)
{
    struct sockaddr_storage a = ip("192.0.2.10");
    outcome_t o = {0};
    spf_result_t now;
    spf_req_t *req;

    cr_assert_eq(spf_check_start(ctx, (struct sockaddr *)&a, "h.test", "a@inc.test", on_done, &o,
                                 &now, &req),
                 0);
    /* Closing ends the lookup out with an error; every later question is
     * refused on the spot: the check still ends, with a temperror. */
    dns_resolver_close(resolver, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.r.status, SPF_TEMPERROR, "%s", spf_status_name(o.r.status));
    /* For stop(): a fresh resolver to close. */
    {
        const char *servers[] = {dns.server};
        dns_options_t dopt = {.servers = servers, .nservers = 1};

        cr_assert_eq(dns_resolver_new(&loop, &dopt, &resolver), 0);
    }
}

Test(spf, no_resolver_is_refused)
{
    spf_options_t opt = {.total_timeout_ms = 1000};
    spf_ctx_t *c = NULL;

    cr_assert_eq(spf_ctx_new(&opt, &c), SPF_EINVAL);
    cr_assert_null(c);
}
