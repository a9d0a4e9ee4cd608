/*
 * libFuzzer harness for client_reply_parse(): server replies as they come
 * off the network, fed in pieces as reads would deliver them.  The first
 * octet says whether the replies are EHLO replies (bit 0) and how big the
 * pieces are (the rest); the other octets are the stream, parsed reply
 * after reply until it is used up or malformed.  Besides the sanitizers'
 * checks: the parser never claims more than it was given, and a reply it
 * completes has a code of 2xx-5xx, a printable NUL-terminated text of the
 * length it claims that fits a delivery_rcpt_t, and a status code of the
 * reply's class.
 *
 * Run with scripts/fuzz SECONDS client_reply; seeds in corpus/client_reply/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_done(const client_reply_t *r)
{
    const char *dsn = client_reply_dsn(r);
    char host[64];

    if (r->code < 200 || r->code > 599 || r->nlines == 0)
        abort();
    if (r->len >= DELIVERY_REPLY_MAX || strlen(r->text) != r->len)
        abort();
    for (size_t i = 0; i < r->len; i++)
        if ((unsigned char)r->text[i] < 0x20 || r->text[i] == 0x7f)
            abort();
    if (dsn[0] != (char)('0' + r->code / 100) && !(r->code / 100 == 3 && dsn[0] == '5'))
        abort();
    if (r->dsn[0] != '\0' && (strlen(r->dsn) < 5 || r->dsn[1] != '.'))
        abort();
    client_reply_host(r, host, sizeof(host));
    if (strlen(host) >= sizeof(host))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    client_reply_t r;
    char *buf;
    size_t step, fed = 0, have = 0;
    bool ehlo;

    if (size < 1)
        return 0;
    ehlo = data[0] & 1;
    step = (size_t)(data[0] >> 1) + 1;
    data++;
    size--;
    buf = malloc(size + 1);
    client_reply_init(&r, ehlo);
    while (fed < size || have > 0) {
        size_t n = size - fed < step ? size - fed : step, used = 0;
        int rc;

        memcpy(buf + have, data + fed, n);
        have += n;
        fed += n;
        rc = client_reply_parse(&r, buf, have, &used);
        if (used > have)
            abort();
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc == CLIENT_REPLY_DONE) {
            check_done(&r);
            client_reply_init(&r, ehlo);
        } else if (rc != CLIENT_REPLY_MORE) {
            break;
        } else if (n == 0) {
            break; /* an incomplete last line */
        }
    }
    free(buf);
    return 0;
}
