/*
 * libFuzzer harness for the DATA reader (smtpd/data.c): any bytes as what
 * a client sends after "354", read in pieces whose sizes the input's
 * first bytes choose, as socket reads would cut them.
 *
 * The reader's results are compared with an independent model written
 * the obvious, slow way: the data ends at the first "." CR LF that starts
 * the input or follows CR LF; it is bad when it holds a CR not followed by
 * LF or an LF not preceded by CR; a good message is its lines with one
 * leading dot removed from each; its hop count is the "Received:" lines
 * before the first empty line.  Whatever the cut, the reader must agree
 * with the model on where the data ends, whether it is bad, its size and
 * bytes, and its hop count; and output never runs ahead of input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

typedef struct {
    bool done;
    size_t end; /* bytes up to and including the final dot's LF */
    bool bare;
    char *out;
    size_t out_len;
    unsigned received;
} fuzz_model_t;

static void fuzz_model(const char *in, size_t len, fuzz_model_t *m)
{
    size_t data_len = len, i;
    bool headers = true;

    memset(m, 0, sizeof(*m));
    for (i = 0; i + 3 <= len; i++) {
        if (memcmp(in + i, ".\r\n", 3) == 0 &&
            (i == 0 || (i >= 2 && memcmp(in + i - 2, "\r\n", 2) == 0))) {
            m->done = true;
            m->end = i + 3;
            data_len = i;
            break;
        }
    }
    if (!m->done)
        return; /* compared only when the end was seen */
    for (i = 0; i < data_len; i++) {
        if (in[i] == '\r' && (i + 1 >= data_len || in[i + 1] != '\n'))
            m->bare = true;
        if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
            m->bare = true;
    }
    if (m->bare)
        return;
    m->out = malloc(data_len + 1);
    for (i = 0; i < data_len;) {
        const char *lf = memchr(in + i, '\n', data_len - i);
        size_t line = (size_t)(lf - (in + i)) + 1, skip = in[i] == '.' ? 1 : 0;
        const char *text = in + i + skip;
        size_t tlen = line - skip;

        if (headers && tlen == 2)
            headers = false;
        if (headers && tlen >= 9 && str_ncasecmp(text, "received:", 9) == 0)
            m->received++;
        memcpy(m->out + m->out_len, text, tlen);
        m->out_len += tlen;
        i += line;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t cuts[4] = {0, 0, 0, 0};
    size_t ncuts = size < 4 ? size : 4, pos = 0, out_len = 0, k = 0;
    char *in, *out;
    data_reader_t d;
    fuzz_model_t m;
    bool done = false;

    memcpy(cuts, data, ncuts);
    data += ncuts;
    size -= ncuts;
    in = malloc(size + 1);
    out = malloc(size + 1);
    memcpy(in, data, size);
    fuzz_model((const char *)data, size, &m);

    data_init(&d, DATA_DOT, UINT64_MAX);
    while (pos < size && !done) {
        size_t n = size - pos, got, used;
        uint8_t cut = cuts[k++ % 4];
        if (cut > 0 && n > cut)
            n = cut;
        used = data_feed(&d, in + pos, n, &got, &done);
        FUZZ_CHECK(got <= used && used <= n);
        FUZZ_CHECK(used == n || done);
        memcpy(out + out_len, in + pos, got);
        out_len += got;
        pos += used;
    }
    FUZZ_CHECK(done == m.done);
    if (done) {
        FUZZ_CHECK(pos == m.end);
        FUZZ_CHECK(d.bare == m.bare);
        if (!m.bare) {
            FUZZ_CHECK(d.size == m.out_len && out_len == m.out_len);
            FUZZ_CHECK(memcmp(out, m.out, out_len) == 0);
            FUZZ_CHECK(d.received == m.received);
        }
    }
    /* The same bytes with a size limit one short of the message: refused,
     * and still ending at the same place. */
    if (done && !m.bare && m.out_len > 0) {
        size_t got;
        bool done2;
        memcpy(in, data, size);
        data_init(&d, DATA_DOT, m.out_len - 1);
        FUZZ_CHECK(data_feed(&d, in, size, &got, &done2) == m.end && done2);
        FUZZ_CHECK(d.too_big && got == 0);
    }
    free(m.out);
    free(in);
    free(out);
    return 0;
}
