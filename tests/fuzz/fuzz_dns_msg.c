/*
 * libFuzzer harness for dns_msg_parse(): DNS answers as they come off the
 * network.  The first octet picks the record type asked for, the rest is
 * the answer to a query for "example.com".  Besides the sanitizers'
 * checks, a result must hold at least one record of the type asked for,
 * with NUL-terminated strings of the length it claims.
 *
 * Run with scripts/fuzz SECONDS dns_msg; the seeds are in corpus/dns_msg/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const dns_type_t types[] = {DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR};
    dns_result_t *res = NULL;
    dns_type_t type;
    uint32_t ttl;
    int rc;

    if (size < 1)
        return 0;
    type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    rc = dns_msg_parse(data + 1, size - 1, "example.com", type, &res, &ttl);
    if (rc != 0) {
        if (res != NULL)
            abort();
        return 0;
    }
    if (res == NULL || res->n == 0 || res->type != type)
        abort();
    for (size_t i = 0; i < res->n; i++) {
        switch (type) {
        case DNS_T_MX:
            if (strlen(res->u.mx[i].host) > 1023)
                abort();
            break;
        case DNS_T_TXT:
            if (res->u.txt[i].text[res->u.txt[i].len] != '\0')
                abort();
            break;
        case DNS_T_PTR:
            if (strlen(res->u.ptr[i]) > 1023)
                abort();
            break;
        case DNS_T_A:
        case DNS_T_AAAA:
            if (res->u.addr[i].family != (type == DNS_T_A ? AF_INET : AF_INET6))
                abort();
            break;
        }
    }
    dns_msg_result_unref(res);
    return 0;
}
