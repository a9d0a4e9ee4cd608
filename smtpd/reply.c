#include "reply.h"

#include <stdio.h>

#include "srs.h"

char *reply_for_lookup(table_result_t result, const char *addr, char *dst, size_t size)
{
    switch (result) {
    case TABLE_FOUND:
        snprintf(dst, size, "250 2.1.5 <%s>: Recipient ok", addr);
        break;
    case TABLE_UNKNOWN_USER:
        snprintf(dst, size, "550 5.1.1 <%s>: Recipient address rejected: User unknown", addr);
        break;
    case TABLE_RELAY_DENIED:
        snprintf(dst, size, "554 5.7.1 <%s>: Relay access denied", addr);
        break;
    case TABLE_BAD_ADDRESS:
        snprintf(dst, size, "501 5.5.4 <%s>: Bad recipient address syntax", addr);
        break;
    }
    return dst;
}

char *reply_for_srs_reverse(int err, const char *addr, char *dst, size_t size)
{
    switch (err) {
    case SRS_ENOTSRS:
        return reply_for_lookup(TABLE_UNKNOWN_USER, addr, dst, size);
    case SRS_EBADHASH:
        snprintf(dst, size, "550 5.7.1 <%s>: Recipient address rejected: invalid SRS signature",
                 addr);
        break;
    case SRS_EEXPIRED:
        snprintf(dst, size, "550 5.7.1 <%s>: Recipient address rejected: SRS address expired",
                 addr);
        break;
    case SRS_EMALFORMED:
        snprintf(dst, size, "550 5.7.1 <%s>: Recipient address rejected: malformed SRS address",
                 addr);
        break;
    default:
        snprintf(dst, size, "451 4.3.0 <%s>: Temporary local problem checking the SRS address",
                 addr);
        break;
    }
    return dst;
}

char *reply_for_srs_sender(const char *addr, char *dst, size_t size)
{
    snprintf(dst, size,
             "550 5.7.1 <%s>: Recipient address rejected: SRS addresses accept only bounces "
             "(null sender)",
             addr);
    return dst;
}

char *reply_for_srs_forward(int err, const char *addr, char *dst, size_t size)
{
    switch (err) {
    case SRS_ETOOLONG:
        snprintf(dst, size,
                 "550 5.1.7 <%s>: Sender address rejected: too long to rewrite with SRS "
                 "(local part over 64 octets)",
                 addr);
        break;
    case SRS_EMALFORMED:
        snprintf(dst, size, "550 5.1.7 <%s>: Sender address rejected: cannot be rewritten with SRS",
                 addr);
        break;
    default:
        snprintf(dst, size, "451 4.3.0 <%s>: Temporary local problem rewriting the sender", addr);
        break;
    }
    return dst;
}
