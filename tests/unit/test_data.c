/* Unit tests for smtpd/data.c: the end of DATA, dot-unstuffing, bare CR
 * and LF (SMTP smuggling), the size limit, the hop count, BDAT. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

typedef struct {
    char out[8192];
    size_t out_len;
    size_t consumed;
    bool done;
    data_reader_t d;
} result_t;

/* Feed in[0..len) in chunks of at most step bytes (0: all at once), as
 * reads from a socket would come, until the end or the input runs out. */
static result_t run(const char *in, size_t len, size_t step, data_mode_t mode, uint64_t max)
{
    result_t r = {.out_len = 0};
    char *copy = malloc(len + 1);

    memcpy(copy, in, len);
    data_init(&r.d, mode, max);
    while (r.consumed < len && !r.done) {
        size_t n = len - r.consumed, out;
        if (step > 0 && n > step)
            n = step;
        size_t used = data_feed(&r.d, copy + r.consumed, n, &out, &r.done);
        cr_assert_leq(out, used, "output never runs ahead of input");
        cr_assert(used == n || r.done, "everything is consumed until the end");
        memcpy(r.out + r.out_len, copy + r.consumed, out);
        r.out_len += out;
        r.consumed += used;
    }
    r.out[r.out_len] = '\0';
    free(copy);
    return r;
}

#define RUN(lit, step) run(lit, sizeof(lit) - 1, step, DATA_DOT, 1 << 20)

Test(data, plain_message_and_unstuffing)
{
    static const char in[] = "Subject: x\r\n\r\n..dot\r\n..\r\nbody\r\n.\r\nQUIT\r\n";

    for (size_t step = 0; step < 8; step++) {
        result_t r = RUN(in, step);
        cr_assert(r.done);
        cr_assert(data_ok(&r.d));
        cr_assert_str_eq(r.out, "Subject: x\r\n\r\n.dot\r\n.\r\nbody\r\n");
        cr_assert_eq(r.consumed, sizeof(in) - 1 - strlen("QUIT\r\n"), "the next command is left");
        cr_assert_eq(r.d.size, strlen(r.out));
    }
}

Test(data, empty_message)
{
    result_t r = RUN(".\r\nNOOP\r\n", 0);

    cr_assert(r.done);
    cr_assert_eq(r.out_len, 0);
    cr_assert_eq(r.consumed, 3);
}

/* Each smuggling vector: not an end, and a bare CR or LF; the real end
 * comes later and the session stays in step. */
static void smuggle(const char *vector)
{
    char in[512];
    int n = snprintf(
        in, sizeof(in),
        "Subject: a\r\n\r\nfirst%sMAIL FROM:<evil@x.test>\r\nDATA\r\nspoof\r\n.\r\nNOOP\r\n",
        vector);

    for (size_t step = 0; step < 4; step++) {
        result_t r = run(in, (size_t)n, step, DATA_DOT, 1 << 20);
        cr_assert(r.done, "%s: the real end is found", vector);
        cr_assert(r.d.bare, "%s: bare CR or LF seen", vector);
        cr_assert_eq(r.consumed, (size_t)n - strlen("NOOP\r\n"), "%s: in step", vector);
        /* Read whole, nothing of a bad message is passed on; read in
         * pieces, what came before the bad byte was (and is dropped). */
        if (step == 0)
            cr_assert_eq(r.out_len, 0, "%s: nothing of a bad message is passed on", vector);
    }
}

Test(data, smuggling_vectors)
{
    smuggle("\n.\n");
    smuggle("\n.\r\n");
    smuggle("\r.\r\n");
    smuggle("\r\n.\n");
    smuggle("\r\n.\r");
    smuggle(" bare\rCR\r\n");
    smuggle(" bare\nLF\r\n");
    smuggle("\r\r\n");
    smuggle("\r\n.\rX\r\n");
}

Test(data, terminator_split_everywhere)
{
    static const char in[] = "a\r\n.\r\n";

    for (size_t step = 1; step <= sizeof(in); step++) {
        result_t r = RUN(in, step);
        cr_assert(r.done);
        cr_assert_str_eq(r.out, "a\r\n");
    }
}

Test(data, size_limit)
{
    result_t r = run("12345\r\n.\r\n", 10, 0, DATA_DOT, 7);

    cr_assert(r.done && data_ok(&r.d), "exactly the limit is fine");
    r = run("123456\r\n.\r\n", 11, 0, DATA_DOT, 7);
    cr_assert(r.done);
    cr_assert(r.d.too_big);
    cr_assert_eq(r.out_len, 0);
    cr_assert_eq(r.consumed, 11, "read to the end to stay in step");
}

Test(data, hop_count)
{
    static const char in[] =
        "Received: a\r\nreceived: b\r\nRECEIVED:c\r\nX-Received: no\r\n"
        " Received: folded, no\r\nSubject: s\r\n\r\nReceived: body, no\r\n.\r\n";

    for (size_t step = 0; step < 5; step++) {
        result_t r = RUN(in, step);
        cr_assert(r.done);
        cr_assert_eq(r.d.received, 3);
        cr_assert_not(r.d.in_headers);
    }
    /* A dot-stuffed header line is read unstuffed. */
    result_t r = RUN("..Received: x\r\n\r\n.\r\n", 0);
    cr_assert_eq(r.d.received, 0);

    /* White space before the colon (RFC 5322 obs-optional) still names
     * the field, as tolerant parsers read it; other names do not. */
    static const char spaced[] = "Received :a\r\nReceived\t \t: b\r\nReceived x: no\r\n"
                                 "Receivedx: no\r\nReceived\r\n\r\n.\r\n";
    for (size_t step = 0; step < 5; step++) {
        r = RUN(spaced, step);
        cr_assert_eq(r.d.received, 2, "step %zu", step);
    }
}

Test(data, bdat_raw)
{
    data_reader_t d;
    char chunk1[] = "Received: x\r\n\r\n.\r\nline\r";
    char chunk2[] = "\nend";
    size_t out;
    bool done;

    data_init(&d, DATA_RAW, 1 << 20);
    cr_assert_eq(data_feed(&d, chunk1, strlen(chunk1), &out, &done), strlen(chunk1));
    cr_assert_not(done, "raw mode never ends by itself");
    cr_assert_eq(out, strlen(chunk1), "dots are not special");
    cr_assert_eq(data_feed(&d, chunk2, strlen(chunk2), &out, &done), strlen(chunk2));
    data_finish(&d);
    cr_assert(data_ok(&d), "CR LF across chunks is fine");
    cr_assert_eq(d.received, 1);

    char bad[] = "text\r";
    data_init(&d, DATA_RAW, 1 << 20);
    data_feed(&d, bad, strlen(bad), &out, &done);
    data_finish(&d);
    cr_assert(d.bare, "a CR at the very end is bare");
}
