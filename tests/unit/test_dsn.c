/*
 * Unit tests for the DSN builder on its own (queue/dsn.c): the header
 * section it returns, fields the remote server's text cannot add, the
 * MIME boundary, and the declarations of 8-bit content.  The DSNs the
 * queue sends are tested through the queue in test_queue.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "dsn.h"

Test(dsn, the_header_section_ends_at_the_first_empty_line)
{
    static const struct {
        const char *text;
        size_t want;
    } cases[] = {
        {"A: 1\r\nB: 2\r\n\r\nbody\r\n", 12},
        {"A: 1\nB: 2\n\nbody\n", 10},
        {"A: 1\r\nB: 2\r\n", 12},     /* no body */
        {"A: 1\r\nB: cut sho", 6},    /* read stopped mid-line */
        {"\r\nbody\r\n", 0},          /* no headers */
        {"", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(dsn_header_section(cases[i].text, strlen(cases[i].text)), cases[i].want,
                     "case %zu", i);
}

static char *build(const dsn_report_t *r, dsn_needs_t *needs)
{
    static char out[16384];
    buf_t b;

    buf_init(&b, sizeof(out) - 1);
    cr_assert_eq(dsn_build(r, &b, needs), 0);
    memcpy(out, buf_ptr(&b), buf_used(&b));
    out[buf_used(&b)] = '\0';
    buf_free(&b);
    return out;
}

Test(dsn, remote_text_cannot_add_fields)
{
    dsn_rcpt_t rc = {
        .addr = "b@y.test",
        .status = "5.7.1",
        .reply = "550 5.7.1 no\r\nX-Injected: yes",
        .remote_reply = true,
        .relay = "mx.y.test[192.0.2.1]:25",
        .last_attempt = 1795800000,
    };
    dsn_report_t r = {
        .hostname = "fwd.test",
        .queue_id = "18C3F2A9B47D1",
        .sender = "s@origin.test",
        .arrival = 1795800000,
        .now = 1795800000,
        .headers = "Subject: x\r\n",
        .headers_len = 12,
        .rcpts = &rc,
        .nrcpts = 1,
    };
    dsn_needs_t needs;
    const char *text = build(&r, &needs);

    cr_assert_null(strstr(text, "\nX-Injected"), "%s", text);
    cr_assert_not_null(strstr(text, "Diagnostic-Code: smtp; 550 5.7.1 no??X-Injected: yes\r\n"));
    cr_assert_not(needs.body_8bit);
    cr_assert_not(needs.smtputf8);
    cr_assert_not_null(strstr(text, "Content-Transfer-Encoding: 7bit\r\n"));
}

Test(dsn, the_boundary_never_occurs_in_the_attached_headers)
{
    static const char headers[] = "X-Trap: --18C3F2A9B47D1.1795800000/fwd.test\r\n";
    dsn_rcpt_t rc = {.addr = "b@y.test", .reply = "550 no", .last_attempt = 1795800000};
    dsn_report_t r = {
        .hostname = "fwd.test",
        .queue_id = "18C3F2A9B47D1",
        .sender = "s@origin.test",
        .now = 1795800000,
        .headers = headers,
        .headers_len = sizeof(headers) - 1,
        .rcpts = &rc,
        .nrcpts = 1,
    };
    dsn_needs_t needs;
    const char *text = build(&r, &needs), *b = strstr(text, "boundary=\"");
    char boundary[128];

    cr_assert_not_null(b);
    b += strlen("boundary=\"");
    snprintf(boundary, sizeof(boundary), "%.*s", (int)strcspn(b, "\""), b);
    cr_assert_null(strstr(headers, boundary), "%s", boundary);
    /* Defaults when the delivery gave no status: a permanent failure. */
    cr_assert_not_null(strstr(text, "Status: 5.0.0\r\n"));
    cr_assert_null(strstr(text, "Remote-MTA"));
}

Test(dsn, utf8_addresses_and_8bit_headers_are_declared)
{
    static const char headers[] = "Subject: caf\xc3\xa9\r\n";
    dsn_rcpt_t rc = {.addr = "j\xc3\xb6rg@y.test", .orig = "alice@alias.test",
                     .reply = "550 no", .status = "5.1.1"};
    dsn_report_t r = {
        .hostname = "fwd.test",
        .queue_id = "18C3F2A9B47D1",
        .sender = "s\xc3\xa9@origin.test",
        .headers = headers,
        .headers_len = sizeof(headers) - 1,
        .rcpts = &rc,
        .nrcpts = 1,
    };
    dsn_needs_t needs;
    const char *text = build(&r, &needs);

    cr_assert(needs.body_8bit);
    cr_assert(needs.smtputf8);
    cr_assert_not_null(strstr(text, "Final-Recipient: utf-8; j\xc3\xb6rg@y.test\r\n"));
    cr_assert_not_null(strstr(text, "Original-Recipient: rfc822;alice@alias.test\r\n"));
    cr_assert_not_null(strstr(text, "Content-Type: text/plain; charset=utf-8\r\n"));
    cr_assert_null(strstr(text, "7bit"));
    /* RFC 6533: an internationalized message gets the global types. */
    cr_assert_not_null(strstr(text, "report-type=global-delivery-status;"));
    cr_assert_not_null(strstr(text, "Content-Type: message/global-delivery-status\r\n"));
    cr_assert_not_null(strstr(text, "Content-Type: message/global-headers\r\n"));
    cr_assert_null(strstr(text, "rfc822-headers"));
    cr_assert_null(strstr(text, "message/delivery-status"));
}

Test(dsn, an_ascii_message_with_an_8bit_body_keeps_the_classic_types)
{
    static const char full[] = "Subject: plain\r\n\r\ncaf\xe9 in Latin-1\r\n";
    dsn_rcpt_t rc = {.addr = "b@y.test", .reply = "550 no", .status = "5.1.1"};
    dsn_report_t r = {
        .hostname = "fwd.test",
        .queue_id = "18C3F2A9B47D1",
        .sender = "s@origin.test",
        .headers = full,
        .headers_len = 17,
        .full = full,
        .full_len = sizeof(full) - 1,
        .rcpts = &rc,
        .nrcpts = 1,
    };
    dsn_needs_t needs;
    const char *text = build(&r, &needs);

    cr_assert(needs.body_8bit, "8bit content: BODY=8BITMIME");
    cr_assert_not(needs.smtputf8);
    cr_assert_not_null(strstr(text, "report-type=delivery-status;"));
    cr_assert_not_null(strstr(text, "Content-Type: message/rfc822\r\n"));
    cr_assert_not_null(strstr(text, "caf\xe9 in Latin-1"));
}
