/*
 * libFuzzer harness for the outbound client's dot-stuffing: any bytes, in
 * pieces whose size the first octet gives, as the spool file's reads
 * would feed them.  The output must end with ".\r\n" after a line end,
 * hold no "\r\n.\r\n" before that end and no LF without a CR before it,
 * and grow by no more than CLIENT_STUFF_ROOM allows.
 *
 * Run with scripts/fuzz SECONDS client_stuff; seeds in corpus/client_stuff/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    client_stuff_t st;
    buf_t b;
    const char *out;
    size_t step, n;

    if (size < 1)
        return 0;
    step = (size_t)data[0] + 1;
    data++;
    size--;
    buf_init(&b, CLIENT_STUFF_ROOM(size) + 8);
    client_stuff_init(&st);
    for (size_t pos = 0; pos < size; pos += step) {
        size_t k = size - pos < step ? size - pos : step;
        if (client_stuff(&st, (const char *)data + pos, k, &b) != 0)
            abort();
    }
    if (client_stuff_end(&st, &b) != 0)
        abort();
    out = buf_ptr(&b);
    n = buf_used(&b);
    if (n < 3 || memcmp(out + n - 3, ".\r\n", 3) != 0)
        abort();
    if (n > 3 && (n < 5 || memcmp(out + n - 5, "\r\n", 2) != 0))
        abort();
    for (size_t i = 0; i + 10 <= n; i++)
        if (memcmp(out + i, "\r\n.\r\n", 5) == 0)
            abort();
    if (n >= 3 && memcmp(out, ".\r\n", 3) == 0 && n != 3)
        abort();
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
            abort();
    buf_free(&b);
    return 0;
}
