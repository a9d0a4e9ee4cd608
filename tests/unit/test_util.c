/* Unit tests for util/: buffers, strings, parsing, addresses, hash table, log,
 * heap, stats registry, JSON. */
#include <criterion/criterion.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "cidr.h"
#include "diag.h"
#include "file.h"
#include "heap.h"
#include "htab.h"
#include "json.h"
#include "log.h"
#include "parse.h"
#include "stats.h"
#include "str.h"

/* ---- cidr ---- */

Test(cidr, blocks_and_addresses)
{
    static const struct {
        const char *block, *addr;
        bool match;
    } cases[] = {
        {"192.0.2.0/24", "192.0.2.77", true},       {"192.0.2.0/24", "192.0.3.1", false},
        {"192.0.2.1", "192.0.2.1", true},           {"192.0.2.1", "192.0.2.2", false},
        {"10.0.0.0/9", "10.127.255.255", true},     {"10.0.0.0/9", "10.128.0.0", false},
        {"0.0.0.0/0", "203.0.113.9", true},         {"[2001:db8::]/32", "2001:db8:ff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false}, {"::1", "::1", true},
        {"192.0.2.0/24", "::ffff:192.0.2.5", true}, {"192.0.2.0/24", "2001:db8::1", false},
    };
    static const char *const bad[] = {"", "192.0.2.0/33", "2001:db8::/129", "host.example",
                                      "192.0.2.0/", "192.0.2.0/x", "[192.0.2.0"};
    cidr_t c;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss = {0};
        cr_assert_eq(cidr_parse(cases[i].block, &c), 0, "%s", cases[i].block);
        cr_assert_eq(parse_sockaddr(cases[i].addr, 25, &ss), 0);
        cr_assert_eq(cidr_match(&c, (struct sockaddr *)&ss), cases[i].match, "%s in %s",
                     cases[i].addr, cases[i].block);
        cr_assert_eq(cidr_match_any(&c, 1, (struct sockaddr *)&ss), cases[i].match);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cidr_parse(bad[i], &c), -1, "%s", bad[i]);
}

/* ---- buf ---- */

Test(buf, lines_report_their_terminator)
{
    static const char input[] = "HELO a\r\nMAIL b\nRCPT c\rDATA\r\npartial";
    static const struct {
        const char *text;
        buf_eol_t eol;
    } want[] = {
        {"HELO a", BUF_EOL_CRLF},
        {"MAIL b", BUF_EOL_LF},
        {"RCPT c", BUF_EOL_CR},
        {"DATA", BUF_EOL_CRLF},
    };
    buf_t b;
    const char *line;
    size_t len;

    buf_init(&b, 512);
    cr_assert_eq(buf_append(&b, input, sizeof(input) - 1), 0);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_eq(buf_getline(&b, &line, &len), want[i].eol, "line %zu", i);
        cr_assert_eq(len, strlen(want[i].text));
        cr_assert(memcmp(line, want[i].text, len) == 0);
    }
    cr_assert_eq(buf_getline(&b, &line, &len), BUF_EOL_NONE);
    cr_assert_eq(buf_used(&b), strlen("partial"));
    buf_free(&b);
}

Test(buf, cr_at_end_waits_for_more)
{
    buf_t b;
    const char *line;
    size_t len;

    buf_init(&b, 64);
    buf_append(&b, "NOOP\r", 5);
    cr_assert_eq(buf_getline(&b, &line, &len), BUF_EOL_NONE);
    buf_append(&b, "\n", 1);
    cr_assert_eq(buf_getline(&b, &line, &len), BUF_EOL_CRLF);
    cr_assert_eq(len, 4);
    buf_free(&b);
}

Test(buf, cap_is_enforced_and_nothing_partial_is_appended)
{
    buf_t b;
    char big[100];

    memset(big, 'x', sizeof(big));
    buf_init(&b, 64);
    cr_assert_eq(buf_append(&b, big, 60), 0);
    cr_assert_eq(buf_append(&b, big, 5), BUF_EFULL);
    cr_assert_eq(buf_used(&b), 60);
    cr_assert_eq(buf_append(&b, big, 4), 0);
    cr_assert_eq(buf_room(&b), 0);
    buf_consume(&b, 10);
    cr_assert_eq(buf_append(&b, big, 10), 0);
    cr_assert_eq(buf_used(&b), 64);
    cr_assert_eq(buf_printf(&b, "%d", 1), BUF_EFULL);
    buf_free(&b);
}

Test(buf, printf_and_consume)
{
    buf_t b;

    buf_init(&b, 1024);
    cr_assert_eq(buf_printf(&b, "250-%s\r\n", "mx.example"), 0);
    cr_assert_eq(buf_printf(&b, "250 %d\r\n", 8), 0);
    cr_assert_eq(buf_used(&b), strlen("250-mx.example\r\n250 8\r\n"));
    cr_assert(memcmp(buf_ptr(&b), "250-mx.example\r\n250 8\r\n", buf_used(&b)) == 0);
    buf_consume(&b, 16);
    cr_assert(memcmp(buf_ptr(&b), "250 8\r\n", 7) == 0);
    buf_consume(&b, 100);
    cr_assert_eq(buf_used(&b), 0);
    buf_free(&b);
}

Test(buf, many_lines_through_a_small_buffer)
{
    buf_t b;
    const char *line;
    size_t len;
    int got = 0;

    buf_init(&b, 32);
    for (int i = 0; i < 1000; i++) {
        char l[16];
        int n = snprintf(l, sizeof(l), "L%d\r\n", i);
        cr_assert_eq(buf_append(&b, l, (size_t)n), 0);
        while (buf_getline(&b, &line, &len) == BUF_EOL_CRLF) {
            char want[16];
            snprintf(want, sizeof(want), "L%d", got++);
            cr_assert_eq(len, strlen(want));
            cr_assert(memcmp(line, want, len) == 0);
        }
    }
    cr_assert_eq(got, 1000);
    buf_free(&b);
}

/* ---- str ---- */

Test(str, lcpy_and_fmt_report_truncation)
{
    char small[6];

    cr_assert_eq(str_lcpy(small, "hello", sizeof(small)), 0);
    cr_assert_str_eq(small, "hello");
    cr_assert_eq(str_lcpy(small, "hello!", sizeof(small)), -1);
    cr_assert_str_eq(small, "hello");
    cr_assert_eq(str_fmt(small, sizeof(small), "%d", 12345), 0);
    cr_assert_eq(str_fmt(small, sizeof(small), "%d", 123456), -1);
}

Test(str, case_helpers_are_ascii)
{
    char s[] = "MiXeD\xc3\x89";

    cr_assert_str_eq(str_lower(s), "mixed\xc3\x89");
    cr_assert(str_eq_ci("MAIL", "mail"));
    cr_assert(!str_eq_ci("MAIL", "mai"));
    cr_assert(str_prefix_ci("MAIL FROM:<>", "mail from:"));
    cr_assert(str_eq_ci_n("EHLOX", 4, "ehlo"));
    cr_assert(!str_eq_ci_n("EHL", 3, "ehlo"));
    cr_assert_lt(str_casecmp("a", "B"), 0);
}

Test(str, utf8_and_8bit)
{
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"a", 1},          {"\xc3\xbc", 2},       {"\xe2\x82\xac", 3}, {"\xf0\x9f\x98\x80", 4},
        {"\xc0\xaf", 0},   {"\xe0\x80\xaf", 0},  {"\xed\xa0\x80", 0}, {"\xf4\x90\x80\x80", 0},
        {"\xc3", 0},       {"\xe2\x82", 0},       {"\x80", 0},         {"\xf5\x80\x80\x80", 0},
        {"\xc3\x28", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(str_utf8_len(cases[i].s, strlen(cases[i].s)), cases[i].len, "case %zu", i);
    cr_assert(str_has_8bit("\xc3\xbc@b", 4));
    cr_assert_not(str_has_8bit("u@b", 3));
    cr_assert_not(str_has_8bit("u\xc3", 1), "only the n bytes");
}

Test(str, trim_and_token)
{
    char s[] = "  a, b\t,,c  ";
    char *cursor = str_trim(s), *tok;
    const char *want[] = {"a", "b", "c"};
    int i = 0;

    cr_assert_str_eq(cursor, "a, b\t,,c");
    while ((tok = str_token(&cursor, " \t,")) != NULL)
        cr_assert_str_eq(tok, want[i++]);
    cr_assert_eq(i, 3);
    cr_assert(str_has_ctl("a\rb", 3));
    cr_assert(str_has_ctl("a\0b", 3));
    cr_assert(!str_has_ctl("a\tb", 3));
}

/* ---- parse ---- */

Test(parse, durations)
{
    static const struct {
        const char *in;
        uint64_t secs;
    } good[] = {{"30s", 30}, {"5m", 300}, {"2h", 7200}, {"21d", 21 * 86400},
                {"1w", 604800}, {"45", 45}, {"0", 0}};
    static const char *bad[] = {"", "s", "5x", "5mm", "-1", "1.5h", " 5m", "99999999999999d"};
    uint64_t v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(parse_duration(good[i].in, &v), 0, "%s", good[i].in);
        cr_assert_eq(v, good[i].secs, "%s", good[i].in);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(parse_duration(bad[i], &v), -1, "'%s'", bad[i]);
}

Test(parse, sizes)
{
    uint64_t v;

    cr_assert_eq(parse_size("25M", &v), 0);
    cr_assert_eq(v, 26214400);
    cr_assert_eq(parse_size("64k", &v), 0);
    cr_assert_eq(v, 65536);
    cr_assert_eq(parse_size("1G", &v), 0);
    cr_assert_eq(v, 1073741824);
    cr_assert_eq(parse_size("1000", &v), 0);
    cr_assert_eq(v, 1000);
    cr_assert_eq(parse_size("25MB", &v), -1);
    cr_assert_eq(parse_size("M", &v), -1);
    cr_assert_eq(parse_size("99999999999999999999", &v), -1);
}

Test(parse, uint_bounds)
{
    uint64_t v;

    cr_assert_eq(parse_uint("10", 1, 10, &v), 0);
    cr_assert_eq(parse_uint("11", 1, 10, &v), -1);
    cr_assert_eq(parse_uint("0", 1, 10, &v), -1);
    cr_assert_eq(parse_uint("1k", 1, 10000, &v), -1);
}

Test(parse, hostports)
{
    parse_hostport_t hp;

    cr_assert_eq(parse_hostport("127.0.0.1:2525", false, &hp), 0);
    cr_assert_str_eq(hp.host, "127.0.0.1");
    cr_assert_eq(hp.port, 2525);
    cr_assert(hp.is_ip);
    cr_assert_eq(parse_hostport("[::1]:25", false, &hp), 0);
    cr_assert_str_eq(hp.host, "::1");
    cr_assert_eq(hp.port, 25);
    cr_assert_eq(parse_hostport("::1", true, &hp), 0);
    cr_assert_eq(hp.port, 0);
    cr_assert_eq(parse_hostport("smtp.example.com:587", false, &hp), 0);
    cr_assert(!hp.is_ip);
    cr_assert_eq(parse_hostport("[relay.example]:25", false, &hp), 0);
    cr_assert_str_eq(hp.host, "relay.example");
    cr_assert_eq(parse_hostport("relay.example", true, &hp), 0);

    cr_assert_eq(parse_hostport("127.0.0.1", false, &hp), -1);
    cr_assert_eq(parse_hostport("127.0.0.1:0", false, &hp), -1);
    cr_assert_eq(parse_hostport("127.0.0.1:65536", false, &hp), -1);
    cr_assert_eq(parse_hostport("[::1]25", false, &hp), -1);
    cr_assert_eq(parse_hostport("bad_host:25", false, &hp), -1);
    cr_assert_eq(parse_hostport(":25", false, &hp), -1);
    cr_assert_eq(parse_hostport("[::1", true, &hp), -1);
}

Test(parse, kernel_releases)
{
    static const struct {
        const char *release;
        int rc;
        unsigned major, minor;
    } cases[] = {
        {"6.1.0-18-amd64", 0, 6, 1},   {"5.8", 0, 5, 8},         {"6.18.44-fc-v782", 0, 6, 18},
        {"4.19.0+", 0, 4, 19},         {"10.0", 0, 10, 0},       {"5", -1, 0, 0},
        {"", -1, 0, 0},                {"v6.1", -1, 0, 0},       {"6.x", -1, 0, 0},
        {"6..1", -1, 0, 0},            {"1234567.1", -1, 0, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned major = 99, minor = 99;

        cr_assert_eq(parse_kernel_release(cases[i].release, &major, &minor), cases[i].rc, "%s",
                     cases[i].release);
        if (cases[i].rc == 0)
            cr_assert(major == cases[i].major && minor == cases[i].minor, "%s: %u.%u",
                      cases[i].release, major, minor);
    }
}

Test(parse, sockaddr_round_trip)
{
    struct sockaddr_storage ss;
    char text[64];

    cr_assert_eq(parse_sockaddr("::1", 25, &ss), 0);
    parse_format_sockaddr((struct sockaddr *)&ss, text, sizeof(text));
    cr_assert_str_eq(text, "[::1]:25");
    cr_assert_eq(parse_sockaddr("192.0.2.1", 2525, &ss), 0);
    parse_format_sockaddr((struct sockaddr *)&ss, text, sizeof(text));
    cr_assert_str_eq(text, "192.0.2.1:2525");
    cr_assert_eq(parse_sockaddr("host.example", 25, &ss), -1);
}

/* ---- addr ---- */

static int parse_str(const char *s, addr_t *a)
{
    return addr_parse(s, strlen(s), a);
}

Test(addr, good_addresses)
{
    static const char *good[] = {
        "a@b",
        "alice@example.com",
        "Alice.Smith+tag@Example.COM",
        "\"john doe\"@example.com",
        "\"a@b\"@example.com",
        "user@[192.0.2.1]",
        "user@[IPv6:2001:db8::1]",
        "j\xc3\xb6rg@b\xc3\xbc\x63her.example",
        "!#$%&'*+-/=?^_`{|}~@example.com",
    };
    addr_t a;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_eq(parse_str(good[i], &a), 0, "%s: %s", good[i], addr_strerror(parse_str(good[i], &a)));
    cr_assert_eq(parse_str("alice@example.com", &a), 0);
    cr_assert_eq(a.local_len, 5);
    cr_assert(memcmp(a.domain, "example.com", a.domain_len) == 0);
    cr_assert_eq(parse_str("\"a@b\"@example.com", &a), 0);
    cr_assert(a.quoted);
    cr_assert_eq(a.domain_len, strlen("example.com"));
}

Test(addr, bad_addresses_have_distinct_errors)
{
    static const struct {
        const char *s;
        int err;
    } bad[] = {
        {"", ADDR_EEMPTY},
        {"alice", ADDR_ENOAT},
        {"alice@", ADDR_ENOAT},
        {"@example.com", ADDR_ELOCAL},
        {".a@example.com", ADDR_ELOCAL},
        {"a..b@example.com", ADDR_ELOCAL},
        {"a b@example.com", ADDR_ELOCAL},
        {"a@-example.com", ADDR_EDOMAIN},
        {"a@example..com", ADDR_EDOMAIN},
        {"a@exa_mple.com", ADDR_EDOMAIN},
        {"a@[300.1.1.1]", ADDR_EDOMAIN},
        {"\"unterminated@example.com", ADDR_ENOAT},
        {"a@b\xc3", ADDR_EUTF8},
        {"\xc0\x80@example.com", ADDR_EUTF8},
    };
    addr_t a;
    char longlocal[100];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(parse_str(bad[i].s, &a), bad[i].err, "'%s' gave %d", bad[i].s,
                     parse_str(bad[i].s, &a));
    memset(longlocal, 'x', 65);
    snprintf(longlocal + 65, sizeof(longlocal) - 65, "@example.com");
    cr_assert_eq(parse_str(longlocal, &a), ADDR_ELOCALLEN);
}

Test(addr, nul_bytes_are_not_address_characters)
{
    static const char local[] = "us\0er@example.com";
    static const char domain[] = "user@exa\0mple.com";
    addr_t a;

    cr_assert_eq(addr_parse(local, sizeof(local) - 1, &a), ADDR_ELOCAL);
    cr_assert_eq(addr_parse(domain, sizeof(domain) - 1, &a), ADDR_EDOMAIN);
}

Test(addr, relay_tricks)
{
    static const char *tricks[] = {"user%other.example@alias.test", "host!user@alias.test",
                                   "\"user@other\"@alias.test"};
    addr_t a;

    for (size_t i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
        cr_assert_eq(parse_str(tricks[i], &a), 0, "%s", tricks[i]);
        cr_assert(addr_is_relay_trick(&a), "%s", tricks[i]);
    }
    cr_assert_eq(parse_str("plain+tag@alias.test", &a), 0);
    cr_assert(!addr_is_relay_trick(&a));
}

Test(addr, lengths)
{
    char buf[400];
    addr_t a;

    /* 64-octet local part is the maximum. */
    memset(buf, 'l', 64);
    snprintf(buf + 64, sizeof(buf) - 64, "@example.com");
    cr_assert_eq(parse_str(buf, &a), 0);
    /* 254 octets in all is the maximum. */
    memset(buf, 'a', 64);
    buf[64] = '@';
    for (size_t i = 65; i < 254; i++)
        buf[i] = (i % 10 == 0) ? '.' : 'd';
    buf[254] = '\0';
    cr_assert_eq(parse_str(buf, &a), 0, "%s", addr_strerror(parse_str(buf, &a)));
    buf[254] = 'd';
    buf[255] = '\0';
    cr_assert_eq(parse_str(buf, &a), ADDR_ELEN);
}

Test(addr, dns_names)
{
    static const struct {
        const char *in, *out;
    } good[] = {
        {"Example.COM", "example.com"}, {"example.com.", "example.com"},
        {"_dmarc.example.com", "_dmarc.example.com"}, {"s_2024._domainkey.x", "s_2024._domainkey.x"},
        {"localhost", "localhost"},
    };
    static const char *bad[] = {"", ".", "a..b", ".a", "a...", "[192.0.2.1]", "a b.c", "ex\xc3\xa9.fr",
                                "a@b"};
    char dst[300], long_label[70], long_name[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert_eq(addr_dns_name(good[i].in, strlen(good[i].in), dst, sizeof(dst)),
                     (int)strlen(good[i].out), "%s", good[i].in);
        cr_assert_str_eq(dst, good[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(addr_dns_name(bad[i], strlen(bad[i]), dst, sizeof(dst)), -1, "%s", bad[i]);
    memset(long_label, 'a', 64);
    cr_assert_eq(addr_dns_name(long_label, 64, dst, sizeof(dst)), -1, "a 64-octet label");
    cr_assert_eq(addr_dns_name(long_label, 63, dst, sizeof(dst)), 63);
    cr_assert_eq(addr_dns_name(long_label, 63, dst, 63), -1, "no room for the NUL");
    for (size_t i = 0; i < sizeof(long_name); i++)
        long_name[i] = i % 50 == 49 ? '.' : 'x';
    cr_assert_eq(addr_dns_name(long_name, 253, dst, sizeof(dst)), 253);
    cr_assert_eq(addr_dns_name(long_name, 254, dst, sizeof(dst)), -1);
}

/* ---- htab ---- */

Test(htab, insert_lookup_remove_many)
{
    htab_t *h = htab_new(0);
    char key[32];

    for (long i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "key-%ld", i);
        cr_assert_null(htab_put(h, key, (size_t)n, (void *)(i + 1)));
    }
    cr_assert_eq(htab_count(h), 20000);
    /* Remove every third and check the rest are still found: exercises
     * backward-shift deletion across probe runs. */
    for (long i = 0; i < 20000; i += 3) {
        int n = snprintf(key, sizeof(key), "key-%ld", i);
        cr_assert_eq((long)htab_remove(h, key, (size_t)n), i + 1);
    }
    for (long i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "key-%ld", i);
        void *v = htab_get(h, key, (size_t)n);
        if (i % 3 == 0)
            cr_assert_null(v, "%s", key);
        else
            cr_assert_eq((long)v, i + 1, "%s", key);
    }
    cr_assert_null(htab_remove(h, "absent", 6));
    htab_free(h, NULL);
}

Test(htab, replace_and_iterate)
{
    htab_t *h = htab_new(4);
    size_t pos = 0, n = 0, len;
    const char *k;
    void *v;

    cr_assert_null(htab_put(h, "a", 1, "1"));
    cr_assert_str_eq(htab_put(h, "a", 1, "2"), "1");
    htab_put(h, "b\0c", 3, "3");
    cr_assert_str_eq(htab_get(h, "b\0c", 3), "3");
    cr_assert_null(htab_get(h, "b", 1));
    while (htab_next(h, &pos, &k, &len, &v))
        n++;
    cr_assert_eq(n, 2);
    htab_free(h, NULL);
}

static int freed;
static void count_free(void *p)
{
    free(p);
    freed++;
}

Test(htab, free_releases_values)
{
    htab_t *h = htab_new(0);

    htab_put(h, "x", 1, malloc(4));
    htab_put(h, "y", 1, malloc(4));
    freed = 0;
    htab_free(h, count_free);
    cr_assert_eq(freed, 2);
}

/* ---- log ---- */

Test(log, lines_are_whole_prefixed_and_sanitized)
{
    int fds[2];
    char out[512];
    ssize_t n;

    cr_assert_eq(pipe(fds), 0);
    log_init("mxfwd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
    log_set_fd(fds[1]);
    log_debug("hidden");
    log_info("1A2B3C: from=<%s> size=%d", "a@x", 1234);
    log_warning("client sent \r\nforged line");
    log_set_fd(2);
    close(fds[1]);
    n = read(fds[0], out, sizeof(out) - 1);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    close(fds[0]);
    char want[256];
    snprintf(want, sizeof(want),
             "mxfwd[%ld]: 1A2B3C: from=<a@x> size=1234\n"
             "mxfwd[%ld]: warning: client sent ??forged line\n",
             (long)getpid(), (long)getpid());
    cr_assert_str_eq(out, want);
}

/* Bytes waiting in the pipe's read end (none: 0). */
static size_t log_pending(int fd)
{
    int n = 0;

    cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
    return (size_t)n;
}

Test(log, a_batch_waits_for_its_flush_an_error_or_a_full_buffer)
{
    int fds[2];
    char out[LOG_BATCH_LINES * 64];
    ssize_t n;

    cr_assert_eq(pipe(fds), 0);
    log_init("mxfwd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
    log_set_fd(fds[1]);
    log_batch_begin();
    log_info("one");
    log_warning("two");
    cr_assert_eq(log_pending(fds[0]), 0, "held until the flush");
    log_batch_flush();
    n = read(fds[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    cr_assert(strstr(out, "]: one\n") != NULL && strstr(out, "]: warning: two\n") != NULL, "%s",
              out);
    cr_assert(strstr(out, "one") < strstr(out, "two"), "in order");
    /* An error goes out at once, with what waited before it. */
    log_info("three");
    log_error("four");
    n = read(fds[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    cr_assert(strstr(out, "]: three\n") != NULL && strstr(out, "]: error: four\n") != NULL, "%s",
              out);
    /* A full batch goes before it takes more. */
    for (int i = 0; i <= LOG_BATCH_LINES; i++)
        log_info("line %d", i);
    cr_assert_gt(log_pending(fds[0]), 0);
    log_batch_end();
    n = read(fds[0], out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    cr_assert(strstr(out, "]: line 0\n") != NULL, "%s", out);
    char last[32];
    snprintf(last, sizeof(last), "]: line %d\n", LOG_BATCH_LINES);
    cr_assert(strstr(out, last) != NULL, "the last one, at the end: %s", out);
    /* Batching over: lines go at once again. */
    log_info("five");
    cr_assert_gt(log_pending(fds[0]), 0);
    log_set_fd(2);
    close(fds[0]);
    close(fds[1]);
}

/* ---- file ---- */

Test(file, reads_whole_files_within_the_cap)
{
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300], *text = (char *)1;
    struct stat st;
    size_t len = 99;
    int fd;

    snprintf(dir, sizeof(dir), "%s/mxfwd-file-XXXXXX", tmp != NULL ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/f", dir);

    cr_assert_eq(file_read(path, 100, &text, &len, NULL), FILE_EOPEN);
    cr_assert_null(text);
    cr_assert_eq(errno, ENOENT);
    cr_assert(strstr(file_strerror(FILE_EOPEN), "cannot open: No such file") != NULL);

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "ab\0cd\n", 6), 6);
    close(fd);
    cr_assert_eq(file_read(path, 6, &text, &len, &st), 0);
    cr_assert_eq(len, 6);
    cr_assert(memcmp(text, "ab\0cd\n", 7) == 0, "NUL kept and terminated");
    cr_assert_eq(st.st_mode & 0777, 0640);
    free(text);
    cr_assert_eq(file_read(path, 5, &text, &len, NULL), FILE_ETOOBIG);
    cr_assert_null(text);
    cr_assert_eq(file_read(dir, 100, &text, &len, NULL), FILE_ENOTREG);
    cr_assert_str_eq(file_strerror(FILE_ENOTREG), "not a regular file");

    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    cr_assert_eq(file_read(path, 100, &text, &len, NULL), 0);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(text, "");
    free(text);
    unlink(path);
    rmdir(dir);
}

/* ---- heap ---- */

Test(heap, pops_in_key_order_ties_first_come_first_served)
{
    enum { N = 200 };
    heap_node_t nodes[N] = {0};
    heap_t h;
    int64_t last_key = INT64_MIN;
    uint64_t last_seq = 0;

    heap_init(&h);
    /* Keys with many repeats, inserted out of order. */
    for (int i = 0; i < N; i++)
        heap_set(&h, &nodes[i], (i * 37) % 11);
    cr_assert_eq(heap_count(&h), N);
    for (int i = 0; i < N; i++) {
        heap_node_t *m = heap_min(&h);
        cr_assert(m->key > last_key || (m->key == last_key && m->seq > last_seq));
        last_key = m->key, last_seq = m->seq;
        heap_remove(&h, m);
        cr_assert(!heap_contains(m));
    }
    cr_assert_null(heap_min(&h));
    heap_free(&h);
}

Test(heap, moving_and_removing_from_the_middle)
{
    heap_node_t a = {0}, b = {0}, c = {0}, d = {0};
    heap_t h;

    heap_init(&h);
    heap_set(&h, &a, 40);
    heap_set(&h, &b, 10);
    heap_set(&h, &c, 30);
    heap_set(&h, &d, 20);
    cr_assert_eq(heap_min(&h), &b);
    heap_set(&h, &a, 5); /* earlier */
    cr_assert_eq(heap_min(&h), &a);
    heap_set(&h, &a, 50); /* later */
    cr_assert_eq(heap_min(&h), &b);
    heap_remove(&h, &d);
    heap_remove(&h, &d); /* not in: nothing */
    cr_assert_eq(heap_count(&h), 3);
    heap_remove(&h, &b);
    cr_assert_eq(heap_min(&h), &c);
    heap_set(&h, &d, 30); /* ties with c, set later: after it */
    heap_remove(&h, &c);
    cr_assert_eq(heap_min(&h), &d);
    heap_free(&h);
    cr_assert(!heap_contains(&a) && !heap_contains(&d));
}

/* ---- stats ---- */

Test(stats, counters_are_registered_once_and_kept_in_order)
{
    stats_t *s = stats_new();
    uint64_t *conn = stats_register(s, STATS_COUNTER, "connections", NULL, NULL, "connections");
    uint64_t *relay, *spf, *size, *hops;

    /* A family declared before its first value holds its place. */
    stats_family(s, STATS_COUNTER, "rejected", "reason", "refusals by reason");
    size = stats_register(s, STATS_GAUGE, "queue_messages", NULL, NULL, "queued");
    relay = stats_register(s, STATS_COUNTER, "rejected", "reason", "relay_denied", "x");
    spf = stats_register(s, STATS_COUNTER, "rejected", "reason", "spf", "x");
    hops = stats_register(s, STATS_COUNTER, "rejected", "reason", "hops", "x");

    (*conn) += 3;
    (*relay)++;
    (*hops)++;
    *size = 7;
    /* A part registered again (after a reload) gets the same counter. */
    cr_assert_eq(stats_register(s, STATS_COUNTER, "rejected", "reason", "relay_denied", "x"),
                 relay);
    cr_assert_neq(relay, spf);
    cr_assert_eq(stats_count(s), 6);
    cr_assert_str_eq(stats_at(s, 0)->name, "connections");
    cr_assert_str_eq(stats_at(s, 1)->name, "rejected");
    cr_assert_str_eq(stats_at(s, 1)->label, "reason");
    cr_assert_null(stats_at(s, 1)->label_value, "the declaration");
    cr_assert_str_eq(stats_at(s, 2)->label_value, "relay_denied");
    cr_assert_str_eq(stats_at(s, 3)->label_value, "spf");
    cr_assert_str_eq(stats_at(s, 4)->label_value, "hops");
    cr_assert_eq(stats_at(s, 5)->kind, STATS_GAUGE);
    cr_assert_null(stats_at(s, 6));
    cr_assert_eq(stats_get(s, "connections", NULL), 3);
    cr_assert_eq(stats_get(s, "rejected", "relay_denied"), 1);
    cr_assert_eq(stats_get(s, "rejected", "hops"), 1);
    cr_assert_eq(stats_get(s, "rejected", "spf"), 0);
    cr_assert_eq(stats_get(s, "queue_messages", NULL), 7);
    cr_assert_eq(stats_get(s, "nothing", NULL), 0);
    stats_free(s);
}

static uint64_t read_twice(void *arg)
{
    return 2 * *(uint64_t *)arg;
}

Test(stats, entries_with_a_function_are_read_at_refresh)
{
    stats_t *s = stats_new();
    uint64_t source = 5;
    uint64_t *plain = stats_register(s, STATS_COUNTER, "plain", NULL, NULL, "counted");

    stats_register_fn(s, STATS_GAUGE, "age", NULL, NULL, "read", read_twice, &source);
    *plain = 1;
    cr_assert_eq(stats_get(s, "age", NULL), 0, "not read before a refresh");
    stats_refresh(s);
    cr_assert_eq(stats_get(s, "age", NULL), 10);
    cr_assert_eq(stats_get(s, "plain", NULL), 1, "plain counters are left alone");
    source = 7;
    stats_refresh(s);
    cr_assert_eq(stats_get(s, "age", NULL), 14);
    cr_assert_eq(stats_at(s, 1)->kind, STATS_GAUGE);
    cr_assert_str_eq(stats_at(s, 1)->help, "read");
    /* Detached by its argument: the last value stays, the source is not
     * read again; an entry reading something else is left attached. */
    uint64_t other = 3;
    stats_register_fn(s, STATS_GAUGE, "other", NULL, NULL, "read", read_twice, &other);
    stats_detach(s, &source);
    source = 100;
    stats_refresh(s);
    cr_assert_eq(stats_get(s, "age", NULL), 14);
    cr_assert_eq(stats_get(s, "other", NULL), 6);
    cr_assert_eq(stats_count(s), 3);
    stats_free(s);
}

/* ---- json ---- */

Test(json, strings_are_escaped_and_always_valid)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"line\r\n\t", 7, "\"line\\r\\n\\t\""},
        {"\x01x", 2, "\"\\u0001x\""},
        {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
        {"bad\xff\xc3", 5, "\"bad\\ufffd\\ufffd\""},
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""}, /* a surrogate in UTF-8 */
        {"nul\0x", 5, "\"nul\\u0000x\""},
    };
    buf_t b;

    buf_init(&b, 1024);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        cr_assert_eq(json_strn(&b, cases[i].in, cases[i].len), 0);
        cr_assert_eq(buf_used(&b), strlen(cases[i].out), "case %zu: %.*s", i, (int)buf_used(&b),
                     buf_ptr(&b));
        cr_assert(memcmp(buf_ptr(&b), cases[i].out, buf_used(&b)) == 0, "case %zu", i);
    }
    buf_free(&b);
}

Test(json, written_strings_read_back)
{
    static const char in[] = "a\"\\\n\x02 caf\xc3\xa9 \xf0\x9f\x93\xa7";
    json_t *v;
    buf_t b;

    buf_init(&b, 1024);
    json_strn(&b, in, sizeof(in) - 1);
    cr_assert_eq(json_parse(buf_ptr(&b), buf_used(&b), &v), 0);
    cr_assert_eq(v->type, JSON_STRING);
    cr_assert_eq(v->len, sizeof(in) - 1);
    cr_assert(memcmp(v->string, in, v->len) == 0);
    json_free(v);
    buf_free(&b);
}

Test(json, documents_parse_into_trees_in_document_order)
{
    static const char doc[] =
        " {\"ok\": true, \"n\": -12.5e1, \"list\": [1, \"two\", null, false, {}],\n"
        "  \"z\": \"\\u00e9\\ud83d\\udce7\", \"a\": [\"\"]} ";
    json_t *v;
    const json_t *list;

    cr_assert_eq(json_parse(doc, sizeof(doc) - 1, &v), 0);
    cr_assert_eq(v->type, JSON_OBJECT);
    cr_assert_eq(v->n, 5);
    cr_assert_str_eq(v->keys[0], "ok");
    cr_assert_str_eq(v->keys[3], "z"); /* not sorted */
    cr_assert(json_get(v, "ok")->boolean);
    cr_assert_float_eq(json_get_num(v, "n", 0), -125.0, 1e-9);
    cr_assert_str_eq(json_get_str(v, "z", ""), "\xc3\xa9\xf0\x9f\x93\xa7");
    cr_assert_str_eq(json_get_str(v, "missing", "dflt"), "dflt");
    cr_assert_str_eq(json_get_str(v, "n", "not a string"), "not a string");
    list = json_get(v, "list");
    cr_assert_eq(list->type, JSON_ARRAY);
    cr_assert_eq(list->n, 5);
    cr_assert_eq(list->items[2]->type, JSON_NULL);
    cr_assert_eq(list->items[3]->type, JSON_BOOL);
    cr_assert_eq(list->items[4]->type, JSON_OBJECT);
    cr_assert_null(json_get(list, "x"));
    cr_assert_str_eq(json_get(v, "a")->items[0]->string, "", "an empty string");
    json_free(v);
}

Test(json, bad_documents_are_refused)
{
    static const char *const bad[] = {
        "", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", "1e", "tru", "\"open",
        "\"\\x\"", "\"\\u12g4\"", "\"tab\tin string\"", "[1] [2]", "{1:2}", "nul",
    };
    char deep[200];
    json_t *v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(json_parse(bad[i], strlen(bad[i]), &v), JSON_ESYNTAX, "%s", bad[i]);
        cr_assert_null(v);
    }
    memset(deep, '[', sizeof(deep));
    cr_assert_eq(json_parse(deep, sizeof(deep), &v), JSON_EDEPTH);
    cr_assert_null(v);
}

/* ---- str_date ---- */

Test(str, dates_are_rfc5322_in_utc)
{
    char d[STR_DATE_SIZE];

    str_date(0, d, sizeof(d));
    cr_assert_str_eq(d, "Thu, 1 Jan 1970 00:00:00 +0000");
    str_date(1795800000, d, sizeof(d));
    cr_assert_str_eq(d, "Fri, 27 Nov 2026 17:20:00 +0000");
}

Test(file, mkdirs_creates_missing_parents_private)
{
    char root[] = "/tmp/mxfwd-mkdirs-XXXXXX", path[256], file[128];
    struct stat st;
    int fd;

    cr_assert_not_null(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/a/b/c", root);
    cr_assert_eq(file_mkdirs(path, 0700), 0);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(file_mkdirs(path, 0700), 0, "existing directories are fine");
    /* A file in the way is an error. */
    snprintf(file, sizeof(file), "%s/a/b/c/f", root);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    close(fd);
    snprintf(path, sizeof(path), "%s/g", file);
    cr_assert_eq(file_mkdirs(path, 0700), -ENOTDIR);
    unlink(file);
    snprintf(path, sizeof(path), "%s/a/b/c", root);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/a/b", root);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/a", root);
    rmdir(path);
    rmdir(root);
}

/* ---- diag ---- */

static char diag_seen[4][256];
static int diag_nseen;

static void diag_record(void *ctx, const char *message)
{
    (void)ctx;
    if (diag_nseen < 4)
        snprintf(diag_seen[diag_nseen], sizeof(diag_seen[0]), "%s", message);
    diag_nseen++;
}

Test(diag, errors_and_warnings_are_counted_apart)
{
    diag_t d = {.path = "f.conf", .on_error = diag_record, .on_warning = diag_record};

    diag_nseen = 0;
    diag_error(&d, 3, "bad %s", "value");
    diag_warning(&d, 0, "mode %o", 0644);
    diag_error(&d, 0, "cannot open");
    cr_assert_eq(d.errors, 2);
    cr_assert_eq(d.warnings, 1);
    cr_assert_str_eq(diag_seen[0], "f.conf:3: bad value");
    cr_assert_str_eq(diag_seen[1], "f.conf: warning: mode 644");
    cr_assert_str_eq(diag_seen[2], "f.conf: cannot open");
    d.on_warning = NULL;
    diag_warning(&d, 1, "dropped");
    cr_assert_eq(diag_nseen, 3);
    cr_assert_eq(d.warnings, 2, "a dropped warning is counted");
    cr_assert_eq(d.errors, 2);
}
