/*
 * fake_delivery - a scripted delivery implementation (queue/delivery.h)
 * for queue tests: no network.
 *
 * Results come from rules matched against each recipient ("b@y.test", or
 * "@y.test" for a whole domain; the first match wins, the default is
 * 250 OK).  Every job handed over is recorded with the message bytes it
 * would send (read from the spool file at deliver()).  Like the real
 * client, it runs at most `limit` jobs at once and keeps the others
 * waiting, and it never calls done() from inside deliver(); with `hold`
 * set, running jobs wait until fake_release().
 */
#ifndef MXFWD_FAKE_DELIVERY_H
#define MXFWD_FAKE_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "delivery.h"

#define FAKE_MAX_RULES 16
#define FAKE_MAX_RECORDS 256
#define FAKE_MAX_RCPTS 8

typedef struct {
    const char *match;
    delivery_status_t status;
    const char *reply;
    const char *dsn;
    bool remote;
    const char *relay;
} fake_rule_t;

typedef struct {
    char queue_id[32];
    char sender[320];
    char domain[128];
    char rcpt[FAKE_MAX_RCPTS][320];
    char orig[FAKE_MAX_RCPTS][320];
    unsigned notify[FAKE_MAX_RCPTS];
    char orcpt[FAKE_MAX_RCPTS][320];
    size_t nrcpts;
    unsigned ret;
    char envid[128];
    char *bytes; /* prepend + body as the job describes them */
    size_t len;
    bool body_8bitmime;
    bool smtputf8;
    bool from_memory; /* the job came with the body in memory (equal to the file's) */
} fake_record_t;

typedef struct fake_job fake_job_t;

typedef struct {
    uv_loop_t *loop;
    uv_timer_t kick;
    fake_rule_t rules[FAKE_MAX_RULES];
    size_t nrules;
    fake_record_t rec[FAKE_MAX_RECORDS];
    size_t nrec;
    fake_job_t *waiting; /* over the limit */
    fake_job_t *running;
    unsigned nrunning;
    unsigned max_running; /* the most seen at once */
    unsigned limit;       /* 0: no limit */
    bool hold;
    bool shut;
    bool dsn_hop; /* the next hop takes NOTIFY=: accepted recipients are dsn_passed */
    void (*closed)(void *arg);
    void *closed_arg;
} fake_t;

void fake_init(fake_t *f, uv_loop_t *loop);
/* Free the records (after the queue shut the fake down). */
void fake_free(fake_t *f);
/* Ready again after a shutdown, for a restarted queue: the rules stay,
 * the records go. */
void fake_reopen(fake_t *f);
delivery_t fake_delivery(fake_t *f);
void fake_rule(fake_t *f, const char *match, delivery_status_t status, const char *reply,
               const char *dsn);
void fake_clear_rules(fake_t *f);
/* Let held jobs finish. */
void fake_release(fake_t *f);
/* Jobs handed over but not finished. */
unsigned fake_pending(const fake_t *f);

#endif
