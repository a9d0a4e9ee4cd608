/*
 * smtpd.c - the server around the sessions: listeners, admission, the
 * counters, the snapshots, and the shutdown with its grace period.
 */
#include "smtpd_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "xalloc.h"

/* Connections the kernel may queue before we accept them. */
#define SMTPD_BACKLOG 1024

/* The replies the session counts as refusals (smtpd__count_rejected()). */
static const reply_id_t smtpd_reasons[] = {
    REPLY_UNKNOWN_USER,   REPLY_RELAY_DENIED,    REPLY_BAD_RCPT,      REPLY_SRS_NOT_BOUNCE,
    REPLY_SRS_BAD_HASH,   REPLY_SRS_EXPIRED,     REPLY_SRS_MALFORMED, REPLY_SRS_TEMP,
    REPLY_TOO_MANY_RCPTS, REPLY_SENDER_TOO_LONG, REPLY_SENDER_NO_SRS, REPLY_SENDER_SRS_TEMP,
    REPLY_SIZE_DECLARED,  REPLY_TOO_BIG,         REPLY_HOPS,          REPLY_BARE_EOL,
    REPLY_AUTH_SPF,       REPLY_AUTH_DMARC,      REPLY_AUTH_NO_FROM,  REPLY_AUTH_DNS,
    REPLY_AUTH_FAILED,    REPLY_TABLE_REJECT,
};

static void smtpd_count_rejected_init(smtpd_t *d, reply_id_t id);

static void smtpd_register(smtpd_t *d)
{
    stats_t *s = d->opts.stats;

    d->stats.connections =
        stats_register(s, STATS_COUNTER, "connections", NULL, NULL, "SMTP connections accepted");
    d->stats.refused_connections =
        stats_register(s, STATS_COUNTER, "connections_refused", NULL, NULL,
                       "SMTP connections refused for the connection limits or shutdown");
    d->stats.accepted = stats_register(s, STATS_COUNTER, "accepted", NULL, NULL,
                                       "messages accepted (250 after DATA)");
    d->stats.discarded = stats_register(s, STATS_COUNTER, "discarded", NULL, NULL,
                                        "messages accepted and dropped: every recipient's forward "
                                        "table entry says DISCARD");
    /* Every reason the session refuses for is there from the start, at
     * 0: a dashboard's rate of one is 0, not absent. */
    stats_family(s, STATS_COUNTER, "rejected", "reason",
                 "MAIL, RCPT and messages refused, by reply");
    for (size_t i = 0; i < sizeof(smtpd_reasons) / sizeof(smtpd_reasons[0]); i++)
        smtpd_count_rejected_init(d, smtpd_reasons[i]);
    d->stats.tls = stats_register(s, STATS_COUNTER, "tls", NULL, NULL,
                                  "inbound SMTP sessions that completed STARTTLS");
}

/* The lists of the options, copied: the server's own. */
static void smtpd_copy_lists(smtpd_options_t *o)
{
    smtpd_milter_t *m = xcalloc(o->nmilters + 1, sizeof(*m));
    dnsbl_list_t *lists[2] = {xcalloc(o->ndnsbl + 1, sizeof(dnsbl_list_t)),
                              xcalloc(o->ndnswl + 1, sizeof(dnsbl_list_t))};
    const dnsbl_list_t *from[2] = {o->dnsbl, o->dnswl};
    size_t n[2] = {o->ndnsbl, o->ndnswl};

    for (size_t i = 0; i < o->nmilters; i++) {
        m[i] = o->milters[i];
        m[i].name = xstrdup(o->milters[i].name);
    }
    o->milters = m;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n[k]; i++) {
            lists[k][i].zone = xstrdup(from[k][i].zone);
            lists[k][i].pattern = from[k][i].pattern ? xstrdup(from[k][i].pattern) : NULL;
        }
    }
    o->dnsbl = lists[0];
    o->dnswl = lists[1];
    cidr_t *exempt = xcalloc(o->nrate_limit_exempt + 1, sizeof(*exempt));
    if (o->nrate_limit_exempt > 0)
        memcpy(exempt, o->rate_limit_exempt, o->nrate_limit_exempt * sizeof(*exempt));
    o->rate_limit_exempt = exempt;
}

static void smtpd_free_lists(smtpd_options_t *o)
{
    const dnsbl_list_t *lists[2] = {o->dnsbl, o->dnswl};
    size_t n[2] = {o->ndnsbl, o->ndnswl};

    for (size_t i = 0; i < o->nmilters; i++)
        free((char *)o->milters[i].name);
    free((smtpd_milter_t *)o->milters);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n[k]; i++) {
            free((char *)lists[k][i].zone);
            free((char *)lists[k][i].pattern);
        }
        free((dnsbl_list_t *)lists[k]);
    }
    free((cidr_t *)o->rate_limit_exempt);
}

smtpd_t *smtpd_new(uv_loop_t *loop, const smtpd_options_t *opts, const smtpd_hooks_t *hooks)
{
    smtpd_t *d = xcalloc(1, sizeof(*d));

    d->loop = loop;
    d->opts = *opts;
    d->opts.hostname = xstrdup(opts->hostname);
    d->opts.srs_domain = xstrdup(opts->srs_domain);
    d->opts.postmaster = opts->postmaster != NULL ? xstrdup(opts->postmaster) : NULL;
    smtpd_copy_lists(&d->opts);
    if (opts->connection_rate_limit > 0 || opts->message_rate_limit > 0 ||
        opts->recipient_rate_limit > 0)
        d->anvil = anvil_new(60 * 1000);
    d->hooks = *hooks;
    d->per_ip = htab_new(64);
    uv_timer_init(loop, &d->grace);
    d->grace.data = d;
    d->handles = 1;
    smtpd_register(d);
    return d;
}

/* ---- snapshots ---------------------------------------------------------------- */

void smtpd_set_spool(smtpd_t *d, spool_t *spool)
{
    d->spool = spool;
}

void smtpd_set_store(smtpd_t *d, srs_store_t *store)
{
    d->opts.store = store;
}

void smtpd_set_table(smtpd_t *d, table_t *table)
{
    table_unref(d->table);
    d->table = table;
}

void smtpd_set_srs(smtpd_t *d, srs_t *srs)
{
    /* Sessions call the rewriter synchronously and keep no pointer to it. */
    srs_free(d->srs);
    d->srs = srs;
}

void smtpd_set_tls(smtpd_t *d, SSL_CTX *ctx)
{
    /* Connections hold their own reference to the context they came from. */
    SSL_CTX_free(d->tls_ctx);
    d->tls_ctx = ctx;
}

void smtpd_set_signer(smtpd_t *d, sign_ctx_t *ctx)
{
    /* Messages being signed hold their own reference. */
    sign_ctx_unref(d->signer);
    d->signer = ctx;
}

const table_t *smtpd_table(const smtpd_t *d)
{
    return d->table;
}

void smtpd_rcpt_ctx(const smtpd_t *d, rcpt_ctx_t *ctx)
{
    *ctx = (rcpt_ctx_t){
        .table = d->table,
        .srs = d->srs,
        .hostname = d->opts.hostname,
        .srs_domain = d->opts.srs_domain,
        .postmaster = d->opts.postmaster,
        .now = smtpd__now(d),
    };
}

bool smtpd_has_tls(const smtpd_t *d)
{
    return d->tls_ctx != NULL;
}

unsigned smtpd_sessions(const smtpd_t *d)
{
    return (unsigned)list_len(&d->sessions);
}

time_t smtpd__now(const smtpd_t *d)
{
    return d->hooks.now != NULL ? d->hooks.now(d->hooks.arg) : time(NULL);
}

uint64_t smtpd__clock_ms(const smtpd_t *d)
{
    return d->hooks.clock_ms != NULL ? d->hooks.clock_ms(d->hooks.arg) : uv_now(d->loop);
}

/* ---- connection accounting ----------------------------------------------------- */

reply_id_t smtpd__admit(smtpd_t *d, const char *ip)
{
    size_t len = strlen(ip);
    uintptr_t n = (uintptr_t)htab_get(d->per_ip, ip, len);

    if (d->stopping)
        return REPLY_SHUTDOWN;
    /* At a limit, a session whose client has already closed (its end not
     * read yet: the new connection came first in this turn of the loop)
     * is not held against the client. */
    if (n >= d->opts.max_connections_per_ip && session_release_closed(d, ip) > 0)
        n = (uintptr_t)htab_get(d->per_ip, ip, len);
    if (d->nadmitted >= d->opts.max_connections)
        session_release_closed(d, NULL);
    if (d->nadmitted >= d->opts.max_connections || n >= d->opts.max_connections_per_ip)
        return REPLY_TOO_MANY_CONNECTIONS;
    htab_put(d->per_ip, ip, len, (void *)(n + 1));
    d->nadmitted++;
    return REPLY_OK;
}

/* The counter of a reason, registered the first time. */
static void smtpd_count_rejected_init(smtpd_t *d, reply_id_t id)
{
    if (d->stats.rejected[id] == NULL)
        d->stats.rejected[id] =
            stats_register(d->opts.stats, STATS_COUNTER, "rejected", "reason", reply_name(id),
                           "MAIL, RCPT and messages refused, by reply");
}

void smtpd__count_rejected(smtpd_t *d, reply_id_t id)
{
    if (id >= REPLY_NREPLIES)
        return;
    smtpd_count_rejected_init(d, id);
    (*d->stats.rejected[id])++;
}

static void smtpd_maybe_drained(smtpd_t *d)
{
    if (!d->stopping || list_len(&d->sessions) > 0 || d->drained)
        return;
    d->drained = true;
    if (d->hooks.drained != NULL)
        d->hooks.drained(d->hooks.arg);
}

void smtpd__release(smtpd_t *d, const char *ip)
{
    size_t len = strlen(ip);
    uintptr_t n = (uintptr_t)htab_get(d->per_ip, ip, len);

    if (n <= 1)
        htab_remove(d->per_ip, ip, len);
    else
        htab_put(d->per_ip, ip, len, (void *)(n - 1));
    d->nadmitted--;
}

void smtpd__session_closed(smtpd_t *d)
{
    smtpd_maybe_drained(d);
}

/* ---- listening ------------------------------------------------------------------ */

static void smtpd_on_connection(uv_stream_t *listener, int status)
{
    smtpd_t *d = listener->data;

    if (status < 0) {
        /* Out of descriptors, typically: say so, but not a thousand times
         * a second. */
        if (uv_now(d->loop) - d->last_accept_warning >= 1000) {
            log_warning("cannot accept a connection: %s", uv_strerror(status));
            d->last_accept_warning = uv_now(d->loop);
        }
        return;
    }
    session_accept(d, listener);
}

int smtpd_listen(smtpd_t *d, const struct sockaddr *sa)
{
    uv_tcp_t *l = xcalloc(1, sizeof(*l)); /* freed in its close callback */
    int r;

    d->listeners = xrealloc(d->listeners, (d->nlisteners + 1) * sizeof(*d->listeners));
    d->listeners[d->nlisteners++] = l;
    uv_tcp_init(d->loop, l);
    l->data = d;
    d->handles++;
    r = uv_tcp_bind(l, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    /* Replies go out at once (no Nagle delay behind a pipelined batch's
     * earlier reply); an accepted socket inherits the option from its
     * listener, which saves a setsockopt(2) per session. */
    if (r == 0)
        r = uv_tcp_nodelay(l, 1);
    if (r == 0)
        r = uv_listen((uv_stream_t *)l, SMTPD_BACKLOG, smtpd_on_connection);
    return r;
}

void smtpd_open(smtpd_t *d, uv_os_sock_t fd, const struct sockaddr *peer)
{
    session_open(d, fd, peer);
}

/* ---- stopping ------------------------------------------------------------------- */

static void smtpd_close_cb(uv_handle_t *h)
{
    smtpd_t *d = h->data;

    if (h != (uv_handle_t *)&d->grace) {
        /* A listener: its slot forgets it, so that smtpd_close() after
         * smtpd_stop() does not close it a second time. */
        for (size_t i = 0; i < d->nlisteners; i++)
            if (d->listeners[i] == (uv_tcp_t *)h)
                d->listeners[i] = NULL;
        free(h);
    }
    if (--d->handles > 0)
        return;
    htab_free(d->per_ip, NULL);
    table_unref(d->table);
    srs_free(d->srs);
    SSL_CTX_free(d->tls_ctx);
    sign_ctx_unref(d->signer);
    free(d->listeners);
    anvil_free(d->anvil);
    smtpd_free_lists(&d->opts);
    free((char *)d->opts.hostname);
    free((char *)d->opts.srs_domain);
    free((char *)d->opts.postmaster);
    free(d);
}

static void smtpd_close_handle(uv_handle_t *h)
{
    if (h != NULL && !uv_is_closing(h))
        uv_close(h, smtpd_close_cb);
}

static void smtpd_each_session(smtpd_t *d, void (*fn)(session_t *s))
{
    list_node_t *node, *next;

    LIST_FOREACH (node, next, &d->sessions)
        fn(session_of(node));
}

void smtpd_force(smtpd_t *d)
{
    if (d->forcing)
        return;
    d->forcing = true;
    if (list_len(&d->sessions) > 0)
        log_info("shutdown grace over: closing %zu sessions", list_len(&d->sessions));
    smtpd_each_session(d, session_force_stop);
}

static void smtpd_grace_cb(uv_timer_t *t)
{
    smtpd_force(t->data);
}

void smtpd_stop(smtpd_t *d)
{
    if (d->stopping) {
        /* A second signal: no more waiting. */
        smtpd_force(d);
        return;
    }
    d->stopping = true;
    for (size_t i = 0; i < d->nlisteners; i++)
        smtpd_close_handle((uv_handle_t *)d->listeners[i]);
    smtpd_each_session(d, session_stop);
    uv_timer_start(&d->grace, smtpd_grace_cb, d->opts.shutdown_grace * 1000, 0);
    smtpd_maybe_drained(d);
}

void smtpd_close(smtpd_t *d)
{
    if (d->closing)
        return;
    d->closing = true;
    for (size_t i = 0; i < d->nlisteners; i++)
        smtpd_close_handle((uv_handle_t *)d->listeners[i]);
    smtpd_close_handle((uv_handle_t *)&d->grace);
}
