/*
 * The outbound client's protocol syntax: replies (whole, split anywhere,
 * malformed), enhanced status codes, EHLO keywords, the text kept,
 * commands, addresses and dot-stuffing.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_proto.h"

/* Parse all of s as one reply, fed in pieces of step bytes (0: at once).
 * Returns the last status. */
static int parse(client_reply_t *r, const char *s, bool ehlo, size_t step)
{
    char buf[8192];
    size_t have = 0, pos = 0, len = strlen(s), used;
    int rc = CLIENT_REPLY_MORE;

    client_reply_init(r, ehlo);
    cr_assert_lt(len, sizeof(buf));
    while (pos < len) {
        size_t n = step == 0 || len - pos < step ? len - pos : step;
        memcpy(buf + have, s + pos, n);
        have += n;
        pos += n;
        rc = client_reply_parse(r, buf, have, &used);
        cr_assert_leq(used, have);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc != CLIENT_REPLY_MORE)
            break;
    }
    return rc;
}

Test(reply, single_line)
{
    client_reply_t r;

    cr_assert_eq(parse(&r, "250 2.0.0 Ok: queued as 4XyZ\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_eq(r.code, 250);
    cr_assert_str_eq(r.dsn, "2.0.0");
    cr_assert_str_eq(r.text, "250 2.0.0 Ok: queued as 4XyZ");
    cr_assert_eq(r.len, strlen(r.text));
    cr_assert_eq(r.nlines, 1);
}

Test(reply, multiline_joined_as_received)
{
    client_reply_t r;
    const char *s = "550-5.1.1 The account\r\n550-5.1.1 does not exist.\r\n550 5.1.1 See x\r\n";

    for (size_t step = 0; step <= 7; step++) {
        cr_assert_eq(parse(&r, s, false, step), CLIENT_REPLY_DONE, "step %zu", step);
        cr_assert_eq(r.code, 550);
        cr_assert_str_eq(r.dsn, "5.1.1");
        cr_assert_str_eq(r.text, "550-5.1.1 The account 550-5.1.1 does not exist. 550 5.1.1 See x");
        cr_assert_eq(r.nlines, 3);
    }
}

Test(reply, stops_after_the_last_line)
{
    client_reply_t r;
    const char *s = "250-a\r\n250 b\r\n354 go\r\n";
    size_t used;

    client_reply_init(&r, false);
    cr_assert_eq(client_reply_parse(&r, s, strlen(s), &used), CLIENT_REPLY_DONE);
    cr_assert_eq(used, 14);
    client_reply_init(&r, false);
    cr_assert_eq(client_reply_parse(&r, s + used, strlen(s) - used, &used), CLIENT_REPLY_DONE);
    cr_assert_eq(r.code, 354);
}

Test(reply, incomplete_line_waits)
{
    client_reply_t r;
    size_t used;

    client_reply_init(&r, false);
    cr_assert_eq(client_reply_parse(&r, "250-a\r\n250 b", 12, &used), CLIENT_REPLY_MORE);
    cr_assert_eq(used, 7);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(client_reply_parse(&r, "250 b\r\n", 7, &used), CLIENT_REPLY_DONE);
    cr_assert_str_eq(r.text, "250-a 250 b");
}

Test(reply, lenient_forms)
{
    client_reply_t r;

    /* A bare LF ends a line; a code alone is a reply (RFC 5321 4.2). */
    cr_assert_eq(parse(&r, "220 ready\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_str_eq(r.text, "220 ready");
    cr_assert_eq(parse(&r, "250\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_eq(r.code, 250);
    cr_assert_str_eq(r.dsn, "");
    cr_assert_eq(parse(&r, "250-\r\n250 \r\n", false, 0), CLIENT_REPLY_DONE);
    /* The last line's code counts. */
    cr_assert_eq(parse(&r, "250-x\r\n451 y\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_eq(r.code, 451);
}

Test(reply, malformed)
{
    static const char *bad[] = {
        "\r\n",           "25\r\n",     "abc def\r\n", "650 x\r\n",  "150 x\r\n",
        "250x\r\n",       "2500 x\r\n", "25a x\r\n",   " 250 x\r\n", "250-a\r\nbogus\r\n",
        "250\t2.0.0\r\n",
    };
    client_reply_t r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(parse(&r, bad[i], false, 0), CLIENT_REPLY_EBAD, "%s", bad[i]);
}

Test(reply, too_many_lines)
{
    client_reply_t r;
    size_t used;
    int rc = CLIENT_REPLY_MORE;

    client_reply_init(&r, false);
    for (int i = 0; i <= CLIENT_REPLY_LINES_MAX && rc == CLIENT_REPLY_MORE; i++)
        rc = client_reply_parse(&r, "250-more\r\n", 10, &used);
    cr_assert_eq(rc, CLIENT_REPLY_ELONG);
}

Test(reply, enhanced_status_codes)
{
    static const struct {
        const char *reply, *dsn, *derived;
    } cases[] = {
        {"550 5.1.1 <x>: unknown\r\n", "5.1.1", "5.1.1"},
        {"550  5.7.1 two spaces\r\n", "5.7.1", "5.7.1"},
        {"250 2.0.0\r\n", "2.0.0", "2.0.0"},
        {"451 4.123.456 wide\r\n", "4.123.456", "4.123.456"},
        {"550 4.1.1 wrong class\r\n", "", "5.0.0"},
        {"550 5.1234.1 too wide\r\n", "", "5.0.0"},
        {"550 5.1.1x glued\r\n", "", "5.0.0"},
        {"550 5.1 short\r\n", "", "5.0.0"},
        {"450 no code\r\n", "", "4.0.0"},
        {"250 ok\r\n", "", "2.0.0"},
        {"354 go ahead\r\n", "", "5.0.0"},
        {"550-5.1.1 first\r\n550 5.2.2 last wins\r\n", "5.2.2", "5.2.2"},
        {"550-5.1.1 first\r\n550 none on the last\r\n", "5.1.1", "5.1.1"},
    };
    client_reply_t r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(parse(&r, cases[i].reply, false, 0), CLIENT_REPLY_DONE);
        cr_assert_str_eq(r.dsn, cases[i].dsn, "%s", cases[i].reply);
        cr_assert_str_eq(client_reply_dsn(&r), cases[i].derived, "%s", cases[i].reply);
    }
}

Test(reply, text_is_printable)
{
    client_reply_t r;

    cr_assert_eq(parse(&r, "550 a\tb\001c\177d\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_str_eq(r.text, "550 a?b?c?d");
    /* UTF-8 is kept; invalid sequences are not. */
    cr_assert_eq(parse(&r, "550 M\xc3\xbcller \xff\xc3(\xe2\x82\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_str_eq(r.text, "550 M\xc3\xbcller ?"
                             "?(?"
                             "?");
    /* An embedded CR is no line end. */
    cr_assert_eq(parse(&r, "550 a\rb\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_str_eq(r.text, "550 a?b");
}

Test(reply, text_cut_to_fit_at_a_character)
{
    char line[2100];
    client_reply_t r;
    size_t pos;

    pos = (size_t)snprintf(line, sizeof(line), "550 ");
    while (pos < 2000) {
        memcpy(line + pos, "\xe2\x82\xac", 3); /* the euro sign */
        pos += 3;
    }
    memcpy(line + pos, "\r\n", 3);
    cr_assert_eq(parse(&r, line, false, 0), CLIENT_REPLY_DONE);
    cr_assert_lt(r.len, DELIVERY_REPLY_MAX);
    cr_assert_eq(strlen(r.text), r.len);
    cr_assert_eq((r.len - 4) % 3, 0, "a character was cut");
    cr_assert_geq(r.len, DELIVERY_REPLY_MAX - 4);
}

Test(reply, ehlo_keywords)
{
    client_reply_t r;
    char host[64];
    const char *s = "250-mx.example.com Hello [127.0.0.1]\r\n"
                    "250-pipelining\r\n"
                    "250-SIZE 1000\r\n"
                    "250-8BITMIME\r\n"
                    "250-STARTTLS\r\n"
                    "250-SMTPUTF8\r\n"
                    "250-DSN\r\n"
                    "250-AUTH PLAIN LOGIN\r\n"
                    "250 ENHANCEDSTATUSCODES\r\n";

    cr_assert_eq(parse(&r, s, true, 3), CLIENT_REPLY_DONE);
    cr_assert_eq(r.ext, CLIENT_EXT_PIPELINING | CLIENT_EXT_SIZE | CLIENT_EXT_8BITMIME |
                            CLIENT_EXT_STARTTLS | CLIENT_EXT_SMTPUTF8 |
                            CLIENT_EXT_ENHANCEDSTATUSCODES | CLIENT_EXT_DSN);
    cr_assert_eq(r.size_limit, 1000);
    client_reply_host(&r, host, sizeof(host));
    cr_assert_str_eq(host, "mx.example.com");

    /* The first line is the server's name, not a keyword. */
    cr_assert_eq(parse(&r, "250-PIPELINING\r\n250 8BITMIME\r\n", true, 0), CLIENT_REPLY_DONE);
    cr_assert_eq(r.ext, CLIENT_EXT_8BITMIME);
    /* Not parsed unless asked. */
    cr_assert_eq(parse(&r, "250-x\r\n250 PIPELINING\r\n", false, 0), CLIENT_REPLY_DONE);
    cr_assert_eq(r.ext, 0);
    /* A one-line EHLO reply offers nothing. */
    cr_assert_eq(parse(&r, "250 mx.example.com\r\n", true, 0), CLIENT_REPLY_DONE);
    cr_assert_eq(r.ext, 0);
}

Test(reply, size_argument)
{
    static const struct {
        const char *line;
        uint64_t limit;
    } cases[] = {
        {"SIZE", 0},
        {"SIZE 0", 0},
        {"SIZE 52428800", 52428800},
        {"size  7", 7},
        {"SIZE 12x", 0},
        {"SIZE 99999999999999999999999", 0},
        {"SIZE 18446744073709551615", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t limit = 12345;
        cr_assert_eq(client_ehlo_keyword(cases[i].line, strlen(cases[i].line), &limit),
                     CLIENT_EXT_SIZE, "%s", cases[i].line);
        cr_assert_eq(limit, cases[i].limit, "%s", cases[i].line);
    }
    {
        uint64_t limit = 5;
        cr_assert_eq(client_ehlo_keyword("SIZEX 9", 7, &limit), 0);
        cr_assert_eq(client_ehlo_keyword("PIPELININGX", 11, &limit), 0);
        cr_assert_eq(limit, 5);
    }
}

Test(reply, host)
{
    client_reply_t r;
    char host[8];

    parse(&r, "220 mx.test ESMTP\r\n", false, 0);
    client_reply_host(&r, host, sizeof(host));
    cr_assert_str_eq(host, "mx.test");
    parse(&r, "220 a-rather-long-name\r\n", false, 0);
    client_reply_host(&r, host, sizeof(host));
    cr_assert_str_eq(host, "a-rathe");
    parse(&r, "220\r\n", false, 0);
    client_reply_host(&r, host, sizeof(host));
    cr_assert_str_eq(host, "");
}

Test(commands, mail_and_rcpt)
{
    buf_t b;
    client_mail_params_t none = {0}, all = {.size = 4096, .body_8bitmime = true, .smtputf8 = true};

    buf_init(&b, 1000);
    cr_assert_eq(client_mail_cmd(&b, "a@b.example", &none), 0);
    cr_assert_eq(client_mail_cmd(&b, "", &all), 0);
    cr_assert_eq(client_rcpt_cmd(&b, "x@y.example", NULL), 0);
    cr_assert_eq(buf_used(&b), strlen("MAIL FROM:<a@b.example>\r\n"
                                      "MAIL FROM:<> SIZE=4096 BODY=8BITMIME SMTPUTF8\r\n"
                                      "RCPT TO:<x@y.example>\r\n"));
    cr_assert_eq(memcmp(buf_ptr(&b),
                        "MAIL FROM:<a@b.example>\r\n"
                        "MAIL FROM:<> SIZE=4096 BODY=8BITMIME SMTPUTF8\r\n"
                        "RCPT TO:<x@y.example>\r\n",
                        buf_used(&b)),
                 0);
    buf_free(&b);

    /* All or nothing when the buffer is full. */
    buf_init(&b, 30);
    cr_assert_eq(client_mail_cmd(&b, "a@b.example", &all), BUF_EFULL);
    cr_assert_eq(buf_used(&b), 0);
    buf_free(&b);
}

Test(commands, dsn_parameters_are_xtext)
{
    buf_t b;
    client_mail_params_t mail = {.ret = DELIVERY_RET_HDRS, .envid = "Q+1 =x"};
    client_rcpt_params_t rcpt = {DELIVERY_NOTIFY_SUCCESS | DELIVERY_NOTIFY_DELAY,
                                 "rfc822;a+b=c@alias.test"};
    client_rcpt_params_t never = {DELIVERY_NOTIFY_NEVER, NULL};
    const char *want = "MAIL FROM:<a@b.example> RET=HDRS ENVID=Q+2B1+20+3Dx\r\n"
                       "RCPT TO:<x@y.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb+3Dc@alias.test\r\n"
                       "RCPT TO:<z@y.example> NOTIFY=NEVER\r\n";

    buf_init(&b, 1000);
    cr_assert_eq(client_mail_cmd(&b, "a@b.example", &mail), 0);
    cr_assert_eq(client_rcpt_cmd(&b, "x@y.example", &rcpt), 0);
    cr_assert_eq(client_rcpt_cmd(&b, "z@y.example", &never), 0);
    cr_assert_eq(buf_used(&b), strlen(want), "%.*s", (int)buf_used(&b), buf_ptr(&b));
    cr_assert_eq(memcmp(buf_ptr(&b), want, strlen(want)), 0);
    buf_free(&b);
}

Test(commands, addresses)
{
    cr_assert(client_addr_ok("a@b.example", false));
    cr_assert(client_addr_ok("SRS0=HHHH=TT=x.example=u@fwd.test", false));
    cr_assert(client_addr_ok("\xc3\xbc@b.example", false));
    cr_assert(client_addr_ok("", true));
    cr_assert_not(client_addr_ok("", false));
    cr_assert_not(client_addr_ok("a@b.example>\r\nRCPT TO:<evil@x", false));
    cr_assert_not(client_addr_ok("a\r\n@b.example", false));
    cr_assert_not(client_addr_ok("no-at-sign", false));
    cr_assert_not(client_addr_ok("a@b..example", false));
}

/* Stuff in pieces of step bytes (0: at once) and end. */
static char *stuff(const char *in, size_t len, size_t step, size_t *outlen)
{
    client_stuff_t st;
    buf_t b;
    char *out;

    buf_init(&b, 1 << 20);
    client_stuff_init(&st);
    for (size_t pos = 0; pos < len;) {
        size_t n = step == 0 || len - pos < step ? len - pos : step;
        cr_assert_eq(client_stuff(&st, in + pos, n, &b), 0);
        pos += n;
    }
    cr_assert_eq(client_stuff_end(&st, &b), 0);
    *outlen = buf_used(&b);
    out = malloc(*outlen + 1);
    memcpy(out, buf_ptr(&b), *outlen);
    out[*outlen] = '\0';
    buf_free(&b);
    return out;
}

Test(stuff, table)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ".\r\n"},
        {"a", "a\r\n.\r\n"},
        {"a\r\n", "a\r\n.\r\n"},
        {".", "..\r\n.\r\n"},
        {".\r\n", "..\r\n.\r\n"},
        {"..\r\n", "...\r\n.\r\n"},
        {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        {"a\r\n.b\r\n.", "a\r\n..b\r\n..\r\n.\r\n"},
        {"a. b\r\n", "a. b\r\n.\r\n"},
        {"\r\n\r\n.\r\n", "\r\n\r\n..\r\n.\r\n"},
        /* A bare LF goes out as CRLF; a bare CR stays inside its line. */
        {"a\nb\n", "a\r\nb\r\n.\r\n"},
        {"a\n.\n", "a\r\n..\r\n.\r\n"},
        {"\n", "\r\n.\r\n"},
        {"a\rb\r\n", "a\rb\r\n.\r\n"},
        {"a\r", "a\r\n.\r\n"},
        {"a\r.\r\n", "a\r.\r\n.\r\n"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t step = 0; step <= 3; step++) {
            size_t n;
            char *out = stuff(cases[i].in, strlen(cases[i].in), step, &n);
            cr_assert_eq(n, strlen(cases[i].out), "case %zu step %zu", i, step);
            cr_assert_eq(memcmp(out, cases[i].out, n), 0, "case %zu step %zu: %s", i, step, out);
            free(out);
        }
    }
}

/* Random CRLF-only messages: unstuffing the output gives them back, and
 * nothing before the end can end the message. */
Test(stuff, round_trip)
{
    static const char alphabet[] = {'.', '.', 'a', '\r', '\n', ' '};
    unsigned seed = 12345;

    for (int round = 0; round < 300; round++) {
        char in[400], back[800];
        size_t len = 0, n, blen = 0;
        char *out;

        seed = seed * 1103515245u + 12345u;
        size_t want = (seed >> 8) % sizeof(in);
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            char c = alphabet[(seed >> 16) % sizeof(alphabet)];
            if (c == '\r' || c == '\n') {
                if (len + 2 > sizeof(in))
                    break;
                in[len++] = '\r';
                in[len++] = '\n';
            } else {
                in[len++] = c;
            }
        }
        out = stuff(in, len, 1 + (size_t)(seed % 7), &n);
        cr_assert_geq(n, 3);
        cr_assert_eq(memcmp(out + n - 3, ".\r\n", 3), 0);
        /* The only "CRLF.CRLF" is the end. */
        {
            char *hit = memmem(out, n, "\r\n.\r\n", 5);
            cr_assert(hit == NULL || hit == out + n - 5);
        }
        /* Unstuff line by line, without the final ".\r\n". */
        for (size_t p = 0; p < n - 3;) {
            char *eol = memmem(out + p, n - 3 - p, "\r\n", 2);
            size_t l = eol != NULL ? (size_t)(eol - (out + p)) + 2 : n - 3 - p;
            size_t skip = out[p] == '.' ? 1 : 0;
            memcpy(back + blen, out + p + skip, l - skip);
            blen += l - skip;
            p += l;
        }
        if (len > 0 && !(len >= 2 && in[len - 2] == '\r' && in[len - 1] == '\n')) {
            cr_assert_eq(blen, len + 2);
            blen -= 2;
        }
        cr_assert_eq(blen, len, "round %d", round);
        cr_assert_eq(memcmp(back, in, len), 0, "round %d", round);
        free(out);
    }
}
