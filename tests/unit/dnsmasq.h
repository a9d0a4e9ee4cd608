/*
 * Test helper: a real authoritative DNS server for one test, dnsmasq on a
 * free loopback port chosen at run time, stopped by its PID.
 *
 * dnsmasq_start() takes the record options (--txt-record=..., --server=...)
 * and returns once the server answers on TCP.  The child also gets
 * PR_SET_PDEATHSIG, so a test that crashes cannot leave it running.
 */
#ifndef MXFWD_TEST_DNSMASQ_H
#define MXFWD_TEST_DNSMASQ_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
    char server[32]; /* "127.0.0.1:PORT", for dns_servers */
} dnsmasq_t;

/* A port free on 127.0.0.1 for both UDP and TCP right now. */
static inline int dnsmasq_free_port(void)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), port = -1;

        if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(u, (struct sockaddr *)&a, &len) == 0 &&
            bind(t, (struct sockaddr *)&a, sizeof(a)) == 0)
            port = ntohs(a.sin_port);
        if (u >= 0)
            close(u);
        if (t >= 0)
            close(t);
        if (port > 0)
            return port;
    }
    return -1;
}

static inline int dnsmasq_start(dnsmasq_t *d, const char *const *records, size_t n)
{
    const char *bin = getenv("MXFWD_DNSMASQ") ? getenv("MXFWD_DNSMASQ") : "/usr/sbin/dnsmasq";
    char port_arg[32];
    const char **argv = calloc(n + 16, sizeof(*argv));
    size_t k = 0;
    struct timespec start, now;

    if (argv == NULL || (d->port = dnsmasq_free_port()) < 0)
        return -1;
    snprintf(port_arg, sizeof(port_arg), "--port=%d", d->port);
    snprintf(d->server, sizeof(d->server), "127.0.0.1:%d", d->port);
    argv[k++] = bin;
    argv[k++] = "--no-daemon";
    argv[k++] = port_arg;
    argv[k++] = "--listen-address=127.0.0.1";
    argv[k++] = "--bind-interfaces";
    argv[k++] = "--no-resolv";
    argv[k++] = "--no-hosts";
    argv[k++] = "--conf-file=/dev/null";
    argv[k++] = "--pid-file=";
    argv[k++] = "--local=/#/";
    for (size_t i = 0; i < n; i++)
        argv[k++] = records[i];
    argv[k] = NULL;

    d->pid = fork();
    if (d->pid < 0) {
        free(argv);
        return -1;
    }
    if (d->pid == 0) {
        int null = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    free(argv);
    /* Ready when it accepts a TCP connection; give up after 5 s. */
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
        int status;

        if (s >= 0)
            close(s);
        if (ok)
            return 0;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = -1;
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 5) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
            d->pid = -1;
            return -1;
        }
        usleep(10000);
    }
}

static inline void dnsmasq_stop(dnsmasq_t *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
        d->pid = -1;
    }
}

#endif
