/*
 * srs_store_redis.c - the envelope store in a Redis that several mxfwd
 * hosts share (docs/srs.md, "The envelope store"; docs/admin-guide.md,
 * "Several hosts").
 *
 * hiredis's asynchronous API on the loop, through its libuv adapter.  An
 * entry is the key "mxfwd:srs:KEY" holding the sender, with a TTL of the
 * entry's lifetime: Redis expires it.  A put is answered once Redis has
 * answered the SET; a lookup once it has answered the GET.
 *
 * While the connection is down every request fails at once
 * (SRS_STORE_EDOWN: the session answers 451 and the client tries again
 * later), and a timer connects again, waiting longer after each failure
 * (DEFAULT_REDIS_BACKOFF_MIN_MS doubling up to _MAX_MS).  A request
 * unanswered after DEFAULT_REDIS_TIMEOUT_MS drops the connection: every
 * request on it fails with SRS_STORE_ETIMEOUT, and the timer reconnects.
 */
#include "srs_store_int.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "xalloc.h"

#define SRS_STORE_REDIS_PREFIX "mxfwd:srs:"

typedef struct srs_store_redis_req {
    struct srs_store_redis_req *prev, *next; /* outstanding, oldest first */
    srs_store_t *st;
    uint64_t sent; /* uv_now() */
    srs_store_done_cb put_cb;
    srs_store_get_cb get_cb;
    void *arg;
} srs_store_redis_req_t;

struct srs_store_redis {
    srs_store_location_t loc;
    redisAsyncContext *ac; /* NULL: down, the reconnect timer runs */
    bool connected;
    uint64_t connecting; /* uv_now() of the attempt under way */
    bool closing;
    int drop_status;  /* what requests failing now fail with */
    uint64_t backoff; /* ms before the next connection attempt */
    uv_timer_t reconnect, watchdog, poll;
    unsigned handles; /* open timers */
    srs_store_redis_req_t *head, *tail;
    srs_store_stats_t stats; /* entries and bytes as of the last poll */
};

static void srs_store_redis_reconnect_cb(uv_timer_t *t);

static void srs_store_redis_unlink(srs_store_redis_t *r, srs_store_redis_req_t *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        r->head = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    else
        r->tail = q->prev;
}

/* Stop using the connection: its requests fail with status, and the timer
 * connects again (not while closing). */
static void srs_store_redis_drop(srs_store_t *st, int status)
{
    srs_store_redis_t *r = st->redis;
    redisAsyncContext *ac = r->ac;

    r->ac = NULL;
    r->connected = false;
    r->stats.up = 0;
    if (ac != NULL) {
        r->drop_status = status;
        redisAsyncFree(ac); /* the requests' callbacks, with no reply */
        r->drop_status = SRS_STORE_EDOWN;
    }
    if (!r->closing && !uv_is_active((uv_handle_t *)&r->reconnect)) {
        uv_timer_start(&r->reconnect, srs_store_redis_reconnect_cb, r->backoff, 0);
        r->backoff = r->backoff * 2 > DEFAULT_REDIS_BACKOFF_MAX_MS ? DEFAULT_REDIS_BACKOFF_MAX_MS
                                                                   : r->backoff * 2;
    }
}

static void srs_store_redis_on_connect(const redisAsyncContext *ac, int status)
{
    srs_store_t *st = ac->data;
    srs_store_redis_t *r = st->redis;

    if (r->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        r->ac = NULL;
        srs_store_redis_drop(st, SRS_STORE_EDOWN);
        return;
    }
    r->connected = true;
    r->stats.up = 1;
    r->backoff = DEFAULT_REDIS_BACKOFF_MIN_MS;
}

static void srs_store_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    srs_store_t *st = ac->data;

    (void)status;
    if (st->redis->ac != ac)
        return; /* dropped by us */
    /* hiredis frees the context after this callback. */
    st->redis->ac = NULL;
    srs_store_redis_drop(st, SRS_STORE_EDOWN);
}

/* The answer to SELECT: a refused database drops the connection. */
static void srs_store_redis_selected(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    srs_store_t *st = privdata;

    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && st->redis->ac == ac)
        srs_store_redis_drop(st, SRS_STORE_EREDIS);
}

static void srs_store_redis_connect(srs_store_t *st)
{
    srs_store_redis_t *r = st->redis;
    redisAsyncContext *ac;

    if (r->closing || r->ac != NULL)
        return;
    if (r->loc.path[0] != '\0')
        ac = redisAsyncConnectUnix(r->loc.path);
    else
        ac = redisAsyncConnect(r->loc.host, r->loc.port);
    if (ac == NULL || ac->err != 0 || redisLibuvAttach(ac, st->loop) != REDIS_OK) {
        if (ac != NULL)
            redisAsyncFree(ac);
        srs_store_redis_drop(st, SRS_STORE_EDOWN);
        return;
    }
    ac->data = st;
    r->ac = ac;
    r->connecting = uv_now(st->loop);
    uv_unref((uv_handle_t *)&((redisLibuvEvents *)ac->ev.data)->handle);
    redisAsyncSetConnectCallback(ac, srs_store_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, srs_store_redis_on_disconnect);
    /* Sent once connected: hiredis holds commands until then. */
    if (r->loc.db != 0)
        redisAsyncCommand(ac, srs_store_redis_selected, st, "SELECT %u", r->loc.db);
}

static void srs_store_redis_reconnect_cb(uv_timer_t *t)
{
    srs_store_redis_connect(t->data);
}

/* Every second: a request unanswered for too long (or a connection that
 * never completes) drops the connection. */
static void srs_store_redis_watchdog_cb(uv_timer_t *t)
{
    srs_store_t *st = t->data;
    srs_store_redis_t *r = st->redis;

    /* libuv reports a refused connection as an error of the poll, which
     * hiredis's adapter does not pass on: such an attempt ends here. */
    if (r->ac != NULL && ((r->head != NULL &&
                           uv_now(st->loop) - r->head->sent > DEFAULT_REDIS_TIMEOUT_MS) ||
                          (!r->connected &&
                           uv_now(st->loop) - r->connecting > DEFAULT_REDIS_TIMEOUT_MS)))
        srs_store_redis_drop(st, SRS_STORE_ETIMEOUT);
}

static void srs_store_redis_dbsize(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    srs_store_t *st = privdata;

    (void)ac;
    if (rep != NULL && rep->type == REDIS_REPLY_INTEGER && rep->integer >= 0)
        st->redis->stats.entries = (uint64_t)rep->integer;
}

static void srs_store_redis_info(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    srs_store_t *st = privdata;
    const char *p;

    (void)ac;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING &&
        (p = strstr(rep->str, "used_memory:")) != NULL)
        st->redis->stats.bytes = strtoull(p + strlen("used_memory:"), NULL, 10);
}

/* The metrics' figures, asked for now and then. */
static void srs_store_redis_poll_cb(uv_timer_t *t)
{
    srs_store_t *st = t->data;
    srs_store_redis_t *r = st->redis;

    if (!r->connected)
        return;
    redisAsyncCommand(r->ac, srs_store_redis_dbsize, st, "DBSIZE");
    redisAsyncCommand(r->ac, srs_store_redis_info, st, "INFO memory");
}

static void srs_store_redis_timer(srs_store_t *st, uv_timer_t *t)
{
    uv_timer_init(st->loop, t);
    t->data = st;
    /* No handle of the store keeps a loop running (the daemon closes it
     * once its loop has ended). */
    uv_unref((uv_handle_t *)t);
    st->redis->handles++;
}

int srs_store__redis_open(srs_store_t *st, const srs_store_location_t *loc, char *why,
                          size_t why_size)
{
    srs_store_redis_t *r = xcalloc(1, sizeof(*r));

    (void)why, (void)why_size;
    r->loc = *loc;
    r->backoff = DEFAULT_REDIS_BACKOFF_MIN_MS;
    r->drop_status = SRS_STORE_EDOWN;
    st->redis = r;
    srs_store_redis_timer(st, &r->reconnect);
    srs_store_redis_timer(st, &r->watchdog);
    srs_store_redis_timer(st, &r->poll);
    /* Neither keeps a loop running on its own. */
    uv_timer_start(&r->watchdog, srs_store_redis_watchdog_cb, 1000, 1000);
    uv_timer_start(&r->poll, srs_store_redis_poll_cb, 100, DEFAULT_REDIS_POLL_MS);
    srs_store_redis_connect(st);
    return 0;
}

static void srs_store_redis_timer_closed(uv_handle_t *h)
{
    srs_store_t *st = h->data;

    if (--st->redis->handles > 0)
        return;
    free(st->redis);
    st->redis = NULL;
    srs_store__free(st);
}

void srs_store__redis_close(srs_store_t *st)
{
    srs_store_redis_t *r = st->redis;

    r->closing = true;
    srs_store_redis_drop(st, SRS_STORE_ECLOSED);
    uv_close((uv_handle_t *)&r->reconnect, srs_store_redis_timer_closed);
    uv_close((uv_handle_t *)&r->watchdog, srs_store_redis_timer_closed);
    uv_close((uv_handle_t *)&r->poll, srs_store_redis_timer_closed);
}

/* A request's reply (NULL: the connection went away). */
static void srs_store_redis_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    srs_store_redis_req_t *q = privdata;
    srs_store_t *st = q->st;
    redisReply *rep = reply;
    int status;

    (void)ac;
    srs_store_redis_unlink(st->redis, q);
    if (rep == NULL)
        status = st->redis->drop_status;
    else if (rep->type == REDIS_REPLY_ERROR)
        status = SRS_STORE_EREDIS;
    else if (q->get_cb != NULL && rep->type == REDIS_REPLY_NIL)
        status = SRS_STORE_ENOTFOUND;
    else if (q->get_cb != NULL && rep->type != REDIS_REPLY_STRING)
        status = SRS_STORE_EREDIS;
    else
        status = 0;
    if (status == 0 && q->put_cb != NULL)
        st->redis->stats.written++;
    if (q->get_cb != NULL)
        q->get_cb(q->arg, status, status == 0 ? rep->str : NULL);
    else
        q->put_cb(q->arg, status);
    free(q);
}

/* A request of the store, sent; 0, or an error and nothing sent. */
static int srs_store_redis_send(srs_store_t *st, srs_store_redis_req_t *q, const char *fmt,
                                const char *key, const char *sender)
{
    srs_store_redis_t *r = st->redis;
    char name[sizeof(SRS_STORE_REDIS_PREFIX) + SRS_KEY_LEN];
    int rc;

    if (r->closing || r->ac == NULL) {
        free(q);
        return r->closing ? SRS_STORE_ECLOSED : SRS_STORE_EDOWN;
    }
    snprintf(name, sizeof(name), SRS_STORE_REDIS_PREFIX "%.*s", SRS_KEY_LEN, key);
    q->st = st;
    q->sent = uv_now(st->loop);
    if (sender != NULL)
        rc = redisAsyncCommand(r->ac, srs_store_redis_reply, q, fmt, name, strlen(name), sender,
                               strlen(sender), (unsigned long long)st->expiry);
    else
        rc = redisAsyncCommand(r->ac, srs_store_redis_reply, q, fmt, name, strlen(name));
    if (rc != REDIS_OK) {
        free(q);
        return SRS_STORE_EDOWN;
    }
    q->prev = r->tail;
    if (r->tail != NULL)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
    return 0;
}

int srs_store__redis_put(srs_store_t *st, const char *key, const char *sender, srs_store_done_cb cb,
                         void *arg)
{
    srs_store_redis_req_t *q = xcalloc(1, sizeof(*q));
    int rc;

    q->put_cb = cb;
    q->arg = arg;
    rc = srs_store_redis_send(st, q, "SET %b %b EX %llu", key, sender);
    return rc < 0 ? rc : SRS_STORE_PENDING;
}

int srs_store__redis_get(srs_store_t *st, const char *key, srs_store_get_cb cb, void *arg)
{
    srs_store_redis_req_t *q = xcalloc(1, sizeof(*q));

    q->get_cb = cb;
    q->arg = arg;
    return srs_store_redis_send(st, q, "GET %b", key, NULL);
}

void srs_store__redis_stats(srs_store_t *st, srs_store_stats_t *out)
{
    *out = st->redis->stats;
}
