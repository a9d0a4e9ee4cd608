/* Unit tests for dns/ without a network: answers, names, the cache and the
 * routing decision. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dns_cache.h"
#include "dns_msg.h"
#include "dnspkt.h"
#include "route.h"

/* ---- answers ---- */

Test(dns_msg, mx_answer_with_compressed_names)
{
    dnspkt_t p;
    dns_result_t *res;
    uint32_t ttl;

    dnspkt_start(&p, 0, "example.com", DNS_T_MX, 2, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_MX, 300);
    dnspkt_u16(&p, 10);
    dnspkt_name(&p, "mx1.example.com");
    dnspkt_end_rr(&p);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_MX, 100);
    dnspkt_u16(&p, 20);
    dnspkt_name_ptr(&p, "MX2", DNSPKT_QNAME);
    dnspkt_end_rr(&p);

    cr_assert_eq(dns_msg_parse(p.b, p.n, "example.com", DNS_T_MX, &res, &ttl), 0);
    cr_assert_eq(res->n, 2);
    cr_assert_eq(res->u.mx[0].pref, 10);
    cr_assert_str_eq(res->u.mx[0].host, "mx1.example.com");
    cr_assert_eq(res->u.mx[1].pref, 20);
    cr_assert_str_eq(res->u.mx[1].host, "mx2.example.com", "names are lowercased");
    cr_assert_eq(ttl, 100, "the smallest TTL of the records");
    dns_msg_result_unref(res);
}

Test(dns_msg, cname_chain_is_followed_and_strangers_ignored)
{
    static const unsigned char a1[4] = {192, 0, 2, 1}, a9[4] = {192, 0, 2, 9};
    dnspkt_t p;
    dns_result_t *res;
    uint32_t ttl;

    dnspkt_start(&p, 0, "www.example.com", DNS_T_A, 3, 0);
    dnspkt_rr(&p, "Www.Example.COM", -1, 5 /* CNAME */, 50);
    dnspkt_name(&p, "web.example.net");
    dnspkt_end_rr(&p);
    dnspkt_rr(&p, "other.example", -1, DNS_T_A, 10);
    dnspkt_bytes(&p, a9, 4);
    dnspkt_end_rr(&p);
    dnspkt_rr(&p, "web.example.net", -1, DNS_T_A, 200);
    dnspkt_bytes(&p, a1, 4);
    dnspkt_end_rr(&p);

    cr_assert_eq(dns_msg_parse(p.b, p.n, "www.example.com", DNS_T_A, &res, &ttl), 0);
    cr_assert_eq(res->n, 1, "the record of another owner is not ours");
    cr_assert_eq(res->u.addr[0].family, AF_INET);
    cr_assert(memcmp(&res->u.addr[0].in.v4, a1, 4) == 0);
    cr_assert_eq(ttl, 50, "the CNAME's TTL bounds the answer's");
    dns_msg_result_unref(res);
}

Test(dns_msg, txt_strings_of_a_record_are_joined)
{
    dnspkt_t p;
    dns_result_t *res;
    uint32_t ttl;

    dnspkt_start(&p, 0, "sel._domainkey.example.com", DNS_T_TXT, 2, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_TXT, 60);
    dnspkt_string(&p, "v=DKIM1; k=rsa; ");
    dnspkt_string(&p, "p=MIIBIjAN");
    dnspkt_end_rr(&p);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_TXT, 60);
    dnspkt_string(&p, "second record");
    dnspkt_end_rr(&p);

    cr_assert_eq(dns_msg_parse(p.b, p.n, "sel._domainkey.example.com", DNS_T_TXT, &res, &ttl), 0);
    cr_assert_eq(res->n, 2);
    cr_assert_str_eq(res->u.txt[0].text, "v=DKIM1; k=rsa; p=MIIBIjAN");
    cr_assert_eq(res->u.txt[0].len, strlen("v=DKIM1; k=rsa; p=MIIBIjAN"));
    cr_assert_str_eq(res->u.txt[1].text, "second record");
    dns_msg_result_unref(res);
}

Test(dns_msg, ptr_and_aaaa_and_null_mx)
{
    dnspkt_t p;
    dns_result_t *res;
    uint32_t ttl;
    struct in6_addr v6;

    dnspkt_start(&p, 0, "1.2.0.192.in-addr.arpa", DNS_T_PTR, 1, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_PTR, 60);
    dnspkt_name(&p, "Host.Example.com");
    dnspkt_end_rr(&p);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "1.2.0.192.in-addr.arpa", DNS_T_PTR, &res, &ttl), 0);
    cr_assert_str_eq(res->u.ptr[0], "host.example.com");
    dns_msg_result_unref(res);

    inet_pton(AF_INET6, "2001:db8::25", &v6);
    dnspkt_start(&p, 0, "mx.example.com", DNS_T_AAAA, 1, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_AAAA, 60);
    dnspkt_bytes(&p, &v6, 16);
    dnspkt_end_rr(&p);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "mx.example.com", DNS_T_AAAA, &res, &ttl), 0);
    cr_assert_eq(res->u.addr[0].family, AF_INET6);
    cr_assert(memcmp(&res->u.addr[0].in.v6, &v6, 16) == 0);
    dns_msg_result_unref(res);

    /* RFC 7505: "0 ." */
    dnspkt_start(&p, 0, "nullmx.example", DNS_T_MX, 1, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_MX, 60);
    dnspkt_u16(&p, 0);
    dnspkt_name(&p, "");
    dnspkt_end_rr(&p);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "nullmx.example", DNS_T_MX, &res, &ttl), 0);
    cr_assert_eq(res->n, 1);
    cr_assert_str_eq(res->u.mx[0].host, "");
    dns_msg_result_unref(res);
}

/* An authority section with the zone's SOA (RFC 2308 3). */
static void soa(dnspkt_t *p, uint32_t ttl, uint32_t minimum)
{
    dnspkt_rr(p, "example.com", -1, 6 /* SOA */, ttl);
    dnspkt_name(p, "ns.example.com");
    dnspkt_name(p, "hostmaster.example.com");
    dnspkt_u32(p, 2026112801);
    dnspkt_u32(p, 7200);
    dnspkt_u32(p, 900);
    dnspkt_u32(p, 1209600);
    dnspkt_u32(p, minimum);
    dnspkt_end_rr(p);
}

Test(dns_msg, negative_answers_take_their_ttl_from_the_soa)
{
    dnspkt_t p;
    dns_result_t *res;
    uint32_t ttl;

    dnspkt_start(&p, 3, "nx.example.com", DNS_T_MX, 0, 1);
    soa(&p, 3600, 300);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "nx.example.com", DNS_T_MX, &res, &ttl), DNS_ENXDOMAIN);
    cr_assert_null(res);
    cr_assert_eq(ttl, 300, "MINIMUM when smaller");

    dnspkt_start(&p, 0, "www.example.com", DNS_T_AAAA, 0, 1);
    soa(&p, 60, 300);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "www.example.com", DNS_T_AAAA, &res, &ttl), DNS_ENODATA);
    cr_assert_eq(ttl, 60, "the SOA's own TTL when smaller");

    dnspkt_start(&p, 0, "www.example.com", DNS_T_AAAA, 0, 0);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "www.example.com", DNS_T_AAAA, &res, &ttl), DNS_ENODATA);
    cr_assert_eq(ttl, 0, "without an SOA a negative answer is not cached (RFC 2308 5)");
}

Test(dns_msg, rcodes_and_ttl_top_bit)
{
    static const unsigned char a1[4] = {192, 0, 2, 1};
    dnspkt_t p;
    dns_result_t *res;
    uint32_t ttl;

    dnspkt_start(&p, 2, "example.com", DNS_T_A, 0, 0);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "example.com", DNS_T_A, &res, &ttl), DNS_ESERVFAIL);
    dnspkt_start(&p, 5, "example.com", DNS_T_A, 0, 0);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "example.com", DNS_T_A, &res, &ttl), DNS_EREFUSED);

    dnspkt_start(&p, 0, "example.com", DNS_T_A, 1, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_A, 0x80000001u);
    dnspkt_bytes(&p, a1, 4);
    dnspkt_end_rr(&p);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "example.com", DNS_T_A, &res, &ttl), 0);
    cr_assert_eq(ttl, 0, "RFC 2181 8: a TTL with the top bit set is zero");
    dns_msg_result_unref(res);
}

Test(dns_msg, malformed_answers_are_refused_never_overread)
{
    static const unsigned char a1[4] = {192, 0, 2, 1};
    dnspkt_t p, bad;
    dns_result_t *res;
    uint32_t ttl;

    dnspkt_start(&p, 0, "example.com", DNS_T_MX, 2, 0);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_MX, 300);
    dnspkt_u16(&p, 10);
    dnspkt_name_ptr(&p, "mx1", DNSPKT_QNAME);
    dnspkt_end_rr(&p);
    dnspkt_rr(&p, NULL, DNSPKT_QNAME, DNS_T_TXT, 300);
    dnspkt_string(&p, "x");
    dnspkt_end_rr(&p);
    cr_assert_eq(dns_msg_parse(p.b, p.n, "example.com", DNS_T_MX, &res, &ttl), 0);
    dns_msg_result_unref(res);

    /* Every truncation fails cleanly (ASan watches for overreads: each
     * prefix is copied into a buffer of exactly its size). */
    for (size_t n = 0; n < p.n; n++) {
        unsigned char *copy = malloc(n ? n : 1);
        memcpy(copy, p.b, n);
        cr_assert_lt(dns_msg_parse(copy, n, "example.com", DNS_T_MX, &res, &ttl), 0,
                     "prefix of %zu octets", n);
        cr_assert_null(res);
        free(copy);
    }

    /* A compression pointer to itself. */
    dnspkt_start(&bad, 0, "example.com", DNS_T_MX, 1, 0);
    dnspkt_rr(&bad, NULL, DNSPKT_QNAME, DNS_T_MX, 300);
    dnspkt_u16(&bad, 10);
    dnspkt_u16(&bad, 0xc000 | (unsigned)bad.n);
    dnspkt_end_rr(&bad);
    cr_assert_eq(dns_msg_parse(bad.b, bad.n, "example.com", DNS_T_MX, &res, &ttl), DNS_EBADRESP);

    /* An A record of five octets. */
    dnspkt_start(&bad, 0, "example.com", DNS_T_A, 1, 0);
    dnspkt_rr(&bad, NULL, DNSPKT_QNAME, DNS_T_A, 300);
    dnspkt_bytes(&bad, a1, 4);
    dnspkt_u8(&bad, 0);
    dnspkt_end_rr(&bad);
    cr_assert_eq(dns_msg_parse(bad.b, bad.n, "example.com", DNS_T_A, &res, &ttl), DNS_EBADRESP);

    /* A TXT string running past its record. */
    dnspkt_start(&bad, 0, "example.com", DNS_T_TXT, 1, 0);
    dnspkt_rr(&bad, NULL, DNSPKT_QNAME, DNS_T_TXT, 300);
    dnspkt_u8(&bad, 10);
    dnspkt_bytes(&bad, "abc", 3);
    dnspkt_end_rr(&bad);
    cr_assert_eq(dns_msg_parse(bad.b, bad.n, "example.com", DNS_T_TXT, &res, &ttl), DNS_EBADRESP);
}

Test(dns_msg, names_are_normalised_or_refused)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Example.COM.", "example.com"},
        {"_dmarc.example.com", "_dmarc.example.com"},
        {"sel._domainkey.example.com", "sel._domainkey.example.com"},
        {"localhost", "localhost"},
        {"", NULL},
        {".", NULL},
        {"a..b", NULL},
        {".a", NULL},
        {"a.b..", NULL},
        {"exa mple.com", NULL},
        {"ex\\065.com", NULL},
        {"b\xc3\xa4r.example", NULL},
        {"a.b/c", NULL},
    };
    char out[DNS_NAME_MAX + 1], label[80], longname[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = dns_msg_name_norm(cases[i].in, out);
        if (cases[i].out == NULL) {
            cr_assert_eq(rc, DNS_EBADNAME, "'%s'", cases[i].in);
        } else {
            cr_assert_eq(rc, 0, "'%s'", cases[i].in);
            cr_assert_str_eq(out, cases[i].out);
        }
    }
    memset(label, 'a', 63);
    label[63] = '\0';
    cr_assert_eq(dns_msg_name_norm(label, out), 0);
    label[63] = 'a';
    label[64] = '\0';
    cr_assert_eq(dns_msg_name_norm(label, out), DNS_EBADNAME, "64-octet label");

    /* 253 characters is the longest name; 254 is one too many. */
    memset(longname, 'a', sizeof(longname));
    for (size_t i = 50; i < 253; i += 51)
        longname[i] = '.';
    longname[253] = '\0';
    cr_assert_eq(dns_msg_name_norm(longname, out), 0);
    longname[253] = 'a';
    longname[254] = '\0';
    cr_assert_eq(dns_msg_name_norm(longname, out), DNS_EBADNAME);
}

Test(dns_msg, reverse_names)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    char name[DNS_NAME_MAX + 1];

    inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
    cr_assert_eq(dns_msg_ptr_name((struct sockaddr *)&sin, name, sizeof(name)), 0);
    cr_assert_str_eq(name, "10.2.0.192.in-addr.arpa");

    inet_pton(AF_INET6, "2001:db8::567:89ab", &sin6.sin6_addr);
    cr_assert_eq(dns_msg_ptr_name((struct sockaddr *)&sin6, name, sizeof(name)), 0);
    cr_assert_str_eq(name,
                     "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");

    inet_pton(AF_INET6, "::ffff:192.0.2.10", &sin6.sin6_addr);
    cr_assert_eq(dns_msg_ptr_name((struct sockaddr *)&sin6, name, sizeof(name)), 0);
    cr_assert_str_eq(name, "10.2.0.192.in-addr.arpa", "a v4-mapped client is an IPv4 client");
}

Test(dns_msg, ip_literals_answer_themselves)
{
    dns_result_t *res;

    cr_assert_eq(dns_msg_literal("192.0.2.7", DNS_T_A, &res), 0);
    cr_assert_eq(res->u.addr[0].family, AF_INET);
    dns_msg_result_unref(res);
    cr_assert_eq(dns_msg_literal("192.0.2.7", DNS_T_AAAA, &res), DNS_ENODATA);
    cr_assert_eq(dns_msg_literal("::1", DNS_T_AAAA, &res), 0);
    dns_msg_result_unref(res);
    cr_assert_eq(dns_msg_literal("mx.example.com", DNS_T_A, &res), DNS_EBADNAME);
}

Test(dns, errors_are_classified_and_worded)
{
    cr_assert(dns_is_permanent(DNS_ENXDOMAIN));
    cr_assert(dns_is_permanent(DNS_ENODATA));
    cr_assert(!dns_is_permanent(DNS_ESERVFAIL));
    cr_assert(!dns_is_permanent(DNS_EREFUSED));
    cr_assert(!dns_is_permanent(DNS_ETIMEOUT));
    cr_assert(!dns_is_permanent(DNS_ECANCELED));
    cr_assert_str_eq(dns_strerror(DNS_ENXDOMAIN), "Host not found");
    cr_assert_str_eq(dns_strerror(DNS_ENODATA), "Host found but no data record of requested type");
    cr_assert_str_eq(dns_strerror(DNS_ESERVFAIL), "Host not found, try again (server failure)");
    cr_assert_str_eq(dns_type_name(DNS_T_AAAA), "AAAA");
}

Test(dns, servers_are_written_as_in_the_config)
{
    const char *good[] = {"192.0.2.53", "127.0.0.1:5353", "[::1]:5354", "2001:db8::53"};
    const char *bad[][1] = {{"ns.example.com"}, {"127.0.0.1:0"}, {"[::1"}, {"1.2.3.4:99999"}};
    struct ares_addr_port_node *list = NULL, *s;
    ares_channel channel;
    char ip[INET6_ADDRSTRLEN];
    char got[256] = "";
    uv_loop_t loop;
    dns_resolver_t *r;
    dns_options_t opts = {.servers = bad[0], .nservers = 1};

    cr_assert_eq(ares_init(&channel), ARES_SUCCESS);
    cr_assert_eq(dns_set_servers(channel, good, 4), 0);
    cr_assert_eq(ares_get_servers_ports(channel, &list), ARES_SUCCESS);
    for (s = list; s != NULL; s = s->next) {
        inet_ntop(s->family, &s->addr, ip, sizeof(ip));
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s/%d ", ip, s->udp_port);
    }
    ares_free_data(list);
    cr_assert_str_eq(got, "192.0.2.53/0 127.0.0.1/5353 ::1/5354 2001:db8::53/0 ",
                     "port 0 is c-ares' default, 53");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(dns_set_servers(channel, bad[i], 1), DNS_EINVAL, "%s", bad[i][0]);
    ares_destroy(channel);

    /* A resolver with a bad server is not created, and leaves nothing. */
    uv_loop_init(&loop);
    cr_assert_eq(dns_resolver_new(&loop, &opts, &r), DNS_EINVAL);
    cr_assert_null(r);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- the cache ---- */

static dns_result_t *addr_result(const char *ip)
{
    dns_result_t *res;

    cr_assert_eq(dns_msg_literal(ip, DNS_T_A, &res), 0);
    return res;
}

Test(dns_cache, entries_live_for_their_ttl)
{
    dns_cache_t *c = dns_cache_new(16, 1 << 20);
    dns_result_t *res = addr_result("192.0.2.1"), *got;
    int status = 1;

    dns_cache_put(c, DNS_T_A, "a.example", 0, res, 10, 1000);
    dns_msg_result_unref(res);
    cr_assert(dns_cache_get(c, DNS_T_A, "a.example", 10999, &status, &got));
    cr_assert_eq(status, 0);
    cr_assert_eq(got->u.addr[0].family, AF_INET);
    dns_msg_result_unref(got);
    cr_assert(!dns_cache_get(c, DNS_T_AAAA, "a.example", 2000, &status, &got), "keyed by type");
    cr_assert(!dns_cache_get(c, DNS_T_A, "a.example", 11000, &status, &got), "expired");
    cr_assert_eq(dns_cache_count(c), 0, "an expired entry is dropped when found");
    cr_assert_eq(dns_cache_bytes(c), 0);
    dns_cache_free(c);
}

Test(dns_cache, negative_answers_and_zero_ttl)
{
    dns_cache_t *c = dns_cache_new(16, 1 << 20);
    dns_result_t *res = addr_result("192.0.2.1"), *got;
    int status = 0;

    dns_cache_put(c, DNS_T_MX, "nx.example", DNS_ENXDOMAIN, NULL, 5, 0);
    cr_assert(dns_cache_get(c, DNS_T_MX, "nx.example", 4999, &status, &got));
    cr_assert_eq(status, DNS_ENXDOMAIN);
    cr_assert_null(got);

    dns_cache_put(c, DNS_T_A, "z.example", 0, res, 0, 0);
    cr_assert(!dns_cache_get(c, DNS_T_A, "z.example", 0, &status, &got), "TTL 0: not kept");
    dns_cache_put(c, DNS_T_A, "z.example", 0, res, 60, 0);
    dns_cache_put(c, DNS_T_A, "z.example", 0, res, 0, 0);
    cr_assert(!dns_cache_get(c, DNS_T_A, "z.example", 0, &status, &got),
              "a fresh TTL-0 answer replaces an older one");
    dns_msg_result_unref(res);
    dns_cache_free(c);
}

Test(dns_cache, least_recently_used_goes_first)
{
    dns_cache_t *c = dns_cache_new(2, 1 << 20);
    dns_result_t *res = addr_result("192.0.2.1"), *got;
    int status;

    dns_cache_put(c, DNS_T_A, "a", 0, res, 60, 0);
    dns_cache_put(c, DNS_T_A, "b", 0, res, 60, 0);
    cr_assert(dns_cache_get(c, DNS_T_A, "a", 1, &status, &got));
    dns_msg_result_unref(got);
    dns_cache_put(c, DNS_T_A, "c", 0, res, 60, 2);
    cr_assert_eq(dns_cache_count(c), 2);
    cr_assert(!dns_cache_get(c, DNS_T_A, "b", 3, &status, &got), "b was least recently used");
    cr_assert(dns_cache_get(c, DNS_T_A, "a", 3, &status, &got));
    dns_msg_result_unref(got);
    cr_assert(dns_cache_get(c, DNS_T_A, "c", 3, &status, &got));
    /* The reference handed out outlives the cache. */
    dns_cache_free(c);
    cr_assert_eq(got->u.addr[0].family, AF_INET);
    dns_msg_result_unref(got);
    dns_msg_result_unref(res);
}

Test(dns_cache, memory_is_bounded)
{
    dns_result_t *small = addr_result("192.0.2.1"), *big = dns_msg_result_new(DNS_T_TXT, 1), *got;
    dns_cache_t *c;
    size_t bound;
    int status;

    big->u.txt[0].text = calloc(1, 4000);
    big->u.txt[0].len = 3999;
    big->bytes += 4000;
    bound = 2 * big->bytes + 100;
    c = dns_cache_new(1000, bound);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%d", i);
        dns_cache_put(c, DNS_T_A, name, 0, small, 60, 0);
    }
    dns_cache_put(c, DNS_T_TXT, "big1", 0, big, 60, 0);
    dns_cache_put(c, DNS_T_TXT, "big2", 0, big, 60, 0);
    cr_assert_leq(dns_cache_bytes(c), bound);
    cr_assert(dns_cache_get(c, DNS_T_TXT, "big2", 1, &status, &got));
    dns_msg_result_unref(got);
    cr_assert(!dns_cache_get(c, DNS_T_A, "n0", 1, &status, &got), "old entries made room");
    dns_cache_free(c);

    c = dns_cache_new(1000, big->bytes);
    dns_cache_put(c, DNS_T_TXT, "big", 0, big, 60, 0);
    cr_assert_eq(dns_cache_count(c), 0, "larger than the whole bound: not kept");
    dns_cache_free(c);
    dns_msg_result_unref(small);
    dns_msg_result_unref(big);
}

/* ---- routing ---- */

static dns_addr_t ip(const char *s)
{
    dns_addr_t a;

    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, s, &a.in.v4) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, s, &a.in.v6) == 1)
        a.family = AF_INET6;
    else
        cr_assert_fail("not an IP literal: %s", s);
    return a;
}

static void hop_text(const route_hop_t *hop, char *out, size_t size)
{
    char addr[64];
    const struct sockaddr *sa = (const struct sockaddr *)&hop->addr;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
        snprintf(out, size, "%s[%s]:%u", hop->host, addr, ntohs(sin->sin_port));
    } else {
        const struct sockaddr_in6 *sin6 = (const void *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
        snprintf(out, size, "%s[%s]:%u", hop->host, addr, ntohs(sin6->sin6_port));
    }
}

static void assert_hops(const route_result_t *res, const char *const *want, size_t n)
{
    char got[512];

    cr_assert_eq(res->status, ROUTE_OK, "status %d: %s", res->status, res->reason);
    cr_assert_eq(res->nhops, n, "%zu hops, want %zu", res->nhops, n);
    for (size_t i = 0; i < n; i++) {
        hop_text(&res->hops[i], got, sizeof(got));
        cr_assert_str_eq(got, want[i], "hop %zu", i);
    }
}

static struct sockaddr_storage sockaddr_of(const char *addr, uint16_t port)
{
    struct sockaddr_storage ss;
    dns_addr_t a = ip(addr);

    memset(&ss, 0, sizeof(ss));
    if (a.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_addr = a.in.v4;
        sin->sin_port = htons(port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = a.in.v6;
        sin6->sin6_port = htons(port);
    }
    return ss;
}

Test(route, entries_exact_then_smarthost)
{
    static const route_entry_t entries[] = {
        {"*", "smarthost.example", 587},
        {"alias.test", "127.0.0.1", 2526},
    };
    route_config_t cfg = {.entries = entries, .nentries = 2};

    cr_assert_eq(route_find(&cfg, "alias.test"), &entries[1]);
    cr_assert_eq(route_find(&cfg, "ALIAS.Test"), &entries[1]);
    cr_assert_eq(route_find(&cfg, "other.test"), &entries[0]);
    cfg.nentries = 0;
    cr_assert_null(route_find(&cfg, "alias.test"));
}

static void order_names(route_host_t *h, size_t n, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, h[i].name, size - strlen(out) - 1);
        strncat(out, " ", size - strlen(out) - 1);
    }
}

static void order_fill(route_host_t *h)
{
    static char *names[] = {"c20", "a10", "b10", "d10", "e30"};
    static const uint16_t prefs[] = {20, 10, 10, 10, 30};

    memset(h, 0, 5 * sizeof(*h));
    for (int i = 0; i < 5; i++) {
        h[i].name = names[i];
        h[i].pref = prefs[i];
    }
}

Test(route, preference_first_then_random_among_equals)
{
    static const char *const perms[6] = {"a10 b10 d10 ", "a10 d10 b10 ", "b10 a10 d10 ",
                                         "b10 d10 a10 ", "d10 a10 b10 ", "d10 b10 a10 "};
    route_host_t h[5];
    char got[64], first[64] = "", again[64];
    int seen[6] = {0};

    for (uint64_t seed = 0; seed < 600; seed++) {
        uint64_t rng = seed;
        int k;
        order_fill(h);
        route_order(h, 5, &rng);
        cr_assert_str_eq(h[3].name, "c20", "preferences are never mixed");
        cr_assert_str_eq(h[4].name, "e30");
        order_names(h, 3, got, sizeof(got));
        for (k = 0; k < 6 && strcmp(got, perms[k]) != 0; k++)
            ;
        cr_assert_lt(k, 6, "unexpected order '%s'", got);
        seen[k]++;
        if (seed == 42)
            order_names(h, 5, first, sizeof(first));
    }
    /* 100 each on average; a fair shuffle stays well above 50. */
    for (int k = 0; k < 6; k++)
        cr_assert_gt(seen[k], 50, "order '%s' came out %d times in 600", perms[k], seen[k]);

    /* A fixed seed gives a fixed order (tests and reproducible logs). */
    uint64_t rng = 42;
    order_fill(h);
    route_order(h, 5, &rng);
    order_names(h, 5, again, sizeof(again));
    cr_assert_str_eq(first, again);
}

Test(route, mx_outcomes)
{
    route_result_t out;
    route_host_t *hosts;
    size_t n;
    uint64_t rng = 1;
    dns_result_t *mx = dns_msg_result_new(DNS_T_MX, 4);

    memset(&out, 0, sizeof(out));
    cr_assert_eq(route_from_mx("nx.test", DNS_ENXDOMAIN, NULL, 0, &rng, &hosts, &n, &out), -1);
    cr_assert_eq(out.status, ROUTE_PERMFAIL);
    cr_assert_str_eq(out.dsn, "5.4.4");
    cr_assert_str_eq(out.reason, "Host or domain name not found. Name service error for "
                                 "name=nx.test type=MX: Host not found");

    cr_assert_eq(route_from_mx("sf.test", DNS_ESERVFAIL, NULL, 0, &rng, &hosts, &n, &out), -1);
    cr_assert_eq(out.status, ROUTE_TEMPFAIL);
    cr_assert_str_eq(out.dsn, "4.4.3");
    cr_assert_str_eq(out.reason, "Host or domain name not found. Name service error for "
                                 "name=sf.test type=MX: Host not found, try again (server "
                                 "failure)");

    cr_assert_eq(route_from_mx("implicit.test", DNS_ENODATA, NULL, 0, &rng, &hosts, &n, &out),
                 ROUTE_VIA_IMPLICIT);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(hosts[0].name, "implicit.test");
    cr_assert_eq(hosts[0].pref, 0);
    route_hosts_free(hosts, n);

    mx->n = 1;
    mx->u.mx[0].host = strdup("");
    cr_assert_eq(route_from_mx("nullmx.test", 0, mx, 0, &rng, &hosts, &n, &out), -1);
    cr_assert_eq(out.status, ROUTE_PERMFAIL);
    cr_assert_str_eq(out.dsn, "5.1.10");
    cr_assert_str_eq(out.reason, "Domain nullmx.test does not accept mail (nullMX)");

    /* Duplicates go, the best max_hosts stay. */
    mx->n = 4;
    mx->u.mx[1] = (dns_mx_t){30, strdup("c.test")};
    mx->u.mx[2] = (dns_mx_t){10, strdup("a.test")};
    mx->u.mx[3] = (dns_mx_t){20, strdup("a.test")};
    cr_assert_eq(route_from_mx("d.test", 0, mx, 0, &rng, &hosts, &n, &out), ROUTE_VIA_MX);
    cr_assert_eq(n, 2, "the null MX next to real ones and the duplicate are dropped");
    cr_assert_str_eq(hosts[0].name, "a.test");
    cr_assert_eq(hosts[0].pref, 10);
    cr_assert_str_eq(hosts[1].name, "c.test");
    route_hosts_free(hosts, n);
    cr_assert_eq(route_from_mx("d.test", 0, mx, 1, &rng, &hosts, &n, &out), ROUTE_VIA_MX);
    cr_assert_eq(n, 1);
    route_hosts_free(hosts, n);
    dns_msg_result_unref(mx);
}

/* Hosts for route_plan(): each with up to two addresses per family. */
typedef struct {
    char *name;
    uint16_t pref;
    int status6, status4;
    const char *a6, *a4, *b4;
} host_spec_t;

static void plan(const route_config_t *cfg, route_via_t via, uint16_t port, const host_spec_t *spec,
                 size_t n, route_result_t *out)
{
    route_host_t hosts[8];
    dns_addr_t addrs[8][2][2];

    memset(hosts, 0, sizeof(hosts));
    for (size_t i = 0; i < n; i++) {
        hosts[i].name = spec[i].name;
        hosts[i].pref = spec[i].pref;
        hosts[i].status[ROUTE_V6] = spec[i].status6;
        hosts[i].status[ROUTE_V4] = spec[i].status4;
        hosts[i].addr[ROUTE_V6] = addrs[i][ROUTE_V6];
        hosts[i].addr[ROUTE_V4] = addrs[i][ROUTE_V4];
        if (spec[i].a6 != NULL)
            addrs[i][ROUTE_V6][hosts[i].naddr[ROUTE_V6]++] = ip(spec[i].a6);
        if (spec[i].a4 != NULL)
            addrs[i][ROUTE_V4][hosts[i].naddr[ROUTE_V4]++] = ip(spec[i].a4);
        if (spec[i].b4 != NULL)
            addrs[i][ROUTE_V4][hosts[i].naddr[ROUTE_V4]++] = ip(spec[i].b4);
    }
    route_plan(cfg, "example.test", via, port, hosts, n, out);
}

Test(route, hops_by_preference_aaaa_before_a)
{
    static const host_spec_t spec[] = {
        {"mx1.example.test", 10, 0, 0, "2001:db8::1", "192.0.2.1", "192.0.2.2"},
        {"mx2.example.test", 20, DNS_ENODATA, 0, NULL, "192.0.2.3", NULL},
    };
    static const char *const want[] = {
        "mx1.example.test[2001:db8::1]:25",
        "mx1.example.test[192.0.2.1]:25",
        "mx1.example.test[192.0.2.2]:25",
        "mx2.example.test[192.0.2.3]:25",
    };
    route_config_t cfg = {0};
    route_result_t out;

    plan(&cfg, ROUTE_VIA_MX, 25, spec, 2, &out);
    assert_hops(&out, want, 4);
    cr_assert_eq(out.hops[3].pref, 20);
    free(out.hops);

    cfg.max_addrs = 2;
    plan(&cfg, ROUTE_VIA_MX, 25, spec, 2, &out);
    assert_hops(&out, want, 2);
    free(out.hops);
}

Test(route, our_own_address_cuts_the_list_or_is_a_loop)
{
    struct sockaddr_storage own = sockaddr_of("127.0.0.1", 2525);
    route_config_t cfg = {.own = &own, .nown = 1};
    static const host_spec_t backup[] = {
        {"primary.example.test", 10, DNS_ENODATA, 0, NULL, "192.0.2.1", NULL},
        {"us.example.test", 20, DNS_ENODATA, 0, NULL, "127.0.0.1", NULL},
        {"worse.example.test", 30, DNS_ENODATA, 0, NULL, "192.0.2.3", NULL},
    };
    static const char *const want[] = {"primary.example.test[192.0.2.1]:2525"};
    static const char *const other_port[] = {"us.example.test[127.0.0.1]:2526"};
    route_result_t out;

    /* We are the backup MX: only the better host is left (RFC 5321 5.1). */
    plan(&cfg, ROUTE_VIA_MX, 2525, backup, 3, &out);
    assert_hops(&out, want, 1);
    free(out.hops);

    /* We are the best MX: the mail would come back to us. */
    plan(&cfg, ROUTE_VIA_MX, 2525, backup + 1, 2, &out);
    cr_assert_eq(out.status, ROUTE_PERMFAIL);
    cr_assert_str_eq(out.dsn, "5.4.6");
    cr_assert_str_eq(out.reason, "mail for example.test loops back to myself");
    cr_assert_null(out.hops);

    /* The same address on another port is someone else. */
    plan(&cfg, ROUTE_VIA_ROUTE, 2526, backup + 1, 1, &out);
    assert_hops(&out, other_port, 1);
    free(out.hops);
    plan(&cfg, ROUTE_VIA_ROUTE, 2525, backup + 1, 1, &out);
    cr_assert_eq(out.status, ROUTE_PERMFAIL, "a route to ourselves loops too");
}

Test(route, failures_temporary_wins_over_permanent)
{
    static const host_spec_t mixed[] = {
        {"gone.example.test", 10, DNS_ENXDOMAIN, DNS_ENXDOMAIN, NULL, NULL, NULL},
        {"flaky.example.test", 20, DNS_ENODATA, DNS_ETIMEOUT, NULL, NULL, NULL},
        {"good.example.test", 30, DNS_ENODATA, 0, NULL, "192.0.2.30", NULL},
    };
    static const char *const want[] = {"good.example.test[192.0.2.30]:25"};
    route_config_t cfg = {0};
    route_result_t out;

    plan(&cfg, ROUTE_VIA_MX, 25, mixed, 3, &out);
    assert_hops(&out, want, 1);
    free(out.hops);

    plan(&cfg, ROUTE_VIA_MX, 25, mixed, 2, &out);
    cr_assert_eq(out.status, ROUTE_TEMPFAIL);
    cr_assert_str_eq(out.dsn, "4.4.3");
    cr_assert_str_eq(out.reason, "Host or domain name not found. Name service error for "
                                 "name=flaky.example.test type=A: Host not found, try again "
                                 "(timeout)");

    plan(&cfg, ROUTE_VIA_MX, 25, mixed, 1, &out);
    cr_assert_eq(out.status, ROUTE_PERMFAIL);
    cr_assert_str_eq(out.dsn, "5.4.4");
    cr_assert_str_eq(out.reason, "Host or domain name not found. Name service error for "
                                 "name=gone.example.test type=A: Host not found");

    /* The same answer for a route entry's host defers: the admin fixes it. */
    plan(&cfg, ROUTE_VIA_ROUTE, 25, mixed, 1, &out);
    cr_assert_eq(out.status, ROUTE_TEMPFAIL);
    cr_assert_str_eq(out.dsn, "4.4.4");
    cr_assert_str_eq(out.reason, "Host or domain name not found. Name service error for "
                                 "name=gone.example.test type=A: Host not found (route for "
                                 "example.test)");
}

Test(route, implicit_mx_without_addresses)
{
    static const host_spec_t bare[] = {
        {"example.test", 0, DNS_ENODATA, DNS_ENODATA, NULL, NULL, NULL},
    };
    route_config_t cfg = {0};
    route_result_t out;

    plan(&cfg, ROUTE_VIA_IMPLICIT, 25, bare, 1, &out);
    cr_assert_eq(out.status, ROUTE_PERMFAIL);
    cr_assert_str_eq(out.reason, "Host or domain name not found. Name service error for "
                                 "name=example.test type=A: Host found but no data record of "
                                 "requested type");
}

Test(route, wildcard_listen_means_every_local_address)
{
    struct sockaddr_storage listen[2] = {sockaddr_of("0.0.0.0", 2525),
                                         sockaddr_of("192.0.2.77", 25)};
    struct sockaddr_storage *own;
    size_t n;
    route_config_t cfg = {0};
    struct sockaddr_storage probe;

    route_own_addresses(listen, 2, &own, &n);
    cfg.own = own;
    cfg.nown = n;
    probe = sockaddr_of("127.0.0.1", 2525);
    cr_assert(route_is_own(&cfg, (struct sockaddr *)&probe), "loopback is a local address");
    probe = sockaddr_of("127.0.0.1", 25);
    cr_assert(!route_is_own(&cfg, (struct sockaddr *)&probe));
    probe = sockaddr_of("192.0.2.77", 25);
    cr_assert(route_is_own(&cfg, (struct sockaddr *)&probe), "a specific address as it is");
    probe = sockaddr_of("192.0.2.1", 2525);
    cr_assert(!route_is_own(&cfg, (struct sockaddr *)&probe),
              "a wildcard listener does not make every address ours");
    free(own);
}
