/* Unit tests for smtpd/milter_proto.c: milter packets as bytes (docs/milter.md),
 * the MTA's commands, every reply a filter may give, malformed ones,
 * reply texts. */
#include <criterion/criterion.h>
#include <string.h>

#include "milter_proto.h"

#define P(s) s, sizeof(s) - 1

static void expect_bytes(const buf_t *b, const char *want, size_t n)
{
    cr_assert_eq(buf_used(b), n, "%zu bytes, want %zu", buf_used(b), n);
    cr_assert_eq(memcmp(buf_ptr(b), want, n), 0);
}

Test(milter_proto, commands_are_framed_as_libmilter_reads_them)
{
    const char *helo[] = {"client.test"};
    const char *mail[] = {"<a@origin.test>", "BODY=8BITMIME"};
    const char *macros[] = {"j", "mx.test", "{client_addr}", "192.0.2.1"};
    buf_t b;

    buf_init(&b, 4096);
    milter_proto_optneg(&b, 6, MILTER_ACT_ALL, MILTER_P_OFFERED);
    expect_bytes(&b, P("\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xf7\xff"));
    buf_reset(&b);
    milter_proto_strings(&b, MILTER_C_HELO, helo, 1);
    expect_bytes(&b, P("\0\0\0\x0dHclient.test\0"));
    buf_reset(&b);
    milter_proto_strings(&b, MILTER_C_MAIL, mail, 2);
    expect_bytes(&b, P("\0\0\0\x1fM<a@origin.test>\0BODY=8BITMIME\0"));
    buf_reset(&b);
    milter_proto_macros(&b, MILTER_C_CONNECT, macros, 2);
    expect_bytes(&b, P("\0\0\0\x24" "DCj\0mx.test\0{client_addr}\0" "192.0.2.1\0"));
    buf_reset(&b);
    milter_proto_connect(&b, "mail.example", '4', 2525, "192.0.2.1");
    expect_bytes(&b, P("\0\0\0\x1b" "Cmail.example\0" "4\x09\xdd" "192.0.2.1\0"));
    buf_reset(&b);
    milter_proto_connect(&b, "unknown", 'U', 0, "");
    expect_bytes(&b, P("\0\0\0\x0a" "Cunknown\0U"));
    buf_reset(&b);
    milter_proto_put(&b, MILTER_C_BODYEOB, NULL, 0);
    expect_bytes(&b, P("\0\0\0\x01" "E"));
    buf_free(&b);
}

Test(milter_proto, framing)
{
    size_t len = 0;

    cr_assert_eq(milter_proto_frame(P("\0\0\0"), 100, &len), MILTER_FRAME_PARTIAL);
    cr_assert_eq(milter_proto_frame(P("\0\0\0\x02" "y"), 100, &len), MILTER_FRAME_PARTIAL);
    cr_assert_eq(milter_proto_frame(P("\0\0\0\x01" "cmore"), 100, &len), MILTER_FRAME_OK);
    cr_assert_eq(len, 1);
    cr_assert_eq(milter_proto_frame(P("\0\0\0\0"), 100, &len), MILTER_FRAME_BAD, "empty");
    cr_assert_eq(milter_proto_frame(P("\0\0\0\x65"), 100, &len), MILTER_FRAME_BAD, "over max");
    cr_assert_eq(milter_proto_frame(P("\xff\xff\xff\xff"), MILTER_PACKET_MAX, &len),
                 MILTER_FRAME_BAD);
}

Test(milter_proto, every_reply_decodes)
{
    milter_reply_t r;

    for (const char *simple = "acdfprst"; *simple != '\0'; simple++) {
        cr_assert_eq(milter_proto_decode(simple, 1, &r), 0, "%c", *simple);
        cr_assert_eq(r.type, *simple);
    }
    cr_assert_eq(milter_proto_decode(P("O\0\0\0\x06\0\0\0\x21\0\x0f\xf0\x00"), &r), 0);
    cr_assert_eq(r.version, 6);
    cr_assert_eq(r.actions, MILTER_ACT_ADDHDRS | MILTER_ACT_QUARANTINE);
    cr_assert_eq(r.protocol, 0x0ff000);
    /* With the macros a filter asks for, per stage. */
    cr_assert_eq(milter_proto_decode(P("O\0\0\0\x06\0\0\0\0\0\0\0\0\0\0\0\x02{mail_addr} i\0"
                                       "\0\0\0\x05i\0"),
                                     &r),
                 0);
    cr_assert_str_eq(r.symlist[2], "{mail_addr} i");
    cr_assert_str_eq(r.symlist[5], "i");
    cr_assert_null(r.symlist[0]);
    cr_assert_eq(milter_proto_decode(P("y554 5.7.1 Spam message rejected\0"), &r), 0);
    cr_assert_str_eq(r.text, "554 5.7.1 Spam message rejected");
    cr_assert_eq(milter_proto_decode(P("qlooks like spam\0"), &r), 0);
    cr_assert_str_eq(r.text, "looks like spam");
    cr_assert_eq(milter_proto_decode(P("hX-Spam\0Yes\0"), &r), 0);
    cr_assert_str_eq(r.name, "X-Spam");
    cr_assert_str_eq(r.value, "Yes");
    cr_assert_eq(milter_proto_decode(P("i\0\0\0\0Authentication-Results\0mx; none\0"), &r), 0);
    cr_assert_eq(r.index, 0);
    cr_assert_str_eq(r.name, "Authentication-Results");
    cr_assert_eq(milter_proto_decode(P("m\0\0\0\x02Subject\0\0"), &r), 0);
    cr_assert_eq(r.index, 2);
    cr_assert_str_eq(r.value, "", "an empty value deletes");
    cr_assert_eq(milter_proto_decode(P("+<new@dest.test>\0"), &r), 0);
    cr_assert_str_eq(r.addr, "<new@dest.test>");
    cr_assert_eq(milter_proto_decode(P("-<old@dest.test>\0"), &r), 0);
    cr_assert_eq(milter_proto_decode(P("2<new@dest.test>\0NOTIFY=NEVER\0"), &r), 0);
    cr_assert_str_eq(r.args, "NOTIFY=NEVER");
    cr_assert_eq(milter_proto_decode(P("e<s@origin.test>\0"), &r), 0);
    cr_assert_null(r.args);
    cr_assert_eq(milter_proto_decode(P("e<s@origin.test>\0\0"), &r), 0);
    cr_assert_null(r.args, "empty arguments are none");
    cr_assert_eq(milter_proto_decode(P("bnew body\r\n"), &r), 0);
    cr_assert_eq(r.body_len, 10);
    cr_assert_eq(memcmp(r.body, "new body\r\n", 10), 0);
}

Test(milter_proto, malformed_replies_are_refused)
{
    static const struct {
        const char *p;
        size_t n;
        const char *why;
    } bad[] = {
        {P(""), "empty"},
        {P("Z"), "unknown type"},
        {P("cjunk"), "data after a simple reply"},
        {P("O\0\0\0\x06\0\0"), "negotiation cut short"},
        {P("O\0\0\0\x06\0\0\0\0\0\0\0\0\0\0\0\x02no nul"), "a macro list without its NUL"},
        {P("y554 no nul"), "a reply code without its NUL"},
        {P("y554 ok\0extra"), "data after the reply code"},
        {P("hX-Name\0value"), "a header value without its NUL"},
        {P("hX-Name"), "a header without a value"},
        {P("i\0\0"), "an index cut short"},
        {P("m\0\0\0\x01Name\0"), "a change without a value"},
        {P("+"), "an address missing"},
        {P("e<a@b>\0args"), "arguments without their NUL"},
    };
    milter_reply_t r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(milter_proto_decode(bad[i].p, bad[i].n, &r), MILTER_EPROTO, "%s",
                     bad[i].why);
}

Test(milter_proto, reply_texts)
{
    char esc[16], text[128];
    int code = 0;

    cr_assert_eq(milter_proto_reply_text("554 5.7.1 Spam message rejected", &code, esc, text,
                                         sizeof(text)),
                 0);
    cr_assert_eq(code, 554);
    cr_assert_str_eq(esc, "5.7.1");
    cr_assert_str_eq(text, "Spam message rejected");
    cr_assert_eq(milter_proto_reply_text("451 Try again later", &code, esc, text, sizeof(text)),
                 0);
    cr_assert_str_eq(esc, "");
    cr_assert_str_eq(text, "Try again later");
    cr_assert_eq(milter_proto_reply_text("550-5.7.1 one\r\n550 5.7.1 two\r\n", &code, esc, text,
                                         sizeof(text)),
                 0);
    cr_assert_str_eq(text, "one\ntwo");
    cr_assert_eq(milter_proto_reply_text("554", &code, esc, text, sizeof(text)), 0);
    cr_assert_str_eq(text, "");
    /* An enhanced code of the wrong class is text. */
    cr_assert_eq(milter_proto_reply_text("554 4.7.1 odd", &code, esc, text, sizeof(text)), 0);
    cr_assert_str_eq(esc, "");
    cr_assert_str_eq(text, "4.7.1 odd");
    cr_assert_eq(milter_proto_reply_text("554 bell\a here", &code, esc, text, sizeof(text)), 0);
    cr_assert_str_eq(text, "bell? here", "control characters replaced");

    static const char *const bad[] = {
        "250 2.0.0 fine", "654 no", "55 short", "554x5.7.1 no", "550 one\r\n550 two",
        "550-5.7.1 one\r\n551 5.7.1 two", "550-5.7.1 one", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(milter_proto_reply_text(bad[i], &code, esc, text, sizeof(text)),
                     MILTER_EPROTO, "%s", bad[i]);
}

Test(milter_proto, header_names)
{
    cr_assert(milter_proto_header_name_ok("X-Spam-Status"));
    cr_assert(!milter_proto_header_name_ok(""));
    cr_assert(!milter_proto_header_name_ok("X Spam"));
    cr_assert(!milter_proto_header_name_ok("X:Spam"));
    cr_assert(!milter_proto_header_name_ok("X\r\nInjected"));
    cr_assert_str_eq(milter_proto_reply_name('r'), "reject");
    cr_assert_str_eq(milter_proto_reply_name('Z'), "unknown");
}
