/*
 * bench_table - load a generated forward table of 100,000 aliases and
 * resolve 1,000,000 addresses against it.
 *
 *     build/bench/bench_table [ALIASES [LOOKUPS]]
 *
 * Prints the load time and the lookup rate.  The addresses mix exact hits,
 * "+tag" subaddresses, catch-alls, unknown users and foreign domains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "table.h"
#include "xalloc.h"

static double bench_clock(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall time, and the process's CPU time: on a shared machine the second
 * says what the work costs whatever else runs. */
typedef struct {
    double wall, cpu;
} bench_time_t;

static bench_time_t bench_now(void)
{
    return (bench_time_t){bench_clock(CLOCK_MONOTONIC), bench_clock(CLOCK_PROCESS_CPUTIME_ID)};
}

static void bench_error(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "%s\n", message);
}

int main(int argc, char **argv)
{
    long aliases = argc > 1 ? atol(argv[1]) : 100000;
    long lookups = argc > 2 ? atol(argv[2]) : 1000000;
    char path[] = "/tmp/mxfwd-bench-table-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    table_t *t = NULL;
    char **addrs;
    long found = 0;
    bench_time_t t0, t1;
    const long naddrs = 4096;

    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        perror("bench_table: temporary file");
        return 1;
    }
    /* 100 alias domains; a few team aliases nest other aliases; every tenth
     * domain has a catch-all. */
    for (long i = 0; i < aliases; i++) {
        long d = i % 100;
        if (i % 1000 == 999)
            fprintf(f, "team%ld@d%ld.alias.test user%ld@d%ld.alias.test, boss%ld@example.org\n", i,
                    d, i - 100, (i - 100) % 100, i);
        else
            fprintf(f, "user%ld@d%ld.alias.test first%ld.last@example.com\n", i, d, i);
    }
    for (long d = 0; d < 100; d += 10)
        fprintf(f, "@d%ld.alias.test postmaster@example.net\n", d);
    fclose(f);

    t0 = bench_now();
    if (table_load(path, bench_error, NULL, &t) != 0)
        return 1;
    t1 = bench_now();
    unlink(path);
    printf("load: %ld aliases in %.1f ms (CPU %.1f ms)\n", (long)table_count(t),
           (t1.wall - t0.wall) * 1e3, (t1.cpu - t0.cpu) * 1e3);

    addrs = xmalloc((size_t)naddrs * sizeof(*addrs));
    srand(42);
    for (long i = 0; i < naddrs; i++) {
        long u = rand() % aliases;
        char a[128];
        switch (i % 8) {
        case 0:
            snprintf(a, sizeof(a), "user%ld+tag@d%ld.alias.test", u, u % 100);
            break;
        case 1:
            snprintf(a, sizeof(a), "nobody%ld@d%ld.alias.test", u, u % 100);
            break;
        case 2:
            snprintf(a, sizeof(a), "user%ld@elsewhere.example", u);
            break;
        case 3:
            snprintf(a, sizeof(a), "USER%ld@D%ld.Alias.Test", u, u % 100);
            break;
        default:
            snprintf(a, sizeof(a), "user%ld@d%ld.alias.test", u, u % 100);
        }
        addrs[i] = xstrdup(a);
    }

    t0 = bench_now();
    for (long i = 0; i < lookups; i++) {
        const char *a = addrs[i & (naddrs - 1)];
        table_dests_t dests;
        if (table_lookup(t, a, strlen(a), &dests) == TABLE_FOUND)
            found += (long)dests.n;
    }
    t1 = bench_now();
    printf("lookups: %ld in %.1f ms: %.2f M lookups/s; CPU %.1f ms: %.2f M lookups per CPU "
           "second (%ld destinations)\n",
           lookups, (t1.wall - t0.wall) * 1e3, (double)lookups / (t1.wall - t0.wall) / 1e6,
           (t1.cpu - t0.cpu) * 1e3, (double)lookups / (t1.cpu - t0.cpu) / 1e6, found);

    for (long i = 0; i < naddrs; i++)
        free(addrs[i]);
    free(addrs);
    table_unref(t);
    return 0;
}
