#include "dsn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "str.h"

/* Output that remembers its first error: later writes do nothing, and the
 * builder checks once at the end. */
typedef struct {
    buf_t *b;
    int rc;
} dsn_out_t;

static void dsn_printf(dsn_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void dsn_printf(dsn_out_t *o, const char *fmt, ...)
{
    va_list ap;

    if (o->rc != 0)
        return;
    va_start(ap, fmt);
    o->rc = buf_vprintf(o->b, fmt, ap);
    va_end(ap);
}

/* Text from elsewhere (an address, a remote reply) kept on its line: every
 * control character, CR and LF above all, is shown as '?'. */
static void dsn_text(dsn_out_t *o, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *p;

    if (o->rc != 0)
        return;
    if ((p = buf_reserve(o->b, n)) == NULL) {
        o->rc = BUF_EFULL;
        return;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf_commit(o->b, n);
}

static bool dsn_ascii(const char *s)
{
    return s == NULL || !str_has_8bit(s, strlen(s));
}

static bool dsn_has(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* "Field: rfc822; a@b", or "utf-8;" for an address that is not ASCII
 * (RFC 6533); sep is what follows the ';'. */
static void dsn_addr_field(dsn_out_t *o, const char *field, const char *sep, const char *addr)
{
    dsn_printf(o, "%s: %s;%s", field, dsn_ascii(addr) ? "rfc822" : "utf-8", sep);
    dsn_text(o, addr);
    dsn_printf(o, "\r\n");
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

static const char *dsn_status(dsn_action_t action, const dsn_rcpt_t *r)
{
    switch (action) {
    case DSN_RELAYED:
        return dsn_status_ok(r->status) && r->status[0] == '2' ? r->status : "2.0.0";
    case DSN_DELAYED:
        return dsn_status_ok(r->status) && r->status[0] == '4' ? r->status : "4.0.0";
    case DSN_FAILED:
        break;
    }
    if (dsn_status_ok(r->status) && r->status[0] != '2')
        return r->status;
    /* X.4.7: delivery time expired (RFC 3463 3.5). */
    return r->expired ? "4.4.7" : "5.0.0";
}

static const char *dsn_action_name(dsn_action_t action)
{
    return action == DSN_FAILED ? "failed" : action == DSN_DELAYED ? "delayed" : "relayed";
}

/* The recipient as the sender is told of it: its alias when the mailbox
 * is to stay private and there is one. */
static const char *dsn_shown(const dsn_report_t *r, const dsn_rcpt_t *d)
{
    return r->hide_destinations && dsn_has(d->orig) ? d->orig : d->addr;
}

/* Text from elsewhere, with every occurrence of the private mailbox (any
 * case) replaced by the alias when destinations are hidden. */
static void dsn_reply_text(dsn_out_t *o, const dsn_report_t *r, const dsn_rcpt_t *d,
                           const char *text)
{
    size_t alen = d->addr != NULL ? strlen(d->addr) : 0;
    const char *p = text;

    if (!r->hide_destinations || !dsn_has(d->orig) || alen == 0 || text == NULL) {
        dsn_text(o, text);
        return;
    }
    while (*p != '\0') {
        const char *hit = NULL;
        char piece[DELIVERY_REPLY_MAX + 1];
        size_t n;

        for (const char *q = p; *q != '\0' && hit == NULL; q++)
            if (str_ncasecmp(q, d->addr, alen) == 0)
                hit = q;
        n = hit != NULL ? (size_t)(hit - p) : strlen(p);
        while (n > 0) {
            size_t k = n < sizeof(piece) - 1 ? n : sizeof(piece) - 1;
            memcpy(piece, p, k);
            piece[k] = '\0';
            dsn_text(o, piece);
            p += k;
            n -= k;
        }
        if (hit == NULL)
            break;
        dsn_text(o, d->orig);
        p += alen;
    }
}

static bool dsn_has_relay(const dsn_rcpt_t *r)
{
    return r->relay != NULL && r->relay[0] != '\0' && strcmp(r->relay, "none") != 0;
}

void dsn_duration(uint64_t secs, bool words, char *dst, size_t size)
{
    static const struct {
        uint64_t secs;
        const char *word;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    size_t i = 0;

    while (i + 1 < sizeof(units) / sizeof(units[0]) &&
           !(secs >= units[i].secs && secs % units[i].secs == 0))
        i++;
    if (words)
        snprintf(dst, size, "%" PRIu64 " %s%s", secs / units[i].secs, units[i].word,
                 secs == units[i].secs ? "" : "s");
    else
        snprintf(dst, size, "%" PRIu64 "%c", secs / units[i].secs, units[i].word[0]);
}

/* The part for people: what happened, each recipient, then why, on a line
 * of its own. */
static void dsn_human(dsn_out_t *o, const dsn_report_t *r)
{
    char lifetime[64], until[STR_DATE_SIZE];

    dsn_duration(r->lifetime, true, lifetime, sizeof(lifetime));
    dsn_printf(o, "This is the mail system at host ");
    dsn_text(o, r->hostname);
    dsn_printf(o, ".\r\n\r\n");
    switch (r->action) {
    case DSN_FAILED:
        if (r->postmaster_copy) {
            dsn_printf(o, "A message from <> (a non-delivery notice, or a bounce on its way to\r\n"
                          "the sender it was addressed to) could not be delivered; this copy is\r\n"
                          "for the postmaster.  The reasons are below; its headers are attached.\r\n"
                          "\r\n");
            break;
        }
        dsn_printf(o, "Your message could not be delivered to one or more of its recipients.\r\n"
                      "The reasons are below; %s.\r\n\r\n",
                   r->full != NULL      ? "your message is attached"
                   : r->full_too_big    ? "your message was too big to return whole, so "
                                          "its headers are attached"
                                        : "the headers of your message are attached");
        break;
    case DSN_DELAYED:
        str_date(r->retry_until, until, sizeof(until));
        dsn_printf(o, "Your message could not be delivered yet to one or more of its recipients.\r\n"
                      "It will be tried again until %s; you need not send it again.\r\n"
                      "The reasons are below; the headers of your message are attached.\r\n\r\n",
                   until);
        break;
    case DSN_RELAYED:
        dsn_printf(o, "Your message was forwarded to the recipients below, as you asked to be\r\n"
                      "told.  Their mail system does not send delivery notices: this is the\r\n"
                      "last notice you will get about them.\r\n\r\n");
        break;
    }
    for (size_t i = 0; i < r->nrcpts; i++) {
        const dsn_rcpt_t *d = &r->rcpts[i];

        dsn_printf(o, "<");
        dsn_text(o, dsn_shown(r, d));
        if (dsn_has(d->orig) && !r->hide_destinations) {
            dsn_printf(o, "> (forwarded for <");
            dsn_text(o, d->orig);
        }
        dsn_printf(o, ">):\r\n    ");
        if (d->expired)
            dsn_printf(o, "not delivered within %s; the last attempt: ", lifetime);
        if (d->remote_reply && dsn_has_relay(d)) {
            dsn_printf(o, "host ");
            dsn_text(o, d->relay);
            dsn_printf(o, " said: ");
        }
        dsn_reply_text(o, r, d, d->reply);
        dsn_printf(o, "\r\n\r\n");
    }
}

/* The message/delivery-status part's body (RFC 3464 2.2, 2.3). */
static void dsn_fields(dsn_out_t *o, const dsn_report_t *r)
{
    char date[STR_DATE_SIZE];

    str_date(r->arrival, date, sizeof(date));
    dsn_printf(o, "Reporting-MTA: dns; ");
    dsn_text(o, r->hostname);
    dsn_printf(o, "\r\n");
    if (dsn_has(r->envid)) {
        dsn_printf(o, "Original-Envelope-Id: ");
        dsn_text(o, r->envid);
        dsn_printf(o, "\r\n");
    }
    dsn_printf(o, "X-mxfwd-Queue-ID: %s\r\n", r->queue_id);
    dsn_addr_field(o, "X-mxfwd-Sender", " ", r->sender);
    dsn_printf(o, "Arrival-Date: %s\r\n", date);
    for (size_t i = 0; i < r->nrcpts; i++) {
        const dsn_rcpt_t *d = &r->rcpts[i];

        dsn_printf(o, "\r\n");
        dsn_addr_field(o, "Final-Recipient", " ", dsn_shown(r, d));
        /* The client's own ORCPT= as it gave it (RFC 3461 6.3), else the
         * alias, unless that is already the Final-Recipient. */
        if (dsn_has(d->orcpt)) {
            dsn_printf(o, "Original-Recipient: ");
            dsn_text(o, d->orcpt);
            dsn_printf(o, "\r\n");
        } else if (dsn_has(d->orig) && !r->hide_destinations) {
            dsn_addr_field(o, "Original-Recipient", "", d->orig);
        }
        dsn_printf(o, "Action: %s\r\nStatus: %s\r\n", dsn_action_name(r->action),
                   dsn_status(r->action, d));
        if (dsn_has_relay(d)) {
            /* "mx.example" out of "mx.example[192.0.2.1]:25". */
            const char *bracket = strchr(d->relay, '[');
            int n = bracket != NULL && bracket > d->relay ? (int)(bracket - d->relay) : 300;
            char host[300];

            snprintf(host, sizeof(host), "%.*s", n, d->relay);
            dsn_printf(o, "Remote-MTA: dns; ");
            dsn_text(o, host);
            dsn_printf(o, "\r\n");
        }
        /* The remote's own words when it said something; mxfwd's reason
         * (no host reached, a local error) under its own type, as Postfix
         * does with X-Postfix. */
        if (dsn_has(d->reply)) {
            dsn_printf(o, "Diagnostic-Code: %s; ", d->remote_reply ? "smtp" : "X-mxfwd");
            dsn_reply_text(o, r, d, d->reply);
            dsn_printf(o, "\r\n");
        }
        str_date(d->last_attempt, date, sizeof(date));
        dsn_printf(o, "Last-Attempt-Date: %s\r\n", date);
        if (r->action == DSN_DELAYED) {
            str_date(r->retry_until, date, sizeof(date));
            dsn_printf(o, "Will-Retry-Until: %s\r\n", date);
        }
    }
}

/* Whether anything that goes into the message is not ASCII: then every
 * part is declared 8bit and the envelope says BODY=8BITMIME. */
static bool dsn_needs_8bit(const dsn_report_t *r)
{
    if (str_has_8bit(r->headers, r->headers_len) || !dsn_ascii(r->sender) ||
        !dsn_ascii(r->hostname) || (r->full != NULL && str_has_8bit(r->full, r->full_len)))
        return true;
    for (size_t i = 0; i < r->nrcpts; i++)
        if (!dsn_ascii(r->rcpts[i].addr) || !dsn_ascii(r->rcpts[i].orig) ||
            !dsn_ascii(r->rcpts[i].orcpt) || !dsn_ascii(r->rcpts[i].reply) ||
            !dsn_ascii(r->rcpts[i].relay))
            return true;
    return false;
}

/* Whether an address or a returned header is not ASCII: an
 * internationalized message, reported with RFC 6533's global types. */
static bool dsn_needs_global(const dsn_report_t *r)
{
    const char *h = r->full != NULL ? r->full : r->headers;
    size_t n = r->full != NULL ? dsn_header_section(r->full, r->full_len) : r->headers_len;

    if (str_has_8bit(h, n) || !dsn_ascii(r->sender))
        return true;
    for (size_t i = 0; i < r->nrcpts; i++)
        if (!dsn_ascii(r->rcpts[i].addr) || !dsn_ascii(r->rcpts[i].orig) ||
            !dsn_ascii(r->rcpts[i].orcpt))
            return true;
    return false;
}

/* Whether s[0..n) holds the boundary. */
static bool dsn_holds(const char *s, size_t n, const char *boundary)
{
    return s != NULL && memmem(s, n, boundary, strlen(boundary)) != NULL;
}

static const char *const dsn_subjects[] = {
    [DSN_FAILED] = "Undelivered Mail Returned to Sender",
    [DSN_DELAYED] = "Delayed Mail (still being retried)",
    [DSN_RELAYED] = "Successful Mail Delivery Report",
};

int dsn_build(const dsn_report_t *r, buf_t *out, dsn_needs_t *needs)
{
    dsn_out_t o = {out, 0};
    char date[STR_DATE_SIZE], boundary[128];
    bool eightbit = dsn_needs_8bit(r), global = dsn_needs_global(r);
    const char *cte = eightbit ? "8bit" : "7bit";
    const char *attached = r->full != NULL ? r->full : r->headers;
    size_t attached_len = r->full != NULL ? r->full_len : r->headers_len;

    needs->body_8bit = eightbit;
    needs->smtputf8 = !dsn_ascii(r->sender);
    /* A boundary that no line of what is attached can hold. */
    snprintf(boundary, sizeof(boundary), "%s.%" PRId64 "/%.64s", r->queue_id, r->now, r->hostname);
    for (unsigned n = 1; dsn_holds(attached, attached_len, boundary); n++)
        snprintf(boundary, sizeof(boundary), "%s.%" PRId64 ".%u/%.64s", r->queue_id, r->now, n,
                 r->hostname);
    str_date(r->now, date, sizeof(date));

    dsn_printf(&o, "From: Mail Delivery System <MAILER-DAEMON@");
    dsn_text(&o, r->hostname);
    dsn_printf(&o, ">\r\nTo: <");
    dsn_text(&o, r->sender);
    dsn_printf(&o, ">\r\nSubject: %s\r\nDate: %s\r\n",
               r->postmaster_copy ? "Postmaster Copy: Undelivered Mail" : dsn_subjects[r->action],
               date);
    dsn_printf(&o, "Message-ID: <%s.%" PRId64 "@", r->queue_id, r->now);
    dsn_text(&o, r->hostname);
    /* RFC 3834: an automatic reply, which auto-responders leave alone. */
    dsn_printf(&o,
               ">\r\n"
               "Auto-Submitted: auto-replied\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=%s;\r\n"
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
               global ? "global-delivery-status" : "delivery-status", boundary, cte, boundary,
               eightbit ? "utf-8" : "us-ascii", cte);
    dsn_human(&o, r);
    dsn_printf(&o,
               "--%s\r\n"
               "Content-Description: Delivery report\r\n"
               "Content-Type: message/%s\r\n"
               "%s"
               "\r\n",
               boundary, global ? "global-delivery-status" : "delivery-status",
               global ? "Content-Transfer-Encoding: 8bit\r\n" : "");
    dsn_fields(&o, r);
    if (r->full != NULL)
        dsn_printf(&o,
                   "\r\n"
                   "--%s\r\n"
                   "Content-Description: Undelivered Message\r\n"
                   "Content-Type: message/%s\r\n"
                   "Content-Transfer-Encoding: %s\r\n"
                   "\r\n",
                   boundary, global ? "global" : "rfc822", cte);
    else
        dsn_printf(&o,
                   "\r\n"
                   "--%s\r\n"
                   "Content-Description: %s Message Headers\r\n"
                   "Content-Type: %s\r\n"
                   "Content-Transfer-Encoding: %s\r\n"
                   "\r\n",
                   boundary, r->action == DSN_FAILED ? "Undelivered" : "Original",
                   global ? "message/global-headers" : "text/rfc822-headers", cte);
    if (o.rc == 0)
        o.rc = buf_append(out, attached, attached_len);
    if (attached_len > 0 && attached[attached_len - 1] != '\n')
        dsn_printf(&o, "\r\n");
    dsn_printf(&o, "\r\n--%s--\r\n", boundary);
    return o.rc;
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
