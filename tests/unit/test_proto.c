/* Unit tests for smtpd/proto.c: command lines, verbs, paths, parameters,
 * replies, the Received: header. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- command lines ---- */

Test(proto_line, crlf_line)
{
    proto_line_t l;

    cr_assert_eq(proto_next_line(S("NOOP\r\nQUIT\r\n"), 512, &l), PROTO_LINE_OK);
    cr_assert_eq(l.len, 4);
    cr_assert_eq(memcmp(l.text, "NOOP", 4), 0);
    cr_assert_eq(l.consumed, 6);
}

Test(proto_line, partial_until_lf)
{
    proto_line_t l;

    cr_assert_eq(proto_next_line(S("NOOP"), 512, &l), PROTO_LINE_PARTIAL);
    cr_assert_eq(proto_next_line(S("NOOP\r"), 512, &l), PROTO_LINE_PARTIAL);
    cr_assert_eq(proto_next_line(S(""), 512, &l), PROTO_LINE_PARTIAL);
}

Test(proto_line, bare_lf_and_bare_cr)
{
    proto_line_t l;

    cr_assert_eq(proto_next_line(S("NOOP\nQUIT\r\n"), 512, &l), PROTO_LINE_BARE);
    cr_assert_eq(l.consumed, 5);
    /* A CR inside the line makes it bare, and the line goes on to the LF:
     * what follows the CR is not a command of its own. */
    cr_assert_eq(proto_next_line(S("NOOP\rQUIT\r\n"), 512, &l), PROTO_LINE_BARE);
    cr_assert_eq(l.consumed, 11);
    cr_assert_eq(proto_next_line(S("\n"), 512, &l), PROTO_LINE_BARE);
    cr_assert_eq(proto_next_line(S("\r\n"), 512, &l), PROTO_LINE_OK);
    cr_assert_eq(l.len, 0);
}

Test(proto_line, limit_counts_crlf)
{
    char line[600];
    proto_line_t l;

    /* 510 octets and CRLF is 512: allowed; 511 and CRLF is not. */
    memset(line, 'a', sizeof(line));
    memcpy(line + 510, "\r\n", 2);
    cr_assert_eq(proto_next_line(line, 512, 512, &l), PROTO_LINE_OK);
    cr_assert_eq(l.len, 510);
    memset(line, 'a', sizeof(line));
    memcpy(line + 511, "\r\n", 2);
    cr_assert_eq(proto_next_line(line, 513, 512, &l), PROTO_LINE_LONG);
    cr_assert_eq(l.consumed, 512);
    /* Not yet an LF, and already past the limit. */
    memset(line, 'a', sizeof(line));
    cr_assert_eq(proto_next_line(line, 511, 512, &l), PROTO_LINE_PARTIAL);
    cr_assert_eq(proto_next_line(line, 512, 512, &l), PROTO_LINE_LONG);
}

Test(proto_line, skip_to_lf)
{
    bool done;

    cr_assert_eq(proto_skip_line(S("aaaa"), &done), 4);
    cr_assert_not(done);
    cr_assert_eq(proto_skip_line(S("aa\r\nNOOP\r\n"), &done), 4);
    cr_assert(done);
}

/* ---- verbs ---- */

Test(proto_cmd, verbs_and_arguments)
{
    proto_cmd_t c;

    proto_parse_command(S("ehlo client.test"), &c);
    cr_assert_eq(c.verb, PROTO_EHLO);
    cr_assert_eq(c.arg_len, 11);
    cr_assert_eq(memcmp(c.arg, "client.test", 11), 0);
    proto_parse_command(S("MAIL FROM:<a@b>  SIZE=10  "), &c);
    cr_assert_eq(c.verb, PROTO_MAIL);
    cr_assert_eq(c.arg_len, strlen("FROM:<a@b>  SIZE=10"));
    proto_parse_command(S("StartTLS"), &c);
    cr_assert_eq(c.verb, PROTO_STARTTLS);
    cr_assert_eq(c.arg_len, 0);
    proto_parse_command(S("DATAX"), &c);
    cr_assert_eq(c.verb, PROTO_UNKNOWN);
    proto_parse_command(S(""), &c);
    cr_assert_eq(c.verb, PROTO_UNKNOWN);
    proto_parse_command(S("GET / HTTP/1.1"), &c);
    cr_assert_eq(c.verb, PROTO_HTTP);
    proto_parse_command(S("get / HTTP/1.1"), &c);
    cr_assert_eq(c.verb, PROTO_UNKNOWN, "HTTP methods are upper case");
    cr_assert_str_eq(proto_verb_name(PROTO_RCPT), "RCPT");
}

/* ---- MAIL, RCPT ---- */

Test(proto_mail, paths)
{
    proto_mail_t m;

    cr_assert_eq(proto_parse_mail(S("FROM:<a@b.test>"), &m), 0);
    cr_assert_eq(m.path.addr_len, 8);
    cr_assert_eq(memcmp(m.path.addr, "a@b.test", 8), 0);
    cr_assert_eq(proto_parse_mail(S("from:<>"), &m), 0);
    cr_assert_eq(m.path.addr_len, 0);
    cr_assert_eq(proto_parse_mail(S("FROM: <a@b.test>"), &m), 0,
                 "a space after the colon is tolerated");
    cr_assert_eq(proto_parse_mail(S("FROM:<\"x>y\"@b.test>"), &m), 0);
    cr_assert_eq(m.path.addr_len, 12);
    cr_assert_eq(proto_parse_mail(S("FROM:<@r1.test,@r2.test:a@b.test>"), &m), 0);
    cr_assert(m.path.source_route);
    cr_assert_eq(m.path.addr_len, 8);
}

Test(proto_mail, path_errors)
{
    proto_mail_t m;

    cr_assert_eq(proto_parse_mail(S("FROM:a@b.test"), &m), PROTO_ESYNTAX);
    cr_assert_eq(proto_parse_mail(S("FROM:<a@b.test"), &m), PROTO_ESYNTAX);
    cr_assert_eq(proto_parse_mail(S("TO:<a@b.test>"), &m), PROTO_ESYNTAX);
    cr_assert_eq(proto_parse_mail(S("FROM:<a@b.test>x"), &m), PROTO_ESYNTAX);
    cr_assert_eq(proto_parse_mail(S("FROM:<a@>"), &m), PROTO_EADDR);
    cr_assert_eq(proto_parse_mail(S("FROM:<a..b@c.test>"), &m), PROTO_EADDR);
    cr_assert_eq(proto_parse_mail(S("FROM:<postmaster>"), &m), PROTO_EADDR);
    cr_assert_eq(proto_parse_mail(S("FROM:<@bad..route:a@b.test>"), &m), PROTO_EADDR);
    cr_assert_eq(proto_parse_mail(S("FROM:<@r.test:>"), &m), PROTO_EADDR);
}

Test(proto_mail, parameters)
{
    proto_mail_t m;

    cr_assert_eq(proto_parse_mail(S("FROM:<a@b.test> SIZE=1000 BODY=8BITMIME SMTPUTF8"), &m), 0);
    cr_assert(m.has_size);
    cr_assert_eq(m.size, 1000);
    cr_assert_eq(m.body, PROTO_BODY_8BITMIME);
    cr_assert(m.smtputf8);
    cr_assert_eq(proto_parse_mail(S("FROM:<> body=7bit size=0"), &m), 0);
    cr_assert_eq(m.body, PROTO_BODY_7BIT);
    /* Saturates rather than wraps. */
    cr_assert_eq(proto_parse_mail(S("FROM:<> SIZE=99999999999999999999"), &m), 0);
    cr_assert_eq(m.size, UINT64_MAX);
    cr_assert_eq(proto_parse_mail(S("FROM:<> SIZE=999999999999999999999"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> SIZE=12x"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> SIZE="), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> SIZE"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> SIZE=1 SIZE=2"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> SMTPUTF8=yes"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> BODY=BINARYMIME"), &m), PROTO_EPARAM);
    cr_assert_eq(proto_parse_mail(S("FROM:<> RET=BODY"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> AUTH=<>"), &m), PROTO_EPARAM);
    cr_assert_eq(proto_parse_mail(S("FROM:<> -X=1"), &m), PROTO_ESYNTAX);
    cr_assert_eq(proto_parse_mail(S("FROM:<> X=a=b"), &m), PROTO_EVALUE);
}

Test(proto_rcpt, paths)
{
    proto_path_t p;
    proto_rcpt_dsn_t d;

    cr_assert_eq(proto_parse_rcpt(S("TO:<alice@alias.test>"), &p, &d), 0);
    cr_assert_eq(p.addr_len, 16);
    cr_assert_not(p.postmaster);
    cr_assert_eq(proto_parse_rcpt(S("to:<Postmaster>"), &p, &d), 0);
    cr_assert(p.postmaster);
    cr_assert_eq(proto_parse_rcpt(S("TO:<>"), &p, &d), PROTO_ENULLRCPT);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> XNOTIFY=NEVER"), &p, &d), PROTO_EPARAM);
    cr_assert_eq(proto_parse_rcpt(S("TO:<@hop.test:a@b.test>"), &p, &d), 0);
    cr_assert(p.source_route);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a b@c.test>"), &p, &d), PROTO_EADDR);
    cr_assert_eq(proto_parse_rcpt(S("FROM:<a@b.test>"), &p, &d), PROTO_ESYNTAX);
}

Test(proto_mail, dsn_parameters)
{
    proto_mail_t m;

    cr_assert_eq(proto_parse_mail(S("FROM:<a@b.test> RET=hdrs ENVID=QQ314159+2Bx"), &m), 0);
    cr_assert_eq(m.ret, PROTO_RET_HDRS);
    cr_assert_str_eq(m.envid, "QQ314159+x");
    cr_assert_eq(proto_parse_mail(S("FROM:<a@b.test> RET=FULL"), &m), 0);
    cr_assert_eq(m.ret, PROTO_RET_FULL);
    cr_assert_str_eq(m.envid, "");
    cr_assert_eq(proto_parse_mail(S("FROM:<> RET=FULL RET=HDRS"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> RET"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> ENVID=a+2"), &m), PROTO_EVALUE);
    cr_assert_eq(proto_parse_mail(S("FROM:<> ENVID=a+0Ab"), &m), PROTO_EVALUE, "a CR or LF");
    cr_assert_eq(proto_parse_mail(S("FROM:<> ENVID=x ENVID=y"), &m), PROTO_EVALUE);
    /* 100 octets decoded, no more (RFC 3461 4.4). */
    cr_assert_eq(proto_parse_mail(S("FROM:<> ENVID=0123456789012345678901234567890123456789"
                                    "012345678901234567890123456789012345678901234567890123456789"),
                                  &m),
                 0);
    cr_assert_eq(proto_parse_mail(S("FROM:<> ENVID=0123456789012345678901234567890123456789"
                                    "0123456789012345678901234567890123456789012345678901234567890"),
                                  &m),
                 PROTO_EVALUE);
}

Test(proto_rcpt, dsn_parameters)
{
    proto_path_t p;
    proto_rcpt_dsn_t d;
    char s[64];

    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> NOTIFY=success,DELAY ORCPT=rfc822;a+2Bx@alias.test"),
                                  &p, &d),
                 0);
    cr_assert_eq(d.notify, PROTO_NOTIFY_SUCCESS | PROTO_NOTIFY_DELAY);
    cr_assert_str_eq(d.orcpt, "rfc822;a+x@alias.test");
    proto_notify_str(d.notify, s, sizeof(s));
    cr_assert_str_eq(s, "SUCCESS,DELAY");
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> NOTIFY=NEVER"), &p, &d), 0);
    cr_assert_eq(d.notify, PROTO_NOTIFY_NEVER);
    cr_assert_str_eq(d.orcpt, "");
    proto_notify_str(d.notify, s, sizeof(s));
    cr_assert_str_eq(s, "NEVER");
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> NOTIFY=NEVER,FAILURE"), &p, &d), PROTO_EVALUE);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> NOTIFY=FAILURE,FAILURE"), &p, &d),
                 PROTO_EVALUE);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> NOTIFY=FAILURE,"), &p, &d), PROTO_EVALUE);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> NOTIFY=SOMETIMES"), &p, &d), PROTO_EVALUE);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> ORCPT=a@b.test"), &p, &d), PROTO_EVALUE);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> ORCPT=rfc 822;a@b.test"), &p, &d), PROTO_EVALUE);
    cr_assert_eq(proto_parse_rcpt(S("TO:<a@b.test> ORCPT=rfc822;"), &p, &d), PROTO_EVALUE);
}

Test(proto_helo, words)
{
    cr_assert(proto_helo_valid(S("client.test")));
    cr_assert(proto_helo_valid(S("[192.0.2.1]")));
    cr_assert_not(proto_helo_valid(S("two words")));
    cr_assert_not(proto_helo_valid(S("")));
    cr_assert_not(proto_helo_valid(S("caf\xc3\xa9")));
    cr_assert_not(proto_helo_valid(S("a\x01")));
}

/* ---- replies ---- */

static const char *reply_text(int code, const char *esc, const char *text)
{
    static char out[4096];
    buf_t b;

    buf_init(&b, 1 << 20);
    cr_assert_eq(proto_reply(&b, code, esc, text), 0);
    snprintf(out, sizeof(out), "%.*s", (int)buf_used(&b), buf_ptr(&b));
    buf_free(&b);
    return out;
}

Test(proto_reply, single_and_multiline)
{
    cr_assert_str_eq(reply_text(250, "2.0.0", "Ok"), "250 2.0.0 Ok\r\n");
    cr_assert_str_eq(reply_text(250, NULL, "mx.test\nPIPELINING\nSIZE 10"),
                     "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
}

Test(proto_reply, no_injection_and_bounded)
{
    char text[1000];
    const char *r;

    /* A control character cannot end the reply early; an LF starts a new
     * line of the same reply, never a reply of its own. */
    cr_assert_str_eq(reply_text(550, "5.1.1",
                                "<a\r\x01"
                                "b>"),
                     "550 5.1.1 <a??b>\r\n");
    cr_assert_str_eq(reply_text(550, "5.1.1", "<a\r\n250 ok>"),
                     "550-5.1.1 <a?\r\n550 5.1.1 250 ok>\r\n");
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    r = reply_text(550, "5.1.1", text);
    cr_assert_eq(strlen(r), 512);
    cr_assert_eq(strcmp(r + 510, "\r\n"), 0);
}

Test(proto_received, header)
{
    proto_received_t rc = {
        .helo = "client.test",
        .client_ptr = "unknown",
        .client_ip = "192.0.2.1",
        .hostname = "mx.fwd.test",
        .protocol = proto_with(true, true, false),
        .queue_id = "18C3F2A9B47D1",
        .tls_version = "TLSv1.3",
        .tls_cipher = "TLS_AES_256_GCM_SHA384",
        .tls_bits = 256,
        .rcpt = "alice@alias.test",
        .now = 1795867200,
    };
    char out[1024];
    buf_t b;

    buf_init(&b, 65536);
    cr_assert_eq(proto_received(&b, &rc), 0);
    snprintf(out, sizeof(out), "%.*s", (int)buf_used(&b), buf_ptr(&b));
    cr_assert_str_eq(out, "Received: from client.test (unknown [192.0.2.1])\r\n"
                          "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
                          "\tby mx.fwd.test (mxfwd) with ESMTPS id 18C3F2A9B47D1\r\n"
                          "\tfor <alice@alias.test>; Sat, 28 Nov 2026 12:00:00 +0000\r\n");
    buf_reset(&b);
    rc.client_ip = "::1";
    rc.tls_version = NULL;
    rc.rcpt = NULL;
    rc.protocol = proto_with(false, false, false);
    cr_assert_eq(proto_received(&b, &rc), 0);
    snprintf(out, sizeof(out), "%.*s", (int)buf_used(&b), buf_ptr(&b));
    cr_assert_str_eq(out, "Received: from client.test (unknown [IPv6:::1])\r\n"
                          "\tby mx.fwd.test (mxfwd) with SMTP id 18C3F2A9B47D1; "
                          "Sat, 28 Nov 2026 12:00:00 +0000\r\n");
    buf_free(&b);
    cr_assert_str_eq(proto_with(true, false, true), "UTF8SMTP");
    cr_assert_str_eq(proto_with(true, true, true), "UTF8SMTPS");
}
