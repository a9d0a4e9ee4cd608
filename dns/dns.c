#include "dns.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "dns_cache.h"
#include "dns_msg.h"
#include "htab.h"
#include "list.h"
#include "parse.h"
#include "xalloc.h"

/* EDNS0 payload size advertised (the DNS flag day 2020 value): DKIM keys
 * fit in one UDP answer; larger answers come back truncated and c-ares
 * repeats the query over TCP. */
#define DNS_EDNS_PAYLOAD 1232
#define DNS_CLASS_IN 1

typedef struct dns_query dns_query_t;

struct dns_req {
    dns_resolver_t *r;
    dns_query_t *q;   /* the query waited for; NULL once ready */
    list_node_t node; /* in q->waiters, or in r->ready once ready */
    dns_cb cb;
    void *arg;
    int status;
    dns_result_t *res;
    uint64_t batch; /* the dispatch round that tells it */
};

/* One question to c-ares, shared by every identical lookup meanwhile. */
struct dns_query {
    dns_resolver_t *r;
    dns_type_t type;
    char name[DNS_NAME_MAX + 1];
    char key[DNS_CACHE_KEY_MAX];
    size_t key_len;
    list_t waiters; /* dns_req_t, FIFO */
};

/* A socket c-ares asked us to watch. */
typedef struct dns_sock {
    uv_poll_t poll;
    ares_socket_t fd;
    dns_resolver_t *r;
    list_node_t node; /* in r->socks */
} dns_sock_t;

struct dns_resolver {
    uv_loop_t *loop;
    ares_channel channel;
    uv_timer_t timer; /* c-ares' next timeout */
    uv_idle_t idle;   /* runs callbacks of ready lookups */
    list_t socks;     /* dns_sock_t, newest first */
    htab_t *inflight; /* key -> dns_query_t */
    dns_cache_t *cache;
    list_t ready; /* dns_req_t to be told, FIFO */
    uint64_t batch;
    dns_clock_fn clock;
    void *clock_arg;
    uint32_t max_ttl, max_neg_ttl;
    dns_stats_t stats;
    bool closing;
    unsigned handles; /* open libuv handles */
    void (*closed)(void *arg);
    void *closed_arg;
};

static uint64_t dns_now(const dns_resolver_t *r)
{
    return r->clock != NULL ? r->clock(r->clock_arg) : uv_now(r->loop);
}

/* ---- completion: every callback runs from the idle handle ---- */

static void dns_idle_cb(uv_idle_t *idle);

/* Queue req to be told status and res (whose reference it takes). */
static void dns_ready(dns_resolver_t *r, dns_req_t *req, int status, dns_result_t *res)
{
    req->q = NULL;
    req->status = status;
    req->res = res;
    req->batch = r->batch;
    list_push_back(&r->ready, &req->node);
    if (!uv_is_active((uv_handle_t *)&r->idle))
        uv_idle_start(&r->idle, dns_idle_cb);
}

/* One handle fewer; the last one frees the resolver. */
static void dns_handle_done(dns_resolver_t *r)
{
    void (*closed)(void *) = r->closed;
    void *arg = r->closed_arg;

    if (--r->handles > 0)
        return;
    htab_free(r->inflight, NULL);
    dns_cache_free(r->cache);
    free(r);
    ares_library_cleanup();
    if (closed != NULL)
        closed(arg);
}

static void dns_handle_closed(uv_handle_t *h)
{
    dns_handle_done(h->data);
}

static void dns_idle_cb(uv_idle_t *idle)
{
    dns_resolver_t *r = idle->data;
    /* Only lookups ready before this round: callbacks that start lookups
     * answered from the cache are told in the next round, so a caller
     * looping on the cache cannot starve the loop. */
    uint64_t batch = r->batch++;
    dns_req_t *req;

    while ((req = LIST_ITEM(list_first(&r->ready), dns_req_t, node)) != NULL &&
           req->batch == batch) {
        list_remove(&r->ready, &req->node);
        req->cb(req->arg, req->status, req->res);
        dns_msg_result_unref(req->res);
        free(req);
    }
    if (list_len(&r->ready) == 0) {
        uv_idle_stop(&r->idle);
        if (r->closing && !uv_is_closing((uv_handle_t *)&r->idle))
            uv_close((uv_handle_t *)&r->idle, dns_handle_closed);
    }
}

/* ---- c-ares on the loop ---- */

static void dns_timer_cb(uv_timer_t *timer);

static void dns_timer_update(dns_resolver_t *r)
{
    struct timeval tv, *tvp;
    uint64_t ms;

    if (r->channel == NULL)
        return;
    tvp = ares_timeout(r->channel, NULL, &tv);
    if (tvp == NULL) {
        uv_timer_stop(&r->timer);
        return;
    }
    ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
    uv_timer_start(&r->timer, dns_timer_cb, ms, 0);
}

static void dns_timer_cb(uv_timer_t *timer)
{
    dns_resolver_t *r = timer->data;

    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_timer_update(r);
}

static void dns_poll_cb(uv_poll_t *poll, int status, int events)
{
    dns_sock_t *s = poll->data;
    dns_resolver_t *r = s->r;
    ares_socket_t fd = s->fd;

    /* On a poll error let c-ares read and write, so it sees the socket's
     * error itself and moves the query to the next server.  s may be
     * closed by the socket-state callback inside ares_process_fd(). */
    ares_process_fd(r->channel, status < 0 || (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                    status < 0 || (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
    dns_timer_update(r);
}

static void dns_sock_closed(uv_handle_t *h)
{
    dns_sock_t *s = h->data;
    dns_resolver_t *r = s->r;

    free(s);
    dns_handle_done(r);
}

static void dns_sock_close(dns_resolver_t *r, dns_sock_t *s)
{
    list_remove(&r->socks, &s->node);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, dns_sock_closed);
}

static dns_sock_t *dns_sock_find(dns_resolver_t *r, ares_socket_t fd)
{
    for (list_node_t *node = list_first(&r->socks); node != NULL; node = node->next) {
        dns_sock_t *s = LIST_ITEM(node, dns_sock_t, node);
        if (s->fd == fd)
            return s;
    }
    return NULL;
}

/* c-ares tells which sockets to watch, and for what. */
static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    dns_resolver_t *r = data;
    dns_sock_t *s = dns_sock_find(r, fd);

    if (!readable && !writable) {
        if (s != NULL)
            dns_sock_close(r, s);
        return;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->r = r;
        /* Not watched means the query times out through the timer. */
        if (uv_poll_init_socket(r->loop, &s->poll, fd) != 0) {
            free(s);
            return;
        }
        s->poll.data = s;
        /* The timer keeps the loop alive while queries are pending; an
         * idle socket c-ares keeps open must not. */
        uv_unref((uv_handle_t *)&s->poll);
        r->handles++;
        list_push_front(&r->socks, &s->node);
    }
    uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  dns_poll_cb);
}

static int dns_from_ares(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
        return DNS_ENXDOMAIN;
    case ARES_ENODATA:
        return DNS_ENODATA;
    case ARES_EBADNAME:
        return DNS_EBADNAME;
    case ARES_ESERVFAIL:
        return DNS_ESERVFAIL;
    case ARES_EREFUSED:
        return DNS_EREFUSED;
    case ARES_ETIMEOUT:
        return DNS_ETIMEOUT;
    case ARES_ECONNREFUSED:
        return DNS_ECONNREFUSED;
    case ARES_EBADRESP:
        return DNS_EBADRESP;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return DNS_ECANCELED;
    default:
        return DNS_EFAIL;
    }
}

static void dns_query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_query_t *q = arg;
    dns_resolver_t *r = q->r;
    dns_result_t *res = NULL;
    uint32_t ttl = 0;
    dns_req_t *req;
    int rc;

    (void)timeouts;
    htab_remove(r->inflight, q->key, q->key_len);
    /* c-ares has turned the rcode into status already; NOERROR, NXDOMAIN
     * and NODATA come with the answer, whose records and SOA we read. */
    if ((status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA) &&
        abuf != NULL && alen > 0)
        rc = dns_msg_parse(abuf, (size_t)alen, q->name, q->type, &res, &ttl);
    else
        rc = dns_from_ares(status);

    if (rc == 0 || rc == DNS_ENXDOMAIN || rc == DNS_ENODATA) {
        uint32_t max = rc == 0 ? r->max_ttl : r->max_neg_ttl;
        if (r->cache != NULL && !r->closing)
            dns_cache_put(r->cache, q->type, q->name, rc, res, ttl < max ? ttl : max, dns_now(r));
    } else if (rc != DNS_ECANCELED) {
        r->stats.failures++;
    }
    while ((req = LIST_ITEM(list_pop_front(&q->waiters), dns_req_t, node)) != NULL)
        dns_ready(r, req, rc, res != NULL ? dns_msg_result_ref(res) : NULL);
    dns_msg_result_unref(res);
    free(q);
}

/* ---- public ---- */

int dns_set_servers(ares_channel channel, const char *const *servers, size_t nservers)
{
    struct ares_addr_port_node *nodes = xcalloc(nservers, sizeof(*nodes));
    parse_hostport_t hp;
    int rc = DNS_EINVAL;

    for (size_t i = 0; i < nservers; i++) {
        struct ares_addr_port_node *n = &nodes[i];
        if (parse_hostport(servers[i], true, &hp) < 0 || !hp.is_ip)
            goto fail;
        if (inet_pton(AF_INET, hp.host, &n->addr.addr4) == 1)
            n->family = AF_INET;
        else if (inet_pton(AF_INET6, hp.host, &n->addr.addr6) == 1)
            n->family = AF_INET6;
        else
            goto fail;
        /* 0 is c-ares' "the default port", 53. */
        n->udp_port = n->tcp_port = hp.port;
        n->next = i + 1 < nservers ? &nodes[i + 1] : NULL;
    }
    if (ares_set_servers_ports(channel, nservers > 0 ? nodes : NULL) == ARES_SUCCESS)
        rc = 0;
fail:
    free(nodes);
    return rc;
}

static int dns_channel_new(dns_resolver_t *r, const dns_options_t *opts, int flags,
                           ares_channel *out)
{
    struct ares_options ao;
    int rc;

    memset(&ao, 0, sizeof(ao));
    ao.flags = flags;
    ao.timeout = (int)(opts->timeout_ms ? opts->timeout_ms : DEFAULT_DNS_TIMEOUT_MS);
    ao.tries = (int)(opts->tries ? opts->tries : DEFAULT_DNS_TRIES);
    ao.ednspsz = DNS_EDNS_PAYLOAD;
    ao.sock_state_cb = dns_sock_state_cb;
    ao.sock_state_cb_data = r;
    if (ares_init_options(out, &ao,
                          ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ |
                              ARES_OPT_SOCK_STATE_CB) != ARES_SUCCESS)
        return DNS_EFAIL;
    if (opts->nservers > 0 && (rc = dns_set_servers(*out, opts->servers, opts->nservers)) < 0) {
        ares_destroy(*out);
        return rc;
    }
    return 0;
}

static size_t dns_channel_nservers(ares_channel channel)
{
    struct ares_addr_port_node *servers = NULL;
    size_t n = 0;

    if (ares_get_servers_ports(channel, &servers) != ARES_SUCCESS)
        return 0;
    for (struct ares_addr_port_node *s = servers; s != NULL; s = s->next)
        n++;
    ares_free_data(servers);
    return n;
}

int dns_resolver_new(uv_loop_t *loop, const dns_options_t *opts, dns_resolver_t **out)
{
    static const dns_options_t defaults;
    dns_resolver_t *r;
    int rc;

    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return DNS_EFAIL;
    r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->clock = opts->clock;
    r->clock_arg = opts->clock_arg;
    r->max_ttl = opts->max_ttl ? opts->max_ttl : DEFAULT_DNS_MAX_TTL;
    r->max_neg_ttl = opts->max_neg_ttl ? opts->max_neg_ttl : DEFAULT_DNS_MAX_NEG_TTL;

    /* c-ares 1.18 moves on to the next server after a SERVFAIL or REFUSED,
     * as the libc resolver does, but when none is left it reports
     * ECONNREFUSED and the server's word is lost.  With a single server
     * there is nowhere to move on to: take its answer as it is, so that
     * SERVFAIL and REFUSED reach the caller. */
    if ((rc = dns_channel_new(r, opts, ARES_FLAG_EDNS, &r->channel)) < 0)
        goto fail;
    if (dns_channel_nservers(r->channel) == 1) {
        ares_destroy(r->channel);
        if ((rc = dns_channel_new(r, opts, ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP, &r->channel)) <
            0)
            goto fail;
    }

    uv_timer_init(loop, &r->timer);
    uv_idle_init(loop, &r->idle);
    r->timer.data = r->idle.data = r;
    r->handles = 2;
    r->inflight = htab_new(64);
    if (!opts->no_cache)
        r->cache =
            dns_cache_new(opts->cache_entries ? opts->cache_entries : DEFAULT_DNS_CACHE_ENTRIES,
                          opts->cache_bytes ? opts->cache_bytes : DEFAULT_DNS_CACHE_BYTES);
    *out = r;
    return 0;

fail:
    free(r);
    ares_library_cleanup();
    return rc;
}

void dns_resolver_close(dns_resolver_t *r, void (*closed)(void *arg), void *arg)
{
    size_t pos = 0;
    void *value;
    dns_sock_t *s;

    if (r->closing)
        abort(); /* closed twice: the caller's bookkeeping is broken */
    r->closing = true;
    r->closed = closed;
    r->closed_arg = arg;

    /* Waiters first, so that destroying the channel finds no one to tell. */
    while (htab_next(r->inflight, &pos, NULL, NULL, &value)) {
        dns_query_t *q = value;
        dns_req_t *req;
        while ((req = LIST_ITEM(list_pop_front(&q->waiters), dns_req_t, node)) != NULL)
            dns_ready(r, req, DNS_ECANCELED, NULL);
    }
    ares_destroy(r->channel); /* ends each query, closes its sockets */
    r->channel = NULL;
    while ((s = LIST_ITEM(list_first(&r->socks), dns_sock_t, node)) != NULL)
        dns_sock_close(r, s);
    uv_close((uv_handle_t *)&r->timer, dns_handle_closed);
    if (list_len(&r->ready) == 0) {
        uv_idle_stop(&r->idle);
        uv_close((uv_handle_t *)&r->idle, dns_handle_closed);
    }
}

uv_loop_t *dns_resolver_loop(const dns_resolver_t *r)
{
    return r->loop;
}

void dns_resolver_stats(const dns_resolver_t *r, dns_stats_t *out)
{
    *out = r->stats;
}

static bool dns_type_valid(dns_type_t type)
{
    return type == DNS_T_A || type == DNS_T_AAAA || type == DNS_T_MX || type == DNS_T_TXT ||
           type == DNS_T_PTR;
}

int dns_lookup(dns_resolver_t *r, dns_type_t type, const char *name, dns_cb cb, void *arg,
               dns_req_t **reqp)
{
    char norm[DNS_NAME_MAX + 1], key[DNS_CACHE_KEY_MAX];
    dns_result_t *res = NULL;
    dns_query_t *q;
    dns_req_t *req;
    size_t key_len;
    int rc;

    if (reqp != NULL)
        *reqp = NULL;
    if (r->closing)
        return DNS_ECLOSING;
    if (!dns_type_valid(type) || cb == NULL || name == NULL)
        return DNS_EINVAL;
    req = xcalloc(1, sizeof(*req));
    req->r = r;
    req->cb = cb;
    req->arg = arg;

    if (type == DNS_T_A || type == DNS_T_AAAA) {
        rc = dns_msg_literal(name, type, &res);
        if (rc != DNS_EBADNAME) {
            dns_ready(r, req, rc, res);
            goto started;
        }
    }
    if ((rc = dns_msg_name_norm(name, norm)) < 0) {
        free(req);
        return rc;
    }
    if (r->cache != NULL && dns_cache_get(r->cache, type, norm, dns_now(r), &rc, &res)) {
        r->stats.cache_hits++;
        dns_ready(r, req, rc, res);
        goto started;
    }
    key_len = dns_cache_key(key, type, norm);
    if ((q = htab_get(r->inflight, key, key_len)) != NULL) {
        r->stats.joined++;
        req->q = q;
        list_push_back(&q->waiters, &req->node);
        goto started;
    }

    q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->type = type;
    memcpy(q->name, norm, sizeof(norm));
    memcpy(q->key, key, sizeof(key));
    q->key_len = key_len;
    htab_put(r->inflight, q->key, q->key_len, q);
    req->q = q;
    list_push_back(&q->waiters, &req->node);
    r->stats.queries++;
    /* May call dns_query_cb() at once (no servers, no memory): req is
     * queued by then and is told through the idle handle as usual. */
    ares_query(r->channel, norm, DNS_CLASS_IN, (int)type, dns_query_cb, q);
    dns_timer_update(r);

started:
    r->stats.lookups++;
    if (reqp != NULL)
        *reqp = req;
    return 0;
}

int dns_ptr_lookup(dns_resolver_t *r, const struct sockaddr *sa, dns_cb cb, void *arg,
                   dns_req_t **req)
{
    char name[DNS_NAME_MAX + 1];
    int rc;

    if (req != NULL)
        *req = NULL;
    if ((rc = dns_msg_ptr_name(sa, name, sizeof(name))) < 0)
        return rc;
    return dns_lookup(r, DNS_T_PTR, name, cb, arg, req);
}

void dns_cancel(dns_req_t *req)
{
    if (req == NULL)
        return;
    if (req->q != NULL) {
        list_remove(&req->q->waiters, &req->node);
    } else {
        list_remove(&req->r->ready, &req->node);
        dns_msg_result_unref(req->res);
    }
    free(req);
}

bool dns_is_permanent(int err)
{
    return err == DNS_ENXDOMAIN || err == DNS_ENODATA || err == DNS_EBADNAME;
}

const char *dns_strerror(int err)
{
    switch (err) {
    case 0:
        return "Success";
    case DNS_ENXDOMAIN:
        return "Host not found";
    case DNS_ENODATA:
        return "Host found but no data record of requested type";
    case DNS_EBADNAME:
        return "Malformed domain name";
    case DNS_ESERVFAIL:
        return "Host not found, try again (server failure)";
    case DNS_EREFUSED:
        return "Host not found, try again (query refused)";
    case DNS_ETIMEOUT:
        return "Host not found, try again (timeout)";
    case DNS_ECONNREFUSED:
        return "Host not found, try again (name servers unreachable or refusing)";
    case DNS_EBADRESP:
        return "Host not found, try again (malformed answer)";
    case DNS_EFAIL:
        return "Host not found, try again (resolver failure)";
    case DNS_ECANCELED:
        return "Lookup canceled";
    case DNS_ECLOSING:
        return "Resolver is closing";
    case DNS_EINVAL:
        return "Invalid argument";
    }
    return "Unknown DNS error";
}

const char *dns_type_name(dns_type_t type)
{
    switch (type) {
    case DNS_T_A:
        return "A";
    case DNS_T_AAAA:
        return "AAAA";
    case DNS_T_MX:
        return "MX";
    case DNS_T_TXT:
        return "TXT";
    case DNS_T_PTR:
        return "PTR";
    }
    return "?";
}
