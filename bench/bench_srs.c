/*
 * bench_srs - SRS forward+reverse pairs per second.
 *
 *     bench_srs [PAIRS]     (default 500000)
 *
 * Each pair rewrites a sender (varied local parts and domains) and reverses
 * the result, checking it comes back; two secrets are configured, the
 * reverse side verifying against the first.  One thread, the clock pinned
 * so every address is fresh.  Prints the rate of pairs, and of forward and
 * reverse on their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srs.h"

#define BENCH_NOW ((time_t)1700000000)
#define BENCH_SENDERS 1024

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char *const secrets[] = {"bench-secret-number-one-0123456789",
                                          "bench-secret-number-two-0123456789"};
    static char senders[BENCH_SENDERS][64], srs_addr[BENCH_SENDERS][SRS_ADDR_SIZE];
    long pairs = argc > 1 ? atol(argv[1]) : 500000;
    char out[SRS_ADDR_SIZE], back[SRS_ADDR_SIZE];
    srs_t *srs = NULL;
    double t0, t1, t2, t3;

    if (pairs <= 0 || srs_new("fwd.example", 21 * 86400, secrets, 2, &srs) < 0) {
        fprintf(stderr, "usage: bench_srs [PAIRS]\n");
        return 2;
    }
    for (int i = 0; i < BENCH_SENDERS; i++)
        snprintf(senders[i], sizeof(senders[i]), "%s.%d@mail%d.example%s", i % 3 ? "user" : "First.Last",
                 i, i % 17, i % 2 ? ".com" : ".org");

    t0 = bench_now();
    for (long i = 0; i < pairs; i++) {
        const char *s = senders[i % BENCH_SENDERS];
        if (srs_forward(srs, s, strlen(s), BENCH_NOW, out, sizeof(out)) != 0 ||
            srs_reverse(srs, out, strlen(out), BENCH_NOW, back, sizeof(back), NULL) != 0 ||
            strcmp(back, s) != 0) {
            fprintf(stderr, "bench_srs: %s did not round-trip\n", s);
            return 1;
        }
    }
    t1 = bench_now();
    for (long i = 0; i < pairs; i++) {
        const char *s = senders[i % BENCH_SENDERS];
        if (srs_forward(srs, s, strlen(s), BENCH_NOW, srs_addr[i % BENCH_SENDERS],
                        SRS_ADDR_SIZE) != 0)
            return 1;
    }
    t2 = bench_now();
    for (long i = 0; i < pairs; i++) {
        const char *a = srs_addr[i % BENCH_SENDERS];
        if (srs_reverse(srs, a, strlen(a), BENCH_NOW, back, sizeof(back), NULL) != 0)
            return 1;
    }
    t3 = bench_now();
    printf("srs forward+reverse: %ld pairs in %.3f s: %.0f pairs/s\n", pairs, t1 - t0,
           (double)pairs / (t1 - t0));
    printf("srs forward alone: %.0f/s; reverse alone: %.0f/s\n", (double)pairs / (t2 - t1),
           (double)pairs / (t3 - t2));
    srs_free(srs);
    return 0;
}
