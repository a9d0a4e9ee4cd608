#include "route.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "default.h"
#include "str.h"
#include "xalloc.h"

/* RFC 3463 status codes of the failures. */
#define ROUTE_DSN_DNS_TEMP "4.4.3"   /* directory server failure */
#define ROUTE_DSN_ROUTE_TEMP "4.4.4" /* unable to route: a route entry's host */
#define ROUTE_DSN_BAD_DOMAIN "5.1.2" /* bad destination system address */
#define ROUTE_DSN_NOT_FOUND "5.4.4"  /* unable to route */
#define ROUTE_DSN_LOOP "5.4.6"       /* routing loop detected */
#define ROUTE_DSN_NULL_MX "5.1.10"   /* RFC 7505 3 */

/* One AAAA or A lookup of one host. */
typedef struct {
    route_req_t *rq;
    size_t host;
    int fam; /* ROUTE_V6 or ROUTE_V4 */
    dns_req_t *dreq;
} route_slot_t;

struct route_req {
    dns_resolver_t *r;
    route_config_t cfg; /* with its own copy of the own addresses, no entries */
    char domain[DNS_NAME_MAX + 1];
    route_via_t via;
    uint16_t port;
    uint64_t rng;
    route_cb cb;
    void *arg;
    dns_req_t *mx;
    route_host_t *hosts;
    size_t nhosts;
    route_slot_t *slots; /* 2 per host */
    size_t pending;
};

/* ---- the pure decision ---- */

static void route_fail(route_result_t *out, route_status_t status, const char *dsn, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void route_fail(route_result_t *out, route_status_t status, const char *dsn, const char *fmt,
                       ...)
{
    va_list ap;

    free(out->hops);
    out->hops = NULL;
    out->nhops = 0;
    out->status = status;
    out->dsn = dsn;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

/* A failed lookup of name/type.  For a route entry's host even a
 * permanent DNS answer defers: the admin's typo should not bounce mail. */
static void route_dns_fail(route_result_t *out, route_via_t via, const char *domain,
                           const char *name, dns_type_t type, int err)
{
    bool perm = dns_is_permanent(err);
    const char *dsn = !perm                    ? ROUTE_DSN_DNS_TEMP
                      : via == ROUTE_VIA_ROUTE ? ROUTE_DSN_ROUTE_TEMP
                      : err == DNS_EBADNAME    ? ROUTE_DSN_BAD_DOMAIN
                                               : ROUTE_DSN_NOT_FOUND;

    route_fail(out, perm && via != ROUTE_VIA_ROUTE ? ROUTE_PERMFAIL : ROUTE_TEMPFAIL, dsn,
               "Host or domain name not found. Name service error for name=%s type=%s: %s%s%s%s",
               name, dns_type_name(type), dns_strerror(err),
               via == ROUTE_VIA_ROUTE ? " (route for " : "", via == ROUTE_VIA_ROUTE ? domain : "",
               via == ROUTE_VIA_ROUTE ? ")" : "");
}

const route_entry_t *route_find(const route_config_t *cfg, const char *domain)
{
    const route_entry_t *star = NULL;

    for (size_t i = 0; i < cfg->nentries; i++) {
        if (str_eq_ci(cfg->entries[i].domain, domain))
            return &cfg->entries[i];
        if (strcmp(cfg->entries[i].domain, "*") == 0)
            star = &cfg->entries[i];
    }
    return star;
}

static uint64_t route_next(uint64_t *state)
{
    /* splitmix64: small, fast, and good enough to spread load over MX
     * hosts of equal preference. */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int route_pref_cmp(const void *a, const void *b)
{
    const route_host_t *x = a, *y = b;

    return (x->pref > y->pref) - (x->pref < y->pref);
}

void route_order(route_host_t *hosts, size_t n, uint64_t *rng)
{
    qsort(hosts, n, sizeof(*hosts), route_pref_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && hosts[j].pref == hosts[i].pref)
            j++;
        /* Fisher-Yates over hosts[i..j). */
        for (size_t k = j - 1; k > i; k--) {
            size_t pick = i + (size_t)(route_next(rng) % (k - i + 1));
            route_host_t tmp = hosts[k];
            hosts[k] = hosts[pick];
            hosts[pick] = tmp;
        }
        i = j;
    }
}

void route_hosts_free(route_host_t *hosts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(hosts[i].name);
        free(hosts[i].addr[ROUTE_V6]);
        free(hosts[i].addr[ROUTE_V4]);
    }
    free(hosts);
}

int route_from_mx(const char *domain, int status, const dns_result_t *res, size_t max_hosts,
                  uint64_t *rng, route_host_t **hostsp, size_t *nhostsp, route_result_t *out)
{
    route_host_t *hosts;
    size_t n = 0, kept = 0;

    *hostsp = NULL;
    *nhostsp = 0;
    if (status == DNS_ENODATA) {
        hosts = xcalloc(1, sizeof(*hosts));
        hosts[0].name = xstrdup(domain);
        *hostsp = hosts;
        *nhostsp = 1;
        return ROUTE_VIA_IMPLICIT;
    }
    if (status < 0) {
        route_dns_fail(out, ROUTE_VIA_MX, domain, domain, DNS_T_MX, status);
        return -1;
    }
    hosts = xcalloc(res->n, sizeof(*hosts));
    for (size_t i = 0; i < res->n; i++) {
        /* The root as exchange is the null MX; next to real MX records
         * (which RFC 7505 forbids) it names no host to try. */
        if (res->u.mx[i].host[0] == '\0')
            continue;
        hosts[n].name = xstrdup(res->u.mx[i].host);
        hosts[n].pref = res->u.mx[i].pref;
        n++;
    }
    if (n == 0) {
        free(hosts);
        route_fail(out, ROUTE_PERMFAIL, ROUTE_DSN_NULL_MX,
                   "Domain %s does not accept mail (nullMX)", domain);
        return -1;
    }
    route_order(hosts, n, rng);
    /* A host listed twice is tried once, at its best preference. */
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < kept && !dup; j++)
            dup = strcmp(hosts[j].name, hosts[i].name) == 0;
        if (dup)
            free(hosts[i].name);
        else
            hosts[kept++] = hosts[i];
    }
    if (max_hosts == 0)
        max_hosts = DEFAULT_MX_HOST_LIMIT;
    while (kept > max_hosts)
        free(hosts[--kept].name);
    *hostsp = hosts;
    *nhostsp = kept;
    return ROUTE_VIA_MX;
}

static void route_sockaddr(const dns_addr_t *a, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_addr = a->in.v4;
        sin->sin_port = htons(port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = a->in.v6;
        sin6->sin6_port = htons(port);
    }
}

bool route_is_own(const route_config_t *cfg, const struct sockaddr *sa)
{
    for (size_t i = 0; i < cfg->nown; i++) {
        const struct sockaddr *own = (const struct sockaddr *)&cfg->own[i];
        if (own->sa_family != sa->sa_family)
            continue;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)own, *b = (const void *)sa;
            if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
                return true;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)own, *b = (const void *)sa;
            if (a->sin6_port == b->sin6_port &&
                memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0)
                return true;
        }
    }
    return false;
}

void route_plan(const route_config_t *cfg, const char *domain, route_via_t via, uint16_t port,
                const route_host_t *hosts, size_t nhosts, route_result_t *out)
{
    size_t max_addrs = cfg->max_addrs ? cfg->max_addrs : DEFAULT_MX_ADDRESS_LIMIT;
    long self = -1; /* our own preference, when we are one of the hosts */
    const route_host_t *why = NULL;
    int why_fam = ROUTE_V4;
    struct sockaddr_storage ss;

    memset(out, 0, sizeof(*out));
    out->dsn = "";
    for (size_t i = 0; i < nhosts; i++)
        for (int f = ROUTE_V6; f <= ROUTE_V4; f++)
            for (size_t k = 0; k < hosts[i].naddr[f]; k++) {
                route_sockaddr(&hosts[i].addr[f][k], port, &ss);
                if (route_is_own(cfg, (struct sockaddr *)&ss) && (self < 0 || hosts[i].pref < self))
                    self = hosts[i].pref;
            }

    out->hops = xcalloc(max_addrs, sizeof(*out->hops));
    for (size_t i = 0; i < nhosts; i++) {
        const route_host_t *h = &hosts[i];
        if (self >= 0 && h->pref >= self)
            continue;
        for (int f = ROUTE_V6; f <= ROUTE_V4; f++) {
            for (size_t k = 0; k < h->naddr[f] && out->nhops < max_addrs; k++) {
                route_hop_t *hop = &out->hops[out->nhops++];
                str_lcpy(hop->host, h->name, sizeof(hop->host));
                route_sockaddr(&h->addr[f][k], port, &hop->addr);
                hop->pref = h->pref;
            }
        }
    }
    if (out->nhops > 0)
        return;

    /* No hop.  Every host left failed both lookups; the first temporary
     * failure says best why (asking again may help), else the first
     * host's A lookup. */
    for (size_t i = 0; i < nhosts; i++) {
        const route_host_t *h = &hosts[i];
        if (self >= 0 && h->pref >= self)
            continue;
        if (why == NULL)
            why = h;
        for (int f = ROUTE_V6; f <= ROUTE_V4; f++) {
            if (h->status[f] < 0 && !dns_is_permanent(h->status[f]) &&
                (why->status[why_fam] == 0 || dns_is_permanent(why->status[why_fam]))) {
                why = h;
                why_fam = f;
            }
        }
    }
    if (why == NULL && self >= 0)
        route_fail(out, ROUTE_PERMFAIL, ROUTE_DSN_LOOP, "mail for %s loops back to myself", domain);
    else if (why == NULL || why->status[why_fam] == 0)
        route_fail(out, ROUTE_PERMFAIL, ROUTE_DSN_NOT_FOUND, "No next hop for %s", domain);
    else
        route_dns_fail(out, via, domain, why->name, why_fam == ROUTE_V6 ? DNS_T_AAAA : DNS_T_A,
                       why->status[why_fam]);
}

void route_result_free(route_result_t *res)
{
    if (res == NULL)
        return;
    free(res->hops);
    free(res);
}

void route_own_addresses(const struct sockaddr_storage *listen, size_t nlisten,
                         struct sockaddr_storage **out, size_t *nout)
{
    struct ifaddrs *ifs = NULL;
    size_t n = 0, cap = 0;
    struct sockaddr_storage *own = NULL;

    for (size_t i = 0; i < nlisten; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&listen[i];
        bool any4 =
            sa->sa_family == AF_INET &&
            ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
        bool any6 =
            sa->sa_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
        uint16_t port = sa->sa_family == AF_INET
                            ? ((const struct sockaddr_in *)(const void *)sa)->sin_port
                            : ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port;

        if (!any4 && !any6) {
            own = xgrow(own, &cap, n + 1, sizeof(*own));
            own[n++] = listen[i];
            continue;
        }
        if (ifs == NULL && getifaddrs(&ifs) < 0)
            continue;
        /* A wildcard socket accepts on every local address; an IPv6 one
         * (without IPV6_V6ONLY) on the IPv4 ones too. */
        for (struct ifaddrs *ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
            int fam = ifa->ifa_addr != NULL ? ifa->ifa_addr->sa_family : AF_UNSPEC;
            if (fam != AF_INET && fam != AF_INET6)
                continue;
            if (any4 && fam != AF_INET)
                continue;
            own = xgrow(own, &cap, n + 1, sizeof(*own));
            memset(&own[n], 0, sizeof(own[n]));
            if (fam == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&own[n];
                memcpy(sin, ifa->ifa_addr, sizeof(*sin));
                sin->sin_port = port;
            } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&own[n];
                memcpy(sin6, ifa->ifa_addr, sizeof(*sin6));
                sin6->sin6_port = port;
                sin6->sin6_scope_id = 0;
            }
            n++;
        }
    }
    if (ifs != NULL)
        freeifaddrs(ifs);
    *out = own;
    *nout = n;
}

/* ---- the driver ---- */

static void route_req_free(route_req_t *rq)
{
    dns_cancel(rq->mx);
    for (size_t i = 0; rq->slots != NULL && i < 2 * rq->nhosts; i++)
        dns_cancel(rq->slots[i].dreq);
    free(rq->slots);
    route_hosts_free(rq->hosts, rq->nhosts);
    free((void *)rq->cfg.own);
    free(rq);
}

/* Hand out the result and forget the request. */
static void route_done(route_req_t *rq, route_result_t *res)
{
    route_cb cb = rq->cb;
    void *arg = rq->arg;

    route_req_free(rq);
    cb(arg, res);
}

static void route_finish(route_req_t *rq)
{
    route_result_t *res = xcalloc(1, sizeof(*res));

    route_plan(&rq->cfg, rq->domain, rq->via, rq->port, rq->hosts, rq->nhosts, res);
    route_done(rq, res);
}

static void route_addr_cb(void *arg, int status, const dns_result_t *res)
{
    route_slot_t *slot = arg;
    route_req_t *rq = slot->rq;
    route_host_t *h = &rq->hosts[slot->host];

    slot->dreq = NULL;
    h->status[slot->fam] = status;
    if (status == 0) {
        h->addr[slot->fam] = xmemdup(res->u.addr, res->n * sizeof(*res->u.addr));
        h->naddr[slot->fam] = res->n;
    }
    if (--rq->pending == 0)
        route_finish(rq);
}

/* Start the AAAA and A lookups of every host; how many are pending.  A
 * lookup refused at once keeps its error as the host's status. */
static size_t route_resolve(route_req_t *rq)
{
    static const dns_type_t types[2] = {[ROUTE_V6] = DNS_T_AAAA, [ROUTE_V4] = DNS_T_A};

    rq->slots = xcalloc(2 * rq->nhosts, sizeof(*rq->slots));
    rq->pending = 2 * rq->nhosts;
    for (size_t i = 0; i < rq->nhosts; i++) {
        for (int f = ROUTE_V6; f <= ROUTE_V4; f++) {
            route_slot_t *slot = &rq->slots[2 * i + (size_t)f];
            int rc;
            slot->rq = rq;
            slot->host = i;
            slot->fam = f;
            rc = dns_lookup(rq->r, types[f], rq->hosts[i].name, route_addr_cb, slot, &slot->dreq);
            if (rc < 0) {
                rq->hosts[i].status[f] = rc;
                rq->pending--;
            }
        }
    }
    return rq->pending;
}

static void route_mx_cb(void *arg, int status, const dns_result_t *res)
{
    route_req_t *rq = arg;
    route_result_t *out = xcalloc(1, sizeof(*out));
    int via;

    rq->mx = NULL;
    via = route_from_mx(rq->domain, status, res, rq->cfg.max_hosts, &rq->rng, &rq->hosts,
                        &rq->nhosts, out);
    if (via < 0) {
        route_done(rq, out);
        return;
    }
    free(out);
    rq->via = (route_via_t)via;
    if (route_resolve(rq) == 0)
        route_finish(rq);
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" into the bare address. */
static int route_literal(const char *domain, char *out, size_t size)
{
    size_t len = strlen(domain);
    const char *p = domain + 1;
    unsigned char bin[16];

    if (len < 3 || domain[len - 1] != ']')
        return DNS_EBADNAME;
    len -= 2;
    if (str_prefix_ci(p, "IPv6:")) {
        p += 5;
        len -= 5;
    }
    if (len >= size)
        return DNS_EBADNAME;
    memcpy(out, p, len);
    out[len] = '\0';
    if (inet_pton(AF_INET, out, bin) != 1 && inet_pton(AF_INET6, out, bin) != 1)
        return DNS_EBADNAME;
    return 0;
}

/*
 * A lookup's seed for its shuffles.  Ordering, not secrecy: one
 * getrandom(2) per process (the clock if it fails), then a SplitMix64
 * sequence, so that a delivery costs no system call for it.
 */
static uint64_t route_seed(const route_config_t *cfg)
{
    static _Atomic uint64_t route_seed_state;
    const uint64_t gamma = 0x9e3779b97f4a7c15u;
    uint64_t z = atomic_load(&route_seed_state), seed = 0;

    if (cfg->rand != NULL)
        return cfg->rand(cfg->rand_arg);
    if (z == 0) {
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
            seed = uv_hrtime();
        /* Whoever comes first seeds it; the others take its sequence. */
        atomic_compare_exchange_strong(&route_seed_state, &z, seed | 1);
    }
    z = atomic_fetch_add(&route_seed_state, gamma) + gamma;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

int route_lookup(dns_resolver_t *r, const route_config_t *cfg, const char *domain, route_cb cb,
                 void *arg, route_req_t **reqp)
{
    const route_entry_t *entry;
    route_req_t *rq;
    char host[DNS_NAME_MAX + 1];
    int rc = 0;

    if (reqp != NULL)
        *reqp = NULL;
    if (cb == NULL)
        return DNS_EINVAL;
    if (strlen(domain) > DNS_NAME_MAX)
        return DNS_EBADNAME;
    rq = xcalloc(1, sizeof(*rq));
    rq->r = r;
    rq->cb = cb;
    rq->arg = arg;
    rq->cfg = *cfg;
    rq->cfg.entries = NULL;
    rq->cfg.nentries = 0;
    rq->cfg.own = cfg->nown > 0 ? xmemdup(cfg->own, cfg->nown * sizeof(*cfg->own)) : NULL;
    rq->cfg.rand = NULL;
    rq->rng = route_seed(cfg);
    rq->port = cfg->port ? cfg->port : DEFAULT_OUTBOUND_PORT;
    str_lcpy(rq->domain, domain, sizeof(rq->domain));

    entry = route_find(cfg, domain);
    if (entry != NULL || domain[0] == '[') {
        if (entry != NULL) {
            rq->via = ROUTE_VIA_ROUTE;
            if (entry->port != 0)
                rq->port = entry->port;
            if (str_lcpy(host, entry->host, sizeof(host)) < 0)
                rc = DNS_EBADNAME;
        } else {
            rq->via = ROUTE_VIA_LITERAL;
            rc = route_literal(domain, host, sizeof(host));
        }
        if (rc < 0)
            goto fail;
        rq->hosts = xcalloc(1, sizeof(*rq->hosts));
        rq->hosts[0].name = xstrdup(host);
        rq->nhosts = 1;
        if (route_resolve(rq) == 0) {
            /* Refused at once, both: say why now, without a callback. */
            rc = rq->hosts[0].status[ROUTE_V4];
            goto fail;
        }
    } else if ((rc = dns_lookup(r, DNS_T_MX, domain, route_mx_cb, rq, &rq->mx)) < 0) {
        goto fail;
    }
    if (reqp != NULL)
        *reqp = rq;
    return 0;

fail:
    route_req_free(rq);
    return rc;
}

void route_cancel(route_req_t *req)
{
    if (req != NULL)
        route_req_free(req);
}
