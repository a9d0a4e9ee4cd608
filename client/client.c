/*
 * client.c - jobs: scheduling under the concurrency limits, routing, the
 * hops tried in turn, recipients' results, the connection cache and
 * shutdown.  The SMTP conversation itself is client_conn.c's.
 */
#include "client.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_int.h"
#include "default.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

static const delivery_ops_t client_ops = {
    .deliver = client_deliver,
    .shutdown = client_shutdown,
};

static void client_pump(client_t *c);
static void client_job_try(client_job_t *j);
static void client_job_finish(client_job_t *j);
static void client_job_release(client_job_t *j);
static void client_maybe_closed(client_t *c);

/* ---- settings ---- */

/* One RFC 5321 timeout (seconds at the default `timeout`) in ms, scaled. */
static uint64_t client_scale(uint64_t secs, uint64_t timeout)
{
    uint64_t ms = secs * 1000 * timeout / DEFAULT_TIMEOUT;

    return ms > 0 ? ms : 1;
}

static void client_timeouts(client_timeouts_t *t, uint64_t timeout)
{
    t->connect = client_scale(DEFAULT_SMTP_CONNECT_TIMEOUT, timeout);
    t->greeting = client_scale(DEFAULT_SMTP_GREETING_TIMEOUT, timeout);
    t->helo = client_scale(DEFAULT_SMTP_HELO_TIMEOUT, timeout);
    t->tls = client_scale(DEFAULT_SMTP_TLS_TIMEOUT, timeout);
    t->mail = client_scale(DEFAULT_SMTP_MAIL_TIMEOUT, timeout);
    t->rcpt = client_scale(DEFAULT_SMTP_RCPT_TIMEOUT, timeout);
    t->data = client_scale(DEFAULT_SMTP_DATA_TIMEOUT, timeout);
    t->block = client_scale(DEFAULT_SMTP_BLOCK_TIMEOUT, timeout);
    t->dot = client_scale(DEFAULT_SMTP_DOT_TIMEOUT, timeout);
    t->rset = client_scale(DEFAULT_SMTP_RSET_TIMEOUT, timeout);
    t->quit = client_scale(DEFAULT_SMTP_QUIT_TIMEOUT, timeout);
}

static void client_copy_routes(client_t *c, const client_options_t *opts)
{
    size_t nown = 0;

    c->routes = xcalloc(opts->nroutes + 1, sizeof(*c->routes));
    for (size_t i = 0; i < opts->nroutes; i++) {
        c->routes[i].domain = xstrdup(opts->routes[i].domain);
        c->routes[i].host = xstrdup(opts->routes[i].host);
        c->routes[i].port = opts->routes[i].port;
    }
    route_own_addresses(opts->listen, opts->nlisten, &c->own, &nown);

    c->route.entries = c->routes;
    c->route.nentries = opts->nroutes;
    c->route.own = c->own;
    c->route.nown = nown;
    c->route.port = opts->port;
}

static void client_free(client_t *c)
{
    for (size_t i = 0; i < c->route.nentries; i++) {
        free((char *)c->routes[i].domain);
        free((char *)c->routes[i].host);
    }
    free(c->routes);
    free(c->own);
    free(c->hostname);
    htab_free(c->dests, NULL);
    htab_free(c->cache, free);
    if (c->tls_ctx != NULL)
        SSL_CTX_free(c->tls_ctx);
    free(c);
}

static void client_register(client_t *c, stats_t *s)
{
    c->count.jobs = stats_register(s, STATS_COUNTER, "outbound_jobs", NULL, NULL,
                                   "delivery jobs (a message and the recipients of one domain)");
    c->count.connections = stats_register(s, STATS_COUNTER, "outbound_connections", NULL, NULL,
                                          "SMTP connections made to next hops");
    c->count.connect_failures = stats_register(s, STATS_COUNTER, "outbound_connect_failures", NULL,
                                               NULL, "connection attempts that failed");
    c->count.transactions = stats_register(s, STATS_COUNTER, "outbound_transactions", NULL, NULL,
                                           "SMTP transactions (MAIL FROM) sent");
    c->count.reused = stats_register(s, STATS_COUNTER, "outbound_reused", NULL, NULL,
                                     "transactions on a cached connection");
    c->count.tls = stats_register(s, STATS_COUNTER, "outbound_tls", NULL, NULL,
                                  "TLS sessions established with next hops");
    c->count.open = stats_register(s, STATS_GAUGE, "outbound_open", NULL, NULL,
                                   "connections to next hops open now, idle ones included");
}

int client_new(uv_loop_t *loop, dns_resolver_t *r, const client_options_t *opts, client_t **out,
               char *err, size_t errsize)
{
    client_t *c = xcalloc(1, sizeof(*c));

    *out = NULL;
    c->loop = loop;
    c->resolver = r;
    c->hostname = xstrdup(opts->hostname);
    c->tls_mode = opts->tls;
    c->max_active = opts->max_deliveries > 0 ? opts->max_deliveries : DEFAULT_MAX_DELIVERIES;
    c->max_per_dest = opts->max_deliveries_per_domain > 0 ? opts->max_deliveries_per_domain
                                                          : DEFAULT_MAX_DELIVERIES_PER_DOMAIN;
    client_timeouts(&c->t, opts->timeout > 0 ? opts->timeout : DEFAULT_TIMEOUT);
    client_copy_routes(c, opts);
    c->dests = htab_new(64);
    c->cache = htab_new(64);
    client_register(c, opts->stats);
    if (c->tls_mode != CLIENT_TLS_OFF &&
        (c->tls_ctx = tls_client_ctx(c->tls_mode == CLIENT_TLS_OPPORTUNISTIC, err, errsize)) ==
            NULL) {
        client_free(c);
        return CLIENT_ETLS;
    }
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    c->busy = 1; /* the idle handle */
    *out = c;
    return 0;
}

delivery_t client_delivery(client_t *c)
{
    delivery_t d = {.ops = &client_ops, .impl = c};

    return d;
}

/* ---- destinations: what concurrency is counted against ---- */

/* The destination of a domain: its route's next hop when one applies
 * (domains sent to one smarthost share its limit), else the domain. */
static client_dest_t *client_dest_get(client_t *c, const char *domain)
{
    const route_entry_t *e = route_find(&c->route, domain);
    char key[DNS_NAME_MAX + 16];
    client_dest_t *d;

    if (e != NULL)
        snprintf(key, sizeof(key), "[%s]:%u", e->host, e->port ? e->port : c->route.port);
    else
        str_lcpy(key, domain, sizeof(key));
    if ((d = htab_get(c->dests, key, strlen(key))) != NULL)
        return d;
    d = xcalloc(1, sizeof(*d));
    d->key = xstrdup(key);
    htab_put(c->dests, d->key, strlen(d->key), d);
    return d;
}

static void client_dest_ready(client_t *c, client_dest_t *d)
{
    if (d->ready || list_len(&d->waiting) == 0 || d->active >= c->max_per_dest)
        return;
    d->ready = true;
    list_push_back(&c->ready, &d->rnode);
}

static void client_dest_unready(client_t *c, client_dest_t *d)
{
    if (!d->ready)
        return;
    list_remove(&c->ready, &d->rnode);
    d->ready = false;
}

static void client_dest_maybe_free(client_t *c, client_dest_t *d)
{
    if (d->active > 0 || list_len(&d->waiting) > 0 || c->pumping)
        return;
    client_dest_unready(c, d);
    htab_remove(c->dests, d->key, strlen(d->key));
    free(d->key);
    free(d);
}

/* ---- recipients' results ---- */

static void client_rcpt_fill(delivery_rcpt_t *r, const char *dsn, const char *text, bool remote,
                             const char *relay)
{
    str_lcpy(r->reply, text, sizeof(r->reply));
    r->remote_reply = remote;
    str_lcpy(r->relay, relay, sizeof(r->relay));
    str_lcpy(r->dsn, dsn, sizeof(r->dsn));
}

void client__rcpt_result(client_job_t *j, size_t i, int cls, const char *dsn, const char *text,
                         bool remote, const char *relay)
{
    delivery_rcpt_t *r = &j->job->rcpts[i];
    uint64_t now = uv_now(j->c->loop);

    if (j->rflags[i] & CLIENT_R_DONE)
        return;
    client_rcpt_fill(r, dsn, text, remote, relay);
    /* Where the time went, for the log's delays=. */
    r->setup_ms = (uint32_t)((j->txn_ms != 0 ? j->txn_ms : now) - j->started_ms);
    r->xmit_ms = (uint32_t)(j->txn_ms != 0 ? now - j->txn_ms : 0);
    str_lcpy(r->tls, j->conn != NULL && j->conn->tls != NULL ? tls_version(j->conn->tls) : "",
             sizeof(r->tls));
    if (cls == 2) {
        r->status = DELIVERY_OK;
        r->dsn_passed = (j->rflags[i] & CLIENT_R_DSN) != 0;
    } else if (cls == 5) {
        r->status = DELIVERY_PERMFAIL;
    } else if (j->final) {
        r->status = DELIVERY_TEMPFAIL;
    } else {
        /* Postfix's rule: a temporary failure is not final while another
         * server may take the recipient; the reason is kept in case none
         * does. */
        j->rflags[i] |= CLIENT_R_NOTED;
        return;
    }
    j->rflags[i] |= CLIENT_R_DONE;
}

void client__fail_pending(client_job_t *j, int cls, const char *dsn, const char *text, bool remote,
                          const char *relay)
{
    for (size_t i = 0; i < j->job->nrcpts; i++)
        client__rcpt_result(j, i, cls, dsn, text, remote, relay);
}

void client__job_error(client_job_t *j, const char *dsn, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(j->error, sizeof(j->error), fmt, ap);
    va_end(ap);
    str_lcpy(j->error_dsn, dsn, sizeof(j->error_dsn));
}

static size_t client_job_pending(const client_job_t *j)
{
    size_t n = 0;

    for (size_t i = 0; i < j->job->nrcpts; i++)
        n += !(j->rflags[i] & CLIENT_R_DONE);
    return n;
}

/* ---- jobs ---- */

int client_deliver(void *impl, delivery_job_t *job, delivery_done_fn done, void *arg)
{
    client_t *c = impl;
    client_job_t *j;

    if (c->closing)
        return CLIENT_ECLOSING;
    j = xcalloc(1, sizeof(*j) + job->nrcpts);
    j->started_ms = uv_now(c->loop);
    j->c = c;
    j->job = job;
    j->done = done;
    j->done_arg = arg;
    j->fd = -1;
    for (size_t i = 0; i < job->nrcpts; i++) {
        job->rcpts[i].status = DELIVERY_PENDING;
        client_rcpt_fill(&job->rcpts[i], "", "", false, "none");
    }
    client__busy(c);
    (*c->count.jobs)++;
    c->waiting++;

    j->dest = client_dest_get(c, job->domain);
    list_push_back(&j->dest->waiting, &j->qnode);
    client_dest_ready(c, j->dest);
    client_pump(c);
    return 0;
}

/* Both the spool file and the route are there (or failed): go. */
static void client_job_started(client_job_t *j)
{
    route_result_t *rt = j->route;

    if (j->fd < 0 && j->job->body == NULL) {
        client__fail_pending(j, 4, "4.3.0", j->error, false, "none");
        client_job_finish(j);
        return;
    }
    if (rt->status != ROUTE_OK) {
        client__fail_pending(j, rt->status == ROUTE_PERMFAIL ? 5 : 4, rt->dsn, rt->reason, false,
                             "none");
        client_job_finish(j);
        return;
    }
    j->hop = 0;
    client_job_try(j);
}

static void client_job_open_cb(uv_fs_t *req)
{
    client_job_t *j = req->data;
    ssize_t rc = req->result;

    uv_fs_req_cleanup(req);
    j->fs_busy = false;
    if (rc >= 0)
        j->fd = (int)rc;
    if (j->finished) { /* shut down meanwhile: the job is handed back */
        client_job_release(j);
        return;
    }
    if (rc < 0)
        client__job_error(j, "4.3.0", "cannot open queue file %s: %s", j->job->path,
                          strerror((int)-rc));
    if (--j->starting == 0)
        client_job_started(j);
}

static void client_job_route_cb(void *arg, route_result_t *res)
{
    client_job_t *j = arg;

    j->route_req = NULL;
    j->route = res;
    if (--j->starting == 0)
        client_job_started(j);
}

static void client_job_start(client_job_t *j)
{
    client_t *c = j->c;
    int rc;

    j->running = true;
    list_push_front(&c->running, &j->rnode);
    j->dest->active++;
    c->active++;
    c->waiting--;

    /* The spool file opens while the route is looked up, unless the
     * message is in memory. */
    j->starting = j->job->body != NULL ? 1 : 2;
    j->fs.data = j;
    j->fs_busy = j->job->body == NULL;
    rc = j->fs_busy ? uv_fs_open(c->loop, &j->fs, j->job->path, O_RDONLY | O_CLOEXEC, 0,
                                 client_job_open_cb)
                    : 0;
    if (rc < 0) {
        j->fs_busy = false;
        client__job_error(j, "4.3.0", "cannot open queue file %s: %s", j->job->path, strerror(-rc));
        j->starting--;
    }
    rc =
        route_lookup(c->resolver, &c->route, j->job->domain, client_job_route_cb, j, &j->route_req);
    if (rc < 0) {
        j->route = xcalloc(1, sizeof(*j->route));
        j->route->status = dns_is_permanent(rc) ? ROUTE_PERMFAIL : ROUTE_TEMPFAIL;
        j->route->dsn = dns_is_permanent(rc) ? "5.1.2" : "4.3.0";
        snprintf(j->route->reason, sizeof(j->route->reason), "bad destination domain %s: %s",
                 j->job->domain, dns_strerror(rc));
        j->starting--;
    }
    if (j->starting == 0)
        client_job_started(j);
}

/* Start waiting jobs while there are free slots, one destination after
 * another in turn. */
static void client_pump(client_t *c)
{
    if (c->pumping)
        return;
    c->pumping = true;
    while (!c->closing && c->active < c->max_active && list_len(&c->ready) > 0) {
        client_dest_t *d = LIST_ITEM(list_first(&c->ready), client_dest_t, rnode);
        client_job_t *j = LIST_ITEM(list_pop_front(&d->waiting), client_job_t, qnode);

        client_dest_unready(c, d);
        client_job_start(j);
        client_dest_ready(c, d);
    }
    c->pumping = false;
}

/* Among the hops as good as the first, one with a cached connection goes
 * first: reusing it costs no handshake and it is known to work. */
static void client_job_prefer_cached(client_job_t *j)
{
    route_hop_t *hops = j->route->hops;
    char key[CLIENT_KEY_MAX];

    for (size_t k = 0; k < j->route->nhops && hops[k].pref == hops[0].pref; k++) {
        size_t n = client__endpoint_key(&hops[k].addr, key);
        if (htab_get(j->c->cache, key, n) != NULL) {
            if (k > 0) {
                route_hop_t tmp = hops[0];
                hops[0] = hops[k];
                hops[k] = tmp;
            }
            return;
        }
    }
}

static client_conn_t *client_cache_take(client_t *c, const route_hop_t *hop)
{
    char key[CLIENT_KEY_MAX];
    size_t n = client__endpoint_key(&hop->addr, key);
    client_endpoint_t *ep = htab_get(c->cache, key, n);
    client_conn_t *conn =
        ep != NULL ? LIST_ITEM(list_first(&ep->idle), client_conn_t, enode) : NULL;

    if (conn != NULL)
        client__cache_remove(conn);
    return conn;
}

/* Try the current hop, or the next ones, until a connection is under way
 * or nothing is left to try. */
static void client_job_try(client_job_t *j)
{
    client_t *c = j->c;
    size_t nhops = j->route->nhops;

    if (j->hop == 0 && j->sessions == 0 && !j->plaintext)
        client_job_prefer_cached(j);
    while (!c->closing && client_job_pending(j) > 0 && j->hop < nhops &&
           j->sessions < DEFAULT_MX_SESSION_LIMIT) {
        const route_hop_t *hop = &j->route->hops[j->hop];
        client_conn_t *conn;

        j->final = j->hop + 1 == nhops || j->sessions + 1 == DEFAULT_MX_SESSION_LIMIT;
        if (!j->plaintext && (conn = client_cache_take(c, hop)) != NULL) {
            j->sessions++;
            client__conn_attach(conn, j);
            return;
        }
        if (client__conn_open(c, j, hop, j->plaintext) != NULL)
            return;
        j->hop++;
        j->plaintext = false;
    }
    client_job_finish(j);
}

void client__job_continue(client_job_t *j, bool same_hop)
{
    j->conn = NULL;
    if (j->finished)
        return;
    if (!same_hop) {
        j->hop++;
        j->plaintext = false;
    }
    client_job_try(j);
}

static void client_idle_cb(uv_idle_t *idle);

/* Every recipient has its result: hand the job back (from the idle
 * handle, never from inside deliver() or a connection's callback). */
static void client_job_finish(client_job_t *j)
{
    client_t *c = j->c;

    if (j->finished)
        return;
    j->finished = true;
    for (size_t i = 0; i < j->job->nrcpts; i++) {
        delivery_rcpt_t *r = &j->job->rcpts[i];
        if (j->rflags[i] & CLIENT_R_DONE)
            continue;
        r->status = DELIVERY_TEMPFAIL;
        if (!(j->rflags[i] & CLIENT_R_NOTED))
            client_rcpt_fill(r, j->error_dsn[0] ? j->error_dsn : "4.4.1",
                             j->error[0] ? j->error : "delivery not completed", false, "none");
    }
    if (j->route_req != NULL) {
        route_cancel(j->route_req);
        j->route_req = NULL;
    }
    if (j->route != NULL) {
        route_result_free(j->route);
        j->route = NULL;
    }
    if (j->running) {
        j->running = false;
        list_remove(&c->running, &j->rnode);
        c->active--;
        j->dest->active--;
        client_dest_ready(c, j->dest);
        client_dest_maybe_free(c, j->dest);
    }
    j->dest = NULL;
    list_push_back(&c->done, &j->qnode);
    if (!uv_is_active((uv_handle_t *)&c->idle) && !uv_is_closing((uv_handle_t *)&c->idle))
        uv_idle_start(&c->idle, client_idle_cb);
    client_pump(c);
}

static void client_idle_closed(uv_handle_t *h)
{
    client__unbusy(h->data);
}

static void client_idle_cb(uv_idle_t *idle)
{
    client_t *c = idle->data;
    client_job_t *j;

    c->busy++; /* a done() may shut the client down: it stays until we return */
    while ((j = LIST_ITEM(list_pop_front(&c->done), client_job_t, qnode)) != NULL) {
        j->told = true;
        j->done(j->job, j->done_arg);
        j->job = NULL;
        client_job_release(j);
    }
    uv_idle_stop(&c->idle);
    client__unbusy(c);
}

/* Free j once done() has run and nothing reads its file any more. */
static void client_job_release(client_job_t *j)
{
    client_t *c = j->c;

    if (!j->told || j->reads > 0 || j->fs_busy)
        return;
    /* Closing a read-only descriptor of a regular file does no I/O: done
     * here rather than through the thread pool, a hand-off per message. */
    if (j->fd >= 0)
        close(j->fd);
    free(j);
    client__unbusy(c);
}

void client__job_read_done(client_job_t *j)
{
    j->reads--;
    client_job_release(j);
}

/* ---- the connection cache ---- */

void client__cache_put(client_conn_t *conn)
{
    client_t *c = conn->c;
    client_endpoint_t *ep = htab_get(c->cache, conn->key, conn->keylen);

    if (ep == NULL) {
        ep = xcalloc(1, sizeof(*ep));
        htab_put(c->cache, conn->key, conn->keylen, ep);
    }
    list_push_front(&ep->idle, &conn->enode);
    list_push_front(&c->idle_conns, &conn->inode);

    /* No more idle connections than deliveries may run: the oldest go. */
    while (list_len(&c->idle_conns) > c->max_active) {
        client_conn_t *old = LIST_ITEM(list_last(&c->idle_conns), client_conn_t, inode);
        client__cache_remove(old);
        client__conn_quit(old);
    }
}

void client__cache_remove(client_conn_t *conn)
{
    client_t *c = conn->c;
    client_endpoint_t *ep = htab_get(c->cache, conn->key, conn->keylen);

    list_remove(&c->idle_conns, &conn->inode);
    list_remove(&ep->idle, &conn->enode);
    if (list_len(&ep->idle) == 0) {
        htab_remove(c->cache, conn->key, conn->keylen);
        free(ep);
    }
}

/* ---- shutdown ---- */

void client__busy(client_t *c)
{
    c->busy++;
}

void client__unbusy(client_t *c)
{
    c->busy--;
    client_maybe_closed(c);
}

static void client_maybe_closed(client_t *c)
{
    void (*closed)(void *);
    void *arg;

    if (!c->closing)
        return;
    if (list_len(&c->done) == 0 && !uv_is_closing((uv_handle_t *)&c->idle)) {
        uv_close((uv_handle_t *)&c->idle, client_idle_closed);
        return;
    }
    if (c->busy > 0)
        return;
    closed = c->closed;
    arg = c->closed_arg;
    client_free(c);
    if (closed != NULL)
        closed(arg);
}

void client_shutdown(void *impl, void (*closed)(void *arg), void *arg)
{
    static const char reason[] = "delivery interrupted: mxfwd is shutting down";
    client_t *c = impl;
    client_dest_t *d;
    client_job_t *j;
    client_conn_t *conn;
    list_node_t *node, *next;
    size_t pos = 0;
    const char *key;
    size_t keylen;
    void *value;

    if (c->closing)
        return;
    c->closing = true;
    c->closed = closed;
    c->closed_arg = arg;
    c->busy++; /* until everything below is started */

    /* Waiting jobs: never started. */
    while (htab_next(c->dests, &pos, &key, &keylen, &value)) {
        d = value;
        client_dest_unready(c, d);
        while ((j = LIST_ITEM(list_pop_front(&d->waiting), client_job_t, qnode)) != NULL) {
            c->waiting--;
            client__fail_pending(j, 4, "4.3.2", reason, false, "none");
            client_job_finish(j);
        }
    }
    /* Running jobs: their connections are dropped mid-way. */
    while ((j = LIST_ITEM(list_first(&c->running), client_job_t, rnode)) != NULL) {
        if (j->conn != NULL)
            client__conn_abort(j->conn);
        j->conn = NULL;
        j->final = true;
        client__fail_pending(j, 4, "4.3.2", reason, false, "none");
        client_job_finish(j);
    }
    /* Idle connections: QUIT, without waiting for the reply. */
    while ((conn = LIST_ITEM(list_first(&c->idle_conns), client_conn_t, inode)) != NULL) {
        client__cache_remove(conn);
        client__conn_quit(conn);
    }
    LIST_FOREACH (node, next, &c->conns) {
        conn = LIST_ITEM(node, client_conn_t, node);
        if (conn->state == CONN_QUIT && !conn->writing)
            client__conn_close(conn);
    }
    /* Destinations left hold no jobs now. */
    pos = 0;
    while (htab_next(c->dests, &pos, &key, &keylen, &value)) {
        d = value;
        free(d->key);
        free(d);
    }
    htab_free(c->dests, NULL);
    c->dests = htab_new(1);
    client__unbusy(c);
}
