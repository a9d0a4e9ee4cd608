/*
 * dsn - delivery status notifications (RFC 3464): the message mxfwd sends
 * to the original sender when recipients of its message bounce, and, when
 * the sender asked for them with NOTIFY= (RFC 3461), when they are still
 * waiting or were relayed to a next hop that sends no notices itself.
 *
 * dsn_build() writes the whole message, headers and body, from a report:
 * a multipart/report (RFC 6522) with report-type=delivery-status and three
 * parts: a text for people, the message/delivery-status fields (one block
 * per recipient: Final-Recipient, Original-Recipient, Action, Status,
 * Remote-MTA, Diagnostic-Code, Last-Attempt-Date) and the original
 * message's headers as text/rfc822-headers (the whole message as
 * message/rfc822 for RET=FULL).  When an address or a returned header is
 * not ASCII, the parts are RFC 6533's message/global-delivery-status,
 * message/global-headers and message/global.  It is pure (no I/O, no
 * clock): the queue manager gathers the report, reads the headers from
 * the spool and commits the result through the spool like any message,
 * from <> to the original sender.  docs/queue.md shows an example.
 *
 * Everything inserted into header fields is kept to one line (control
 * characters become '?'), so a remote reply cannot add fields.
 */
#ifndef MXFWD_DSN_H
#define MXFWD_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Most header bytes of the original read for the attachment. */
#define DSN_HEADERS_MAX (64 * 1024)
/* The largest message returned whole for RET=FULL; a larger one gets its
 * headers only. */
#define DSN_FULL_MAX (512 * 1024)

/* What the notice reports: every recipient of one DSN has the same. */
typedef enum {
    DSN_FAILED,  /* bounced: RFC 3464 Action: failed */
    DSN_DELAYED, /* still being retried (NOTIFY=DELAY) */
    DSN_RELAYED, /* delivered to a next hop that sends no notices (NOTIFY=SUCCESS) */
} dsn_action_t;

typedef struct {
    const char *addr;     /* the destination (Final-Recipient) */
    const char *orig;     /* the alias it came from; "" or NULL: none */
    const char *orcpt;    /* the client's ORCPT=, "type;addr"; "" or NULL: none */
    const char *status;   /* RFC 3463 code; "" or malformed: derived (5.0.0, or 4.4.7 expired) */
    const char *reply;    /* the remote reply, or mxfwd's reason */
    bool remote_reply;    /* reply came from relay: Diagnostic-Code "smtp;" */
    const char *relay;    /* "mx.example[192.0.2.1]:25"; "", NULL or "none": no host reached */
    int64_t last_attempt; /* unix seconds */
    bool expired;         /* given up after max_queue_lifetime, not refused */
} dsn_rcpt_t;

typedef struct {
    dsn_action_t action;
    const char *hostname; /* Reporting-MTA and From: MAILER-DAEMON@hostname */
    const char *envid;    /* ENVID= of the original (Original-Envelope-Id); "" or NULL: none */
    const char *queue_id; /* of the original message */
    const char *sender;   /* its original envelope sender: To: */
    int64_t arrival;      /* when it arrived, unix seconds */
    int64_t now;          /* Date: */
    uint64_t lifetime;    /* max_queue_lifetime in seconds, for the text on expiry */
    int64_t retry_until;  /* DSN_DELAYED: arrival + lifetime (Will-Retry-Until) */
    /* The private mailboxes stay private (dsn_hide_destinations): each
     * recipient is reported as its alias, and its mailbox is replaced by
     * the alias in the quoted replies. */
    bool hide_destinations;
    /* A report to the postmaster about a message from <> that bounced (a
     * double bounce): sender is the postmaster's address (To:), and the
     * text says whose mail it was. */
    bool postmaster_copy;
    const char *headers;  /* the original's header section, CRLF lines */
    size_t headers_len;
    /* The whole original (RET=FULL, DSN_FAILED), attached instead of the
     * headers; NULL: the headers.  full_too_big: RET=FULL was asked for a
     * message over DSN_FULL_MAX (said in the text). */
    const char *full;
    size_t full_len;
    bool full_too_big;
    const dsn_rcpt_t *rcpts;
    size_t nrcpts;        /* at least one */
} dsn_report_t;

/* The DSN's envelope needs these (spool.h's SPOOL_F_* values). */
typedef struct {
    bool body_8bit; /* 8-bit bytes in the attached headers: BODY=8BITMIME */
    bool smtputf8;  /* the sender's address is not ASCII */
} dsn_needs_t;

/* Append the message to out.  0, or BUF_EFULL when out's cap is reached. */
int dsn_build(const dsn_report_t *r, buf_t *out, dsn_needs_t *needs);

/*
 * The header section at the start of message bytes p[0..n): the length of
 * its lines up to (not including) the empty line that ends it.  When n
 * bytes hold no empty line, the complete lines among them (a message
 * without a body, or headers longer than the caller read).
 */
size_t dsn_header_section(const char *p, size_t n);

/* A duration in the largest unit that divides it: "5 days", "1 hour",
 * "90 minutes" with words, else "5d", "1h", "90m", "45s" (log lines). */
void dsn_duration(uint64_t secs, bool words, char *dst, size_t size);

#endif
