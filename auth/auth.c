#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "default.h"
#include "dkim.h"
#include "str.h"
#include "xalloc.h"

struct auth_ctx {
    auth_config_t cfg;
    char *hostname;
    spf_ctx_t *spf; /* NULL when no check needs SPF */
    unsigned refs;
};

typedef struct {
    char domain[DMARC_DOMAIN_MAX];
    int step; /* 0: _dmarc.DOMAIN, 1: _dmarc.ORG, 2: done */
    dmarc_lookup_t lookup;
    dmarc_record_t rec;
    bool at_org;
    const char *why;
} from_t;

typedef enum { LOOKUP_KEY, LOOKUP_ARC_KEY, LOOKUP_DMARC } lookup_kind_t;

typedef struct {
    auth_msg_t *m;
    lookup_kind_t kind;
    size_t index;
} lookup_t;

struct auth_msg {
    auth_ctx_t *ctx;
    struct sockaddr_storage client;
    char *helo;
    char *sender;
    dkim_t *dkim;
    arc_t *arc; /* the incoming chain, validated beside DKIM */
    authres_t result;

    unsigned pending; /* the SPF check and TXT lookups still out */
    bool released;    /* cancelled or freed by the caller */
    bool dying;       /* being freed: nothing more to do */
    bool ended;       /* auth_msg_end() was called */
    bool completed;   /* done() was called (or is no longer due) */
    bool timer_on;    /* the timer handle is initialised */
    uv_timer_t timer;
    auth_done_fn done;
    void *done_arg;

    bool spf_started, spf_finished;
    spf_req_t *spf_req; /* the check under way */
    spf_result_t spf;

    size_t nfrom_fields;
    bool from_bad;  /* a From field held no usable address */
    bool from_many; /* more From domains than are evaluated */
    from_t from[DMARC_FROM_MAX];
    size_t nfrom;
};

const char *auth_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case AUTH_EINVAL:
        return "invalid argument";
    case AUTH_ESPF:
        return "cannot set up SPF";
    }
    return "unknown error";
}

/* ---- context ---- */

static bool auth_wants_spf(const auth_config_t *c)
{
    /* DMARC needs SPF's result even when SPF itself never acts. */
    return c->spf_action != AUTH_ACTION_OFF || c->dmarc_action != AUTH_ACTION_OFF;
}

int auth_ctx_new(const auth_config_t *cfg, auth_ctx_t **out)
{
    auth_ctx_t *ctx;

    if (cfg->loop == NULL || cfg->txt.ops == NULL || cfg->txt.ops->lookup == NULL)
        return AUTH_EINVAL;
    ctx = xcalloc(1, sizeof(*ctx));
    ctx->cfg = *cfg;
    ctx->hostname = xstrdup(cfg->hostname && *cfg->hostname ? cfg->hostname : "localhost");
    ctx->cfg.hostname = ctx->hostname;
    if (!ctx->cfg.header_max)
        ctx->cfg.header_max = DEFAULT_AUTH_HEADER_MAX;
    if (!ctx->cfg.max_signatures || ctx->cfg.max_signatures > AUTHRES_DKIM_MAX)
        ctx->cfg.max_signatures = DEFAULT_DKIM_MAX_SIGNATURES;
    if (!ctx->cfg.spf_timeout_ms)
        ctx->cfg.spf_timeout_ms = DEFAULT_SPF_TIMEOUT * 1000;
    if (!ctx->cfg.check_timeout_ms)
        ctx->cfg.check_timeout_ms = DEFAULT_AUTH_TIMEOUT * 1000;
    if (auth_wants_spf(cfg)) {
        spf_options_t o = {.resolver = cfg->resolver,
                           .total_timeout_ms = ctx->cfg.spf_timeout_ms,
                           .hostname = ctx->hostname};

        if (spf_ctx_new(&o, &ctx->spf) < 0) {
            free(ctx->hostname);
            free(ctx);
            return AUTH_ESPF;
        }
    }
    ctx->refs = 1;
    *out = ctx;
    return 0;
}

static void auth_ctx_unref(auth_ctx_t *ctx)
{
    if (--ctx->refs > 0)
        return;
    spf_ctx_free(ctx->spf);
    free(ctx->hostname);
    free(ctx);
}

void auth_ctx_release(auth_ctx_t *ctx)
{
    if (ctx)
        auth_ctx_unref(ctx);
}

/* ---- lifetime of a message ---- */

static void auth_msg_destroy(auth_msg_t *m)
{
    auth_ctx_t *ctx = m->ctx;

    dkim_free(m->dkim);
    arc_free(m->arc);
    free(m->helo);
    free(m->sender);
    free(m);
    auth_ctx_unref(ctx);
}

static void auth_on_timer_closed(uv_handle_t *h)
{
    auth_msg_destroy(h->data);
}

/* Free m once the caller let go of it and nothing of it is in flight. */
static void auth_maybe_destroy(auth_msg_t *m)
{
    if (!m->released || m->pending > 0 || m->dying)
        return;
    /* done() may free m from inside a callback that touches m afterwards;
     * with the timer open, m lives on until its close callback. */
    m->dying = true;
    if (m->timer_on) {
        m->timer_on = false;
        uv_close((uv_handle_t *)&m->timer, auth_on_timer_closed);
    } else {
        auth_msg_destroy(m);
    }
}

/* ---- the verdict ---- */

static dmarc_id_status_t auth_spf_id(spf_status_t s)
{
    return s == SPF_PASS ? DMARC_ID_PASS : s == SPF_TEMPERROR ? DMARC_ID_TEMPERROR : DMARC_ID_FAIL;
}

static dmarc_id_status_t auth_dkim_id(dkim_status_t s)
{
    return s == DKIM_PASS        ? DMARC_ID_PASS
           : s == DKIM_TEMPERROR ? DMARC_ID_TEMPERROR
                                 : DMARC_ID_FAIL;
}

/* DMARC's pct draw: the test hook's, or arc4random (a system call with
 * this glibc, which is why dmarc_evaluate() asks only when pct needs it). */
static unsigned auth_dmarc_sample(void *arg)
{
    const auth_config_t *cfg = &((const auth_ctx_t *)arg)->cfg;

    return cfg->sample != NULL ? cfg->sample(cfg->hook_arg) % 100 : arc4random_uniform(100);
}

static void auth_finish_dmarc(auth_msg_t *m)
{
    authres_t *r = &m->result;
    dmarc_id_t dkim[AUTHRES_DKIM_MAX];

    r->dmarc_done = true;
    if (m->nfrom == 0 || m->from_many) {
        r->from_missing = m->from_many      ? AUTHRES_FROM_TOO_MANY
                          : m->nfrom_fields ? AUTHRES_FROM_UNUSABLE
                                            : AUTHRES_FROM_ABSENT;
        r->ndmarc = 1;
        memset(&r->dmarc[0], 0, sizeof(r->dmarc[0]));
        r->dmarc[0].status = DMARC_PERMERROR;
        r->dmarc[0].reason = m->from_many      ? "too many From domains"
                             : m->nfrom_fields ? "no usable address in From"
                                               : "no From header field";
        return;
    }
    for (size_t i = 0; i < r->ndkim; i++) {
        dkim[i].status = auth_dkim_id(r->dkim[i].status);
        dkim[i].domain = r->dkim[i].domain[0] ? r->dkim[i].domain : NULL;
    }
    r->ndmarc = m->nfrom;
    for (size_t i = 0; i < m->nfrom; i++) {
        const from_t *f = &m->from[i];
        dmarc_input_t in = {
            .from_domain = f->domain,
            /* A lookup still out when time ran out counts as a DNS error. */
            .lookup = f->step == 2 ? f->lookup : DMARC_LOOKUP_TEMPFAIL,
            .rec = &f->rec,
            .at_org = f->at_org,
            .lookup_why = f->why,
            .spf = {.status = r->spf_done ? auth_spf_id(r->spf.status) : DMARC_ID_FAIL,
                    .domain = r->spf_done && r->spf.domain[0] ? r->spf.domain : NULL},
            .dkim = dkim,
            .ndkim = r->ndkim,
            .sample = auth_dmarc_sample,
            .sample_arg = m->ctx,
        };

        dmarc_evaluate(&in, &r->dmarc[i]);
    }
}

static void auth_complete(auth_msg_t *m)
{
    const auth_config_t *cfg = &m->ctx->cfg;
    authres_t *r = &m->result;

    m->completed = true;
    if (m->timer_on)
        uv_timer_stop(&m->timer);
    if (m->spf_started) {
        r->spf_done = true;
        /* Unfinished, m->spf still has the domain and identity that
         * spf_check_start() chose. */
        r->spf = m->spf;
        if (!m->spf_finished) {
            r->spf.status = SPF_TEMPERROR;
            str_lcpy(r->spf.problem, "SPF check timed out", sizeof(r->spf.problem));
        }
    }
    dkim_finish(m->dkim); /* signatures whose key never came: temperror */
    r->dkim_done = true;
    r->ndkim = dkim_count(m->dkim) < AUTHRES_DKIM_MAX ? dkim_count(m->dkim) : AUTHRES_DKIM_MAX;
    for (size_t i = 0; i < r->ndkim; i++)
        r->dkim[i] = *dkim_result(m->dkim, i);
    arc_finish(m->arc, m->dkim); /* a seal whose key never came: fail, temporary */
    r->arc_done = true;
    r->arc = *arc_result(m->arc);
    if (cfg->dmarc_action != AUTH_ACTION_OFF)
        auth_finish_dmarc(m);
    authres_decide(r, cfg->spf_action, cfg->dmarc_action);
    m->done(m, r, m->done_arg);
}

/* Something the result waits for came in. */
static void auth_progress(auth_msg_t *m)
{
    if (m->ended && !m->completed && !m->released && m->pending == 0)
        auth_complete(m);
}

static void auth_on_timer(uv_timer_t *t)
{
    auth_msg_t *m = t->data;

    if (!m->completed && !m->released)
        auth_complete(m);
}

/* ---- DNS ---- */

static void auth_lookup_done(void *arg, txt_status_t status, const txt_record_t *records, size_t n);

static void auth_start_lookup(auth_msg_t *m, lookup_kind_t kind, size_t index, const char *name)
{
    const txt_resolver_t *txt = &m->ctx->cfg.txt;
    lookup_t *lk = xcalloc(1, sizeof(*lk));

    lk->m = m;
    lk->kind = kind;
    lk->index = index;
    m->pending++;
    /* "_dmarc." or "._domainkey." on a long domain can exceed what DNS
     * carries: no such record can exist, and no server need be asked.
     * (Never inside auth_msg_end(): m->ended is not set yet.) */
    if (strlen(name) > DNS_NAME_MAX) {
        auth_lookup_done(lk, TXT_NONE, NULL, 0);
        return;
    }
    if (txt->ops->lookup(txt->impl, name, auth_lookup_done, lk) != 0) {
        /* Refused at once: as good as a temporary DNS failure, reported
         * through the same path so the bookkeeping stays in one place. */
        auth_lookup_done(lk, TXT_TEMPFAIL, NULL, 0);
    }
}

static void auth_dmarc_step(auth_msg_t *m, size_t i)
{
    from_t *f = &m->from[i];
    const char *org = dmarc_org_domain(f->domain);
    char name[DMARC_DOMAIN_MAX + 8];

    if (f->step == 1 && strcmp(org, f->domain) == 0) {
        f->step = 2; /* the From domain is its own organizational domain */
        return;
    }
    if (str_fmt(name, sizeof(name), "_dmarc.%s", f->step == 0 ? f->domain : org) < 0) {
        f->lookup = DMARC_LOOKUP_NONE;
        f->step = 2;
        return;
    }
    auth_start_lookup(m, LOOKUP_DMARC, i, name);
}

static void auth_dmarc_answer(auth_msg_t *m, size_t i, txt_status_t status, const txt_record_t *r,
                              size_t n)
{
    from_t *f = &m->from[i];

    f->lookup = dmarc_select(status, r, n, &f->rec, &f->why);
    if (f->lookup == DMARC_LOOKUP_NONE && f->step == 0) {
        f->step = 1;
        auth_dmarc_step(m, i); /* RFC 7489 6.6.3 step 4: the organizational domain */
        return;
    }
    f->at_org = f->step == 1 && f->lookup == DMARC_LOOKUP_FOUND;
    f->step = 2;
}

static void auth_lookup_done(void *arg, txt_status_t status, const txt_record_t *records, size_t n)
{
    lookup_t *lk = arg;
    auth_msg_t *m = lk->m;

    m->pending--;
    if (!m->completed && !m->released) {
        if (lk->kind == LOOKUP_KEY) {
            dkim_set_key(m->dkim, lk->index, status, records, n);
        } else if (lk->kind == LOOKUP_ARC_KEY) {
            arc_set_key(m->arc, lk->index, status, records, n);
        } else {
            auth_dmarc_answer(m, lk->index, status, records, n);
        }
    }
    free(lk);
    auth_progress(m);
    auth_maybe_destroy(m);
}

/* ---- message events ---- */

static void auth_on_signature(void *arg, size_t index)
{
    auth_msg_t *m = arg;
    char name[DKIMSIG_SELECTOR_MAX + DKIMSIG_DOMAIN_MAX + 16];

    if (dkim_key_name(m->dkim, index, name, sizeof(name)) == 0)
        auth_start_lookup(m, LOOKUP_KEY, index, name);
}

/* The header section is over: the ARC chain's keys can be fetched. */
static void auth_on_headers_done(void *arg)
{
    auth_msg_t *m = arg;
    char name[DKIMSIG_SELECTOR_MAX + DKIMSIG_DOMAIN_MAX + 16];

    arc_headers_done(m->arc, m->dkim);
    for (size_t k = 0; k < arc_key_count(m->arc); k++)
        if (arc_key_name(m->arc, k, name, sizeof(name)) == 0)
            auth_start_lookup(m, LOOKUP_ARC_KEY, k, name);
}

static void auth_on_field(void *arg, const char *field, size_t len, size_t name_len)
{
    auth_msg_t *m = arg;
    size_t before = m->nfrom;
    char domains[DMARC_FROM_MAX][DMARC_DOMAIN_MAX];
    size_t n = 0;
    int rc;

    arc_field(m->arc, field, len, name_len);
    if (!str_eq_ci_n(field, name_len, "From") || m->ctx->cfg.dmarc_action == AUTH_ACTION_OFF)
        return;
    m->nfrom_fields++;
    /* Several From fields break RFC 5322; each domain is then checked and
     * the strictest outcome wins (RFC 7489 6.6.1 on multi-valued From). */
    rc = dmarc_from_domains(field + name_len + 1, len - name_len - 1, domains, &n);
    if (rc == DMARC_FROM_ENONE)
        m->from_bad = true;
    if (rc == DMARC_FROM_EMANY)
        m->from_many = true;
    for (size_t k = 0; k < n; k++) {
        bool dup = false;

        for (size_t j = 0; j < m->nfrom && !dup; j++)
            dup = strcmp(m->from[j].domain, domains[k]) == 0;
        if (dup)
            continue;
        if (m->nfrom == DMARC_FROM_MAX) {
            m->from_many = true;
            break;
        }
        memset(&m->from[m->nfrom], 0, sizeof(m->from[0]));
        memcpy(m->from[m->nfrom].domain, domains[k], DMARC_DOMAIN_MAX);
        m->nfrom++;
    }
    for (size_t i = before; i < m->nfrom; i++)
        auth_dmarc_step(m, i);
}

int auth_msg_new(auth_ctx_t *ctx, const struct sockaddr *client, const char *helo, auth_msg_t **out)
{
    auth_msg_t *m;
    dkim_options_t o;
    size_t salen;

    if (client->sa_family == AF_INET)
        salen = sizeof(struct sockaddr_in);
    else if (client->sa_family == AF_INET6)
        salen = sizeof(struct sockaddr_in6);
    else
        return AUTH_EINVAL;
    m = xcalloc(1, sizeof(*m));
    m->ctx = ctx;
    ctx->refs++;
    memcpy(&m->client, client, salen);
    m->helo = xstrdup(helo ? helo : "");
    m->sender = xstrdup("");
    memset(&o, 0, sizeof(o));
    o.header_max = ctx->cfg.header_max;
    o.max_signatures = ctx->cfg.max_signatures;
    o.now = ctx->cfg.now ? ctx->cfg.now(ctx->cfg.hook_arg) : time(NULL);
    o.on_signature = auth_on_signature;
    o.on_field = auth_on_field;
    o.on_headers_done = auth_on_headers_done;
    o.arg = m;
    m->arc = arc_new(o.now);
    m->dkim = dkim_new(&o);
    *out = m;
    return 0;
}

static void auth_spf_done(void *arg, const spf_result_t *res)
{
    auth_msg_t *m = arg;

    m->spf_req = NULL;
    m->spf = *res;
    m->spf_finished = true;
    m->pending--;
    auth_progress(m);
    auth_maybe_destroy(m);
}

int auth_msg_mail_from(auth_msg_t *m, const char *sender)
{
    auth_ctx_t *ctx = m->ctx;
    int rc;

    if (m->spf_started || m->ended || m->released)
        return AUTH_EINVAL;
    free(m->sender);
    m->sender = xstrdup(sender ? sender : "");
    if (ctx->spf == NULL)
        return 0;
    rc = spf_check_start(ctx->spf, (const struct sockaddr *)&m->client, m->helo, m->sender,
                         auth_spf_done, m, &m->spf, &m->spf_req);
    m->spf_started = true;
    if (rc == SPF_DONE)
        m->spf_finished = true;
    else
        m->pending++;
    return 0;
}

void auth_msg_feed(auth_msg_t *m, const char *p, size_t n)
{
    if (!m->ended && !m->released)
        dkim_feed(m->dkim, p, n);
}

int auth_msg_end(auth_msg_t *m, auth_done_fn done, void *arg)
{
    uv_loop_t *loop = m->ctx->cfg.loop;

    if (m->ended || m->released || done == NULL)
        return AUTH_EINVAL;
    /* The last field may complete here, starting its lookups. */
    dkim_end(m->dkim);
    m->ended = true;
    m->done = done;
    m->done_arg = arg;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    m->timer_on = true;
    /* Never call back from inside this call: even when nothing is left to
     * wait for, the verdict comes from the loop. */
    uv_timer_start(&m->timer, auth_on_timer, m->pending == 0 ? 0 : m->ctx->cfg.check_timeout_ms, 0);
    return 0;
}

const authres_t *auth_msg_result(const auth_msg_t *m)
{
    return &m->result;
}

void auth_msg_cancel(auth_msg_t *m)
{
    if (m == NULL || m->released)
        return;
    m->released = true;
    m->completed = true;
    if (m->timer_on)
        uv_timer_stop(&m->timer);
    if (m->spf_req != NULL) {
        spf_check_cancel(m->spf_req);
        m->spf_req = NULL;
        m->pending--;
    }
    auth_maybe_destroy(m);
}

void auth_msg_free(auth_msg_t *m)
{
    auth_msg_cancel(m);
}

/* ---- TXT lookups through the loop's resolver ---- */

typedef struct {
    txt_done_fn done;
    void *arg;
} txt_req_t;

static void auth_txt_answer(void *arg, int status, const dns_result_t *res)
{
    txt_req_t *q = arg;
    txt_record_t recs[16];
    size_t n = 0;

    if (status == 0) {
        /* More than 16 TXT records at a _dmarc or _domainkey name: only a
         * broken zone has them, and the first 16 decide as well. */
        for (; n < res->n && n < sizeof(recs) / sizeof(recs[0]); n++) {
            recs[n].data = res->u.txt[n].text;
            recs[n].len = res->u.txt[n].len;
        }
        q->done(q->arg, n > 0 ? TXT_OK : TXT_NONE, recs, n);
    } else {
        q->done(q->arg, dns_is_permanent(status) ? TXT_NONE : TXT_TEMPFAIL, NULL, 0);
    }
    free(q);
}

static int auth_txt_lookup(void *impl, const char *name, txt_done_fn done, void *arg)
{
    txt_req_t *q = xmalloc(sizeof(*q));
    int rc;

    q->done = done;
    q->arg = arg;
    rc = dns_lookup(impl, DNS_T_TXT, name, auth_txt_answer, q, NULL);
    if (rc != 0)
        free(q);
    return rc;
}

static const txt_ops_t auth_txt_ops = {.lookup = auth_txt_lookup};

void auth_txt_resolver(dns_resolver_t *r, txt_resolver_t *out)
{
    out->ops = &auth_txt_ops;
    out->impl = r;
}
