/*
 * The resolver and the routing driver against a real DNS server: dnsmasq
 * on a free loopback port, with the records below.  Every test ends with
 * the resolver closed and uv_loop_close() == 0; dnsmasq is stopped by PID.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "dns.h"
#include "dnsmasq.h"
#include "rdns.h"
#include "route.h"

#define CHUNK 250 /* TXT character-strings of at most 255 octets */
#define BIG_CHUNKS 6

static test_dnsmasq_t dm = TEST_DNSMASQ_INIT, upstream = TEST_DNSMASQ_INIT,
                      front = TEST_DNSMASQ_INIT;
static int silent_fd = -1;
static uv_loop_t loop;
static dns_resolver_t *r;
static uint64_t now_ms = 1000000; /* the resolver's clock, moved by the tests */
static char big_txt[BIG_CHUNKS * CHUNK + 1];

static uint64_t test_clock(void *arg)
{
    return *(uint64_t *)arg;
}

static void start_dnsmasq(void)
{
    static char timeout_zone[64], big_arg[BIG_CHUNKS * (CHUNK + 1) + 64];
    uint16_t silent_port;
    size_t pos;
    const char *args[] = {
        "--local=/#/", /* every name not below is NXDOMAIN, without an SOA */
        "--local-ttl=60",
        "--mx-host=mx.test,mx1.mx.test,10",
        "--mx-host=mx.test,mx2.mx.test,20",
        "--mx-host=mx.test,mx3.mx.test,10",
        "--host-record=mx1.mx.test,127.0.0.11,::11",
        "--host-record=mx2.mx.test,127.0.0.12",
        "--host-record=mx3.mx.test,127.0.0.13",
        "--host-record=implicit.test,127.0.0.20",
        "--cname=alias.test,implicit.test",
        "--ptr-record=20.0.0.127.in-addr.arpa,implicit.test",
        "--mx-host=nullmx.test,.,0",
        "--mx-host=loop.test,us.loop.test,10",
        "--host-record=us.loop.test,127.0.0.1",
        "--mx-host=backup.test,primary.backup.test,10",
        "--mx-host=backup.test,us.loop.test,20",
        "--host-record=primary.backup.test,127.0.0.30",
        "--mx-host=halfbroken.test,mx.refused.test,10",
        "--mx-host=halfbroken.test,mx2.mx.test,20",
        "--txt-record=_dmarc.txt.test,v=DMARC1; p=reject",
        "--txt-record=sel._domainkey.txt.test,v=DKIM1; k=rsa; ,p=MIIBIjANBg",
        "--txt-record=two.txt.test,first",
        "--txt-record=two.txt.test,second",
        big_arg,
        /* Client names (rdns): 127.0.0.20 is implicit.test both ways. */
        "--ptr-record=21.0.0.127.in-addr.arpa,liar.test",     /* no address */
        "--ptr-record=22.0.0.127.in-addr.arpa,mx1.mx.test",   /* someone else's */
        "--ptr-record=23.0.0.127.in-addr.arpa,liar.test",     /* two names, */
        "--ptr-record=23.0.0.127.in-addr.arpa,two.rdns.test", /* one of them good */
        "--host-record=two.rdns.test,127.0.0.23",
        "--ptr-record=24.0.0.127.in-addr.arpa,127.0.0.24", /* a literal */
        "--server=/26.0.0.127.in-addr.arpa/#",
        "--ptr-record=27.0.0.127.in-addr.arpa,host.refused.test",
        "--host-record=v6.rdns.test,2001:db8::27",
        "--server=/refused.test/#", /* no upstream: REFUSED */
        timeout_zone,               /* an upstream that never answers */
        NULL,
    };

    silent_fd = test_silent_udp_socket(&silent_port);
    cr_assert_geq(silent_fd, 0);
    snprintf(timeout_zone, sizeof(timeout_zone), "--server=/timeout.test/127.0.0.1#%u",
             silent_port);
    /* A DKIM-sized TXT record over 1232 octets: EDNS is not enough, c-ares
     * must repeat the query over TCP. */
    pos = (size_t)snprintf(big_arg, sizeof(big_arg), "--txt-record=big.txt.test");
    for (int i = 0; i < BIG_CHUNKS; i++) {
        big_arg[pos++] = ',';
        for (int k = 0; k < CHUNK; k++) {
            char c = (char)('A' + (i * CHUNK + k) % 26);
            big_arg[pos++] = c;
            big_txt[i * CHUNK + k] = c;
        }
    }
    big_arg[pos] = '\0';
    big_txt[BIG_CHUNKS * CHUNK] = '\0';
    cr_assert_eq(test_dnsmasq_start(&dm, args), 0);
}

static void new_resolver(const char *server)
{
    const char *servers[] = {server};
    dns_options_t opts = {
        .servers = servers,
        .nservers = 1,
        .timeout_ms = 300,
        .tries = 2,
        .clock = test_clock,
        .clock_arg = &now_ms,
    };

    cr_assert_eq(dns_resolver_new(&loop, &opts, &r), 0);
}

/* Swap the resolver for one asking only server. */
static void use_server(const char *server)
{
    dns_resolver_close(r, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    new_resolver(server);
}

/* An authoritative dnsmasq (in `upstream`), the resolver asking it: its
 * answers carry TTL 30 and its negative answers an SOA, unlike those of
 * the main one.  Only zone auth.test is served on its address. */
static void use_authoritative(void)
{
    const char *args[] = {
        "--auth-server=ns.auth.test,127.0.0.1",
        "--auth-zone=auth.test",
        "--auth-ttl=30",
        "--host-record=h.auth.test,127.0.0.40",
        NULL,
    };

    cr_assert_eq(test_dnsmasq_start(&upstream, args), 0);
    use_server(upstream.server);
}

static void setup(void)
{
    uv_loop_init(&loop);
    start_dnsmasq();
    new_resolver(dm.server);
}

static void teardown(void)
{
    test_dnsmasq_stop(&dm);
    test_dnsmasq_stop(&upstream);
    test_dnsmasq_stop(&front);
    if (silent_fd >= 0)
        close(silent_fd);
}

static int closed_calls;

static void on_closed(void *arg)
{
    (void)arg;
    closed_calls++;
}

/* Close the resolver; nothing may be left on the loop. */
static void finish(void)
{
    dns_resolver_close(r, on_closed, NULL);
    r = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed_calls, 1, "the close callback ran once");
    cr_assert_eq(uv_loop_close(&loop), 0, "nothing left on the loop");
}

/* ---- lookups ---- */

typedef struct {
    int calls;
    int status;
    char text[4096]; /* the records, one a line, sorted */
} got_t;

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void got_cb(void *arg, int status, const dns_result_t *res)
{
    got_t *g = arg;
    char lines[64][2048];
    char *sorted[64];
    size_t n = 0;

    g->calls++;
    g->status = status;
    g->text[0] = '\0';
    if (status != 0)
        return;
    for (size_t i = 0; i < res->n && n < 64; i++, n++) {
        char ip[INET6_ADDRSTRLEN];
        switch (res->type) {
        case DNS_T_MX:
            snprintf(lines[n], sizeof(lines[n]), "%u %s", res->u.mx[i].pref, res->u.mx[i].host);
            break;
        case DNS_T_A:
        case DNS_T_AAAA:
            inet_ntop(res->u.addr[i].family, &res->u.addr[i].in, ip, sizeof(ip));
            snprintf(lines[n], sizeof(lines[n]), "%s", ip);
            break;
        case DNS_T_TXT:
            snprintf(lines[n], sizeof(lines[n]), "%s", res->u.txt[i].text);
            break;
        case DNS_T_PTR:
            snprintf(lines[n], sizeof(lines[n]), "%s", res->u.ptr[i]);
            break;
        }
        sorted[n] = lines[n];
    }
    qsort(sorted, n, sizeof(sorted[0]), line_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strncat(g->text, "\n", sizeof(g->text) - strlen(g->text) - 1);
        strncat(g->text, sorted[i], sizeof(g->text) - strlen(g->text) - 1);
    }
}

/* One lookup, run to its end. */
static got_t lookup(dns_type_t type, const char *name)
{
    got_t g = {0};

    cr_assert_eq(dns_lookup(r, type, name, got_cb, &g, NULL), 0, "%s", name);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g.calls, 1, "%s %s: one callback", dns_type_name(type), name);
    return g;
}

static void expect(dns_type_t type, const char *name, int status, const char *text)
{
    got_t g = lookup(type, name);

    cr_assert_eq(g.status, status, "%s %s: %s, want %s", dns_type_name(type), name,
                 dns_strerror(g.status), dns_strerror(status));
    if (text != NULL)
        cr_assert_str_eq(g.text, text, "%s %s", dns_type_name(type), name);
}

TestSuite(dns_live, .init = setup, .fini = teardown, .timeout = 20);

Test(dns_live, typed_results_of_each_type)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};

    expect(DNS_T_MX, "mx.test", 0, "10 mx1.mx.test\n10 mx3.mx.test\n20 mx2.mx.test");
    expect(DNS_T_MX, "MX.Test.", 0, NULL);
    expect(DNS_T_A, "mx1.mx.test", 0, "127.0.0.11");
    expect(DNS_T_AAAA, "mx1.mx.test", 0, "::11");
    expect(DNS_T_A, "alias.test", 0, "127.0.0.20");
    expect(DNS_T_TXT, "_dmarc.txt.test", 0, "v=DMARC1; p=reject");
    expect(DNS_T_TXT, "sel._domainkey.txt.test", 0, "v=DKIM1; k=rsa; p=MIIBIjANBg");
    expect(DNS_T_TXT, "two.txt.test", 0, "first\nsecond");
    expect(DNS_T_TXT, "big.txt.test", 0, big_txt);
    expect(DNS_T_A, "192.0.2.8", 0, "192.0.2.8");

    got_t g = {0};
    inet_pton(AF_INET, "127.0.0.20", &sin.sin_addr);
    cr_assert_eq(dns_ptr_lookup(r, (struct sockaddr *)&sin, got_cb, &g, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g.status, 0);
    cr_assert_str_eq(g.text, "implicit.test");
    finish();
}

Test(dns_live, nxdomain_and_nodata_are_permanent)
{
    expect(DNS_T_MX, "nx.test", DNS_ENXDOMAIN, NULL);
    expect(DNS_T_TXT, "_dmarc.nx.test", DNS_ENXDOMAIN, NULL);
    expect(DNS_T_AAAA, "mx2.mx.test", DNS_ENODATA, NULL);
    expect(DNS_T_MX, "mx1.mx.test", DNS_ENODATA, NULL);
    expect(DNS_T_A, "192.0.2.8", 0, NULL);
    expect(DNS_T_AAAA, "192.0.2.8", DNS_ENODATA, NULL);
    cr_assert(dns_is_permanent(DNS_ENXDOMAIN) && dns_is_permanent(DNS_ENODATA));
    finish();
}

Test(dns_live, refused_and_timeout_are_temporary)
{
    dns_stats_t st;

    expect(DNS_T_MX, "x.refused.test", DNS_EREFUSED, NULL);
    expect(DNS_T_A, "x.timeout.test", DNS_ETIMEOUT, NULL);
    cr_assert(!dns_is_permanent(DNS_EREFUSED) && !dns_is_permanent(DNS_ETIMEOUT));
    /* Temporary errors are never cached: asking again asks the server. */
    expect(DNS_T_MX, "x.refused.test", DNS_EREFUSED, NULL);
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 3);
    cr_assert_eq(st.failures, 3);
    cr_assert_eq(st.cache_hits, 0);
    finish();
}

Test(dns_live, servfail_is_temporary)
{
    /* dnsmasq answers SERVFAIL when an answer fails DNSSEC validation: a
     * validating dnsmasq with a trust anchor nothing upstream can match,
     * in front of an unsigned one.  (One forwarding to a dead port just
     * stays silent: that is the timeout case.) */
    const char *plain[] = {"--local=/#/", NULL};
    char forward[64];
    const char *validating[] = {
        forward,
        "--dnssec",
        "--trust-anchor=.,12345,8,2,"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        NULL,
    };

    cr_assert_eq(test_dnsmasq_start(&upstream, plain), 0);
    snprintf(forward, sizeof(forward), "--server=127.0.0.1#%u", upstream.port);
    cr_assert_eq(test_dnsmasq_start(&front, validating), 0);
    use_server(front.server);

    expect(DNS_T_MX, "servfail.invalid", DNS_ESERVFAIL, NULL);
    cr_assert(!dns_is_permanent(DNS_ESERVFAIL));
    test_dnsmasq_stop(&front);
    finish();
}

Test(dns_live, unreachable_server_is_temporary)
{
    char dead[32];

    snprintf(dead, sizeof(dead), "127.0.0.1:%u", test_dead_udp_port());
    use_server(dead);
    expect(DNS_T_MX, "mx.test", DNS_ECONNREFUSED, NULL);
    cr_assert(!dns_is_permanent(DNS_ECONNREFUSED));
    finish();
}

Test(dns_live, answers_are_cached_for_their_ttl)
{
    dns_stats_t st;

    use_authoritative();
    expect(DNS_T_A, "h.auth.test", 0, "127.0.0.40");
    expect(DNS_T_A, "H.auth.test", 0, "127.0.0.40");
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.cache_hits, 1);

    /* Within the TTL (30 s) the answer survives its server. */
    test_dnsmasq_stop(&upstream);
    now_ms += 29 * 1000;
    expect(DNS_T_A, "h.auth.test", 0, "127.0.0.40");
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 1);

    /* Past it, the server is asked again (and is gone). */
    now_ms += 2 * 1000;
    expect(DNS_T_A, "h.auth.test", DNS_ECONNREFUSED, NULL);
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 2);
    finish();
}

Test(dns_live, negative_answers_cached_only_with_an_soa)
{
    dns_stats_t st;

    /* NXDOMAIN from an authoritative zone carries its SOA: kept 30 s. */
    use_authoritative();
    expect(DNS_T_MX, "nx.auth.test", DNS_ENXDOMAIN, NULL);
    expect(DNS_T_MX, "nx.auth.test", DNS_ENXDOMAIN, NULL);
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.cache_hits, 1);
    now_ms += 31 * 1000;
    expect(DNS_T_MX, "nx.auth.test", DNS_ENXDOMAIN, NULL);
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 2, "expired after the SOA's TTL");

    /* dnsmasq's --local answers have no SOA: not cached (RFC 2308 5). */
    use_server(dm.server);
    expect(DNS_T_MX, "nx.test", DNS_ENXDOMAIN, NULL);
    expect(DNS_T_MX, "nx.test", DNS_ENXDOMAIN, NULL);
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 2);
    finish();
}

Test(dns_live, identical_lookups_share_one_query)
{
    got_t a = {0}, b = {0};
    dns_stats_t st;

    cr_assert_eq(dns_lookup(r, DNS_T_MX, "mx.test", got_cb, &a, NULL), 0);
    cr_assert_eq(dns_lookup(r, DNS_T_MX, "mx.test", got_cb, &b, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 1);
    cr_assert_str_eq(a.text, b.text);
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 1);
    cr_assert_eq(st.joined, 1);
    finish();
}

Test(dns_live, callbacks_are_never_synchronous_and_cancel_is_silent)
{
    got_t lit = {0}, cancelled = {0}, kept = {0};
    dns_req_t *req;

    cr_assert_eq(dns_lookup(r, DNS_T_A, "127.0.0.9", got_cb, &lit, NULL), 0);
    cr_assert_eq(lit.calls, 0, "not from inside dns_lookup()");
    cr_assert_eq(dns_lookup(r, DNS_T_A, "x.timeout.test", got_cb, &cancelled, &req), 0);
    cr_assert_eq(dns_lookup(r, DNS_T_A, "mx2.mx.test", got_cb, &kept, NULL), 0);
    dns_cancel(req);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(lit.calls, 1);
    cr_assert_eq(kept.calls, 1);
    cr_assert_eq(cancelled.calls, 0, "a cancelled lookup is never told");

    cr_assert_eq(dns_lookup(r, DNS_T_A, "bad name", got_cb, &lit, NULL), DNS_EBADNAME);
    cr_assert_eq(dns_lookup(r, (dns_type_t)99, "mx.test", got_cb, &lit, NULL), DNS_EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(lit.calls, 1, "a lookup that returned an error never calls back");
    finish();
}

Test(dns_live, close_cancels_pending_lookups)
{
    got_t slow = {0}, late = {0};

    cr_assert_eq(dns_lookup(r, DNS_T_A, "x.timeout.test", got_cb, &slow, NULL), 0);
    cr_assert_eq(dns_lookup(r, DNS_T_A, "127.0.0.9", got_cb, &late, NULL), 0);
    dns_resolver_close(r, on_closed, NULL);
    cr_assert_eq(dns_lookup(r, DNS_T_A, "mx1.mx.test", got_cb, &late, NULL), DNS_ECLOSING);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(slow.calls, 1);
    cr_assert_eq(slow.status, DNS_ECANCELED);
    cr_assert_eq(late.calls, 1, "an answer ready before the close is still told");
    cr_assert_eq(closed_calls, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- client names ---- */

typedef struct {
    int calls;
    rdns_status_t status;
    char name[DNS_NAME_MAX + 1];
    char unverified[DNS_NAME_MAX + 1];
    int error;
} named_t;

static void named_cb(void *arg, const rdns_result_t *res)
{
    named_t *n = arg;

    n->calls++;
    n->status = res->status;
    snprintf(n->name, sizeof(n->name), "%s", res->name ? res->name : "(null)");
    snprintf(n->unverified, sizeof(n->unverified), "%s",
             res->unverified ? res->unverified : "(null)");
    n->error = res->error;
}

static named_t client_name(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    named_t n = {0};
    rdns_req_t *req;

    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        cr_assert_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1, "%s", ip);
        sin6->sin6_family = AF_INET6;
    }
    cr_assert_eq(rdns_lookup(r, (struct sockaddr *)&ss, named_cb, &n, &req), 0, "%s", ip);
    cr_assert_not_null(req);
    cr_assert_eq(n.calls, 0, "not from inside rdns_lookup()");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(n.calls, 1, "%s: one callback", ip);
    return n;
}

static void expect_name(const char *ip, rdns_status_t status, const char *name,
                        const char *unverified)
{
    named_t n = client_name(ip);

    cr_assert_eq(n.status, status, "%s: status %d, want %d", ip, n.status, status);
    cr_assert_str_eq(n.name, name, "%s", ip);
    cr_assert_str_eq(n.unverified, unverified, "%s", ip);
}

Test(dns_live, client_names_are_forward_confirmed)
{
    expect_name("127.0.0.20", RDNS_OK, "implicit.test", "(null)");
    expect_name("::ffff:127.0.0.20", RDNS_OK, "implicit.test", "(null)");
    expect_name("2001:db8::27", RDNS_OK, "v6.rdns.test", "(null)");
    expect_name("127.0.0.23", RDNS_OK, "two.rdns.test", "(null)");
    /* A PTR anyone can write; the forward zone says otherwise. */
    expect_name("127.0.0.21", RDNS_NONE, "(null)", "liar.test");
    expect_name("127.0.0.22", RDNS_NONE, "(null)", "mx1.mx.test");
    expect_name("127.0.0.24", RDNS_NONE, "(null)", "127.0.0.24");
    expect_name("127.0.0.25", RDNS_NONE, "(null)", "(null)");
    finish();
}

Test(dns_live, client_names_temporary_errors)
{
    named_t n = client_name("127.0.0.26");

    cr_assert_eq(n.status, RDNS_TEMPFAIL);
    cr_assert_eq(n.error, DNS_EREFUSED);
    cr_assert_str_eq(n.unverified, "(null)");
    n = client_name("127.0.0.27");
    cr_assert_eq(n.status, RDNS_TEMPFAIL, "the name's address could not be asked for");
    cr_assert_str_eq(n.unverified, "host.refused.test");
    finish();
}

Test(dns_live, client_name_lookups_cancel)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr unix_sa = {.sa_family = AF_UNIX};
    named_t cancelled = {0};
    rdns_req_t *req;

    inet_pton(AF_INET, "127.0.0.20", &sin.sin_addr);
    cr_assert_eq(rdns_lookup(r, (struct sockaddr *)&sin, named_cb, &cancelled, &req), 0);
    rdns_cancel(req);
    cr_assert_eq(rdns_lookup(r, &unix_sa, named_cb, &cancelled, &req), DNS_EINVAL);
    cr_assert_null(req);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(cancelled.calls, 0, "a cancelled lookup is never told");
    finish();
}

/* ---- routing ---- */

typedef struct {
    int calls;
    route_result_t *res;
} routed_t;

static void routed_cb(void *arg, route_result_t *res)
{
    routed_t *t = arg;

    t->calls++;
    t->res = res;
}

static uint64_t fixed_rand(void *arg)
{
    return *(uint64_t *)arg;
}

static struct sockaddr_storage own_addr;
static uint64_t seed = 7;

static route_config_t config(uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&own_addr;
    route_config_t cfg = {
        .own = &own_addr, .nown = 1, .port = port, .rand = fixed_rand, .rand_arg = &seed};

    memset(&own_addr, 0, sizeof(own_addr));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(2525);
    inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
    return cfg;
}

/* Route domain and return the hops as "host[addr]:port" lines, or
 * "STATUS DSN reason". */
static void route(const route_config_t *cfg, const char *domain, char *out, size_t size)
{
    routed_t t = {0};

    cr_assert_eq(route_lookup(r, cfg, domain, routed_cb, &t, NULL), 0, "%s", domain);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(t.calls, 1, "%s: one callback", domain);
    out[0] = '\0';
    if (t.res->status != ROUTE_OK) {
        snprintf(out, size, "%s %s %s", t.res->status == ROUTE_TEMPFAIL ? "TEMP" : "PERM",
                 t.res->dsn, t.res->reason);
    }
    for (size_t i = 0; i < t.res->nhops; i++) {
        const route_hop_t *h = &t.res->hops[i];
        const struct sockaddr *sa = (const struct sockaddr *)&h->addr;
        char ip[INET6_ADDRSTRLEN], line[400];
        unsigned port;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)sa;
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
            port = ntohs(sin->sin_port);
        } else {
            const struct sockaddr_in6 *sin6 = (const void *)sa;
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
            port = ntohs(sin6->sin6_port);
        }
        snprintf(line, sizeof(line), "%s%s[%s]:%u", i ? "\n" : "", h->host, ip, port);
        strncat(out, line, size - strlen(out) - 1);
    }
    route_result_free(t.res);
}

static void expect_route(const route_config_t *cfg, const char *domain, const char *want)
{
    char got[2048];

    route(cfg, domain, got, sizeof(got));
    cr_assert_str_eq(got, want, "route for %s", domain);
}

Test(dns_live, routes_by_mx_preference)
{
    route_config_t cfg = config(2526);
    char first[2048], again[2048];

    route(&cfg, "mx.test", first, sizeof(first));
    /* Preference 10 first (mx1 with AAAA before A, and mx3, in the order
     * the seed gives), then 20. */
    cr_assert(strcmp(first, "mx1.mx.test[::11]:2526\nmx1.mx.test[127.0.0.11]:2526\n"
                            "mx3.mx.test[127.0.0.13]:2526\nmx2.mx.test[127.0.0.12]:2526") == 0 ||
                  strcmp(first, "mx3.mx.test[127.0.0.13]:2526\nmx1.mx.test[::11]:2526\n"
                                "mx1.mx.test[127.0.0.11]:2526\nmx2.mx.test[127.0.0.12]:2526") == 0,
              "got:\n%s", first);
    route(&cfg, "mx.test", again, sizeof(again));
    cr_assert_str_eq(first, again, "the same seed, the same order");

    expect_route(&cfg, "implicit.test", "implicit.test[127.0.0.20]:2526");
    expect_route(&cfg, "[127.0.0.5]", "127.0.0.5[127.0.0.5]:2526");
    expect_route(&cfg, "[IPv6:::1]", "::1[::1]:2526");
    /* One MX host unresolvable (REFUSED): the other one still serves. */
    expect_route(&cfg, "halfbroken.test", "mx2.mx.test[127.0.0.12]:2526");
    finish();
}

Test(dns_live, routes_fail_as_postfix_words_it)
{
    route_config_t cfg = config(25);

    expect_route(&cfg, "nullmx.test",
                 "PERM 5.1.10 Domain nullmx.test does not accept mail (nullMX)");
    expect_route(&cfg, "nx.test",
                 "PERM 5.4.4 Host or domain name not found. Name service error for name=nx.test "
                 "type=MX: Host not found");
    expect_route(&cfg, "refused.test",
                 "TEMP 4.4.3 Host or domain name not found. Name service error for "
                 "name=refused.test type=MX: Host not found, try again (query refused)");
    expect_route(&cfg, "x.timeout.test",
                 "TEMP 4.4.3 Host or domain name not found. Name service error for "
                 "name=x.timeout.test type=MX: Host not found, try again (timeout)");
    finish();
}

Test(dns_live, our_own_address_is_a_loop_another_port_is_not)
{
    route_config_t ours = config(2525), other = config(2526);

    expect_route(&ours, "loop.test", "PERM 5.4.6 mail for loop.test loops back to myself");
    expect_route(&other, "loop.test", "us.loop.test[127.0.0.1]:2526");
    /* As backup MX we pass mail only to the better host. */
    expect_route(&ours, "backup.test", "primary.backup.test[127.0.0.30]:2525");
    finish();
}

Test(dns_live, route_entries_come_first)
{
    static const route_entry_t entries[] = {
        {"routed.test", "127.0.0.1", 2600},
        {"mx.test", "mx2.mx.test", 0},
        {"*", "relay.nx.test", 587},
    };
    route_config_t cfg = config(2526);
    dns_stats_t st;

    cfg.entries = entries;
    cfg.nentries = 3;
    expect_route(&cfg, "routed.test", "127.0.0.1[127.0.0.1]:2600");
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 0, "an IP route needs no DNS");
    expect_route(&cfg, "mx.test", "mx2.mx.test[127.0.0.12]:2526");
    /* The smarthost does not resolve: defer, it is the admin's to fix. */
    expect_route(&cfg, "elsewhere.test",
                 "TEMP 4.4.4 Host or domain name not found. Name service error for "
                 "name=relay.nx.test type=A: Host not found (route for elsewhere.test)");
    dns_resolver_stats(r, &st);
    cr_assert_eq(st.queries, 4, "AAAA and A of each route host, no MX");
    finish();
}

Test(dns_live, route_lookups_cancel_and_close)
{
    route_config_t cfg = config(25);
    routed_t cancelled = {0}, closing = {0};
    route_req_t *req;

    cr_assert_eq(route_lookup(r, &cfg, "x.timeout.test", routed_cb, &cancelled, &req), 0);
    route_cancel(req);
    cr_assert_eq(route_lookup(r, &cfg, "y.timeout.test", routed_cb, &closing, NULL), 0);
    cr_assert_eq(route_lookup(r, &cfg, "bad..name", routed_cb, &closing, NULL), DNS_EBADNAME);
    dns_resolver_close(r, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(cancelled.calls, 0);
    cr_assert_eq(closing.calls, 1, "closing the resolver ends the route lookup");
    cr_assert_eq(closing.res->status, ROUTE_TEMPFAIL);
    cr_assert_str_eq(closing.res->reason, "Host or domain name not found. Name service error "
                                          "for name=y.timeout.test type=MX: Lookup canceled");
    route_result_free(closing.res);
    cr_assert_eq(closed_calls, 1);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
