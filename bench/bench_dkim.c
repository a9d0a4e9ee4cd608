/*
 * bench_dkim - the streaming DKIM verifier's cost.
 *
 *     bench_dkim [MESSAGES] [BODY_KIB]     (defaults 20000 and 1024)
 *
 * First, whole verifications of RFC 8463's example (an Ed25519 and an
 * RSA-1024 signature, both passing) fed in 4 KiB chunks: messages per
 * second.  Then the body path alone: the same two signatures (relaxed body
 * canonicalization, so one canonicalizer feeding two hashes) over a
 * BODY_KIB body of mail-like text fed in 4 KiB chunks, no keys given:
 * body MB/s.  One thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim.h"

static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

static const txt_record_t keys[] = {
    {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", 66},
    {"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qh"
     "dR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hs"
     "tT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
     234},
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const char *msg, size_t len, size_t nkeys)
{
    dkim_options_t opt = {.header_max = 262144, .max_signatures = 10, .now = 1528637909};
    dkim_t *d = dkim_new(&opt);
    int passed = 0;

    for (size_t i = 0; i < len; i += 4096)
        dkim_feed(d, msg + i, len - i < 4096 ? len - i : 4096);
    dkim_end(d);
    for (size_t i = 0; i < dkim_count(d) && i < nkeys; i++)
        dkim_set_key(d, i, TXT_OK, &keys[i], 1);
    dkim_finish(d);
    for (size_t i = 0; i < dkim_count(d); i++)
        passed += dkim_result(d, i)->status == DKIM_PASS;
    dkim_free(d);
    return passed;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    long kib = argc > 2 ? atol(argv[2]) : 1024;
    static const char line[] = "The quick brown fox\t jumps over  the lazy dog, again.   \r\n";
    const char *head = strstr(rfc8463_msg, "\r\n\r\n") + 4;
    size_t hlen = (size_t)(head - rfc8463_msg), blen = (size_t)kib * 1024, len = hlen + blen;
    char *big;
    double t0, t1;
    int reps = 20;

    if (n <= 0 || kib <= 0)
        return 2;
    t0 = now();
    for (long i = 0; i < n; i++)
        if (run(rfc8463_msg, sizeof(rfc8463_msg) - 1, 2) != 2) {
            fprintf(stderr, "bench_dkim: the RFC 8463 example did not verify\n");
            return 1;
        }
    t1 = now();
    printf("RFC 8463 example, 2 signatures: %.0f messages/s (%.1f us each)\n", n / (t1 - t0),
           (t1 - t0) / n * 1e6);

    big = malloc(len);
    if (big == NULL)
        return 1;
    memcpy(big, rfc8463_msg, hlen);
    for (size_t i = hlen; i < len; i++)
        big[i] = line[(i - hlen) % (sizeof(line) - 1)];
    t0 = now();
    for (int i = 0; i < reps; i++)
        run(big, len, 0);
    t1 = now();
    printf("body canonicalization and hashing, 2 signatures, %ld KiB body: %.0f MB/s\n", kib,
           (double)blen * reps / (t1 - t0) / 1e6);
    free(big);
    return 0;
}
