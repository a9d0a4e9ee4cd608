#include "spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libspf2 (no pkg-config; its headers want these first) */
#include <arpa/nameser.h>
#include <netdb.h>
#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "addr.h"
#include "str.h"
#include "xalloc.h"

/* RFC 7208 4.6.4 */
#define SPF_MAX_TERMS 10
#define SPF_MAX_VOIDS 2
/* Secondary lookups of one mx or ptr term (the MX hosts, the PTR names). */
#define SPF_MAX_EXPECT 10
/* Runs of one evaluation.  Each run but the last learns one answer, and
 * the limits above bound the questions (the terms, each mx or ptr term's
 * names, the record itself, an explanation); this only guards against a
 * libspf2 that asked something new every time. */
#define SPF_MAX_RUNS 160

struct spf_ctx {
    dns_resolver_t *resolver;
    unsigned total_timeout_ms;
    char *hostname;
    /* One libspf2 server for every check: runs never overlap (they are
     * synchronous, on the loop thread), and the DNS layer's hook reads
     * the check being run from `running`. */
    SPF_dns_server_t *dns;
    SPF_server_t *server;
    spf_req_t *running;
};

/* An answer learnt, as libspf2 takes it (rr->herrno says how it went). */
typedef struct {
    SPF_dns_rr_t *rr;
} spf_answer_t;

struct spf_req {
    spf_ctx_t *ctx;
    struct sockaddr_storage client;
    char *helo;
    char *sender;
    spf_done_fn done;
    void *arg;
    struct timespec deadline;
    spf_answer_t *answers;
    size_t nanswers, cap;
    dns_req_t *lookup; /* the question out, or NULL */
    unsigned runs;
    spf_result_t result;
    char domain[sizeof(((spf_result_t *)0)->domain)]; /* checked, normalised */

    /* State of the run in progress. */
    bool top;       /* the next query is the checked domain's own record */
    bool limit_hit; /* a term beyond SPF_MAX_TERMS was refused */
    bool void_hit;  /* a void lookup beyond SPF_MAX_VOIDS */
    bool late;      /* the deadline passed */
    unsigned terms, voids;
    /* Names the current mx or ptr term will resolve next, in order. */
    char expect[SPF_MAX_EXPECT][256];
    size_t nexpect, iexpect;
    /* The first question the run could not answer. */
    bool missed;
    char miss_name[256];
    ns_type miss_type;
};

/* Keep libspf2 quiet: lower layers do not log.  Its error handler stays,
 * since it only fires on broken invariants, where aborting is right. */
static void spf_quiet(void)
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
        return "no DNS resolver";
    case SPF_ENOMEM:
        return "out of memory";
    }
    return "unknown error";
}

/* ---- time ---- */

static void spf_deadline_in(struct timespec *t, unsigned ms)
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
static int spf_ms_left(const struct timespec *t)
{
    struct timespec now;
    long long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

/* ---- answers ---- */

static SPF_dns_rr_t *spf_answer(SPF_dns_server_t *s, const char *domain, ns_type type, int herrno)
{
    return SPF_dns_rr_new_init(s, domain, type, 0, herrno);
}

/* What the resolver said, in libspf2's form.  NULL when out of memory. */
static SPF_dns_rr_t *spf_from_result(SPF_dns_server_t *s, const char *domain, ns_type type,
                                     int status, const dns_result_t *res)
{
    SPF_dns_rr_t *rr;
    int n = 0;

    if (status == DNS_ENXDOMAIN || status == DNS_EBADNAME)
        return spf_answer(s, domain, type, HOST_NOT_FOUND);
    if (status == DNS_ENODATA)
        return spf_answer(s, domain, type, NO_DATA);
    if (status < 0) /* SERVFAIL, REFUSED, timeouts, malformed, closing */
        return spf_answer(s, domain, type, TRY_AGAIN);
    rr = spf_answer(s, domain, type, NETDB_SUCCESS);
    for (size_t i = 0; rr != NULL && i < res->n && i < 1024; i++) {
        const char *text = NULL;
        size_t len = 0;

        switch (type) {
        case ns_t_a:
        case ns_t_aaaa:
            len = type == ns_t_a ? sizeof(struct in_addr) : sizeof(struct in6_addr);
            if (res->u.addr[i].family != (type == ns_t_a ? AF_INET : AF_INET6))
                continue;
            break;
        case ns_t_mx:
            text = res->u.mx[i].host;
            break;
        case ns_t_ptr:
            text = res->u.ptr[i];
            break;
        case ns_t_txt:
            text = res->u.txt[i].text;
            break;
        default:
            continue;
        }
        if (text != NULL)
            len = strlen(text) + 1;
        if (SPF_dns_rr_buf_realloc(rr, n, len) != SPF_E_SUCCESS) {
            SPF_dns_rr_free(rr);
            return NULL;
        }
        if (text != NULL) /* mx, ptr and txt share the union */
            memcpy(rr->rr[n]->txt, text, len);
        else
            memcpy(type == ns_t_a ? (void *)&rr->rr[n]->a : (void *)&rr->rr[n]->aaaa,
                   &res->u.addr[i].in, len);
        n++;
    }
    if (rr != NULL) {
        rr->num_rr = n;
        if (n == 0)
            rr->herrno = NO_DATA;
    }
    return rr;
}

/* A copy of what the check learnt about (domain, type), or NULL. */
static SPF_dns_rr_t *spf_known(spf_req_t *q, const char *domain, ns_type type)
{
    for (size_t i = 0; i < q->nanswers; i++) {
        SPF_dns_rr_t *rr = q->answers[i].rr, *copy = NULL;

        if (rr->rr_type != type || !str_eq_ci(rr->domain, domain))
            continue;
        if (SPF_dns_rr_dup(&copy, rr) != SPF_E_SUCCESS) {
            SPF_dns_rr_free(copy);
            return spf_answer(q->ctx->dns, domain, type, TRY_AGAIN);
        }
        return copy;
    }
    return NULL;
}

static void spf_learn(spf_req_t *q, SPF_dns_rr_t *rr)
{
    if (q->nanswers == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 8;
        q->answers = xrealloc(q->answers, q->cap * sizeof(*q->answers));
    }
    q->answers[q->nanswers++].rr = rr;
}

/*
 * libspf2's lookup hook.  It answers from what the check has learnt; the
 * first question it cannot answer is noted (the run then ends and is
 * thrown away).  Besides answering, it counts what RFC 7208 4.6.4
 * limits, since libspf2 does not count across include: each DNS-querying
 * term makes exactly one "primary" query (TXT for include and redirect, MX,
 * PTR, A/AAAA for a and exists); the A/AAAA queries an mx or ptr term makes
 * for the names it got come next, in order, and are not terms.  A term
 * beyond the limit is answered without asking DNS: TXT with "no data" (an
 * include or redirect then fails as permerror; an exp= lookup, which the
 * RFC does not count, merely loses its text), anything else with "try
 * again", which spf_evaluate() turns into the permerror it really is.
 */
static SPF_dns_rr_t *spf_hook_lookup(SPF_dns_server_t *s, const char *domain, ns_type type,
                                     int should_cache)
{
    spf_req_t *w = ((spf_ctx_t *)s->hook)->running;
    bool term = true, secondary = false;
    struct in6_addr literal;
    SPF_dns_rr_t *rr;

    (void)should_cache;
    if (type == ns_t_spf) /* RFC 7208 3.1: type 99 is not used */
        return spf_answer(s, domain, type, NO_DATA);
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
        return spf_answer(s, domain, type, type == ns_t_txt ? NO_DATA : TRY_AGAIN);
    }
    if (spf_ms_left(&w->deadline) == 0) {
        w->late = true;
        return spf_answer(s, domain, type, TRY_AGAIN);
    }
    /* An address is no domain name, nor is a name longer than DNS
     * carries (a macro can expand to one): DNS has no such name, and the
     * resolver, which answers an address literal with itself, is not
     * asked. */
    if (inet_pton(AF_INET, domain, &literal) == 1 || inet_pton(AF_INET6, domain, &literal) == 1 ||
        strlen(domain) > DNS_NAME_MAX + 1)
        rr = spf_answer(s, domain, type, HOST_NOT_FOUND);
    else
        rr = spf_known(w, domain, type);
    if (rr == NULL) {
        if (!w->missed) {
            w->missed = true;
            str_lcpy(w->miss_name, domain, sizeof(w->miss_name));
            w->miss_type = type;
        }
        return spf_answer(s, domain, type, TRY_AGAIN);
    }
    if (term && type != ns_t_txt && (rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA) &&
        ++w->voids > SPF_MAX_VOIDS) {
        w->void_hit = true;
        SPF_dns_rr_free(rr);
        return spf_answer(s, domain, type, TRY_AGAIN);
    }
    if ((type == ns_t_mx || type == ns_t_ptr) && rr->herrno == NETDB_SUCCESS) {
        for (int i = 0; i < rr->num_rr && w->nexpect < SPF_MAX_EXPECT; i++)
            if (str_lcpy(w->expect[w->nexpect], rr->rr[i]->mx, sizeof(w->expect[0])) == 0)
                w->nexpect++;
    }
    return rr;
}

static void spf_hook_destroy(SPF_dns_server_t *s)
{
    free(s);
}

/* ---- the context ---- */

int spf_ctx_new(const spf_options_t *opt, spf_ctx_t **out)
{
    static bool quieted;
    spf_ctx_t *ctx;

    *out = NULL;
    if (opt->resolver == NULL)
        return SPF_EINVAL;
    if (!quieted) { /* the loop thread only */
        spf_quiet();
        quieted = true;
    }
    ctx = xcalloc(1, sizeof(*ctx));
    ctx->resolver = opt->resolver;
    ctx->total_timeout_ms = opt->total_timeout_ms;
    ctx->hostname = xstrdup(opt->hostname && *opt->hostname ? opt->hostname : "localhost");
    ctx->dns = xcalloc(1, sizeof(*ctx->dns));
    ctx->dns->destroy = spf_hook_destroy;
    ctx->dns->lookup = spf_hook_lookup;
    ctx->dns->name = "mxfwd-loop";
    ctx->dns->hook = ctx;
    ctx->server = SPF_server_new_dns(ctx->dns, 0);
    if (ctx->server == NULL ||
        SPF_server_set_rec_dom(ctx->server, ctx->hostname) != SPF_E_SUCCESS) {
        spf_ctx_free(ctx);
        return SPF_ENOMEM;
    }
    *out = ctx;
    return 0;
}

void spf_ctx_free(spf_ctx_t *ctx)
{
    bool owned = false;

    if (ctx == NULL)
        return;
    if (ctx->server) {
        /* SPF_server_new_dns() leaves a custom layer to its creator unless
         * the server says it owns it. */
        owned = ctx->server->destroy_resolver;
        SPF_server_free(ctx->server);
    }
    if (!owned)
        free(ctx->dns);
    free(ctx->hostname);
    free(ctx);
}

/* ---- check_host() ---- */

/* Printable ASCII only: the text goes into SMTP replies and headers. */
static void spf_sanitize_into(char *dst, size_t size, const char *src)
{
    size_t n = 0;

    for (; src && *src && n + 1 < size; src++)
        dst[n++] = (*src >= 32 && *src < 127) ? *src : '?';
    if (size)
        dst[n] = '\0';
}

/* A domain check_host() can start from (RFC 7208 4.3): a multi-label DNS
 * name, lowercased into dst. */
static bool spf_usable_domain(const char *d, char *dst, size_t size)
{
    return addr_dns_name(d, strlen(d), dst, size) >= 0 && strchr(dst, '.') != NULL;
}

static int spf_set_client(SPF_request_t *req, const struct sockaddr *sa)
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

static spf_status_t spf_map_result(SPF_result_t r)
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
static void spf_first_error(SPF_response_t *resp, char *dst, size_t size)
{
    for (int i = 0; i < SPF_response_messages(resp); i++) {
        SPF_error_t *e = SPF_response_message(resp, i);

        if (SPF_error_errorp(e)) {
            spf_sanitize_into(dst, size, SPF_error_message(e));
            return;
        }
    }
    spf_sanitize_into(dst, size, SPF_strerror(SPF_response_errcode(resp)));
}

bool spf_is_record(const char *txt, size_t len)
{
    return len >= 6 && str_ncasecmp(txt, "v=spf1", 6) == 0 && (len == 6 || txt[6] == ' ');
}

/* The v=spf1 record among the TXT answers (RFC 7208 4.5).  Returns its
 * index, -1 when there is none, -2 when there are several. */
static int spf_pick_record(const SPF_dns_rr_t *rr)
{
    int found = -1;

    for (int i = 0; i < rr->num_rr; i++) {
        const char *t = rr->rr[i]->txt;

        if (!spf_is_record(t, strlen(t)))
            continue;
        if (found >= 0)
            return -2;
        found = i;
    }
    return found;
}

/* libspf2 1.2.10 mangles explanation strings (spaces come out as '%', and
 * %{c} is not expanded), so the explanation is ours, from facts only. */
static void spf_explain(const struct sockaddr *client, spf_result_t *out)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (client->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)client)->sin_addr, ip, sizeof(ip));
    else if (client->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)client)->sin6_addr, ip, sizeof(ip));
    str_fmt(out->explanation, sizeof(out->explanation), "%s does not authorize %s to send its mail",
            out->domain, ip);
}

static void spf_evaluate(spf_req_t *w, SPF_request_t *req, spf_result_t *out)
{
    SPF_dns_rr_t *rr;
    SPF_response_t *resp = NULL;
    SPF_record_t *rec = NULL;
    int idx;

    rr = SPF_dns_lookup(w->ctx->dns, out->domain, ns_t_txt, 0);
    if (rr->herrno == TRY_AGAIN) {
        out->status = SPF_TEMPERROR;
        str_lcpy(out->problem, w->late ? "SPF evaluation timed out" : "DNS lookup failed",
                 sizeof(out->problem));
        goto done;
    }
    idx = rr->herrno == NETDB_SUCCESS ? spf_pick_record(rr) : -1;
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
    if (resp == NULL ||
        SPF_record_compile(w->ctx->server, resp, &rec, rr->rr[idx]->txt) != SPF_E_SUCCESS) {
        out->status = SPF_PERMERROR;
        if (resp)
            spf_first_error(resp, out->problem, sizeof(out->problem));
        goto done;
    }
    /* What SPF_request_query_mailfrom() does, without its pass for
     * loopback clients. */
    req->cur_dom = req->env_from_dp;
    resp->spf_record_exp = rec;
    SPF_record_interpret(rec, req, resp, 0);
    out->status = spf_map_result(SPF_response_result(resp));
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
        spf_first_error(resp, out->problem, sizeof(out->problem));
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

/* ---- a check ---- */

static void spf_req_free(spf_req_t *q)
{
    for (size_t i = 0; i < q->nanswers; i++)
        SPF_dns_rr_free(q->answers[i].rr);
    free(q->answers);
    free(q->helo);
    free(q->sender);
    free(q);
}

/* One run of check_host() with what is known; q->missed says whether it
 * stopped at a question not answered yet. */
static void spf_run_once(spf_req_t *q)
{
    spf_result_t *out = &q->result;
    const char *sender = q->sender, *helo = q->helo;
    const struct sockaddr *client = (const struct sockaddr *)&q->client;
    SPF_request_t *req = NULL;
    char from[600];

    /* A fresh result, for the domain and identity spf_check_start() chose. */
    *out = (spf_result_t){.helo = out->helo};
    str_lcpy(out->domain, q->domain, sizeof(out->domain));
    q->top = true;
    q->limit_hit = q->void_hit = q->late = q->missed = false;
    q->terms = q->voids = 0;
    q->nexpect = q->iexpect = 0;
    q->runs++;

    req = SPF_request_new(q->ctx->server);
    if (req == NULL || spf_set_client(req, client) != SPF_E_SUCCESS) {
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
    if ((*helo && SPF_request_set_helo_dom(req, helo) != SPF_E_SUCCESS) ||
        SPF_request_set_env_from(req, from) != 0) {
        out->status = SPF_PERMERROR;
        str_lcpy(out->problem, "unusable sender", sizeof(out->problem));
        goto done;
    }
    q->ctx->running = q;
    spf_evaluate(q, req, out);
    q->ctx->running = NULL;
    if (out->status == SPF_FAIL || out->status == SPF_SOFTFAIL)
        spf_explain(client, out);
done:
    if (req)
        SPF_request_free(req);
}

static dns_type_t spf_dns_type_of(ns_type type)
{
    switch (type) {
    case ns_t_a:
        return DNS_T_A;
    case ns_t_aaaa:
        return DNS_T_AAAA;
    case ns_t_mx:
        return DNS_T_MX;
    case ns_t_ptr:
        return DNS_T_PTR;
    default:
        return DNS_T_TXT;
    }
}

static void spf_on_answer(void *arg, int status, const dns_result_t *res);

/* Learn the resolver's answer (or refusal) to the question out. */
static void spf_learn_answer(spf_req_t *q, int status, const dns_result_t *res)
{
    SPF_dns_rr_t *rr = spf_from_result(q->ctx->dns, q->miss_name, q->miss_type, status, res);

    spf_learn(q, rr != NULL ? rr : spf_answer(q->ctx->dns, q->miss_name, q->miss_type, TRY_AGAIN));
}

/*
 * Run until an evaluation needs nothing more (true: q->result is final)
 * or a question has gone to the resolver (false).  A question the
 * resolver refuses at once is answered on the spot, as DNS would.
 */
static bool spf_advance(spf_req_t *q)
{
    for (;;) {
        int rc;

        spf_run_once(q);
        if (!q->missed)
            return true;
        if (q->runs >= SPF_MAX_RUNS) {
            q->result.status = SPF_TEMPERROR;
            str_lcpy(q->result.problem, "SPF evaluation asked too much", sizeof(q->result.problem));
            return true;
        }
        rc = dns_lookup(q->ctx->resolver, spf_dns_type_of(q->miss_type), q->miss_name,
                        spf_on_answer, q, &q->lookup);
        if (rc == 0)
            return false;
        spf_learn_answer(q, rc, NULL);
    }
}

static void spf_on_answer(void *arg, int status, const dns_result_t *res)
{
    spf_req_t *q = arg;

    q->lookup = NULL;
    spf_learn_answer(q, status, res);
    if (!spf_advance(q))
        return;
    q->done(q->arg, &q->result);
    spf_req_free(q);
}

int spf_check_start(spf_ctx_t *ctx, const struct sockaddr *client, const char *helo,
                    const char *sender, spf_done_fn done, void *arg, spf_result_t *now,
                    spf_req_t **out)
{
    spf_req_t *q;
    const char *at;
    char raw[256];

    *out = NULL;
    helo = helo ? helo : "";
    sender = sender ? sender : "";
    at = strrchr(sender, '@');
    memset(now, 0, sizeof(*now));
    now->helo = *sender == '\0';
    str_lcpy(raw, now->helo ? helo : (at ? at + 1 : sender), sizeof(raw));
    if (!spf_usable_domain(raw, now->domain, sizeof(now->domain))) {
        str_lcpy(now->domain, raw, sizeof(now->domain)); /* as given, for the header */
        now->status = SPF_NONE;
        str_lcpy(now->problem, now->helo ? "HELO name is not a domain" : "sender domain is invalid",
                 sizeof(now->problem));
        return SPF_DONE;
    }
    q = xcalloc(1, sizeof(*q));
    q->ctx = ctx;
    if (client->sa_family == AF_INET6)
        memcpy(&q->client, client, sizeof(struct sockaddr_in6));
    else if (client->sa_family == AF_INET)
        memcpy(&q->client, client, sizeof(struct sockaddr_in));
    else
        q->client.ss_family = client->sa_family;
    q->helo = xstrdup(helo);
    q->sender = xstrdup(sender);
    q->result.helo = now->helo;
    str_lcpy(q->domain, now->domain, sizeof(q->domain));
    q->done = done;
    q->arg = arg;
    spf_deadline_in(&q->deadline, ctx->total_timeout_ms);
    if (spf_advance(q)) {
        /* Decided without DNS after all (every question answered on the
         * spot): no callback from inside this call. */
        *now = q->result;
        spf_req_free(q);
        return SPF_DONE;
    }
    *out = q;
    return 0;
}

void spf_check_cancel(spf_req_t *q)
{
    if (q == NULL)
        return;
    dns_cancel(q->lookup);
    spf_req_free(q);
}
