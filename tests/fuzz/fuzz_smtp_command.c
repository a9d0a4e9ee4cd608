/*
 * libFuzzer harness for the inbound command parser (smtpd/proto.c): any
 * bytes as a client's pipelined command stream.  The stream is split into
 * lines as the session does, every line parsed into verb and argument,
 * MAIL and RCPT arguments into path and parameters, and every line echoed
 * back through the reply formatter.  Beyond "no crash, no sanitizer
 * report", it checks what the parsers promise: lines and arguments lie
 * inside the input and never exceed the limit; an accepted path is a
 * mailbox (or <>, or <postmaster> for RCPT); a reply is lines of at most
 * 512 octets ending in CRLF with no other CR or LF in them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void fuzz_path(const proto_path_t *p, const char *line, size_t len, bool rcpt)
{
    addr_t a;

    FUZZ_CHECK(p->addr >= line && p->addr + p->addr_len <= line + len);
    if (p->postmaster) {
        FUZZ_CHECK(rcpt && p->addr_len == 10);
        return;
    }
    if (p->addr_len == 0) {
        FUZZ_CHECK(!rcpt);
        return;
    }
    FUZZ_CHECK(addr_parse(p->addr, p->addr_len, &a) == 0);
}

static void fuzz_reply(const char *text, size_t len)
{
    char copy[2048];
    buf_t b;
    const char *p;
    size_t n;

    if (len >= sizeof(copy))
        len = sizeof(copy) - 1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    buf_init(&b, 1 << 20);
    FUZZ_CHECK(proto_reply(&b, 250, "2.0.0", copy) == 0);
    p = buf_ptr(&b);
    n = buf_used(&b);
    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t line;
        FUZZ_CHECK(lf != NULL && lf > p && lf[-1] == '\r');
        line = (size_t)(lf - p) + 1;
        FUZZ_CHECK(line <= 512 && line >= 6);
        FUZZ_CHECK(memchr(p, '\r', line - 2) == NULL);
        FUZZ_CHECK(memcmp(p, "250", 3) == 0 && (p[3] == ' ' || p[3] == '-'));
        FUZZ_CHECK((p[3] == ' ') == (line == n));
        p += line;
        n -= line;
    }
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    /* The first byte picks the line limit, from 512 up, as configs may. */
    size_t max = size > 0 ? 512 + (size_t)data[0] * 4 : 512;
    bool skipping = false;

    while (size > 0) {
        proto_line_t l;
        proto_cmd_t c;
        proto_mail_t m;
        proto_path_t r;
        proto_rcpt_dsn_t rd;
        proto_line_status_t st;

        if (skipping) {
            size_t n = proto_skip_line(p, size, &skipping);
            FUZZ_CHECK(n > 0 && n <= size);
            skipping = !skipping;
            p += n;
            size -= n;
            continue;
        }
        st = proto_next_line(p, size, max, &l);
        if (st == PROTO_LINE_PARTIAL) {
            FUZZ_CHECK(size < max && memchr(p, '\n', size) == NULL);
            break;
        }
        FUZZ_CHECK(l.consumed > 0 && l.consumed <= size && l.consumed <= max);
        FUZZ_CHECK(l.text == p && l.len < l.consumed);
        if (st == PROTO_LINE_LONG) {
            skipping = true;
        } else {
            FUZZ_CHECK(p[l.consumed - 1] == '\n');
            if (st == PROTO_LINE_OK)
                FUZZ_CHECK(memchr(l.text, '\r', l.len) == NULL && p[l.len] == '\r');
            proto_parse_command(l.text, l.len, &c);
            FUZZ_CHECK(c.verb < PROTO_NVERBS);
            FUZZ_CHECK(c.arg >= l.text && c.arg + c.arg_len <= l.text + l.len);
            if (proto_parse_mail(c.arg, c.arg_len, &m) == 0)
                fuzz_path(&m.path, c.arg, c.arg_len, false);
            if (proto_parse_rcpt(c.arg, c.arg_len, &r, &rd) == 0)
                fuzz_path(&r, c.arg, c.arg_len, true);
            proto_helo_valid(c.arg, c.arg_len);
            fuzz_reply(l.text, l.len);
        }
        p += l.consumed;
        size -= l.consumed;
    }
    return 0;
}
