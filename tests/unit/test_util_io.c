/* Unit tests for the parts of util/ that talk to other processes over Unix
 * sockets: the service manager's notifications (notify) and syslog (log),
 * each against a socket the test binds in place of the real one; the
 * loader of line-based files (lines), against files the test writes; and
 * new files made once (file_create). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "collect.h"
#include "diag.h"
#include "file.h"
#include "lines.h"
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

Test(log, a_batch_goes_to_syslog_as_datagrams_in_one_call, .init = make_dir, .fini = remove_dir)
{
    char path[300], got[LOG_LINE_MAX + 256], want[128];
    int fd = bound(SOCK_DGRAM, path, sizeof(path)), pri;
    struct timeval tv = {0, 100 * 1000};

    cr_assert_eq(log_set_syslog_path(path), 0);
    log_init("mxfwd", LOG_TARGET_SYSLOG, LOG_LEVEL_INFO);
    log_batch_begin();
    log_info("first");
    log_warning("second");
    /* Nothing yet. */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_lt(recv(fd, got, sizeof(got), 0), 0, "held until the flush");
    tv.tv_sec = 5;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    log_batch_end();
    receive(fd, got, sizeof(got));
    snprintf(want, sizeof(want), "mxfwd[%ld]: first", (long)getpid());
    cr_assert_str_eq(syslog_line(got, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 6);
    receive(fd, got, sizeof(got));
    snprintf(want, sizeof(want), "mxfwd[%ld]: warning: second", (long)getpid());
    cr_assert_str_eq(syslog_line(got, &pri), want);
    cr_assert_eq(pri, 2 * 8 + 4, "each datagram with its own priority");
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

/* ---- lines ---- */

#define SEEN_MAX 16

/* What the hooks were given, in order. */
typedef struct {
    diag_t diag;
    int starts, finishes;
    bool had_status;
    mode_t mode;
    size_t text_len;
    size_t n;
    char line[SEEN_MAX][64];
    size_t len[SEEN_MAX], lineno[SEEN_MAX];
} seen_t;

static collect_t reports;

static void seen_start(void *parser, const char *text, size_t len, const struct stat *st)
{
    seen_t *s = parser;

    (void)text;
    s->starts++;
    s->text_len = len;
    s->had_status = st != NULL;
    if (st != NULL)
        s->mode = st->st_mode & 07777;
}

/* Records the line; "bad" is an error and "odd" a warning, at its line. */
static void seen_line(void *parser, char *line, size_t len, size_t lineno)
{
    seen_t *s = parser;

    cr_assert_lt(s->n, SEEN_MAX);
    cr_assert_eq(line[len], '\0', "terminated in place");
    memcpy(s->line[s->n], line, len < 63 ? len : 63);
    s->len[s->n] = len;
    s->lineno[s->n++] = lineno;
    if (strcmp(line, "bad") == 0)
        diag_error(&s->diag, lineno, "bad line");
    if (strcmp(line, "odd") == 0)
        diag_warning(&s->diag, lineno, "odd line");
}

static void seen_finish(void *parser)
{
    ((seen_t *)parser)->finishes++;
}

static const lines_loader_t seen_loader = {
    .max = 64,
    .start = seen_start,
    .line = seen_line,
    .finish = seen_finish,
};

static seen_t seen_new(const char *path)
{
    seen_t s = {.diag = {.path = path,
                         .on_error = collect_message,
                         .on_warning = collect_message,
                         .ctx = &reports}};

    reports.n = 0;
    return s;
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    chmod(path, mode);
}

static void remove_file_dir(void)
{
    char path[300];

    snprintf(path, sizeof(path), "%s/f", dir);
    chmod(path, 0600);
    unlink(path);
    rmdir(dir);
}

Test(lines, numbered_from_one_with_lf_and_crlf_ends_and_no_final_newline)
{
    const char text[] = "one\r\ntwo\n\n  \nthree\rx\r\n\r\nlast";
    const char *want[] = {"one", "two", "", "  ", "three\rx", "", "last"};
    seen_t s = seen_new("t");

    cr_assert_eq(lines_parse(&s.diag, &seen_loader, text, sizeof(text) - 1, &s), 0);
    cr_assert_eq(s.starts, 1);
    cr_assert_eq(s.finishes, 1);
    cr_assert_not(s.had_status, "text given, no file");
    cr_assert_eq(s.text_len, sizeof(text) - 1);
    cr_assert_eq(s.n, 7);
    for (size_t i = 0; i < s.n; i++) {
        cr_assert_str_eq(s.line[i], want[i], "line %zu", i + 1);
        cr_assert_eq(s.len[i], strlen(want[i]));
        cr_assert_eq(s.lineno[i], i + 1);
    }
    cr_assert_eq(reports.n, 0);
}

Test(lines, a_final_newline_ends_the_last_line_and_starts_none)
{
    seen_t s = seen_new("t");

    lines_parse(&s.diag, &seen_loader, "a\nb\n", 4, &s);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.line[1], "b");

    s = seen_new("t");
    lines_parse(&s.diag, &seen_loader, "a\r", 2, &s);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.line[0], "a", "a CR at the very end is a line end too");

    s = seen_new("t");
    cr_assert_eq(lines_parse(&s.diag, &seen_loader, "", 0, &s), 0);
    cr_assert_eq(s.n, 0, "an empty text has no line");
    cr_assert_eq(s.starts + s.finishes, 2, "but its hooks run");
}

Test(lines, a_nul_byte_stays_in_its_line)
{
    const char text[] = "ab\0cd\nok";
    seen_t s = seen_new("t");

    lines_parse(&s.diag, &seen_loader, text, sizeof(text) - 1, &s);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.len[0], 5);
    cr_assert(memcmp(s.line[0], "ab\0cd", 5) == 0);
    cr_assert_eq(s.lineno[1], 2);
}

Test(lines, problems_are_reported_at_their_line_and_counted)
{
    const char text[] = "# c\nbad\nodd\n\nbad";
    seen_t s = seen_new("f.conf");

    cr_assert_eq(lines_parse(&s.diag, &seen_loader, text, sizeof(text) - 1, &s), 2,
                 "the number of errors, warnings apart");
    cr_assert_eq(s.diag.errors, 2);
    cr_assert_eq(s.diag.warnings, 1);
    cr_assert_eq(reports.n, 3);
    cr_assert_str_eq(reports.msg[0], "f.conf:2: bad line");
    cr_assert_str_eq(reports.msg[1], "f.conf:3: warning: odd line");
    cr_assert_str_eq(reports.msg[2], "f.conf:5: bad line");
}

Test(lines, load_reads_the_file_and_gives_its_status, .init = make_dir, .fini = remove_file_dir)
{
    const char text[] = "first\r\nbad\nlast";
    lines_loader_t wiped = seen_loader;
    char path[300];
    seen_t s;

    snprintf(path, sizeof(path), "%s/f", dir);
    write_file(path, text, sizeof(text) - 1, 0640);
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &seen_loader, &s), 1);
    cr_assert(s.had_status);
    cr_assert_eq(s.mode, 0640);
    cr_assert_eq(s.text_len, sizeof(text) - 1);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.line[0], "first");
    cr_assert_str_eq(s.line[2], "last");
    cr_assert_eq(s.lineno[2], 3);
    cr_assert(strstr(reports.msg[0], ":2: bad line") != NULL, "%s", reports.msg[0]);

    /* Secret text is overwritten after the hooks, not before. */
    wiped.wipe = true;
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &wiped, &s), 1);
    cr_assert_str_eq(s.line[0], "first");
    s = seen_new(path);
    cr_assert_eq(lines_parse(&s.diag, &wiped, text, sizeof(text) - 1, &s), 1);
    cr_assert_str_eq(s.line[2], "last");
}

Test(lines, the_size_limit_in_either_words, .init = make_dir, .fini = remove_file_dir)
{
    lines_loader_t says_max = seen_loader;
    char path[300], text[65], want[400];
    seen_t s;

    memset(text, 'x', sizeof(text));
    snprintf(path, sizeof(path), "%s/f", dir);
    write_file(path, text, 64, 0600);
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &seen_loader, &s), 0, "exactly the limit is read");
    cr_assert_eq(s.len[0], 64);

    write_file(path, text, 65, 0600);
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &seen_loader, &s), 1);
    cr_assert_eq(s.starts + s.n + s.finishes, 0, "no hook runs");
    snprintf(want, sizeof(want), "%s: file too large", path);
    cr_assert_str_eq(reports.msg[0], want);

    says_max.report_max = true;
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &says_max, &s), 1);
    snprintf(want, sizeof(want), "%s: larger than 64 bytes", path);
    cr_assert_str_eq(reports.msg[0], want);
}

Test(lines, an_unreadable_file_is_one_error, .init = make_dir, .fini = remove_file_dir)
{
    char path[300], want[400];
    seen_t s;

    snprintf(path, sizeof(path), "%s/f", dir);
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &seen_loader, &s), 1);
    cr_assert_eq(s.starts + s.n + s.finishes, 0, "no hook runs");
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    cr_assert_str_eq(reports.msg[0], want);

    s = seen_new(dir);
    cr_assert_eq(lines_load(&s.diag, &seen_loader, &s), 1);
    snprintf(want, sizeof(want), "%s: not a regular file", dir);
    cr_assert_str_eq(reports.msg[0], want);
    cr_assert_eq(reports.n, 1);

    write_file(path, "x\n", 2, 0000);
    if (access(path, R_OK) == 0)
        return; /* root reads it anyway */
    s = seen_new(path);
    cr_assert_eq(lines_load(&s.diag, &seen_loader, &s), 1);
    snprintf(want, sizeof(want), "%s: cannot open: Permission denied", path);
    cr_assert_str_eq(reports.msg[0], want);
}

/* ---- file_create ---- */

Test(file, create_writes_a_new_file_with_its_mode_and_never_replaces,
     .init = make_dir, .fini = remove_file_dir)
{
    char path[300], link_path[300], *text = NULL;
    struct stat st;
    size_t len;
    mode_t old = umask(0);

    snprintf(path, sizeof(path), "%s/f", dir);
    cr_assert_eq(file_create(path, "secret\n", 7, 0600), 0);
    umask(old);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    cr_assert_eq(file_read(path, 100, &text, &len, NULL), 0);
    cr_assert_str_eq(text, "secret\n");
    free(text);

    /* There already: kept as it was. */
    cr_assert_eq(file_create(path, "other\n", 6, 0644), -EEXIST);
    cr_assert_eq(file_read(path, 100, &text, &len, NULL), 0);
    cr_assert_str_eq(text, "secret\n");
    free(text);

    /* A symbolic link is not followed, even to a name that does not exist. */
    snprintf(link_path, sizeof(link_path), "%s/sock", dir);
    cr_assert_eq(symlink("f-target", link_path), 0);
    cr_assert_eq(file_create(link_path, "x", 1, 0600), -EEXIST);
    unlink(link_path);
    snprintf(link_path, sizeof(link_path), "%s/no/such/dir", dir);
    cr_assert_eq(file_create(link_path, "x", 1, 0600), -ENOENT);
}
