/* Unit tests for the pure parts of smtpd/dnsbl.c and smtpd/anvil.c: the
 * names DNS lists are asked at (RFC 5782), their answer patterns, and
 * the rate limits' counts with an injected clock (docs/smtp.md). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>

#include "anvil.h"
#include "dnsbl.h"

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss = {0};

    if (strchr(ip, ':') != NULL) {
        ss.ss_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    } else {
        ss.ss_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr), 1);
    }
    return ss;
}

Test(dnsbl, query_names)
{
    struct sockaddr_storage a = addr("192.0.2.99"), b = addr("2001:db8::567:89ab");
    char name[300];

    cr_assert_eq(dnsbl_query_name((struct sockaddr *)&a, "zen.example", name, sizeof(name)), 0);
    cr_assert_str_eq(name, "99.2.0.192.zen.example");
    cr_assert_eq(dnsbl_query_name((struct sockaddr *)&b, "bl.example", name, sizeof(name)), 0);
    cr_assert_str_eq(name, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
                           "bl.example");
    cr_assert_eq(dnsbl_query_name((struct sockaddr *)&a, "zen.example", name, 10), -1);
}

Test(dnsbl, answer_patterns)
{
    static const struct {
        const char *pattern, *answer;
        bool match;
    } cases[] = {
        {NULL, "127.0.0.2", true},          {NULL, "10.0.0.2", false},
        {"127.0.0.2", "127.0.0.2", true},   {"127.0.0.2", "127.0.0.3", false},
        {"127.0.0.[2..11]", "127.0.0.11", true}, {"127.0.0.[2..11]", "127.0.0.12", false},
        {"127.0.0.[2;4;10..12]", "127.0.0.4", true}, {"127.0.0.[2;4;10..12]", "127.0.0.3", false},
        {"127.0.[0..1].[2;4]", "127.0.1.2", true},
    };
    static const char *const bad[] = {"127.0.0", "127.0.0.256", "127.0.0.[3..2]", "127.0.0.[2",
                                      "127.0.0.[]", "127.0.0.2.1", "x.0.0.2", "127.0.0.[2;]"};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct in_addr a;
        inet_pton(AF_INET, cases[i].answer, &a);
        if (cases[i].pattern != NULL)
            cr_assert(dnsbl_pattern_valid(cases[i].pattern), "%s", cases[i].pattern);
        cr_assert_eq(dnsbl_pattern_match(cases[i].pattern, &a), cases[i].match, "%s ~ %s",
                     cases[i].pattern ? cases[i].pattern : "(none)", cases[i].answer);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert(!dnsbl_pattern_valid(bad[i]), "%s", bad[i]);
}

Test(anvil, counts_per_client_and_kind_in_windows)
{
    anvil_t *a = anvil_new(60000);

    cr_assert_eq(anvil_count(a, "192.0.2.1", ANVIL_CONNECTIONS, 1000), 1);
    cr_assert_eq(anvil_count(a, "192.0.2.1", ANVIL_CONNECTIONS, 2000), 2);
    cr_assert_eq(anvil_count(a, "192.0.2.1", ANVIL_MESSAGES, 2000), 1, "each kind apart");
    cr_assert_eq(anvil_count(a, "192.0.2.2", ANVIL_CONNECTIONS, 3000), 1, "each client apart");
    /* The window began at the first event: 60 s later it starts again. */
    cr_assert_eq(anvil_count(a, "192.0.2.1", ANVIL_CONNECTIONS, 60999), 3);
    cr_assert_eq(anvil_count(a, "192.0.2.1", ANVIL_CONNECTIONS, 61000), 1);
    cr_assert_eq(anvil_count(a, "192.0.2.1", ANVIL_MESSAGES, 61000), 2, "its own window");
    cr_assert_eq(anvil_clients(a), 2);
    /* Clients quiet for a window leave the table at the next sweep. */
    cr_assert_eq(anvil_count(a, "192.0.2.3", ANVIL_RECIPIENTS, 200000), 1);
    cr_assert_eq(anvil_clients(a), 1);
    anvil_free(a);
}
