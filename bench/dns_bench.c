/*
 * dns_bench - resolver and routing throughput against dnsmasq on loopback.
 *
 *   build/bench/dns_bench [N]
 *
 * Three runs, at most 100 operations in flight: N lookups of distinct
 * names (each reaches the server), 10 N lookups answered from the cache,
 * and N full route decisions for a domain with three MX hosts (MX, AAAA
 * and A from the cache).  Prints operations per second.
 * dnsmasq shares the machine's cores, so the first figure is mostly its.
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "dns.h"
#include "dnsmasq.h"
#include "route.h"

#define IN_FLIGHT 100

typedef enum { RUN_UNCACHED, RUN_CACHED, RUN_ROUTE } run_kind_t;

typedef struct {
    dns_resolver_t *r;
    run_kind_t kind;
    route_config_t cfg;
    long started, done, total, errors;
} run_t;

static void run_next(run_t *run);

static void on_lookup(void *arg, int status, const dns_result_t *res)
{
    run_t *run = arg;

    (void)res;
    run->done++;
    run->errors += status != 0;
    run_next(run);
}

static void on_routed(void *arg, route_result_t *res)
{
    run_t *run = arg;

    run->done++;
    run->errors += res->status != ROUTE_OK;
    route_result_free(res);
    run_next(run);
}

static void run_next(run_t *run)
{
    while (run->started < run->total && run->started - run->done < IN_FLIGHT) {
        char name[64];
        int rc;
        switch (run->kind) {
        case RUN_UNCACHED:
            snprintf(name, sizeof(name), "h%ld.bench.test", run->started);
            rc = dns_lookup(run->r, DNS_T_A, name, on_lookup, run, NULL);
            break;
        case RUN_CACHED:
            rc = dns_lookup(run->r, DNS_T_MX, "mx.test", on_lookup, run, NULL);
            break;
        default:
            rc = route_lookup(run->r, &run->cfg, "mx.test", on_routed, run, NULL);
            break;
        }
        if (rc < 0) {
            fprintf(stderr, "lookup: %s\n", dns_strerror(rc));
            exit(1);
        }
        run->started++;
    }
}

static void run(uv_loop_t *loop, dns_resolver_t *r, run_kind_t kind, long n, const char *what)
{
    run_t rn = {.r = r, .kind = kind, .total = n};
    dns_stats_t before, after;
    uint64_t t0;
    double secs;

    rn.cfg.port = 25;
    dns_resolver_stats(r, &before);
    t0 = uv_hrtime();
    run_next(&rn);
    uv_run(loop, UV_RUN_DEFAULT);
    secs = (double)(uv_hrtime() - t0) / 1e9;
    dns_resolver_stats(r, &after);
    printf("%-38s %7ld in %.3f s: %9.0f/s (%ld errors, %llu queries sent)\n", what, rn.done, secs,
           (double)rn.done / secs, rn.errors, (unsigned long long)(after.queries - before.queries));
}

int main(int argc, char **argv)
{
    const char *args[] = {
        "--local=/#/",
        "--local-ttl=3600",
        "--address=/bench.test/127.0.0.1",
        "--mx-host=mx.test,mx1.mx.test,10",
        "--mx-host=mx.test,mx2.mx.test,10",
        "--mx-host=mx.test,mx3.mx.test,20",
        "--host-record=mx1.mx.test,127.0.0.11,::11",
        "--host-record=mx2.mx.test,127.0.0.12",
        "--host-record=mx3.mx.test,127.0.0.13",
        NULL,
    };
    long n = argc > 1 ? atol(argv[1]) : 20000;
    test_dnsmasq_t dm;
    uv_loop_t loop;
    dns_resolver_t *r;
    const char *servers[1];
    dns_options_t opts = {.servers = servers, .nservers = 1};
    if (n <= 0 || test_dnsmasq_start(&dm, args) < 0)
        return 1;
    servers[0] = dm.server;
    uv_loop_init(&loop);
    if (dns_resolver_new(&loop, &opts, &r) < 0) {
        test_dnsmasq_stop(&dm);
        return 1;
    }
    run(&loop, r, RUN_UNCACHED, n, "lookups to dnsmasq (distinct names)");
    run(&loop, r, RUN_CACHED, n * 10, "lookups from the cache");
    run(&loop, r, RUN_ROUTE, n, "route decisions (MX, AAAA, A cached)");
    dns_resolver_close(r, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    test_dnsmasq_stop(&dm);
    return uv_loop_close(&loop) != 0;
}
