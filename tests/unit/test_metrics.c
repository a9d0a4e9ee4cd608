/* Unit tests for mxfwd/metrics: the Prometheus text exposition of the
 * stats registry, and the answers to HTTP requests (no network: the
 * server's I/O is tested end to end, tests/e2e/test_ops.py). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *text_of(buf_t *b)
{
    char *s = malloc(buf_used(b) + 1);

    memcpy(s, buf_ptr(b), buf_used(b));
    s[buf_used(b)] = '\0';
    return s;
}

static uint64_t seven(void *arg)
{
    (void)arg;
    return 7;
}

static stats_t *sample_registry(void)
{
    stats_t *s = stats_new();

    *stats_register(s, STATS_COUNTER, "connections", NULL, NULL, "SMTP connections accepted") = 12;
    stats_family(s, STATS_COUNTER, "rejected", "reason", "refused, by reply");
    stats_family(s, STATS_COUNTER, "nothing_yet", "reason", "a family with no value");
    *stats_register(s, STATS_COUNTER, "rejected", "reason", "relay_denied", "x") = 3;
    *stats_register(s, STATS_COUNTER, "rejected", "reason", "odd\"va\\lue\n", "x") = 1;
    *stats_register(s, STATS_GAUGE, "queue_messages", NULL, NULL, "messages in the queue") = 2;
    *stats_register(s, STATS_COUNTER, "bytes_total", NULL, NULL, "help with \\ and\nnewline") = 9;
    stats_register_fn(s, STATS_GAUGE, "queue_oldest_age_seconds", NULL, NULL, "age", seven, NULL);
    return s;
}

Test(metrics, exposition_format)
{
    stats_t *s = sample_registry();
    buf_t out;
    char *text;

    buf_init(&out, 1 << 20);
    metrics_render(s, &out);
    text = text_of(&out);
    cr_assert_str_eq(text,
                     "# HELP mxfwd_connections_total SMTP connections accepted\n"
                     "# TYPE mxfwd_connections_total counter\n"
                     "mxfwd_connections_total 12\n"
                     "# HELP mxfwd_rejected_total refused, by reply\n"
                     "# TYPE mxfwd_rejected_total counter\n"
                     "mxfwd_rejected_total{reason=\"relay_denied\"} 3\n"
                     "mxfwd_rejected_total{reason=\"odd\\\"va\\\\lue\\n\"} 1\n"
                     "# HELP mxfwd_nothing_yet_total a family with no value\n"
                     "# TYPE mxfwd_nothing_yet_total counter\n"
                     "# HELP mxfwd_queue_messages messages in the queue\n"
                     "# TYPE mxfwd_queue_messages gauge\n"
                     "mxfwd_queue_messages 2\n"
                     "# HELP mxfwd_bytes_total help with \\\\ and\\nnewline\n"
                     "# TYPE mxfwd_bytes_total counter\n"
                     "mxfwd_bytes_total 9\n"
                     "# HELP mxfwd_queue_oldest_age_seconds age\n"
                     "# TYPE mxfwd_queue_oldest_age_seconds gauge\n"
                     "mxfwd_queue_oldest_age_seconds 0\n",
                     "%s", text);
    free(text);
    buf_free(&out);
    stats_free(s);
}

/* The answer to request: its status code, *body (allocated) what follows
 * the head; -1 when the request is not complete. */
static int answer(stats_t *s, const char *request, char **head, char **body)
{
    buf_t out;
    char *text, *split;
    int status;

    buf_init(&out, 1 << 20);
    if (metrics_respond(request, strlen(request), s, &out) == 0) {
        cr_assert_eq(buf_used(&out), 0);
        buf_free(&out);
        return -1;
    }
    text = text_of(&out);
    buf_free(&out);
    cr_assert_eq(sscanf(text, "HTTP/1.1 %d ", &status), 1, "%s", text);
    split = strstr(text, "\r\n\r\n");
    cr_assert_not_null(split, "%s", text);
    *body = strdup(split + 4);
    split[4] = '\0';
    *head = text;
    return status;
}

static size_t content_length(const char *head)
{
    const char *cl = strstr(head, "\r\nContent-Length: ");

    cr_assert_not_null(cl, "%s", head);
    return strtoul(cl + 18, NULL, 10);
}

Test(metrics, requests_and_their_answers)
{
    static const struct {
        const char *request;
        int status;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\nHost: localhost:9325\r\nAccept: */*\r\n\r\n", 200},
        {"GET /metrics HTTP/1.0\r\n\r\n", 200},
        {"GET /metrics?x=1 HTTP/1.0\r\n\r\n", 200},
        {"GET http://localhost:9325/metrics HTTP/1.1\r\n\r\n", 200},
        {"GET /metrics HTTP/1.1\n\n", 200},
        {"GET / HTTP/1.1\r\n\r\n", 404},
        {"GET /metrics/ HTTP/1.1\r\n\r\n", 404},
        {"GET /Metrics HTTP/1.1\r\n\r\n", 404},
        {"POST / HTTP/1.1\r\n\r\n", 404},
        {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405},
        {"DELETE /metrics HTTP/1.1\r\n\r\n", 405},
        {"get /metrics HTTP/1.1\r\n\r\n", 405},
        {"GET /metrics HTTP/2.0\r\n\r\n", 505},
        {"GET /metrics\r\n\r\n", 400},
        {"GET  /metrics HTTP/1.1\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1 \r\n\r\n", 400},
        {"GET /metrics http/1.1\r\n\r\n", 400},
        {"G(T /metrics HTTP/1.1\r\n\r\n", 400},
        {"\r\n\r\n", 400},
    };
    stats_t *s = sample_registry();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *head, *body;
        int status = answer(s, cases[i].request, &head, &body);

        cr_assert_eq(status, cases[i].status, "%s: %d", cases[i].request, status);
        cr_assert_eq(content_length(head), strlen(body), "%s", head);
        cr_assert(strstr(head, "\r\nConnection: close\r\n") != NULL, "%s", head);
        if (status == 200) {
            cr_assert(strstr(head, "\r\nContent-Type: text/plain; version=0.0.4; "
                                   "charset=utf-8\r\n") != NULL,
                      "%s", head);
            /* The registry is read now: the function's entry too. */
            cr_assert(strstr(body, "\nmxfwd_queue_oldest_age_seconds 7\n") != NULL, "%s", body);
        }
        if (status == 405)
            cr_assert(strstr(head, "\r\nAllow: GET, HEAD\r\n") != NULL, "%s", head);
        free(head);
        free(body);
    }
    stats_free(s);
}

Test(metrics, head_has_the_length_and_no_body)
{
    stats_t *s = sample_registry();
    char *head, *body;

    cr_assert_eq(answer(s, "HEAD /metrics HTTP/1.1\r\n\r\n", &head, &body), 200);
    cr_assert_str_eq(body, "");
    cr_assert_gt(content_length(head), 100);
    free(head);
    free(body);
    stats_free(s);
}

Test(metrics, incomplete_and_overlong_heads)
{
    stats_t *s = sample_registry();
    char *big = malloc(METRICS_REQUEST_MAX + 100), *head, *body;

    cr_assert_eq(answer(s, "", &head, &body), -1);
    cr_assert_eq(answer(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n", &head, &body), -1);
    cr_assert_eq(answer(s, "GET /metrics HTTP/1.1\r\n\r", &head, &body), -1);

    /* No end in sight at the limit. */
    memset(big, 'x', METRICS_REQUEST_MAX);
    big[METRICS_REQUEST_MAX] = '\0';
    cr_assert_eq(answer(s, big, &head, &body), 431);
    free(head);
    free(body);
    big[METRICS_REQUEST_MAX - 1] = '\0';
    cr_assert_eq(answer(s, big, &head, &body), -1, "one octet short of the limit");
    /* A head that ends past the limit. */
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memcpy(big + METRICS_REQUEST_MAX + 10, "\r\n\r\n", 5);
    big[METRICS_REQUEST_MAX - 1] = 'x';
    for (size_t i = METRICS_REQUEST_MAX; i < METRICS_REQUEST_MAX + 10; i++)
        big[i] = 'x';
    cr_assert_eq(answer(s, big, &head, &body), 431);
    free(head);
    free(body);
    free(big);
    stats_free(s);
}

/* A histogram: cumulative buckets with a +Inf one, its sum in the unit
 * (six decimals) and its count; and process_* metrics without the prefix. */
Test(metrics, histograms_and_process_metrics)
{
    static const double bounds[] = {1, 60};
    stats_t *s = stats_new();
    stats_histogram_t *h;
    buf_t out;
    char *text;

    *stats_register(s, STATS_GAUGE, "process_start_time_seconds", NULL, NULL, "start") = 1796601600;
    h = stats_histogram_new(s, "delay_seconds", "delays", bounds, 2);
    stats_observe(h, 0.5);
    stats_observe(h, 1);
    stats_observe(h, 30.25);
    stats_observe(h, 7200);
    buf_init(&out, 1 << 20);
    metrics_render(s, &out);
    text = text_of(&out);
    cr_assert_str_eq(text, "# HELP process_start_time_seconds start\n"
                           "# TYPE process_start_time_seconds gauge\n"
                           "process_start_time_seconds 1796601600\n"
                           "# HELP mxfwd_delay_seconds delays\n"
                           "# TYPE mxfwd_delay_seconds histogram\n"
                           "mxfwd_delay_seconds_bucket{le=\"1\"} 2\n"
                           "mxfwd_delay_seconds_bucket{le=\"60\"} 3\n"
                           "mxfwd_delay_seconds_bucket{le=\"+Inf\"} 4\n"
                           "mxfwd_delay_seconds_sum 7231.750000\n"
                           "mxfwd_delay_seconds_count 4\n");
    free(text);
    buf_free(&out);
    stats_free(s);
}
