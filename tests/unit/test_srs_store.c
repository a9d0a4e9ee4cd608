/* Unit tests for srs/srs_store: the embedded store's entries, their
 * expiry under an injected clock, writes that fail; a Redis that is not
 * there. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "srs_store.h"
#include "testdir.h"

#define DAY 86400
#define KEY_A "AAAAAAAAAAAAAAAAAAAAAAAAAA"
#define KEY_B "BBBBBBBBBBBBBBBBBBBBBBBBBB"

static time_t store_clock = 1800000000;

static time_t now_hook(void *arg)
{
    (void)arg;
    return store_clock;
}

typedef struct {
    bool done;
    int status;
    char sender[256];
    uint64_t removed;
} answer_t;

static void got(void *arg, int status, const char *sender)
{
    answer_t *a = arg;

    a->done = true;
    a->status = status;
    snprintf(a->sender, sizeof(a->sender), "%s", sender != NULL ? sender : "");
}

static void put_done(void *arg, int status)
{
    answer_t *a = arg;

    a->done = true;
    a->status = status;
}

static void swept(void *arg, uint64_t removed)
{
    answer_t *a = arg;

    a->done = true;
    a->removed = removed;
}

static void keep_cb(uv_timer_t *t)
{
    (void)t;
}

static void run_until(uv_loop_t *loop, answer_t *a)
{
    uv_timer_t keep;

    /* The store's handles keep no loop running: this timer does. */
    uv_timer_init(loop, &keep);
    uv_timer_start(&keep, keep_cb, 10000, 10000);
    while (!a->done)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static answer_t lookup(uv_loop_t *loop, srs_store_t *st, const char *key)
{
    answer_t a = {0};

    cr_assert_eq(srs_store_get(st, key, got, &a), 0);
    run_until(loop, &a);
    return a;
}

static srs_store_t *open_store(uv_loop_t *loop, const char *path, uint64_t max_size)
{
    srs_store_options_t o = {.location = path, .expiry = 23 * DAY, .max_size = max_size,
                             .now = now_hook, .no_sweep = true};
    srs_store_t *st = NULL;
    char why[256];

    cr_assert_eq(srs_store_open(loop, &o, &st, why, sizeof(why)), 0, "%s", why);
    return st;
}

static void close_store(uv_loop_t *loop, srs_store_t *st)
{
    srs_store_close(st, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

Test(srs_store, entries_are_durable_at_sync_and_expire_by_the_clock)
{
    char dir[256], path[300];
    srs_store_stats_t stats;
    uv_loop_t loop;
    srs_store_t *st;
    answer_t a = {0};

    cr_assert_eq(test_dir_make("srs_store", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/envelopes", dir);
    uv_loop_init(&loop);
    st = open_store(&loop, path, 0);
    cr_assert_eq(srs_store_put(st, KEY_A, "long@sender.example", NULL, NULL), SRS_STORE_AT_SYNC);
    /* Not written before the sync, but the key names only this sender. */
    cr_assert_str_eq(lookup(&loop, st, KEY_A).sender, "long@sender.example");
    cr_assert_eq(srs_store_sync(st), 0);
    srs_store_stats(st, &stats);
    cr_assert_eq(stats.entries, 1);
    cr_assert_eq(stats.written, 1);
    /* The same sender the next hour: nothing new is written. */
    store_clock += 3600;
    srs_store_put(st, KEY_A, "long@sender.example", NULL, NULL);
    cr_assert_eq(srs_store_sync(st), 0);
    srs_store_stats(st, &stats);
    cr_assert_eq(stats.written, 1);
    /* Two days on, it is written again: it lives on from there. */
    store_clock += 2 * DAY;
    srs_store_put(st, KEY_A, "long@sender.example", NULL, NULL);
    cr_assert_eq(srs_store_sync(st), 0);
    srs_store_stats(st, &stats);
    cr_assert_eq(stats.written, 2);
    close_store(&loop, st);

    /* Reopened: still there (the file is the store). */
    st = open_store(&loop, path, 0);
    cr_assert_eq(lookup(&loop, st, KEY_A).status, 0);
    cr_assert_eq(lookup(&loop, st, KEY_B).status, SRS_STORE_ENOTFOUND);
    /* 23 days after the last write it has expired: not found, and the
     * sweep removes it. */
    store_clock += 23 * DAY - 1;
    cr_assert_eq(lookup(&loop, st, KEY_A).status, 0);
    store_clock += 1;
    cr_assert_eq(lookup(&loop, st, KEY_A).status, SRS_STORE_ENOTFOUND);
    srs_store_sweep(st, swept, &a);
    run_until(&loop, &a);
    cr_assert_eq(a.removed, 1);
    srs_store_stats(st, &stats);
    cr_assert_eq(stats.entries, 0);
    cr_assert_eq(stats.expired, 1);
    close_store(&loop, st);
    cr_assert_eq(uv_loop_close(&loop), 0);
    test_dir_remove(dir);
}

Test(srs_store, a_write_that_fails_keeps_its_entries_for_the_next_sync)
{
    char dir[256], path[300], sender[2100];
    uv_loop_t loop;
    srs_store_t *st;
    int rc = 0, i;

    cr_assert_eq(test_dir_make("srs_store", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/envelopes", dir);
    uv_loop_init(&loop);
    st = open_store(&loop, path, 64 * 1024);
    memset(sender, 's', 2000);
    for (i = 0; i < 100 && rc == 0; i++) {
        char key[SRS_KEY_SIZE];
        snprintf(key, sizeof(key), "K%025d", i);
        snprintf(sender + 2000, 100, "%d@x.example", i);
        srs_store_put(st, key, sender, NULL, NULL);
        rc = srs_store_sync(st);
    }
    cr_assert_eq(rc, SRS_STORE_EFULL, "the file never filled: %d", rc);
    /* The entry that did not fit is still found (pending), and the next
     * sync tries it again. */
    cr_assert_eq(srs_store_sync(st), SRS_STORE_EFULL);
    close_store(&loop, st);
    cr_assert_eq(uv_loop_close(&loop), 0);
    test_dir_remove(dir);
}

Test(srs_store, a_redis_that_is_not_there)
{
    srs_store_options_t o = {.location = "redis://127.0.0.1:1", .expiry = DAY};
    srs_store_location_t loc;
    srs_store_t *st = NULL;
    answer_t a = {0};
    char why[256];
    uv_loop_t loop;
    int rc;

    cr_assert_eq(srs_store_location("redis://[::1]:6379/2", &loc, why, sizeof(why)), 0);
    cr_assert_eq(loc.port, 6379);
    cr_assert_eq(loc.db, 2);
    cr_assert_eq(srs_store_location("redis://localhost:6379", &loc, why, sizeof(why)),
                 SRS_STORE_ELOCATION);
    cr_assert_eq(srs_store_location("redis://127.0.0.1", &loc, why, sizeof(why)),
                 SRS_STORE_ELOCATION);
    cr_assert_eq(srs_store_location("unix:relative", &loc, why, sizeof(why)),
                 SRS_STORE_ELOCATION);
    uv_loop_init(&loop);
    cr_assert_eq(srs_store_open(&loop, &o, &st, why, sizeof(why)), 0);
    rc = srs_store_put(st, KEY_A, "x@y.example", put_done, &a);
    if (rc == SRS_STORE_PENDING)
        run_until(&loop, &a);
    else
        a.status = rc;
    /* Refused, or never answered (libuv reports a refused connection to
     * hiredis's adapter as an error it drops): a failure either way. */
    cr_assert(a.status == SRS_STORE_EDOWN || a.status == SRS_STORE_ETIMEOUT, "%d", a.status);
    /* Down now: at once. */
    cr_assert_eq(srs_store_get(st, KEY_A, got, &a), SRS_STORE_EDOWN);
    close_store(&loop, st);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
