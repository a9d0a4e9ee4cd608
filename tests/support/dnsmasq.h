/*
 * dnsmasq - a real DNS server for tests: dnsmasq on a free loopback port.
 *
 * test_dnsmasq_start() runs dnsmasq in the foreground with the options
 * that make it an authoritative test server without any configuration
 * file plus the test's own records, on a port of 127.0.0.1
 * that was free a moment before; it retries on another port if that one
 * was taken meanwhile, and returns once dnsmasq answers a query.  The
 * server dies with the test process (PR_SET_PDEATHSIG) even when the test
 * crashes; test_dnsmasq_stop() ends it by its PID and reaps it.
 *
 * The binary is $DNSMASQ, else /usr/sbin/dnsmasq.  Its log (with
 * --log-queries, if a test adds it) goes to an unlinked temporary file,
 * printed when the start fails or by test_dnsmasq_print_log().
 */
#ifndef MXFWD_TEST_DNSMASQ_H
#define MXFWD_TEST_DNSMASQ_H

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    uint16_t port;
    char server[32]; /* "127.0.0.1:PORT", as dns_servers takes it */
    int log_fd;      /* its log, an unlinked file; -1 when none */
} test_dnsmasq_t;

/* For a test_dnsmasq_t not started yet, so that stopping it is harmless. */
#define TEST_DNSMASQ_INIT                                                                          \
    {                                                                                              \
        .pid = -1, .log_fd = -1                                                                    \
    }

/* args: the test's own options, NULL-terminated.  0, or -1 with the
 * reason on stderr. */
int test_dnsmasq_start(test_dnsmasq_t *d, const char *const *args);
/* Stop it (SIGTERM, then SIGKILL after 2 s) and reap it.  Safe to call
 * twice. */
void test_dnsmasq_stop(test_dnsmasq_t *d);

/* Copy its log to stderr (to see why a test failed). */
void test_dnsmasq_print_log(const test_dnsmasq_t *d);

/* A UDP port on 127.0.0.1 nobody listens on: a query there is refused
 * (ICMP port unreachable). */
uint16_t test_dead_udp_port(void);

/* A UDP socket bound on 127.0.0.1 that is never read: a query there is
 * never answered.  Returns the fd (close it when done), *port its port. */
int test_silent_udp_socket(uint16_t *port);

#endif
