#include "dsn.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "str.h"

/* s with every control character (CR and LF above all) shown as '?', so
 * it stays on its line. */
static int dsn_put_line_text(buf_t *out, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *p = buf_reserve(out, n);

    if (p == NULL)
        return BUF_EFULL;
    for (size_t i = 0; i < n; i++)
        p[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf_commit(out, n);
    return 0;
}

static bool dsn_ascii(const char *s)
{
    for (; s != NULL && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* An address with its RFC 3464 / RFC 6533 type: "rfc822; a@b" or, for
 * one that is not ASCII, "utf-8; ...".  sep is the text after the ';'. */
static int dsn_put_addr(buf_t *out, const char *field, const char *sep, const char *addr)
{
    int rc = buf_printf(out, "%s: %s;%s", field, dsn_ascii(addr) ? "rfc822" : "utf-8", sep);

    if (rc == 0)
        rc = dsn_put_line_text(out, addr);
    return rc == 0 ? buf_puts(out, "\r\n") : rc;
}

static bool dsn_status_ok(const char *s)
{
    /* class "." subject "." detail: [245].[0-9]{1,3}.[0-9]{1,3} (RFC 3463 3.1) */
    int dots = 0, digits = 0;

    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    for (s += 2; *s; s++) {
        if (*s == '.' && digits > 0 && dots == 0) {
            dots++, digits = 0;
        } else if (*s >= '0' && *s <= '9' && digits < 3) {
            digits++;
        } else {
            return false;
        }
    }
    return dots == 1 && digits > 0;
}

static const char *dsn_status(const dsn_rcpt_t *r)
{
    if (dsn_status_ok(r->status) && r->status[0] != '2')
        return r->status;
    /* X.4.7: delivery time expired (RFC 3463 3.5). */
    return r->expired ? "4.4.7" : "5.0.0";
}

static bool dsn_has_relay(const dsn_rcpt_t *r)
{
    return r->relay != NULL && r->relay[0] != '\0' && strcmp(r->relay, "none") != 0;
}

/* "mx.example" out of "mx.example[192.0.2.1]:25". */
static int dsn_put_relay_host(buf_t *out, const char *relay)
{
    const char *bracket = strchr(relay, '[');
    size_t n = bracket != NULL && bracket > relay ? (size_t)(bracket - relay) : strlen(relay);
    char host[300];

    snprintf(host, sizeof(host), "%.*s", (int)(n < sizeof(host) - 1 ? n : sizeof(host) - 1), relay);
    return dsn_put_line_text(out, host);
}

static void dsn_duration(uint64_t secs, char *dst, size_t size)
{
    if (secs >= 86400 && secs % 86400 == 0)
        snprintf(dst, size, "%" PRIu64 " day%s", secs / 86400, secs == 86400 ? "" : "s");
    else if (secs >= 3600 && secs % 3600 == 0)
        snprintf(dst, size, "%" PRIu64 " hour%s", secs / 3600, secs == 3600 ? "" : "s");
    else if (secs >= 60 && secs % 60 == 0)
        snprintf(dst, size, "%" PRIu64 " minute%s", secs / 60, secs == 60 ? "" : "s");
    else
        snprintf(dst, size, "%" PRIu64 " second%s", secs, secs == 1 ? "" : "s");
}

/* The part for people: each recipient and why, one reason a line. */
static int dsn_text(const dsn_report_t *r, buf_t *out)
{
    char lifetime[64];
    int rc;

    dsn_duration(r->lifetime, lifetime, sizeof(lifetime));
    rc = buf_printf(out,
                    "This is the mail system at host %s.\r\n"
                    "\r\n"
                    "Your message could not be delivered to one or more of its recipients.\r\n"
                    "The reasons are below; the headers of your message are attached.\r\n"
                    "\r\n",
                    r->hostname);
    for (size_t i = 0; rc == 0 && i < r->nrcpts; i++) {
        const dsn_rcpt_t *d = &r->rcpts[i];

        rc = buf_puts(out, "<");
        if (rc == 0)
            rc = dsn_put_line_text(out, d->addr);
        if (rc == 0 && d->orig != NULL && d->orig[0] != '\0') {
            rc = buf_puts(out, "> (forwarded for <");
            if (rc == 0)
                rc = dsn_put_line_text(out, d->orig);
        }
        if (rc == 0)
            rc = buf_puts(out, ">):\r\n    ");
        if (rc == 0 && d->expired)
            rc = buf_printf(out, "not delivered within %s; the last attempt: ", lifetime);
        if (rc == 0 && d->remote_reply && dsn_has_relay(d)) {
            rc = buf_puts(out, "host ");
            if (rc == 0)
                rc = dsn_put_line_text(out, d->relay);
            if (rc == 0)
                rc = buf_puts(out, " said: ");
        }
        if (rc == 0)
            rc = dsn_put_line_text(out, d->reply);
        if (rc == 0)
            rc = buf_puts(out, "\r\n\r\n");
    }
    return rc;
}

/* The message/delivery-status part's body. */
static int dsn_fields(const dsn_report_t *r, buf_t *out)
{
    char date[STR_DATE_SIZE];
    int rc;

    str_date(r->arrival, date, sizeof(date));
    rc = buf_puts(out, "Reporting-MTA: dns; ");
    if (rc == 0)
        rc = dsn_put_line_text(out, r->hostname);
    if (rc == 0)
        rc = buf_printf(out, "\r\nX-mxfwd-Queue-ID: %s\r\n", r->queue_id);
    if (rc == 0)
        rc = dsn_put_addr(out, "X-mxfwd-Sender", " ", r->sender);
    if (rc == 0)
        rc = buf_printf(out, "Arrival-Date: %s\r\n", date);
    for (size_t i = 0; rc == 0 && i < r->nrcpts; i++) {
        const dsn_rcpt_t *d = &r->rcpts[i];

        rc = buf_puts(out, "\r\n");
        if (rc == 0)
            rc = dsn_put_addr(out, "Final-Recipient", " ", d->addr);
        if (rc == 0 && d->orig != NULL && d->orig[0] != '\0')
            rc = dsn_put_addr(out, "Original-Recipient", "", d->orig);
        if (rc == 0)
            rc = buf_printf(out, "Action: failed\r\nStatus: %s\r\n", dsn_status(d));
        if (rc == 0 && dsn_has_relay(d)) {
            rc = buf_puts(out, "Remote-MTA: dns; ");
            if (rc == 0)
                rc = dsn_put_relay_host(out, d->relay);
            if (rc == 0)
                rc = buf_puts(out, "\r\n");
        }
        /* The remote's own words when it said something; mxfwd's reason
         * (no host reached, a local error) under its own type, as Postfix
         * does with X-Postfix. */
        if (rc == 0 && d->reply != NULL && d->reply[0] != '\0') {
            rc = buf_printf(out, "Diagnostic-Code: %s; ", d->remote_reply ? "smtp" : "X-mxfwd");
            if (rc == 0)
                rc = dsn_put_line_text(out, d->reply);
            if (rc == 0)
                rc = buf_puts(out, "\r\n");
        }
        if (rc == 0) {
            str_date(d->last_attempt, date, sizeof(date));
            rc = buf_printf(out, "Last-Attempt-Date: %s\r\n", date);
        }
    }
    return rc;
}

static bool dsn_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return true;
    return false;
}

/* Whether anything that goes into the message is not ASCII: then every
 * part is declared 8bit and the envelope says BODY=8BITMIME. */
static bool dsn_needs_8bit(const dsn_report_t *r)
{
    if (dsn_8bit(r->headers, r->headers_len) || !dsn_ascii(r->sender) || !dsn_ascii(r->hostname))
        return true;
    for (size_t i = 0; i < r->nrcpts; i++)
        if (!dsn_ascii(r->rcpts[i].addr) || !dsn_ascii(r->rcpts[i].orig) ||
            !dsn_ascii(r->rcpts[i].reply) || !dsn_ascii(r->rcpts[i].relay))
            return true;
    return false;
}

int dsn_build(const dsn_report_t *r, buf_t *out, dsn_needs_t *needs)
{
    char date[STR_DATE_SIZE], boundary[128];
    size_t hlen = r->headers_len;
    bool eightbit = dsn_needs_8bit(r);
    const char *cte = eightbit ? "8bit" : "7bit";
    int rc;

    needs->body_8bit = eightbit;
    needs->smtputf8 = !dsn_ascii(r->sender);
    /* A boundary that no line of the attached headers can start with. */
    snprintf(boundary, sizeof(boundary), "%s.%" PRId64 "/%.64s", r->queue_id, r->now, r->hostname);
    for (unsigned n = 1; memmem(r->headers, hlen, boundary, strlen(boundary)) != NULL; n++)
        snprintf(boundary, sizeof(boundary), "%s.%" PRId64 ".%u/%.64s", r->queue_id, r->now, n,
                 r->hostname);
    str_date(r->now, date, sizeof(date));

    rc = buf_puts(out, "From: Mail Delivery System <MAILER-DAEMON@");
    if (rc == 0)
        rc = dsn_put_line_text(out, r->hostname);
    if (rc == 0)
        rc = buf_puts(out, ">\r\nTo: <");
    if (rc == 0)
        rc = dsn_put_line_text(out, r->sender);
    if (rc == 0)
        rc = buf_printf(out,
                        ">\r\n"
                        "Subject: Undelivered Mail Returned to Sender\r\n"
                        "Date: %s\r\n"
                        "Message-ID: <%s.%" PRId64 "@",
                        date, r->queue_id, r->now);
    if (rc == 0)
        rc = dsn_put_line_text(out, r->hostname);
    /* RFC 3834: an automatic reply, which auto-responders leave alone. */
    if (rc == 0)
        rc = buf_printf(out,
                        ">\r\n"
                        "Auto-Submitted: auto-replied\r\n"
                        "MIME-Version: 1.0\r\n"
                        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                        "\tboundary=\"%s\"\r\n"
                        "Content-Transfer-Encoding: %s\r\n"
                        "\r\n"
                        "This is a MIME-encapsulated message.\r\n"
                        "\r\n"
                        "--%s\r\n"
                        "Content-Description: Notification\r\n"
                        "Content-Type: text/plain; charset=%s\r\n"
                        "Content-Transfer-Encoding: %s\r\n"
                        "\r\n",
                        boundary, cte, boundary, eightbit ? "utf-8" : "us-ascii", cte);
    if (rc == 0)
        rc = dsn_text(r, out);
    if (rc == 0)
        rc = buf_printf(out,
                        "--%s\r\n"
                        "Content-Description: Delivery report\r\n"
                        "Content-Type: message/delivery-status\r\n"
                        "\r\n",
                        boundary);
    if (rc == 0)
        rc = dsn_fields(r, out);
    if (rc == 0)
        rc = buf_printf(out,
                        "\r\n"
                        "--%s\r\n"
                        "Content-Description: Undelivered Message Headers\r\n"
                        "Content-Type: text/rfc822-headers\r\n"
                        "Content-Transfer-Encoding: %s\r\n"
                        "\r\n",
                        boundary, cte);
    if (rc == 0)
        rc = buf_append(out, r->headers, hlen);
    if (rc == 0 && hlen > 0 && r->headers[hlen - 1] != '\n')
        rc = buf_puts(out, "\r\n");
    if (rc == 0)
        rc = buf_printf(out, "\r\n--%s--\r\n", boundary);
    return rc;
}

size_t dsn_header_section(const char *p, size_t n)
{
    size_t i = 0, complete = 0;

    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t len;

        if (nl == NULL)
            break;
        len = (size_t)(nl - (p + i)) + 1;
        /* An empty line ("\r\n" or a bare "\n") ends the headers. */
        if (len == 1 || (len == 2 && p[i] == '\r'))
            return complete;
        i += len;
        complete = i;
    }
    return complete;
}
