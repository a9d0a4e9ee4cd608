/*
 * Unit tests for the control socket: a queue over a real spool, served on
 * a Unix socket by a loop running in its own thread, asked by the blocking
 * client the command-line tools use (and by raw sockets for what they
 * never send).  Replies are parsed as JSON and checked field by field.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "control.h"
#include "fake_delivery.h"
#include "json.h"
#include "log.h"
#include "queue.h"
#include "spool.h"
#include "spool_uv.h"
#include "stats.h"
#include "testdir.h"

#define S INT64_C(1000000)
#define T0 (INT64_C(1795800000) * S)

static char root[64], sdir[128], sock[100], logpath[128];
static uv_loop_t loop;
static uv_async_t stop;
static pthread_t thread;
static fake_t fake;
static stats_t *stats;
static spool_t *spool;
static queue_t *q;
static control_t *ctl;
static int logfd = -1;
static int64_t now_us = T0;
static char deferred_id[SPOOL_ID_SIZE], active_id[SPOOL_ID_SIZE];

static int64_t test_clock(void *arg)
{
    (void)arg;
    return now_us;
}

static uint32_t test_random(void *arg)
{
    (void)arg;
    return 1000;
}

static char last_id[SPOOL_ID_SIZE];

static void on_commit(void *arg, int status, spool_msg_t *msg)
{
    (void)arg;
    cr_assert_eq(status, 0);
    snprintf(last_id, sizeof(last_id), "%s", msg->id);
    queue_add(q, msg);
}

/* Commit a message and run the loop (still on this thread) until its
 * first attempt has been handed over and, unless held, recorded. */
static void submit(const char *sender, const char *rcpt, const char *orig, char *id)
{
    static const char body[] = "Subject: test\r\n\r\nbody\r\n";
    spool_env_rcpt_t r = {rcpt, orig};
    spool_envelope_t env = {
        .arrival_us = now_us - 90 * S,
        .sender = sender,
        .srs_sender = "SRS0=abcd=TT=origin.test=someone@fwd.test",
        .rcpts = &r,
        .nrcpts = 1,
    };
    size_t jobs = fake.nrec;

    last_id[0] = '\0';
    cr_assert_eq(spool_submit(spool, &env, body, sizeof(body) - 1, on_commit, NULL, NULL), 0);
    for (int i = 0; i < 5000 && (last_id[0] == '\0' || fake.nrec == jobs || !queue_idle(q)); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (fake.hold && fake.nrec > jobs)
            break;
        usleep(1000);
    }
    cr_assert(fake.nrec > jobs);
    snprintf(id, SPOOL_ID_SIZE, "%s", last_id);
}

static bool stopped;

static void on_closed(void *arg)
{
    (void)arg;
    stopped = true;
}

static void on_control_closed(void *arg)
{
    (void)arg;
    queue_shutdown(q, on_closed, NULL);
}

static void on_stop(uv_async_t *a)
{
    uv_close((uv_handle_t *)a, NULL);
    control_close(ctl, on_control_closed, NULL);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void setup(void)
{
    spool_options_t so = {.exec = spool_uv_executor(&loop), .clock_us = test_clock};
    static const uint64_t schedule[] = {600};
    queue_options_t qo = {
        .loop = &loop,
        .hostname = "fwd.test",
        .retry_schedule = schedule,
        .nretry_schedule = 1,
        .max_queue_lifetime = 86400,
        .clock_us = test_clock,
        .random = test_random,
    };

    cr_assert_eq(test_dir_make("mxfwd-control", root, sizeof(root)), 0);
    snprintf(sdir, sizeof(sdir), "%s/spool", root);
    snprintf(sock, sizeof(sock), "%s/run/sub/mxfwd.sock", root);
    snprintf(logpath, sizeof(logpath), "%s/log", root);
    logfd = open(logpath, O_CREAT | O_WRONLY | O_APPEND, 0600);
    log_set_fd(logfd);
    cr_assert_eq(uv_loop_init(&loop), 0);
    stats = stats_new();
    cr_assert_eq(spool_open(sdir, &so, &spool), 0);
    fake_init(&fake, &loop);
    qo.spool = spool;
    qo.delivery = fake_delivery(&fake);
    qo.stats = stats;
    cr_assert_eq(queue_new(&qo, &q), 0);
    cr_assert_eq(queue_load(q, NULL, NULL), 0);

    /* One message deferred, one with a delivery running. */
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 come back later", "4.3.0");
    submit("someone@origin.test", "b@slow.test", "alice@alias.test", deferred_id);
    fake.hold = true;
    submit("", "c@held.test", "", active_id);

    cr_assert_eq(control_open(&loop, sock, q, stats, &ctl), 0);
    uv_async_init(&loop, &stop, on_stop);
    cr_assert_eq(pthread_create(&thread, NULL, loop_thread, NULL), 0);
}

static void teardown(void)
{
    uv_async_send(&stop);
    pthread_join(thread, NULL);
    cr_assert(stopped);
    cr_assert_eq(spool_close(spool), 0);
    fake_free(&fake);
    stats_free(stats);
    cr_expect_eq(uv_loop_close(&loop), 0);
    log_set_fd(2);
    close(logfd);
    test_dir_remove(root);
}

TestSuite(control, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Helpers ---- */

/* Ask the daemon; the reply parsed. */
static json_t *ask(const char *request)
{
    buf_t reply;
    json_t *v;
    int rc;

    buf_init(&reply, SIZE_MAX);
    rc = control_request(sock, request, 5000, &reply);
    cr_assert_eq(rc, 0, "%s: %s", request, control_strerror(rc));
    rc = json_parse(buf_ptr(&reply), buf_used(&reply), &v);
    cr_assert_eq(rc, 0, "%s: %.*s", request, (int)buf_used(&reply), buf_ptr(&reply));
    buf_free(&reply);
    return v;
}

static const json_t *message(const json_t *listing, const char *id)
{
    const json_t *msgs = json_get(listing, "messages");

    cr_assert_not_null(msgs);
    for (size_t i = 0; i < msgs->n; i++)
        if (strcmp(json_get_str(msgs->items[i], "id", ""), id) == 0)
            return msgs->items[i];
    return NULL;
}

static int raw_connect(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Read until EOF or n lines; returns the bytes. */
static char *raw_read(int fd, int lines)
{
    static char text[65536];
    size_t len = 0;
    int seen = 0;

    while (len < sizeof(text) - 1 && seen < lines) {
        ssize_t r = read(fd, text + len, sizeof(text) - 1 - len);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            seen += text[len + (size_t)i] == '\n';
        len += (size_t)r;
    }
    text[len] = '\0';
    return text;
}

/* ---- Tests ---- */

Test(control, socket_is_private)
{
    struct stat st;
    char dir[128];

    cr_assert_eq(lstat(sock, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/run/sub", root);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "created 0700");
}

Test(control, queue_lists_every_message_and_recipient)
{
    json_t *v = ask("queue");
    const json_t *m, *r;

    cr_assert(json_get(v, "ok")->boolean);
    cr_assert_eq(json_get_num(v, "now", 0), (double)(T0 / S));
    cr_assert_eq(json_get(v, "messages")->n, 2);
    /* In queue id order. */
    cr_assert_str_eq(json_get_str(json_get(v, "messages")->items[0], "id", ""), deferred_id);

    m = message(v, deferred_id);
    cr_assert_not_null(m);
    cr_assert_str_eq(json_get_str(m, "sender", NULL), "someone@origin.test");
    cr_assert_str_eq(json_get_str(m, "srs_sender", NULL),
                     "SRS0=abcd=TT=origin.test=someone@fwd.test");
    cr_assert_eq(json_get_num(m, "arrival", 0), (double)(T0 / S - 90));
    cr_assert_eq(json_get_num(m, "size", 0), 23);
    r = json_get(m, "recipients")->items[0];
    cr_assert_str_eq(json_get_str(r, "address", NULL), "b@slow.test");
    cr_assert_str_eq(json_get_str(r, "alias", NULL), "alice@alias.test");
    cr_assert_str_eq(json_get_str(r, "state", NULL), "deferred");
    cr_assert_eq(json_get_num(r, "attempts", 0), 1);
    cr_assert_eq(json_get_num(r, "next_attempt", 0), (double)(T0 / S + 600));
    cr_assert_str_eq(json_get_str(r, "last_reply", NULL), "451 4.3.0 come back later");
    cr_assert_str_eq(json_get_str(r, "relay", NULL), "mx.fake.test[192.0.2.25]:25");

    m = message(v, active_id);
    cr_assert_not_null(m);
    cr_assert_str_eq(json_get_str(m, "sender", NULL), "");
    r = json_get(m, "recipients")->items[0];
    cr_assert_str_eq(json_get_str(r, "state", NULL), "active");
    cr_assert_eq(json_get(r, "next_attempt")->type, JSON_NULL);
    json_free(v);
}

Test(control, flush_makes_deferred_recipients_due)
{
    json_t *v = ask("flush");
    const json_t *r;

    cr_assert(json_get(v, "ok")->boolean);
    cr_assert_eq(json_get_num(v, "flushed", -1), 1, "the deferred one; the active one is out");
    json_free(v);
    /* Handed to delivery again (which holds it) without the clock moving. */
    for (int i = 0; i < 500; i++) {
        v = ask("queue");
        r = json_get(message(v, deferred_id), "recipients")->items[0];
        if (strcmp(json_get_str(r, "state", ""), "active") == 0)
            break;
        json_free(v);
        v = NULL;
        usleep(10000);
    }
    cr_assert_not_null(v, "flush led to a second attempt");
    json_free(v);
}

Test(control, delete_drops_the_message_and_says_so)
{
    char req[64], line[128], text[8192];
    json_t *v;
    int fd;
    ssize_t n;

    snprintf(req, sizeof(req), "delete %s", deferred_id);
    v = ask(req);
    cr_assert(json_get(v, "ok")->boolean, "%s", json_get_str(v, "error", ""));
    cr_assert_eq(json_get(v, "deleted")->n, 1);
    cr_assert_str_eq(json_get(v, "deleted")->items[0]->string, deferred_id);
    cr_assert_eq(json_get(v, "unknown")->n, 0);
    cr_assert_eq(json_get_num(v, "running", -1), 0);
    json_free(v);

    v = ask("queue");
    cr_assert_null(message(v, deferred_id));
    cr_assert_not_null(message(v, active_id));
    json_free(v);

    /* Again, and in lower case: not queued any more. */
    for (char *p = req; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    v = ask(req);
    cr_assert(json_get(v, "ok")->boolean);
    cr_assert_eq(json_get(v, "deleted")->n, 0);
    cr_assert_str_eq(json_get(v, "unknown")->items[0]->string, deferred_id);
    json_free(v);

    fd = open(logpath, O_RDONLY);
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    snprintf(line, sizeof(line), "%s: deleted by the administrator", deferred_id);
    cr_assert_not_null(strstr(text, line), "%s", text);
}

Test(control, stats_reports_the_registry)
{
    json_t *v;
    const json_t *st, *fam;

    /* Labelled families become objects; a declared one with no values yet
     * an empty one. */
    stats_family(stats, STATS_COUNTER, "rejected", "reason", "refusals");
    *stats_register(stats, STATS_COUNTER, "rejected", "reason", "relay_denied", "refusals") = 1;
    *stats_register(stats, STATS_COUNTER, "rejected", "reason", "spf", "refusals") = 2;
    stats_family(stats, STATS_COUNTER, "nothing_yet", "why", "none");
    v = ask("stats");
    cr_assert(json_get(v, "ok")->boolean);
    st = json_get(v, "stats");
    cr_assert_not_null(st);
    fam = json_get(st, "rejected");
    cr_assert(fam != NULL && fam->type == JSON_OBJECT && fam->n == 2);
    cr_assert_eq(json_get_num(fam, "relay_denied", -1), 1);
    cr_assert_eq(json_get_num(fam, "spf", -1), 2);
    fam = json_get(st, "nothing_yet");
    cr_assert(fam != NULL && fam->type == JSON_OBJECT && fam->n == 0);
    cr_assert_eq(json_get_num(st, "deferred", -1), 1);
    cr_assert_eq(json_get_num(st, "delivered", -1), 0);
    cr_assert_eq(json_get_num(st, "queue_messages", -1), 2);
    cr_assert_eq(json_get_num(st, "queue_recipients", -1), 2);
    json_free(v);
}

Test(control, bad_requests_get_errors)
{
    static const char *const bad[] = {"", "frobnicate", "queue now", "delete", "show",
                                      "show a b", "flush-domain", "stats now"};
    json_t *v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = ask(bad[i]);
        cr_assert_not(json_get(v, "ok")->boolean, "%s", bad[i]);
        cr_assert_neq(json_get_str(v, "error", "")[0], '\0');
        json_free(v);
    }
}

Test(control, an_overlong_request_is_refused_and_the_connection_closed)
{
    char big[2000];
    int fd = raw_connect();
    const char *reply;

    memset(big, 'x', sizeof(big));
    cr_assert_eq(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
    reply = raw_read(fd, 100);
    cr_assert_str_eq(reply, "{\"ok\":false,\"error\":\"request longer than 512 octets\"}\n");
    close(fd);
    /* One octet over, with its newline. */
    fd = raw_connect();
    big[513] = '\n';
    cr_assert_eq(write(fd, big, 514), 514);
    reply = raw_read(fd, 100);
    cr_assert_str_eq(reply, "{\"ok\":false,\"error\":\"request longer than 512 octets\"}\n");
    close(fd);
}

Test(control, requests_sent_together_are_answered_in_order)
{
    int fd = raw_connect();
    const char *reply;

    cr_assert_eq(write(fd, "flush\r\nnope\nflush\n", 18), 18);
    reply = raw_read(fd, 3);
    cr_assert_str_eq(reply, "{\"ok\":true,\"flushed\":1,\"unknown\":[]}\n"
                            "{\"ok\":false,\"error\":\"unknown request 'nope'; say queue | "
                            "show ID | flush [ID...] | flush-domain DOMAIN | delete ID... | "
                            "delete ALL | hold ID... | "
                            "release ID... | resolve ADDRESS | stats\"}\n"
                            "{\"ok\":true,\"flushed\":0,\"unknown\":[]}\n");
    /* EOF from us: the daemon answers what was asked and closes. */
    shutdown(fd, SHUT_WR);
    cr_assert_str_eq(raw_read(fd, 1), "");
    close(fd);
}

Test(control, many_clients_at_once)
{
    enum { N = 20 };
    int fd[N];

    for (int i = 0; i < N; i++) {
        fd[i] = raw_connect();
        cr_assert_eq(write(fd[i], "stats\n", 6), 6);
    }
    for (int i = 0; i < N; i++) {
        const char *reply = raw_read(fd[i], 1);
        cr_assert(strncmp(reply, "{\"ok\":true,\"stats\":{", 20) == 0, "%d: %s", i, reply);
        close(fd[i]);
    }
}

Test(control, a_second_daemon_cannot_take_a_live_socket)
{
    uv_loop_t other;
    control_t *c = NULL;

    cr_assert_eq(uv_loop_init(&other), 0);
    cr_assert_eq(control_open(&other, sock, q, stats, &c), CONTROL_EINUSE);
    cr_assert_null(c);
    cr_assert_eq(uv_loop_close(&other), 0);
}

/* Without the fixture's daemon. */
Test(control_client, no_daemon_is_a_clear_error)
{
    char path[100], tmpl[64];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    buf_t reply;
    int fd;

    cr_assert_eq(test_dir_make("mxfwd-ctl", tmpl, sizeof(tmpl)), 0);
    buf_init(&reply, 1024);
    snprintf(path, sizeof(path), "%s/none.sock", tmpl);
    cr_assert_eq(control_request(path, "stats", 1000, &reply), -ENOENT);
    /* A socket left by a crash: nobody listens. */
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/stale.sock", tmpl);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    cr_assert_eq(control_request(sun.sun_path, "stats", 1000, &reply), -ECONNREFUSED);
    buf_free(&reply);
    test_dir_remove(tmpl);
}

Test(control_client, a_stale_socket_is_replaced)
{
    char tmpl[64], path[100];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct stat st;
    uv_loop_t l;
    control_t *c;
    int fd;

    cr_assert_eq(test_dir_make("mxfwd-ctl", tmpl, sizeof(tmpl)), 0);
    snprintf(path, sizeof(path), "%s/mxfwd.sock", tmpl);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    cr_assert_eq(uv_loop_init(&l), 0);
    /* The queue is not used before a client asks. */
    cr_assert_eq(control_open(&l, path, NULL, NULL, &c), 0);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    control_close(c, NULL, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    cr_assert_eq(lstat(path, &st), -1, "removed at close");
    cr_assert_eq(uv_loop_close(&l), 0);
    /* A file that is not a socket is left alone. */
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    cr_assert_eq(uv_loop_init(&l), 0);
    cr_assert_eq(control_open(&l, path, NULL, NULL, &c), CONTROL_ENOTSOCK);
    cr_assert_eq(uv_loop_close(&l), 0);
    test_dir_remove(tmpl);
}
