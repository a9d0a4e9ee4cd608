/*
 * smtp_pipeline - a load generator that sends as a mail server does:
 * ESMTP with PIPELINING (RFC 2920), one message per connection.
 *
 *     smtp_pipeline [-s SESSIONS] [-m MESSAGES] [-l SIZE] [-f FROM] [-t TO]
 *                   [-u] [-w SECONDS] HOST:PORT
 *
 * Keeps SESSIONS connections (default 20) going until MESSAGES messages
 * (default 1000), each a header and a body of SIZE bytes (default 4096)
 * much as smtp-source -l makes them, have been sent, each
 * over a connection of its own, in four round trips:
 *
 *     <- 220                        greeting
 *     -> EHLO                 <- 250  (PIPELINING must be in it)
 *     -> MAIL, RCPT, DATA     <- 250 250 354
 *     -> message . QUIT       <- 250 221
 *
 * which is how Postfix's smtp client, for one, sends a message (it sends
 * QUIT apart, or keeps the connection for the next one).  Postfix's
 * smtp-source waits for a reply after every command: seven round trips,
 * each a read and a write at both ends, which on a small machine makes
 * the generator cost as much CPU as the server it measures.  One thread,
 * epoll, nonblocking sockets: little besides the system calls the
 * protocol needs.  With -u every message comes from a sender of its own:
 * FROM's local part and "-" and the message's number in 12 hex digits.
 *
 * Prints the messages sent, the seconds taken, and how many failed or
 * were left unfinished.  Any reply not the one expected, a refused
 * connection or a closed one is printed to standard error with the
 * message's number; the exit status is 0 when every message was sent, 1
 * when some were not, 2 on a usage or system error.  Gives up after -w
 * SECONDS (default 600).  For bench/forward_bench.py; the end-to-end
 * tests run it too (tests/e2e/test_smtpd_load.py).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SESSIONS_MAX 1000
#define REPLY_MAX 8192 /* a reply's lines, all of them, at most */

/* What a connection sends at each step, and the replies it then awaits. */
enum step { STEP_GREETING, STEP_EHLO, STEP_ENVELOPE, STEP_CONTENT, STEP_DONE };

static const int expected[STEP_DONE][3] = {
    [STEP_GREETING] = {220}, [STEP_EHLO] = {250},
    [STEP_ENVELOPE] = {250, 250, 354}, [STEP_CONTENT] = {250, 221},
};
static const int nexpected[STEP_DONE] = {1, 1, 3, 2};

typedef struct conn {
    int fd;
    unsigned message;      /* its number, from 0 */
    enum step step;
    int replies;           /* replies of this step so far */
    bool pipelining;       /* seen in the EHLO reply */
    struct iovec out[2];   /* what is left to send of this step */
    int nout;
    char envelope[1024];   /* MAIL, RCPT and DATA of its message */
    size_t envelope_len;
    char header[1024];     /* of its message */
    size_t header_len;
    char in[REPLY_MAX];    /* a reply's lines read so far */
    size_t in_len;
} conn_t;

static struct sockaddr_in server;
static int epfd;
static unsigned started, finished, sent, messages = 1000;
static const char *from = "sender@origin.test", *to = "user@alias.test";
static bool unique;
static char *body, date[64];
static pid_t pid;
static size_t body_len;
static const char ehlo[] = "EHLO smtp-pipeline.test\r\n";

static void die(const char *what)
{
    fprintf(stderr, "smtp_pipeline: %s: %s\n", what, strerror(errno));
    exit(2);
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void too_long(void)
{
    fprintf(stderr, "smtp_pipeline: the addresses are too long\n");
    exit(2);
}

/* c's MAIL, RCPT and DATA, sent together; with -u its own sender. */
static void make_envelope(conn_t *c)
{
    const char *at = strrchr(from, '@');
    int n;

    if (unique && at != NULL)
        n = snprintf(c->envelope, sizeof(c->envelope),
                     "MAIL FROM:<%.*s-%012x%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", (int)(at - from),
                     from, c->message, at, to);
    else
        n = snprintf(c->envelope, sizeof(c->envelope),
                     "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", from, to);
    if (n < 0 || (size_t)n >= sizeof(c->envelope))
        too_long();
    c->envelope_len = (size_t)n;
}

/* The body, the end-of-data dot and QUIT: `size` bytes (at least one
 * line; within two bytes when size % 80 is 1 or 2) of lines of 78 X's and
 * a shorter last one, about as smtp-source -l makes them. */
static void make_body(size_t size)
{
    static const char tail[] = ".\r\nQUIT\r\n";
    size_t full = size / 80, rest = size % 80 >= 3 ? size % 80 : 0, i;

    if (full == 0 && rest == 0)
        full = 1;
    body_len = full * 80 + rest + sizeof(tail) - 1;
    body = malloc(body_len);
    if (body == NULL)
        die("malloc");
    for (i = 0; i < full; i++) {
        memset(body + i * 80, 'X', 78);
        memcpy(body + i * 80 + 78, "\r\n", 2);
    }
    if (rest > 0) {
        memset(body + full * 80, 'X', rest - 2);
        memcpy(body + full * 80 + rest - 2, "\r\n", 2);
    }
    memcpy(body + full * 80 + rest, tail, sizeof(tail) - 1);
}

/* The Date of every message: the start, in UTC. */
static void make_date(void)
{
    time_t t = time(NULL);
    struct tm tm;

    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&t, &tm));
}

/* c's header: From, To, Date and a Message-Id of its own, as smtp-source's. */
static void make_header(conn_t *c)
{
    int n = snprintf(c->header, sizeof(c->header),
                     "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\n"
                     "Message-Id: <%u.%ld@smtp-pipeline.test>\r\n\r\n",
                     from, to, date, c->message, (long)pid);

    if (n < 0 || (size_t)n >= sizeof(c->header))
        too_long();
    c->header_len = (size_t)n;
}

static void fail(conn_t *c, const char *fmt, const char *detail)
{
    fprintf(stderr, "smtp_pipeline: message %u: ", c->message);
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
}

static void conn_end(conn_t *c)
{
    close(c->fd);
    c->fd = -1;
    finished++;
}

/* Connect c for the next message.  Edge-triggered: conn_send() and
 * conn_read() go on until EAGAIN. */
static void conn_start(conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) < 0 && errno != EINPROGRESS)
        die("connect");
    c->message = started++;
    c->step = STEP_GREETING;
    c->replies = 0;
    c->pipelining = false;
    c->nout = 0;
    c->in_len = 0;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Send what is left of the step; false when the connection failed. */
static bool conn_send(conn_t *c)
{
    while (c->nout > 0) {
        struct msghdr m = {.msg_iov = c->out, .msg_iovlen = (size_t)c->nout};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);

        if (n < 0 && errno == EAGAIN)
            return true;
        if (n < 0) {
            fail(c, "send: %s", strerror(errno));
            return false;
        }
        while (c->nout > 0 && (size_t)n >= c->out[0].iov_len) {
            n -= (ssize_t)c->out[0].iov_len;
            c->out[0] = c->out[1];
            c->nout--;
        }
        if (c->nout > 0) {
            c->out[0].iov_base = (char *)c->out[0].iov_base + n;
            c->out[0].iov_len -= (size_t)n;
        }
    }
    return true;
}

static void conn_out(conn_t *c, const char *p, size_t n)
{
    c->out[c->nout].iov_base = (char *)p;
    c->out[c->nout].iov_len = n;
    c->nout++;
}

static void conn_next_step(conn_t *c)
{
    c->step++;
    c->replies = 0;
    switch (c->step) {
    case STEP_EHLO:
        conn_out(c, ehlo, sizeof(ehlo) - 1);
        break;
    case STEP_ENVELOPE:
        make_envelope(c);
        conn_out(c, c->envelope, c->envelope_len);
        break;
    case STEP_CONTENT:
        make_header(c);
        conn_out(c, c->header, c->header_len);
        conn_out(c, body, body_len);
        break;
    default:
        break;
    }
}

/* One whole reply in c->in (its last line ends at `end`); false when the
 * connection is to end: a reply not the one expected, or the last one. */
static bool conn_reply(conn_t *c, const char *end)
{
    int code = atoi(c->in);

    if (c->step == STEP_EHLO &&
        memmem(c->in, (size_t)(end - c->in), "PIPELINING", 10) != NULL)
        c->pipelining = true;
    if (code != expected[c->step][c->replies]) {
        c->in[end - c->in] = '\0';
        fail(c, "unexpected reply: %s", c->in);
        return false;
    }
    if (++c->replies < nexpected[c->step])
        return true;
    if (c->step == STEP_EHLO && !c->pipelining) {
        fail(c, "%s", "the server does not offer PIPELINING");
        return false;
    }
    conn_next_step(c);
    if (c->step == STEP_DONE) {
        sent++;
        return false;
    }
    return conn_send(c);
}

/* Read what came; false when the connection is to end. */
static bool conn_read(conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);
        char *line, *eol;

        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            fail(c, "%s", n == 0 ? "connection closed" : strerror(errno));
            return false;
        }
        c->in_len += (size_t)n;
        line = c->in;
        while ((eol = memchr(line, '\n', c->in_len - (size_t)(line - c->in))) != NULL) {
            if (eol - line >= 3 && line[3] == '-') {
                line = eol + 1;
                continue;
            }
            if (!conn_reply(c, eol))
                return false;
            c->in_len -= (size_t)(eol + 1 - c->in);
            memmove(c->in, eol + 1, c->in_len);
            line = c->in;
        }
        if (c->in_len == sizeof(c->in) - 1) {
            fail(c, "%s", "reply too long");
            return false;
        }
    }
}

static void parse_address(const char *arg)
{
    char host[256];
    const char *colon = strrchr(arg, ':');

    if (colon == NULL || (size_t)(colon - arg) >= sizeof(host)) {
        fprintf(stderr, "smtp_pipeline: %s: not HOST:PORT\n", arg);
        exit(2);
    }
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "smtp_pipeline: %s: not an IPv4 address\n", host);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    unsigned sessions = 20, i;
    size_t size = 4096;
    double wait = 600, start, deadline;
    static conn_t conns[SESSIONS_MAX];
    int opt;

    while ((opt = getopt(argc, argv, "s:m:l:f:t:uw:")) != -1) {
        switch (opt) {
        case 's': sessions = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm': messages = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'l': size = strtoul(optarg, NULL, 10); break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'u': unique = true; break;
        case 'w': wait = strtod(optarg, NULL); break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || sessions == 0 || sessions > SESSIONS_MAX)
        goto usage;
    parse_address(argv[optind]);
    make_body(size);
    make_date();
    pid = getpid();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");

    start = now();
    deadline = start + wait;
    for (i = 0; i < sessions && started < messages; i++)
        conn_start(&conns[i]);
    while (finished < messages && now() < deadline) {
        struct epoll_event evs[64];
        int n = epoll_wait(epfd, evs, 64, 1000);

        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            bool ok = true;

            /* Replies first: a server that refuses and closes said why. */
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                ok = conn_read(c);
            if (ok && (evs[k].events & EPOLLOUT))
                ok = conn_send(c);
            if (ok)
                continue;
            conn_end(c);
            if (started < messages)
                conn_start(c);
        }
    }
    if (finished < messages)
        fprintf(stderr, "smtp_pipeline: gave up after %.0f s: %u of %u messages unfinished\n",
                wait, messages - finished, messages);
    printf("smtp_pipeline: %u messages sent in %.3f s, %u failed, %u unfinished\n", sent,
           now() - start, finished - sent, messages - finished);
    return sent == messages ? 0 : 1;

usage:
    fprintf(stderr, "usage: smtp_pipeline [-s SESSIONS] [-m MESSAGES] [-l SIZE] [-f FROM] "
                    "[-t TO] [-u] [-w SECONDS] HOST:PORT\n");
    return 2;
}
