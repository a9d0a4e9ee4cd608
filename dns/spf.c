#include "spf.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libspf2 (no pkg-config; its headers want these first) */
#include <arpa/nameser.h>
#include <netdb.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "addr.h"
#include "buf.h"
#include "str.h"
#include "xalloc.h"

/* RFC 7208 4.6.4 */
#define SPF_MAX_TERMS 10
#define SPF_MAX_VOIDS 2
/* Secondary lookups of one mx or ptr term (the MX hosts, the PTR names). */
#define SPF_MAX_EXPECT 10

typedef struct spf_worker spf_worker_t;

struct spf_pool {
    spf_options_t opt;
    char *servers_csv; /* NULL: /etc/resolv.conf */
    char *hostname;
    pthread_mutex_t lock;
    spf_worker_t *idle;
};

/* One evaluation's resolver: a blocking c-ares channel and the libspf2
 * server whose DNS layer uses it.  Never used by two threads at once. */
struct spf_worker {
    spf_worker_t *next;
    spf_pool_t *pool;
    ares_channel ch;
    SPF_dns_server_t *dns;
    SPF_server_t *server;
    /* State of the evaluation in progress. */
    struct timespec deadline;
    bool top;        /* the next query is the checked domain's own record */
    bool limit_hit;  /* a term beyond SPF_MAX_TERMS was refused */
    bool void_hit;   /* a void lookup beyond SPF_MAX_VOIDS */
    bool late;       /* the deadline passed */
    unsigned terms, voids;
    /* Names the current mx or ptr term will resolve next, in order. */
    char expect[SPF_MAX_EXPECT][256];
    size_t nexpect, iexpect;
};

/* Keep libspf2 quiet: lower layers do not log.  Its error handler stays,
 * since it only fires on broken invariants, where aborting is right. */
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void quiet(void)
{
    SPF_warning_handler = NULL;
    SPF_info_handler = NULL;
    SPF_debug_handler = NULL;
}

const char *spf_status_name(spf_status_t s)
{
    switch (s) {
    case SPF_NONE:
        return "none";
    case SPF_NEUTRAL:
        return "neutral";
    case SPF_PASS:
        return "pass";
    case SPF_FAIL:
        return "fail";
    case SPF_SOFTFAIL:
        return "softfail";
    case SPF_TEMPERROR:
        return "temperror";
    case SPF_PERMERROR:
        return "permerror";
    }
    return "permerror";
}

const char *spf_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SPF_EINVAL:
        return "invalid DNS server list";
    case SPF_ENOMEM:
        return "out of memory";
    case SPF_EDNS:
        return "cannot set up the DNS resolver";
    }
    return "unknown error";
}

/* ---- time ---- */

static void deadline_in(struct timespec *t, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

/* Milliseconds until t, 0 when past. */
static int ms_left(const struct timespec *t)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

/* ---- blocking c-ares ---- */

typedef struct {
    bool done;
    int status;
    unsigned char *abuf;
    int alen;
} query_t;

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    query_t *q = arg;

    (void)timeouts;
    q->done = true;
    q->status = status;
    if (abuf != NULL && alen > 0) {
        q->abuf = xmemdup(abuf, (size_t)alen);
        q->alen = alen;
    }
}

/* Run one query to completion on the worker's channel, polling its sockets
 * (poll, not select: descriptors may exceed FD_SETSIZE in a busy daemon). */
static void query_run(spf_worker_t *w, const char *name, int type, query_t *q)
{
    memset(q, 0, sizeof(*q));
    ares_query(w->ch, name, ns_c_in, type, query_cb, q);
    while (!q->done) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        struct timeval tv, *tvp;
        unsigned bits = (unsigned)ares_getsock(w->ch, socks, ARES_GETSOCK_MAXNUM);
        int n = 0, left = ms_left(&w->deadline), wait, ready;

        if (left == 0) {
            w->late = true;
            ares_cancel(w->ch); /* calls query_cb with ARES_ECANCELLED */
            break;
        }
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;

            /* c-ares' own ARES_GETSOCK_WRITABLE shifts a signed 1 by up to
             * 31 places; unsigned arithmetic says the same thing safely. */
            if ((bits >> i) & 1u)
                ev |= POLLIN;
            if ((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u)
                ev |= POLLOUT;
            if (ev) {
                pfd[n].fd = socks[i];
                pfd[n].events = ev;
                pfd[n].revents = 0;
                n++;
            }
        }
        tvp = ares_timeout(w->ch, NULL, &tv);
        wait = tvp ? (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000) : left;
        if (wait > left)
            wait = left;
        ready = poll(pfd, (nfds_t)n, wait);
        if (ready <= 0) {
            ares_process_fd(w->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
            continue;
        }
        for (int i = 0; i < n; i++) {
            ares_socket_t r = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;

            if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
                r = pfd[i].fd;
            if (pfd[i].revents & POLLOUT)
                wr = pfd[i].fd;
            if (r != ARES_SOCKET_BAD || wr != ARES_SOCKET_BAD)
                ares_process_fd(w->ch, r, wr);
        }
    }
}

/* ---- answers into libspf2's form ---- */

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Copy a domain name at p into rr slot cnt.  0, or -1. */
static int add_name(SPF_dns_rr_t *rr, int cnt, const unsigned char *p, const unsigned char *abuf,
                    int alen)
{
    char *name = NULL;
    long enclen;
    int rc = -1;

    if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
        return -1;
    if (strlen(name) < 256 && SPF_dns_rr_buf_realloc(rr, cnt, strlen(name) + 1) == SPF_E_SUCCESS) {
        memcpy(rr->rr[cnt]->ptr, name, strlen(name) + 1); /* ptr and mx share the union */
        rc = 0;
    }
    ares_free_string(name);
    return rc;
}

/* Walk the answer section and keep the records of the type asked for
 * (CNAMEs on the way are skipped, as libresolv users do).  Returns the
 * count kept, or -1 on a malformed reply. */
static int parse_answer(SPF_dns_rr_t *rr, int type, const unsigned char *abuf, int alen)
{
    const unsigned char *p = abuf, *end = abuf + alen;
    unsigned qd, an;
    int cnt = 0;

    if (alen < 12)
        return -1;
    qd = get16(abuf + 4);
    an = get16(abuf + 6);
    p += 12;
    for (unsigned i = 0; i < qd + an; i++) {
        char *name = NULL;
        long enclen;
        unsigned rtype, rclass, rdlen;

        if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
            return -1;
        ares_free_string(name);
        p += enclen;
        if (i < qd) {
            if (end - p < 4)
                return -1;
            p += 4;
            continue;
        }
        if (end - p < 10)
            return -1;
        rtype = get16(p);
        rclass = get16(p + 2);
        rdlen = get16(p + 8);
        p += 10;
        if ((unsigned)(end - p) < rdlen)
            return -1;
        if ((int)rtype == type && rclass == ns_c_in) {
            switch (type) {
            case ns_t_a:
            case ns_t_aaaa: {
                size_t sz = type == ns_t_a ? sizeof(struct in_addr) : sizeof(struct in6_addr);

                if (rdlen != sz || SPF_dns_rr_buf_realloc(rr, cnt, sz) != SPF_E_SUCCESS)
                    return -1;
                memcpy(type == ns_t_a ? (void *)&rr->rr[cnt]->a : (void *)&rr->rr[cnt]->aaaa, p,
                       sz);
                cnt++;
                break;
            }
            case ns_t_mx:
                if (rdlen < 3 || add_name(rr, cnt, p + 2, abuf, alen) < 0)
                    return -1;
                cnt++;
                break;
            case ns_t_ptr:
                if (add_name(rr, cnt, p, abuf, alen) < 0)
                    return -1;
                cnt++;
                break;
            case ns_t_txt: {
                /* The character strings of one record, joined (RFC 7208 3.3). */
                const unsigned char *s = p, *e = p + rdlen;
                char *dst;

                if (SPF_dns_rr_buf_realloc(rr, cnt, rdlen + 1) != SPF_E_SUCCESS)
                    return -1;
                dst = rr->rr[cnt]->txt;
                while (s < e) {
                    unsigned n = *s++;

                    if ((unsigned)(e - s) < n)
                        return -1;
                    memcpy(dst, s, n);
                    dst += n;
                    s += n;
                }
                *dst = '\0';
                cnt++;
                break;
            }
            }
        }
        p += rdlen;
    }
    return cnt;
}

static SPF_dns_rr_t *answer(SPF_dns_server_t *s, const char *domain, ns_type type, int herrno)
{
    return SPF_dns_rr_new_init(s, domain, type, 0, herrno);
}

static SPF_dns_rr_t *resolve(spf_worker_t *w, SPF_dns_server_t *s, const char *domain,
                             ns_type type)
{
    SPF_dns_rr_t *rr;
    query_t q;
    int n;

    query_run(w, domain, type, &q);
    switch (q.status) {
    case ARES_SUCCESS:
        break;
    case ARES_ENODATA:
        free(q.abuf);
        return answer(s, domain, type, NO_DATA);
    case ARES_ENOTFOUND:
    case ARES_EBADNAME: /* an expanded macro that is no domain name */
        free(q.abuf);
        return answer(s, domain, type, HOST_NOT_FOUND);
    default: /* SERVFAIL, REFUSED, timeouts, cancelled, malformed */
        free(q.abuf);
        return answer(s, domain, type, TRY_AGAIN);
    }
    rr = answer(s, domain, type, NETDB_SUCCESS);
    n = q.abuf ? parse_answer(rr, type, q.abuf, q.alen) : -1;
    free(q.abuf);
    if (n < 0) {
        SPF_dns_rr_free(rr);
        return answer(s, domain, type, TRY_AGAIN);
    }
    rr->num_rr = n;
    if (n == 0)
        rr->herrno = NO_DATA;
    return rr;
}

/*
 * libspf2's lookup hook.  Besides resolving, it counts what RFC 7208 4.6.4
 * limits, since libspf2 does not count across include: each DNS-querying
 * term makes exactly one "primary" query (TXT for include and redirect, MX,
 * PTR, A/AAAA for a and exists); the A/AAAA queries an mx or ptr term makes
 * for the names it got come next, in order, and are not terms.  A term
 * beyond the limit is answered without asking DNS: TXT with "no data" (an
 * include or redirect then fails as permerror; an exp= lookup, which the
 * RFC does not count, merely loses its text), anything else with "try
 * again", which spf_check() turns into the permerror it really is.
 */
static SPF_dns_rr_t *hook_lookup(SPF_dns_server_t *s, const char *domain, ns_type type,
                                 int should_cache)
{
    spf_worker_t *w = s->hook;
    bool term = true, secondary = false;
    SPF_dns_rr_t *rr;

    (void)should_cache;
    if (type == ns_t_spf) /* RFC 7208 3.1: type 99 is not used */
        return answer(s, domain, type, NO_DATA);
    if (w->top) {
        w->top = false;
        term = false;
    } else if ((type == ns_t_a || type == ns_t_aaaa) && w->iexpect < w->nexpect &&
               str_eq_ci(w->expect[w->iexpect], domain)) {
        w->iexpect++;
        term = false;
        secondary = true;
    }
    if (!secondary)
        w->nexpect = w->iexpect = 0;
    if (term && ++w->terms > SPF_MAX_TERMS) {
        w->limit_hit = true;
        return answer(s, domain, type, type == ns_t_txt ? NO_DATA : TRY_AGAIN);
    }
    if (ms_left(&w->deadline) == 0) {
        w->late = true;
        return answer(s, domain, type, TRY_AGAIN);
    }
    rr = resolve(w, s, domain, type);
    if (term && type != ns_t_txt &&
        (rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA) && ++w->voids > SPF_MAX_VOIDS) {
        w->void_hit = true;
        SPF_dns_rr_free(rr);
        return answer(s, domain, type, TRY_AGAIN);
    }
    if ((type == ns_t_mx || type == ns_t_ptr) && rr->herrno == NETDB_SUCCESS) {
        for (int i = 0; i < rr->num_rr && w->nexpect < SPF_MAX_EXPECT; i++)
            if (str_lcpy(w->expect[w->nexpect], rr->rr[i]->mx, sizeof(w->expect[0])) == 0)
                w->nexpect++;
    }
    return rr;
}

static void hook_destroy(SPF_dns_server_t *s)
{
    free(s);
}

/* ---- the pool ---- */

static void worker_free(spf_worker_t *w)
{
    bool owned = false;

    if (w == NULL)
        return;
    if (w->server) {
        /* SPF_server_new_dns() leaves a custom layer to its creator unless
         * the server says it owns it. */
        owned = w->server->destroy_resolver;
        SPF_server_free(w->server);
    }
    if (!owned)
        free(w->dns);
    if (w->ch)
        ares_destroy(w->ch);
    free(w);
}

static int worker_new(spf_pool_t *pool, spf_worker_t **out)
{
    spf_worker_t *w = xcalloc(1, sizeof(*w));
    struct ares_options o;
    int rc = SPF_EDNS;

    memset(&o, 0, sizeof(o));
    /* STAYOPEN: a worker runs one evaluation after another, and without it
     * c-ares would open, bind, connect and close a UDP socket for every
     * message's first query. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS | ARES_FLAG_STAYOPEN;
    o.timeout = (int)pool->opt.query_timeout_ms;
    o.tries = (int)pool->opt.tries;
    o.ednspsz = 1232;
    if (ares_init_options(&w->ch, &o,
                          ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                              ARES_OPT_EDNSPSZ) != ARES_SUCCESS) {
        w->ch = NULL;
        goto fail;
    }
    if (pool->servers_csv && ares_set_servers_ports_csv(w->ch, pool->servers_csv) != ARES_SUCCESS) {
        rc = SPF_EINVAL;
        goto fail;
    }
    w->dns = xcalloc(1, sizeof(*w->dns));
    w->dns->destroy = hook_destroy;
    w->dns->lookup = hook_lookup;
    w->dns->name = "mxfwd-c-ares";
    w->dns->hook = w;
    rc = SPF_ENOMEM;
    w->server = SPF_server_new_dns(w->dns, 0);
    if (w->server == NULL)
        goto fail;
    if (SPF_server_set_rec_dom(w->server, pool->hostname) != SPF_E_SUCCESS)
        goto fail;
    w->pool = pool;
    *out = w;
    return 0;
fail:
    worker_free(w);
    return rc;
}

static int worker_get(spf_pool_t *pool, spf_worker_t **out)
{
    pthread_mutex_lock(&pool->lock);
    *out = pool->idle;
    if (*out)
        pool->idle = (*out)->next;
    pthread_mutex_unlock(&pool->lock);
    return *out ? 0 : worker_new(pool, out);
}

static void worker_put(spf_worker_t *w)
{
    spf_pool_t *pool = w->pool;

    pthread_mutex_lock(&pool->lock);
    w->next = pool->idle;
    pool->idle = w;
    pthread_mutex_unlock(&pool->lock);
}

int spf_pool_new(const spf_options_t *opt, spf_pool_t **out)
{
    spf_pool_t *pool;
    spf_worker_t *w = NULL;
    int rc;

    pthread_once(&quiet_once, quiet);
    pool = xcalloc(1, sizeof(*pool));
    pool->opt = *opt;
    pool->hostname = xstrdup(opt->hostname && *opt->hostname ? opt->hostname : "localhost");
    if (opt->ndns_servers > 0) {
        buf_t csv;

        buf_init(&csv, 65536);
        for (size_t i = 0; i < opt->ndns_servers; i++)
            if (buf_printf(&csv, "%s%s", i ? "," : "", opt->dns_servers[i]) < 0) {
                buf_free(&csv);
                free(pool->hostname);
                free(pool);
                return SPF_EINVAL;
            }
        if (buf_used(&csv) > 0) /* an empty buffer has no data pointer */
            pool->servers_csv = xstrndup(buf_ptr(&csv), buf_used(&csv));
        buf_free(&csv);
    }
    pthread_mutex_init(&pool->lock, NULL);
    pool->opt.dns_servers = NULL;
    pool->opt.hostname = pool->hostname;
    /* One worker now: a bad server list shows at start-up, not per mail. */
    if ((rc = worker_new(pool, &w)) < 0) {
        spf_pool_free(pool);
        return rc;
    }
    worker_put(w);
    *out = pool;
    return 0;
}

void spf_pool_free(spf_pool_t *pool)
{
    if (pool == NULL)
        return;
    while (pool->idle) {
        spf_worker_t *w = pool->idle;

        pool->idle = w->next;
        worker_free(w);
    }
    pthread_mutex_destroy(&pool->lock);
    free(pool->servers_csv);
    free(pool->hostname);
    free(pool);
}

/* ---- check_host() ---- */

/* Printable ASCII only: the text goes into SMTP replies and headers. */
static void sanitize_into(char *dst, size_t size, const char *src)
{
    size_t n = 0;

    for (; src && *src && n + 1 < size; src++)
        dst[n++] = (*src >= 32 && *src < 127) ? *src : '?';
    if (size)
        dst[n] = '\0';
}

/* A domain check_host() can start from (RFC 7208 4.3): a multi-label DNS
 * name, lowercased into dst. */
static bool usable_domain(const char *d, char *dst, size_t size)
{
    return addr_dns_name(d, strlen(d), dst, size) >= 0 && strchr(dst, '.') != NULL;
}

static int set_client(SPF_request_t *req, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return SPF_request_set_ipv4(req, ((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a)) { /* a v4 client on a dual-stack socket */
            struct in_addr v4;

            memcpy(&v4, a->s6_addr + 12, 4);
            return SPF_request_set_ipv4(req, v4);
        }
        return SPF_request_set_ipv6(req, *a);
    }
    return -1;
}

static spf_status_t map_result(SPF_result_t r)
{
    switch (r) {
    case SPF_RESULT_PASS:
        return SPF_PASS;
    case SPF_RESULT_FAIL:
        return SPF_FAIL;
    case SPF_RESULT_SOFTFAIL:
        return SPF_SOFTFAIL;
    case SPF_RESULT_NEUTRAL:
        return SPF_NEUTRAL;
    case SPF_RESULT_NONE:
        return SPF_NONE;
    case SPF_RESULT_TEMPERROR:
        return SPF_TEMPERROR;
    case SPF_RESULT_PERMERROR:
    case SPF_RESULT_INVALID:
        break;
    }
    return SPF_PERMERROR;
}

/* The first error libspf2 recorded, for a permerror's "why". */
static void first_error(SPF_response_t *resp, char *dst, size_t size)
{
    for (int i = 0; i < SPF_response_messages(resp); i++) {
        SPF_error_t *e = SPF_response_message(resp, i);

        if (SPF_error_errorp(e)) {
            sanitize_into(dst, size, SPF_error_message(e));
            return;
        }
    }
    sanitize_into(dst, size, SPF_strerror(SPF_response_errcode(resp)));
}

/* The v=spf1 record among the TXT answers (RFC 7208 4.5).  Returns its
 * index, -1 when there is none, -2 when there are several. */
static int pick_record(const SPF_dns_rr_t *rr)
{
    int found = -1;

    for (int i = 0; i < rr->num_rr; i++) {
        const char *t = rr->rr[i]->txt;

        if (str_ncasecmp(t, "v=spf1", 6) != 0 || (t[6] != '\0' && t[6] != ' '))
            continue;
        if (found >= 0)
            return -2;
        found = i;
    }
    return found;
}

/* libspf2 1.2.10 mangles explanation strings (spaces come out as '%', and
 * %{c} is not expanded), so the explanation is ours, from facts only. */
static void explain(const struct sockaddr *client, spf_result_t *out)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (client->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)client)->sin_addr, ip, sizeof(ip));
    else if (client->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)client)->sin6_addr, ip, sizeof(ip));
    str_fmt(out->explanation, sizeof(out->explanation), "%s does not authorize %s to send its mail",
            out->domain, ip);
}

static void evaluate(spf_worker_t *w, SPF_request_t *req, spf_result_t *out)
{
    SPF_dns_rr_t *rr;
    SPF_response_t *resp = NULL;
    SPF_record_t *rec = NULL;
    int idx;

    rr = SPF_dns_lookup(w->dns, out->domain, ns_t_txt, 0);
    if (rr->herrno == TRY_AGAIN) {
        out->status = SPF_TEMPERROR;
        str_lcpy(out->problem, w->late ? "SPF evaluation timed out" : "DNS lookup failed",
                 sizeof(out->problem));
        goto done;
    }
    idx = rr->herrno == NETDB_SUCCESS ? pick_record(rr) : -1;
    if (idx == -1) {
        out->status = SPF_NONE;
        str_lcpy(out->problem, "no SPF record", sizeof(out->problem));
        goto done;
    }
    if (idx == -2) {
        out->status = SPF_PERMERROR;
        str_lcpy(out->problem, "several SPF records", sizeof(out->problem));
        goto done;
    }
    resp = SPF_response_new(req);
    if (resp == NULL || SPF_record_compile(w->server, resp, &rec, rr->rr[idx]->txt) != SPF_E_SUCCESS) {
        out->status = SPF_PERMERROR;
        if (resp)
            first_error(resp, out->problem, sizeof(out->problem));
        goto done;
    }
    /* What SPF_request_query_mailfrom() does, without its pass for
     * loopback clients. */
    req->cur_dom = req->env_from_dp;
    resp->spf_record_exp = rec;
    SPF_record_interpret(rec, req, resp, 0);
    out->status = map_result(SPF_response_result(resp));
    if (w->late) {
        out->status = SPF_TEMPERROR;
        str_lcpy(out->problem, "SPF evaluation timed out", sizeof(out->problem));
    } else if (w->limit_hit && (out->status == SPF_TEMPERROR || out->status == SPF_PERMERROR)) {
        out->status = SPF_PERMERROR;
        str_lcpy(out->problem, "more than 10 DNS-querying terms", sizeof(out->problem));
    } else if (w->void_hit && out->status == SPF_TEMPERROR) {
        out->status = SPF_PERMERROR;
        str_lcpy(out->problem, "more than 2 void lookups", sizeof(out->problem));
    } else if (out->status == SPF_PERMERROR) {
        first_error(resp, out->problem, sizeof(out->problem));
    } else if (out->status == SPF_TEMPERROR) {
        str_lcpy(out->problem, "DNS lookup failed", sizeof(out->problem));
    }
done:
    out->lookups = w->terms > SPF_MAX_TERMS ? SPF_MAX_TERMS + 1 : w->terms;
    out->void_lookups = w->voids;
    if (rec)
        SPF_record_free(rec);
    if (resp)
        SPF_response_free(resp);
    SPF_dns_rr_free(rr);
}

int spf_check(spf_pool_t *pool, const struct sockaddr *client, const char *helo,
              const char *sender, spf_result_t *out)
{
    spf_worker_t *w = NULL;
    SPF_request_t *req = NULL;
    const char *at = sender ? strrchr(sender, '@') : NULL;
    char from[600], raw[256];
    int rc;

    memset(out, 0, sizeof(*out));
    out->helo = sender == NULL || *sender == '\0';
    str_lcpy(raw, out->helo ? (helo ? helo : "") : (at ? at + 1 : sender), sizeof(raw));
    if (!usable_domain(raw, out->domain, sizeof(out->domain))) {
        str_lcpy(out->domain, raw, sizeof(out->domain)); /* as given, for the header */
        out->status = SPF_NONE;
        str_lcpy(out->problem, out->helo ? "HELO name is not a domain" : "sender domain is invalid",
                 sizeof(out->problem));
        return 0;
    }
    if ((rc = worker_get(pool, &w)) < 0)
        return rc;
    deadline_in(&w->deadline, pool->opt.total_timeout_ms);
    w->top = true;
    w->limit_hit = w->void_hit = w->late = false;
    w->terms = w->voids = 0;
    w->nexpect = w->iexpect = 0;

    req = SPF_request_new(w->server);
    if (req == NULL || set_client(req, client) != SPF_E_SUCCESS) {
        out->status = SPF_PERMERROR;
        str_lcpy(out->problem, "unusable client address", sizeof(out->problem));
        goto done;
    }
    /* For <> the identity is postmaster@HELO (RFC 7208 2.4); %{s} and %{l}
     * expand from it. */
    if (out->helo)
        str_fmt(from, sizeof(from), "postmaster@%s", out->domain);
    else
        str_lcpy(from, sender, sizeof(from));
    if ((helo && *helo && SPF_request_set_helo_dom(req, helo) != SPF_E_SUCCESS) ||
        SPF_request_set_env_from(req, from) != 0) {
        out->status = SPF_PERMERROR;
        str_lcpy(out->problem, "unusable sender", sizeof(out->problem));
        goto done;
    }
    evaluate(w, req, out);
    if (out->status == SPF_FAIL || out->status == SPF_SOFTFAIL)
        explain(client, out);
done:
    if (req)
        SPF_request_free(req);
    worker_put(w);
    return 0;
}
