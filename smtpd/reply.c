#include "reply.h"

#include <stdio.h>

#include "srs.h"

static const reply_t reply_table[REPLY_NREPLIES] = {
    [REPLY_RCPT_OK] = {250, "2.1.5", "Ok", "rcpt_ok"},
    [REPLY_UNKNOWN_USER] = {550, "5.1.1", "Recipient address rejected: User unknown",
                            "unknown_user"},
    [REPLY_RELAY_DENIED] = {554, "5.7.1", "Relay access denied", "relay_denied"},
    [REPLY_BAD_RCPT] = {501, "5.5.4", "Bad recipient address syntax", "bad_rcpt"},
    [REPLY_SRS_NOT_BOUNCE] = {550, "5.7.1",
                              "Recipient address rejected: SRS addresses accept only bounces "
                              "(null sender)",
                              "srs_not_bounce"},
    [REPLY_SRS_BAD_HASH] = {550, "5.7.1", "Recipient address rejected: invalid SRS signature",
                            "srs_bad_hash"},
    [REPLY_SRS_EXPIRED] = {550, "5.7.1", "Recipient address rejected: SRS address expired",
                           "srs_expired"},
    [REPLY_SRS_MALFORMED] = {550, "5.7.1", "Recipient address rejected: malformed SRS address",
                             "srs_malformed"},
    [REPLY_SRS_TEMP] = {451, "4.3.0", "Temporary local problem checking the SRS address",
                        "srs_temp"},
    [REPLY_SRS_UNKNOWN_KEY] = {550, "5.1.1",
                               "Recipient address rejected: SRS address unknown or expired: "
                               "the envelope store has no sender under its key",
                               "srs_unknown_key"},
    [REPLY_SRS_STORE_READ] = {451, "4.3.0",
                              "Temporary local problem: the envelope store cannot be read; "
                              "try again later",
                              "srs_store_read"},
    [REPLY_TOO_MANY_RCPTS] = {452, "4.5.3", "Too many recipients", "too_many_rcpts"},
    [REPLY_NEED_SMTPUTF8] = {553, "5.6.7", "Non-ASCII address needs MAIL FROM:<...> SMTPUTF8",
                             "need_smtputf8"},
    /* The words are the forward table entry's (docs/forward-table.md). */
    [REPLY_TABLE_REJECT] = {550, "5.7.1", "Recipient address rejected", "table_reject"},
    [REPLY_MAIL_OK] = {250, "2.1.0", "Ok", "mail_ok"},
    [REPLY_BAD_SENDER] = {501, "5.5.4", "Bad sender address syntax", "bad_sender"},
    [REPLY_SENDER_TOO_LONG] = {550, "5.1.7",
                               "Sender address rejected: too long to rewrite with SRS "
                               "(local part over 64 octets)",
                               "sender_too_long"},
    [REPLY_SENDER_NO_SRS] = {550, "5.1.7", "Sender address rejected: cannot be rewritten with SRS",
                             "sender_no_srs"},
    [REPLY_SENDER_SRS_TEMP] = {451, "4.3.0", "Temporary local problem rewriting the sender",
                               "sender_srs_temp"},
    [REPLY_SIZE_DECLARED] = {552, "5.3.4", "Message size exceeds fixed limit", "size_declared"},
    [REPLY_SENDER_NOT_FQDN] = {504, "5.5.2", "Sender address rejected: need fully-qualified address",
                               "sender_not_fqdn"},
    [REPLY_SENDER_UNKNOWN_DOMAIN] = {550, "5.1.8", "Sender address rejected: Domain not found",
                                     "sender_unknown_domain"},
    [REPLY_SENDER_NULL_MX] = {550, "5.1.8",
                              "Sender address rejected: Domain does not accept mail (null MX)",
                              "sender_null_mx"},
    [REPLY_SENDER_DOMAIN_TEMP] = {450, "4.1.8",
                                  "Sender address rejected: Domain not found (DNS lookup failed; "
                                  "try again later)",
                                  "sender_domain_temp"},
    [REPLY_RATE_CONNECTIONS] = {421, "4.7.0", "Error: too many connections from",
                                "rate_connections"},
    [REPLY_RATE_MESSAGES] = {450, "4.7.1", "Error: too many messages from", "rate_messages"},
    [REPLY_RATE_RECIPIENTS] = {450, "4.7.1", "Error: too many recipients from", "rate_recipients"},
    [REPLY_DNSBL] = {554, "5.7.1", "Service unavailable", "dnsbl"},
    [REPLY_MILTER_REJECT] = {550, "5.7.1", "Command rejected", "milter_reject"},
    [REPLY_MILTER_TEMPFAIL] = {451, "4.7.1", "Service unavailable - try again later",
                               "milter_tempfail"},
    [REPLY_MILTER_CLOSE] = {421, "4.7.0", "Service unavailable - closing connection",
                            "milter_close"},
    [REPLY_MILTER_DISCARD] = {250, "2.0.0", "Ok", "milter_discard"},
    [REPLY_DATA_GO] = {354, NULL, "End data with <CR><LF>.<CR><LF>", "data_go"},
    [REPLY_TOO_BIG] = {552, "5.3.4", "Message size exceeds fixed limit", "too_big"},
    [REPLY_HOPS] = {554, "5.4.6", "Too many hops: mail forwarding loop", "hops"},
    [REPLY_BARE_EOL] = {554, "5.5.2", "Message refused: bare CR or LF in message (RFC 5321 2.3.8)",
                        "bare_eol"},
    [REPLY_SPOOL_FAILED] = {451, "4.3.0", "Temporary failure: cannot queue the message",
                            "spool_failed"},
    [REPLY_SRS_STORE_WRITE] = {451, "4.3.0",
                               "Temporary failure: the sender cannot be kept in the envelope "
                               "store; try again later",
                               "srs_store_write"},
    [REPLY_NO_RCPTS] = {554, "5.5.1", "No valid recipients", "no_rcpts"},
    [REPLY_AUTH_SPF] = {550, "5.7.23",
                        "SPF fail: the sender's domain does not authorize this client", "auth_spf"},
    [REPLY_AUTH_DMARC] = {550, "5.7.1", "Refused under the author domain's DMARC policy",
                          "auth_dmarc"},
    [REPLY_AUTH_NO_FROM] = {550, "5.7.1", "Message has no usable From: header", "no_from"},
    [REPLY_AUTH_DNS] = {451, "4.4.3", "Temporary DNS error checking the sender; try again later",
                        "auth_dns"},
    [REPLY_AUTH_FAILED] = {451, "4.3.0", "Temporary local problem checking the sender",
                           "auth_failed"},
    [REPLY_UNKNOWN_COMMAND] = {500, "5.5.2", "Command unrecognized", "unknown_command"},
    [REPLY_LINE_TOO_LONG] = {500, "5.5.2", "Line too long", "line_too_long"},
    [REPLY_BARE_COMMAND] = {500, "5.5.2", "Command line must end with CRLF, without bare CR or LF",
                            "bare_command"},
    [REPLY_SYNTAX] = {501, "5.5.4", "Syntax error in parameters or arguments", "syntax"},
    [REPLY_BAD_PARAM] = {501, "5.5.4", "Bad parameter value", "bad_param"},
    [REPLY_UNSUPPORTED_PARAM] = {555, "5.5.4", "Parameter not supported", "unsupported_param"},
    [REPLY_BAD_SEQUENCE] = {503, "5.5.1", "Bad sequence of commands", "bad_sequence"},
    [REPLY_NOT_IMPLEMENTED] = {502, "5.5.1", "Command not implemented", "not_implemented"},
    [REPLY_OK] = {250, "2.0.0", "Ok", "ok"},
    [REPLY_VRFY] = {252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery",
                    "vrfy"},
    [REPLY_BYE] = {221, "2.0.0", "Bye", "bye"},
    [REPLY_TLS_GO] = {220, "2.0.0", "Ready to start TLS", "tls_go"},
    [REPLY_TLS_ACTIVE] = {503, "5.5.1", "TLS already active", "tls_active"},
    [REPLY_TIMEOUT] = {421, "4.4.2", "Error: timeout exceeded, closing connection", "timeout"},
    [REPLY_SHUTDOWN] = {421, "4.4.2", "Service shutting down, closing connection", "shutdown"},
    [REPLY_TOO_MANY_CONNECTIONS] = {421, "4.7.0", "Error: too many connections, try again later",
                                    "too_many_connections"},
    [REPLY_TOO_MANY_ERRORS] = {421, "4.7.0", "Error: too many errors, closing connection",
                               "too_many_errors"},
    [REPLY_NOT_SMTP] = {421, "4.7.0", "Error: this is an SMTP server, closing connection",
                        "not_smtp"},
};

const char *reply_name(reply_id_t id)
{
    return reply_get(id)->name;
}

const reply_t *reply_get(reply_id_t id)
{
    return &reply_table[id < REPLY_NREPLIES ? id : REPLY_UNKNOWN_COMMAND];
}

reply_id_t reply_for_table(table_result_t result)
{
    switch (result) {
    case TABLE_FOUND:
        return REPLY_RCPT_OK;
    case TABLE_UNKNOWN_USER:
        return REPLY_UNKNOWN_USER;
    case TABLE_RELAY_DENIED:
        return REPLY_RELAY_DENIED;
    case TABLE_BAD_ADDRESS:
        break;
    }
    return REPLY_BAD_RCPT;
}

reply_id_t reply_for_srs_reverse_err(int err)
{
    switch (err) {
    case SRS_ENOTSRS:
        return REPLY_UNKNOWN_USER;
    case SRS_EBADHASH:
        return REPLY_SRS_BAD_HASH;
    case SRS_EEXPIRED:
        return REPLY_SRS_EXPIRED;
    case SRS_EMALFORMED:
        return REPLY_SRS_MALFORMED;
    }
    return REPLY_SRS_TEMP;
}

reply_id_t reply_for_srs_forward_err(int err)
{
    switch (err) {
    case SRS_ETOOLONG:
        return REPLY_SENDER_TOO_LONG;
    case SRS_EMALFORMED:
        return REPLY_SENDER_NO_SRS;
    }
    return REPLY_SENDER_SRS_TEMP;
}

char *reply_format(reply_id_t id, const char *addr, char *dst, size_t size)
{
    const reply_t *r = reply_get(id);

    snprintf(dst, size, "%d %s <%s>: %s", r->code, r->esc, addr, r->text);
    return dst;
}

char *reply_for_lookup(table_result_t result, const char *addr, char *dst, size_t size)
{
    return reply_format(reply_for_table(result), addr, dst, size);
}

char *reply_for_srs_reverse(int err, const char *addr, char *dst, size_t size)
{
    return reply_format(reply_for_srs_reverse_err(err), addr, dst, size);
}

char *reply_for_srs_sender(const char *addr, char *dst, size_t size)
{
    return reply_format(REPLY_SRS_NOT_BOUNCE, addr, dst, size);
}

char *reply_for_srs_forward(int err, const char *addr, char *dst, size_t size)
{
    return reply_format(reply_for_srs_forward_err(err), addr, dst, size);
}
