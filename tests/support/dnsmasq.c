#include "dnsmasq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DNSMASQ_ARGS_MAX 128
#define DNSMASQ_START_ATTEMPTS 5
#define DNSMASQ_READY_MS 5000
#define DNSMASQ_STOP_MS 2000

static const char *const dnsmasq_base[] = {
    "--no-daemon", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
    "--no-hosts",  "--conf-file=/dev/null",      "--pid-file=",
};

static uint64_t dnsmasq_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int dnsmasq_bind(int type, uint16_t port, uint16_t *bound)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        close(fd);
        return -1;
    }
    if (bound != NULL)
        *bound = ntohs(sin.sin_port);
    return fd;
}

/* A port free for both UDP and TCP on 127.0.0.1, as dnsmasq binds both. */
static uint16_t dnsmasq_free_port(void)
{
    for (int i = 0; i < 50; i++) {
        uint16_t port = 0;
        int u = dnsmasq_bind(SOCK_DGRAM, 0, &port), t;
        if (u < 0)
            continue;
        t = dnsmasq_bind(SOCK_STREAM, port, NULL);
        close(u);
        if (t >= 0) {
            close(t);
            return port;
        }
    }
    return 0;
}

uint16_t test_dead_udp_port(void)
{
    uint16_t port = 0;
    int fd = dnsmasq_bind(SOCK_DGRAM, 0, &port);

    if (fd < 0)
        return 0;
    close(fd);
    return port;
}

int test_silent_udp_socket(uint16_t *port)
{
    return dnsmasq_bind(SOCK_DGRAM, 0, port);
}

/* Whether something answers a DNS query on 127.0.0.1:port within ms. */
static int dnsmasq_answers(uint16_t port, int ms)
{
    /* ID 0x6d78, RD, one question: "ready.invalid" A IN. */
    static const unsigned char query[] = {
        0x6d, 0x78, 0x01, 0x00, 0,   1,   0,   0,   0,   0,   0, 0, 5, 'r', 'e', 'a',
        'd',  'y',  7,    'i',  'n', 'v', 'a', 'l', 'i', 'd', 0, 0, 1, 0,   1,
    };
    struct sockaddr_in sin;
    unsigned char reply[512];
    struct pollfd pfd;
    int fd, ok = 0;

    if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if (sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&sin, sizeof(sin)) ==
        (ssize_t)sizeof(query)) {
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, ms) == 1 && recv(fd, reply, sizeof(reply), 0) >= 2 &&
            reply[0] == query[0] && reply[1] == query[1])
            ok = 1;
    }
    close(fd);
    return ok;
}

void test_dnsmasq_print_log(const test_dnsmasq_t *d)
{
    char buf[4096];
    off_t off = 0;
    ssize_t n;

    if (d->log_fd < 0)
        return;
    fprintf(stderr, "dnsmasq log (port %u):\n", d->port);
    while ((n = pread(d->log_fd, buf, sizeof(buf), off)) > 0) {
        fwrite(buf, 1, (size_t)n, stderr);
        off += n;
    }
}

/* Wait for pid to exit, at most ms; 1 when it did (and was reaped). */
static int dnsmasq_reap(pid_t pid, int ms)
{
    uint64_t deadline = dnsmasq_now_ms() + (uint64_t)ms;

    do {
        pid_t w = waitpid(pid, NULL, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD))
            return 1;
        usleep(10000);
    } while (dnsmasq_now_ms() < deadline);
    return 0;
}

static pid_t dnsmasq_spawn(const test_dnsmasq_t *d, const char *const *args, int logfd)
{
    const char *bin = getenv("DNSMASQ") ? getenv("DNSMASQ") : "/usr/sbin/dnsmasq";
    const char *argv[DNSMASQ_ARGS_MAX];
    char port_arg[32];
    pid_t parent = getpid(), pid;
    size_t n = 0;

    snprintf(port_arg, sizeof(port_arg), "--port=%u", d->port);
    argv[n++] = bin;
    for (size_t i = 0; i < sizeof(dnsmasq_base) / sizeof(dnsmasq_base[0]); i++)
        argv[n++] = dnsmasq_base[i];
    argv[n++] = port_arg;
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        if (n + 1 >= DNSMASQ_ARGS_MAX)
            return -1;
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    pid = fork();
    if (pid != 0)
        return pid;
    /* The child: die with the test, whatever becomes of it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    dup2(logfd, STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    execv(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
}

int test_dnsmasq_start(test_dnsmasq_t *d, const char *const *args)
{
    memset(d, 0, sizeof(*d));
    d->pid = -1;
    d->log_fd = -1;
    for (int attempt = 0; attempt < DNSMASQ_START_ATTEMPTS; attempt++) {
        uint64_t deadline = dnsmasq_now_ms() + DNSMASQ_READY_MS;
        char log[] = "/tmp/mxfwd-dnsmasq-XXXXXX";

        if ((d->port = dnsmasq_free_port()) == 0)
            continue;
        snprintf(d->server, sizeof(d->server), "127.0.0.1:%u", d->port);
        if (d->log_fd >= 0)
            close(d->log_fd);
        /* Unlinked at once: nothing is left behind, even by a crash. */
        if ((d->log_fd = mkostemp(log, O_CLOEXEC)) < 0)
            break;
        unlink(log);
        d->pid = dnsmasq_spawn(d, args, d->log_fd);
        if (d->pid < 0)
            break;
        while (dnsmasq_now_ms() < deadline) {
            if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
                d->pid = -1; /* exited: most likely the port was taken */
                break;
            }
            if (dnsmasq_answers(d->port, 100))
                return 0;
        }
        if (d->pid > 0) {
            fprintf(stderr, "dnsmasq on port %u does not answer\n", d->port);
            break;
        }
    }
    fprintf(stderr, "cannot start dnsmasq\n");
    test_dnsmasq_print_log(d);
    test_dnsmasq_stop(d);
    return -1;
}

void test_dnsmasq_stop(test_dnsmasq_t *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        if (!dnsmasq_reap(d->pid, DNSMASQ_STOP_MS)) {
            kill(d->pid, SIGKILL);
            dnsmasq_reap(d->pid, DNSMASQ_STOP_MS);
        }
        d->pid = -1;
    }
    if (d->log_fd >= 0) {
        close(d->log_fd);
        d->log_fd = -1;
    }
}
