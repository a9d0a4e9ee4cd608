/*
 * Unit tests for mxfwd/listener: the client lifecycle the metrics endpoint
 * and the control socket share, under a toy line protocol.  The loop runs
 * in its own thread; the tests talk to it over blocking sockets.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "listener.h"
#include "testdir.h"

static char root[64], sock[100];
static uv_loop_t loop;
static uv_async_t stop;
static pthread_t thread;
static listener_t *lis;
static bool running, closed;

/* The toy protocol: each line comes back upper-cased; "bye" is the last
 * reply; a full input without a line is left unanswered. */
static void toy_input(listener_client_t *cl)
{
    buf_t *out = listener_client_out(cl);
    const char *line;
    size_t len;

    if (buf_getline(listener_client_in(cl), &line, &len) == BUF_EOL_NONE) {
        if (listener_client_eof(cl))
            listener_client_close(cl);
        return;
    }
    for (size_t i = 0; i < len; i++)
        buf_printf(out, "%c", line[i] >= 'a' && line[i] <= 'z' ? line[i] - 'a' + 'A' : line[i]);
    buf_puts(out, "\n");
    listener_client_send(cl, len == 3 && memcmp(line, "bye", 3) == 0);
}

static void toy_busy(listener_client_t *cl)
{
    buf_puts(listener_client_out(cl), "busy\n");
    listener_client_send(cl, true);
}

static listener_config_t toy = {
    .max_clients = 4,
    .in_max = 16,
    .out_max = 1 << 20,
    .timeout_ms = 5000,
    .input = toy_input,
};

static void on_closed(void *arg)
{
    closed = arg == &lis;
}

static void on_stop(uv_async_t *a)
{
    uv_close((uv_handle_t *)a, NULL);
    listener_close(lis, on_closed, &lis);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void setup(void)
{
    cr_assert_eq(test_dir_make("mxfwd-listener", root, sizeof(root)), 0);
    snprintf(sock, sizeof(sock), "%s/toy.sock", root);
    cr_assert_eq(uv_loop_init(&loop), 0);
}

/* Serve the toy protocol with cfg on the Unix socket. */
static void serve(const listener_config_t *cfg)
{
    cr_assert_eq(listener_open_pipe(&loop, sock, 0600, cfg, NULL, &lis), 0);
    uv_async_init(&loop, &stop, on_stop);
    cr_assert_eq(pthread_create(&thread, NULL, loop_thread, NULL), 0);
    running = true;
}

static void teardown(void)
{
    if (running) {
        uv_async_send(&stop);
        pthread_join(thread, NULL);
        cr_assert(closed, "the listener's closed callback ran");
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    test_dir_remove(root);
}

TestSuite(listener, .init = setup, .fini = teardown, .timeout = 30);

/* A blocking connection to sa (the Unix socket when NULL) that waits at
 * most 5 s for a read. */
static int connect_to(const struct sockaddr *sa, socklen_t len)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {5, 0};
    int fd;

    if (sa == NULL) {
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
        sa = (const struct sockaddr *)&sun;
        len = sizeof(sun);
    }
    fd = socket(sa->sa_family, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, sa, len), 0, "%s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static int dial(void)
{
    return connect_to(NULL, 0);
}

static void say(int fd, const char *s)
{
    cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Everything until the server closes (or shuts its side). */
static const char *hear_all(int fd)
{
    static char text[4096];
    size_t len = 0;
    ssize_t r;

    while (len < sizeof(text) - 1 && (r = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)r;
    cr_assert(r == 0 || errno == ECONNRESET, "closed, not timed out");
    text[len] = '\0';
    return text;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(listener, replies_in_order_then_the_close_at_the_end_of_input)
{
    int fd;

    serve(&toy);
    fd = dial();
    say(fd, "one\ntwo\r\nthree");
    say(fd, "\n");
    shutdown(fd, SHUT_WR);
    cr_assert_str_eq(hear_all(fd), "ONE\nTWO\nTHREE\n");
    close(fd);
}

Test(listener, the_last_reply_closes)
{
    int fd;

    serve(&toy);
    fd = dial();
    say(fd, "hi\nbye\nnot read\n");
    cr_assert_str_eq(hear_all(fd), "HI\nBYE\n");
    close(fd);
}

/* Lingering: the server shuts its side after the last reply and drains
 * what still comes, until the client closes. */
Test(listener, a_lingering_last_reply_reaches_a_client_still_sending)
{
    listener_config_t cfg = toy;
    int fd;

    cfg.linger_ms = 5000;
    serve(&cfg);
    fd = dial();
    say(fd, "bye\n");
    cr_assert_str_eq(hear_all(fd), "BYE\n");
    for (int i = 0; i < 20; i++)
        say(fd, "more and more, dropped\n");
    close(fd);
}

Test(listener, past_max_clients_a_busy_reply_or_a_close)
{
    listener_config_t cfg = toy;
    int fd[5];

    cfg.busy = toy_busy;
    serve(&cfg);
    for (int i = 0; i < 4; i++) {
        fd[i] = dial();
        say(fd[i], "x\n");
        cr_assert_eq(read(fd[i], (char[8]){0}, 8), 2, "X and its newline");
    }
    fd[4] = dial();
    cr_assert_str_eq(hear_all(fd[4]), "busy\n");
    close(fd[4]);
    close(fd[0]);
    /* A slot is free again (once the server has seen the close). */
    for (int tries = 0;; tries++) {
        const char *reply;
        fd[0] = dial();
        say(fd[0], "bye\n");
        reply = hear_all(fd[0]);
        close(fd[0]);
        if (strcmp(reply, "BYE\n") == 0)
            break;
        cr_assert_str_eq(reply, "busy\n");
        cr_assert_lt(tries, 100);
        usleep(10000);
    }
    for (int i = 1; i < 4; i++)
        close(fd[i]);
}

Test(listener, past_max_clients_without_busy_a_close)
{
    listener_config_t cfg = toy;
    int fd[2];

    cfg.max_clients = 1;
    serve(&cfg);
    fd[0] = dial();
    say(fd[0], "x\n");
    cr_assert_eq(read(fd[0], (char[8]){0}, 8), 2);
    fd[1] = dial();
    cr_assert_str_eq(hear_all(fd[1]), "");
    close(fd[1]);
    close(fd[0]);
}

Test(listener, a_full_input_left_unanswered_is_closed)
{
    int fd;

    serve(&toy);
    fd = dial();
    say(fd, "0123456789abcdefghij"); /* over in_max, no line */
    cr_assert_str_eq(hear_all(fd), "");
    close(fd);
}

/* Bytes sent every 100 ms, n times, then silence: when the server closes. */
static double closed_after(int n)
{
    double start = now_s();
    int fd = dial();

    for (int i = 0; i < n; i++) {
        say(fd, "x");
        usleep(100000);
    }
    cr_assert_str_eq(hear_all(fd), "");
    close(fd);
    return now_s() - start;
}

Test(listener, a_deadline_from_the_accept)
{
    listener_config_t cfg = toy;
    double took;

    cfg.timeout_ms = 300;
    serve(&cfg);
    took = closed_after(2);
    cr_assert(took >= 0.25 && took < 0.6, "%.3fs", took);
}

Test(listener, an_idle_timeout_that_reads_restart)
{
    listener_config_t cfg = toy;
    double took;

    cfg.timeout_ms = 300;
    cfg.idle_timeout = true;
    serve(&cfg);
    took = closed_after(6);
    cr_assert(took >= 0.75 && took < 1.3, "the last read at 0.5s: %.3fs", took);
}

Test(listener, closing_closes_every_client)
{
    int fd[3];

    serve(&toy);
    for (int i = 0; i < 3; i++) {
        fd[i] = dial();
        say(fd[i], "x\n");
        cr_assert_eq(read(fd[i], (char[8]){0}, 8), 2);
    }
    uv_async_send(&stop);
    pthread_join(thread, NULL);
    running = false;
    cr_assert(closed);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(hear_all(fd[i]), "");
        close(fd[i]);
    }
}

Test(listener, a_unix_socket_has_its_mode)
{
    struct stat st;

    serve(&toy);
    cr_assert_eq(stat(sock, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(listener, tcp_and_an_address_in_use)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int busy = socket(AF_INET, SOCK_STREAM, 0), fd;
    listener_t *other;

    cr_assert_eq(bind(busy, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(busy, 1), 0);
    cr_assert_eq(getsockname(busy, (struct sockaddr *)&sin, &len), 0);
    cr_assert_eq(listener_open_tcp(&loop, (struct sockaddr *)&sin, &toy, NULL, &other),
                 UV_EADDRINUSE);
    cr_assert_null(other);
    close(busy);

    /* The port is free now. */
    cr_assert_eq(listener_open_tcp(&loop, (struct sockaddr *)&sin, &toy, NULL, &lis), 0);
    uv_async_init(&loop, &stop, on_stop);
    cr_assert_eq(pthread_create(&thread, NULL, loop_thread, NULL), 0);
    running = true;
    fd = connect_to((struct sockaddr *)&sin, sizeof(sin));
    say(fd, "tcp\nbye\n");
    cr_assert_str_eq(hear_all(fd), "TCP\nBYE\n");
    close(fd);
}
