/* Unit tests for the parts of util/ that talk to other processes over Unix
 * sockets: the service manager's notifications (notify) and syslog (log),
 * each against a socket the test binds in place of the real one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "parse.h"

static char dir[256];

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/mxfwd-io-XXXXXX", tmp != NULL ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char path[300];

    snprintf(path, sizeof(path), "%s/sock", dir);
    unlink(path);
    rmdir(dir);
}

/* A socket of type bound at dir/sock (listening, for a stream), with a
 * receive timeout so that a missing message fails instead of hanging. */
static int bound(int type, char *path, size_t size)
{
    struct sockaddr_storage ss;
    struct timeval tv = {5, 0};
    socklen_t len;
    int fd = socket(AF_UNIX, type, 0);

    snprintf(path, size, "%s/sock", dir);
    unlink(path);
    cr_assert_eq(parse_unix_sockaddr(path, &ss, &len), 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind: %s", strerror(errno));
    if (type == SOCK_STREAM)
        cr_assert_eq(listen(fd, 4), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static ssize_t receive(int fd, char *out, size_t size)
{
    ssize_t n = recv(fd, out, size - 1, 0);

    cr_assert_gt(n, 0, "recv: %s", n < 0 ? strerror(errno) : "end of stream");
    out[n] = '\0';
    return n;
}

/* ---- parse_unix_sockaddr ---- */

Test(unix_sockaddr, paths_and_abstract_names)
{
    struct sockaddr_storage ss;
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
    socklen_t len;
    char longest[sizeof(sun->sun_path) + 1];

    cr_assert_eq(parse_unix_sockaddr("/run/systemd/notify", &ss, &len), 0);
    cr_assert_eq(sun->sun_family, AF_UNIX);
    cr_assert_str_eq(sun->sun_path, "/run/systemd/notify");
    cr_assert_eq(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);

    /* "@name": a NUL first, and the length ends the name. */
    cr_assert_eq(parse_unix_sockaddr("@mxfwd/notify", &ss, &len), 0);
    cr_assert_eq(sun->sun_path[0], '\0');
    cr_assert(memcmp(sun->sun_path + 1, "mxfwd/notify", 12) == 0);
    cr_assert_eq(len, offsetof(struct sockaddr_un, sun_path) + 13);

    cr_assert_eq(parse_unix_sockaddr("", &ss, &len), -1);
    cr_assert_eq(parse_unix_sockaddr("@", &ss, &len), -1);
    cr_assert_eq(parse_unix_sockaddr("relative/sock", &ss, &len), -1);
    memset(longest, 'x', sizeof(longest) - 1);
    longest[0] = '/';
    longest[sizeof(longest) - 1] = '\0';
    cr_assert_eq(parse_unix_sockaddr(longest, &ss, &len), -1, "no room for the NUL");
    longest[sizeof(longest) - 2] = '\0';
    cr_assert_eq(parse_unix_sockaddr(longest, &ss, &len), 0);
}

/* ---- notify ---- */

Test(notify, states_reach_the_socket_named_in_the_environment, .init = make_dir, .fini = remove_dir)
{
    char path[300], got[512];
    int fd = bound(SOCK_DGRAM, path, sizeof(path));
    unsigned long long usec;
    uint64_t before = notify_monotonic_usec();

    unsetenv("NOTIFY_SOCKET");
    cr_assert_eq(notify_send("READY=1"), 0, "no NOTIFY_SOCKET: nothing to do");

    setenv("NOTIFY_SOCKET", path, 1);
    cr_assert_eq(notify_send("READY=1\nSTATUS=accepting mail"), 1);
    cr_assert_eq(receive(fd, got, sizeof(got)), 29);
    cr_assert_str_eq(got, "READY=1\nSTATUS=accepting mail");

    cr_assert_eq(notify_reloading(), 1);
    receive(fd, got, sizeof(got));
    cr_assert_eq(sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec), 1, "%s", got);
    cr_assert(usec >= before && usec <= notify_monotonic_usec(), "%s", got);

    cr_assert_eq(notify_send(""), -EINVAL);
    close(fd);
    cr_assert_eq(notify_send("STOPPING=1"), -ECONNREFUSED, "nobody listens any more");
    unlink(path);
    cr_assert_eq(notify_send("STOPPING=1"), -ENOENT);
    setenv("NOTIFY_SOCKET", "relative", 1);
    cr_assert_eq(notify_send("READY=1"), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

Test(notify, abstract_sockets)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {5, 0};
    char name[64], got[64];
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    size_t n;

    n = (size_t)snprintf(name, sizeof(name), "@mxfwd-test-notify-%ld", (long)getpid());
    memcpy(sun.sun_path + 1, name + 1, n - 1);
    cr_assert_eq(
        bind(fd, (struct sockaddr *)&sun, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", name, 1);
    cr_assert_eq(notify_send("STOPPING=1"), 1);
    receive(fd, got, sizeof(got));
    cr_assert_str_eq(got, "STOPPING=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

/* ---- log to syslog ---- */

/* "<PRI>Mmm dd hh:mm:ss " and then the line: the line, and *pri. */
static const char *syslog_line(const char *dgram, int *pri)
{
    int n = 0;

    cr_assert_eq(sscanf(dgram, "<%d>%n", pri, &n), 1, "%s", dgram);
    /* "Nov 28 10:00:00 " is 16 characters. */
    cr_assert_geq(strlen(dgram + n), 16, "%s", dgram);
    cr_assert_eq(dgram[n + 3], ' ', "%s", dgram);
    cr_assert_eq(dgram[n + 9], ':', "%s", dgram);
    cr_assert_eq(dgram[n + 15], ' ', "%s", dgram);
    return dgram + n + 16;
}

Test(log, syslog_lines_are_datagrams_with_facility_mail, .init = make_dir, .fini = remove_dir)
{
    char path[300], got[LOG_LINE_MAX + 256], want[128];
    int fd = bound(SOCK_DGRAM, path, sizeof(path)), pri;

    cr_assert_eq(log_set_syslog_path(path), 0);
    log_init("mxfwd", LOG_TARGET_SYSLOG, LOG_LEVEL_INFO);
    log_debug("hidden");
    log_info("1A2B3C: from=<%s> size=%d", "a@x", 1234);
    log_error("client sent \r\nforged line");

    receive(fd, got, sizeof(got));
    snprintf(want, sizeof(want), "mxfwd[%ld]: 1A2B3C: from=<a@x> size=1234", (long)getpid());
    cr_assert_str_eq(syslog_line(got, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 6, "mail.info");
    receive(fd, got, sizeof(got));
    snprintf(want, sizeof(want), "mxfwd[%ld]: error: client sent ??forged line", (long)getpid());
    cr_assert_str_eq(syslog_line(got, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 3, "mail.err");

    /* The syslog daemon restarts: a new socket at the same path. */
    close(fd);
    fd = bound(SOCK_DGRAM, path, sizeof(path));
    log_warning("after the restart");
    receive(fd, got, sizeof(got));
    snprintf(want, sizeof(want), "mxfwd[%ld]: warning: after the restart", (long)getpid());
    cr_assert_str_eq(syslog_line(got, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 4, "mail.warning");

    log_init("mxfwd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
    log_set_syslog_path(NULL);
    close(fd);
}

static size_t nuls(const char *p, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += p[i] == '\0';
    return count;
}

Test(log, syslog_on_a_stream_socket, .init = make_dir, .fini = remove_dir)
{
    char path[300], got[512], want[128];
    int lfd = bound(SOCK_STREAM, path, sizeof(path)), fd, pri;
    struct timeval tv = {5, 0};
    ssize_t n = 0;

    cr_assert_eq(log_set_syslog_path(path), 0);
    log_init("mxfwd", LOG_TARGET_SYSLOG, LOG_LEVEL_DEBUG);
    fd = accept(lfd, NULL, NULL);
    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    log_debug("one");
    log_info("two");
    /* Records end with a NUL, as syslog(3) sends them on a stream: read
     * until both are in. */
    while (nuls(got, (size_t)n) < 2) {
        ssize_t r = recv(fd, got + n, sizeof(got) - 1 - (size_t)n, 0);
        cr_assert_gt(r, 0);
        n += r;
    }
    snprintf(want, sizeof(want), "mxfwd[%ld]: debug: one", (long)getpid());
    cr_assert_str_eq(syslog_line(got, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 7, "mail.debug");
    snprintf(want, sizeof(want), "mxfwd[%ld]: two", (long)getpid());
    cr_assert_str_eq(syslog_line(got + strlen(got) + 1, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 6);

    log_init("mxfwd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
    log_set_syslog_path(NULL);
    close(fd);
    close(lfd);
}

Test(log, without_a_syslog_daemon_lines_go_to_stderr, .init = make_dir, .fini = remove_dir)
{
    char path[300], out[256], want[128];
    int fds[2];
    ssize_t n;

    snprintf(path, sizeof(path), "%s/sock", dir);
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(log_set_syslog_path(path), 0);
    log_init("mxfwd", LOG_TARGET_SYSLOG, LOG_LEVEL_INFO);
    log_set_fd(fds[1]);
    log_info("nobody listens");
    log_set_fd(2);
    close(fds[1]);
    n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    snprintf(want, sizeof(want), "mxfwd[%ld]: nobody listens\n", (long)getpid());
    cr_assert_str_eq(out, want);
    cr_assert_eq(log_set_syslog_path("relative"), -1);
    log_init("mxfwd", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
    log_set_syslog_path(NULL);
}
