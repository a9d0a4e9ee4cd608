/*
 * reply - the words of mxfwd's SMTP replies, in one place.
 *
 * The inbound session and `mxfwd resolve` say the same thing about the
 * same address, so the texts live here rather than in either of them.
 * Codes follow docs/smtp.md's table; the enhanced status codes are RFC 3463's.
 * docs/smtp.md lists every reply.
 */
#ifndef MXFWD_REPLY_H
#define MXFWD_REPLY_H

#include <stddef.h>

#include "table.h"

typedef enum {
    /* RCPT */
    REPLY_RCPT_OK,
    REPLY_UNKNOWN_USER,
    REPLY_RELAY_DENIED,
    REPLY_BAD_RCPT,
    REPLY_SRS_NOT_BOUNCE,
    REPLY_SRS_BAD_HASH,
    REPLY_SRS_EXPIRED,
    REPLY_SRS_MALFORMED,
    REPLY_SRS_TEMP,
    REPLY_SRS_UNKNOWN_KEY,
    REPLY_SRS_STORE_READ,
    REPLY_TOO_MANY_RCPTS,
    REPLY_NEED_SMTPUTF8,
    REPLY_TABLE_REJECT,
    /* MAIL */
    REPLY_MAIL_OK,
    REPLY_BAD_SENDER,
    REPLY_SENDER_TOO_LONG,
    REPLY_SENDER_NO_SRS,
    REPLY_SENDER_SRS_TEMP,
    REPLY_SIZE_DECLARED,
    REPLY_SENDER_NOT_FQDN,
    REPLY_SENDER_UNKNOWN_DOMAIN,
    REPLY_SENDER_NULL_MX,
    REPLY_SENDER_DOMAIN_TEMP,
    /* the client: rate limits (the client's address follows the text),
     * DNS lists (the words are composed) */
    REPLY_RATE_CONNECTIONS,
    REPLY_RATE_MESSAGES,
    REPLY_RATE_RECIPIENTS,
    REPLY_DNSBL,
    /* filters (docs/milter.md): their defaults, when they give no reply
     * of their own */
    REPLY_MILTER_REJECT,
    REPLY_MILTER_TEMPFAIL,
    REPLY_MILTER_CLOSE,
    REPLY_MILTER_DISCARD,
    /* DATA */
    REPLY_DATA_GO,
    REPLY_TOO_BIG,
    REPLY_HOPS,
    REPLY_BARE_EOL,
    REPLY_SPOOL_FAILED,
    REPLY_SRS_STORE_WRITE,
    REPLY_NO_RCPTS,
    /* the sender checks, after the end of data (the verdict's own words
     * are sent; these name the reason, for counters and RCPT) */
    REPLY_AUTH_SPF,
    REPLY_AUTH_DMARC,
    REPLY_AUTH_NO_FROM,
    REPLY_AUTH_DNS,
    REPLY_AUTH_FAILED,
    /* protocol */
    REPLY_UNKNOWN_COMMAND,
    REPLY_LINE_TOO_LONG,
    REPLY_BARE_COMMAND,
    REPLY_SYNTAX,
    REPLY_BAD_PARAM,
    REPLY_UNSUPPORTED_PARAM,
    REPLY_BAD_SEQUENCE,
    REPLY_NOT_IMPLEMENTED,
    REPLY_OK,
    REPLY_VRFY,
    REPLY_BYE,
    REPLY_TLS_GO,
    REPLY_TLS_ACTIVE,
    /* connection */
    REPLY_TIMEOUT,
    REPLY_SHUTDOWN,
    REPLY_TOO_MANY_CONNECTIONS,
    REPLY_TOO_MANY_ERRORS,
    REPLY_NOT_SMTP,
    REPLY_NREPLIES
} reply_id_t;

typedef struct {
    int code;
    const char *esc;  /* enhanced status code (RFC 2034, 3463) */
    const char *text; /* the words; an address goes before them as "<a>: " */
    const char *name; /* for counters and metrics: "relay_denied" */
} reply_t;

const reply_t *reply_get(reply_id_t id);
/* The reply's name: "relay_denied", "unknown_user", "too_big", ... */
const char *reply_name(reply_id_t id);

/* The reply for a forward-table result.  Returns REPLY_RCPT_OK,
 * REPLY_UNKNOWN_USER, REPLY_RELAY_DENIED or REPLY_BAD_RCPT. */
reply_id_t reply_for_table(table_result_t result);

/* The reply to RCPT for an address in srs_domain that srs_reverse()
 * refused with err (SRS_E*): 550 5.7.1 for a bad hash, an expired or
 * malformed address; not-srs is an unknown user. */
reply_id_t reply_for_srs_reverse_err(int err);
/* The reply to MAIL FROM for a sender srs_forward() refused with err:
 * 550 5.1.7 for one too long or impossible to rewrite. */
reply_id_t reply_for_srs_forward_err(int err);

/* "CODE ESC <addr>: text", without CRLF, into dst.  Returns dst. */
char *reply_format(reply_id_t id, const char *addr, char *dst, size_t size);

/* Format the reply to RCPT for a forward-table result other than
 * TABLE_FOUND, without CRLF: "554 5.7.1 <x@y>: Relay access denied".
 * Returns dst. */
char *reply_for_lookup(table_result_t result, const char *addr, char *dst, size_t size);

/* The same, formatted, for the SRS refusals above; and the reply to RCPT
 * for an SRS address from a sender other than <>: only bounces may use
 * one, so a leaked SRS address is no open relay. */
char *reply_for_srs_reverse(int err, const char *addr, char *dst, size_t size);
char *reply_for_srs_sender(const char *addr, char *dst, size_t size);
char *reply_for_srs_forward(int err, const char *addr, char *dst, size_t size);

/* The reply to RCPT for an address in srs_domain that srs_reverse()
 * refused with err (SRS_E*): "550 5.7.1 <addr>: ..." for a bad hash, an
 * expired or malformed address; not-srs is an unknown user.  Returns dst. */
char *reply_for_srs_reverse(int err, const char *addr, char *dst, size_t size);

/* The reply to RCPT for an SRS address from a sender other than <>: only
 * bounces may use one, so a leaked SRS address is no open relay. */
char *reply_for_srs_sender(const char *addr, char *dst, size_t size);

/* The reply to MAIL FROM for a sender srs_forward() refused with err:
 * "550 5.1.7 <addr>: ..." for one too long or impossible to rewrite. */
char *reply_for_srs_forward(int err, const char *addr, char *dst, size_t size);

#endif
