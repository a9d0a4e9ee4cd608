#include "reply.h"

#include <stdio.h>

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
