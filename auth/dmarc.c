#include "dmarc.h"

#include <libpsl.h>
#include <string.h>

#include "addr.h"
#include "str.h"
#include "tagval.h"

/* ---- records ---- */

static bool dmarc_parse_policy(const tagval_tag_t *t, dmarc_policy_t *p)
{
    /* ABNF strings are case-insensitive (RFC 5234 2.3). */
    if (tagval_is_ci(t, "none"))
        *p = DMARC_P_NONE;
    else if (tagval_is_ci(t, "quarantine"))
        *p = DMARC_P_QUARANTINE;
    else if (tagval_is_ci(t, "reject"))
        *p = DMARC_P_REJECT;
    else
        return false;
    return true;
}

static dmarc_align_t dmarc_parse_align(const tagval_tag_t *t)
{
    return t != NULL && tagval_is_ci(t, "s") ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
}

/* A dmarc-uri (RFC 7489 6.4): URI [ "!" size ].  Only the shape is
 * checked, "scheme:something": reports are never sent. */
static bool dmarc_valid_uri(const char *s, size_t n)
{
    size_t i = 0;

    while (n > 0 && (s[0] == ' ' || s[0] == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    while (i < n && s[i] != ':') {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return false;
        i++;
    }
    return i < n && i + 1 < n;
}

static unsigned dmarc_count_uris(const tagval_tag_t *t)
{
    const char *p = t->value, *end = t->value + t->value_len;
    unsigned n = 0;

    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;

        if (dmarc_valid_uri(p, (size_t)(e - p)))
            n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return n;
}

int dmarc_record_parse(const char *s, size_t len, dmarc_record_t *rec, const char **why)
{
    tagval_list_t l;
    const tagval_tag_t *t;
    bool p_ok, sp_ok = true;
    size_t lead = 0;

    while (lead < len && (s[lead] == ' ' || s[lead] == '\t'))
        lead++;
    memset(rec, 0, sizeof(*rec));
    rec->pct = 100;
    *why = NULL;
    /* Lenient: bad tag-specs are dropped (RFC 7489 6.3), but the record
     * must still begin with v=DMARC1, exactly so written. */
    if (tagval_parse(s, len, true, &l) < 0 || l.n == 0 || l.tag[0].name != s + lead ||
        l.tag[0].name_len != 1 || l.tag[0].name[0] != 'v' || !tagval_is(&l.tag[0], "DMARC1"))
        return DMARC_REC_NOT;
    /* tagval keeps the first of a repeated tag; a v= that is not the first
     * tag is simply ignored. */
    t = tagval_get(&l, "p");
    p_ok = t != NULL && dmarc_parse_policy(t, &rec->p);
    if ((t = tagval_get(&l, "sp")) != NULL) {
        sp_ok = dmarc_parse_policy(t, &rec->sp);
        rec->has_sp = sp_ok;
    }
    rec->adkim = dmarc_parse_align(tagval_get(&l, "adkim"));
    rec->aspf = dmarc_parse_align(tagval_get(&l, "aspf"));
    if ((t = tagval_get(&l, "pct")) != NULL && t->value_len >= 1 && t->value_len <= 3) {
        unsigned v = 0;
        bool digits = true;

        for (size_t i = 0; i < t->value_len; i++) {
            digits = digits && t->value[i] >= '0' && t->value[i] <= '9';
            v = v * 10 + (unsigned)(t->value[i] - '0');
        }
        if (digits && v <= 100)
            rec->pct = v;
    }
    if ((t = tagval_get(&l, "rua")) != NULL)
        rec->nrua = dmarc_count_uris(t);
    if (!p_ok || !sp_ok) {
        if (rec->nrua == 0) {
            *why = p_ok ? "DMARC record has a bad sp=" : "DMARC record has no valid p=";
            return DMARC_REC_INVALID;
        }
        rec->p = DMARC_P_NONE;
        rec->has_sp = false;
        rec->p_from_rua = true;
    }
    return 0;
}

dmarc_lookup_t dmarc_select(txt_status_t status, const txt_record_t *records, size_t n,
                            dmarc_record_t *rec, const char **why)
{
    size_t found = 0;
    const char *invalid = NULL;

    *why = NULL;
    if (status == TXT_TEMPFAIL)
        return DMARC_LOOKUP_TEMPFAIL;
    for (size_t i = 0; status == TXT_OK && i < n; i++) {
        dmarc_record_t r;
        const char *w;
        int rc = dmarc_record_parse(records[i].data, records[i].len, &r, &w);

        if (rc == DMARC_REC_NOT)
            continue;
        found++;
        if (rc == 0)
            *rec = r;
        else
            invalid = w;
    }
    if (found == 0)
        return DMARC_LOOKUP_NONE;
    if (found > 1) {
        *why = "several DMARC records";
        return DMARC_LOOKUP_INVALID;
    }
    if (invalid != NULL) {
        *why = invalid;
        return DMARC_LOOKUP_INVALID;
    }
    return DMARC_LOOKUP_FOUND;
}

/* ---- the From domain ---- */

typedef struct {
    char dom[DMARC_DOMAIN_MAX]; /* text after the last '@' of the address */
    size_t dom_len;
    bool at;       /* an '@' was seen in the address */
    bool overlong; /* the domain did not fit */
    bool angle;    /* this element has an angle-addr: only it counts */
} element_t;

static void dmarc_element_reset(element_t *e)
{
    e->dom_len = 0;
    e->at = e->overlong = e->angle = false;
}

static void dmarc_element_char(element_t *e, char c)
{
    if (!e->at)
        return;
    if (e->dom_len + 1 >= sizeof(e->dom))
        e->overlong = true;
    else
        e->dom[e->dom_len++] = c;
}

/* The element is complete: add its domain.  0, or DMARC_FROM_EMANY. */
static int dmarc_element_end(element_t *e, char domains[][DMARC_DOMAIN_MAX], size_t *n,
                             size_t *added)
{
    char d[DMARC_DOMAIN_MAX];
    int rc = 0;

    if (e->at && !e->overlong && addr_dns_name(e->dom, e->dom_len, d, sizeof(d)) >= 0) {
        bool dup = false;

        for (size_t i = 0; i < *n && !dup; i++)
            dup = strcmp(domains[i], d) == 0;
        if (!dup) {
            if (*n == DMARC_FROM_MAX)
                rc = DMARC_FROM_EMANY;
            else
                memcpy(domains[(*n)++], d, sizeof(d));
        }
        (*added)++;
    }
    dmarc_element_reset(e);
    return rc;
}

int dmarc_from_domains(const char *value, size_t len, char domains[][DMARC_DOMAIN_MAX], size_t *n)
{
    element_t e;
    size_t added = 0, depth = 0;
    bool quoted = false, in_angle = false;
    int rc = 0;

    dmarc_element_reset(&e);
    for (size_t i = 0; i < len && rc == 0; i++) {
        char c = value[i];

        if (quoted) { /* quoted-string: only its end matters */
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '"')
                quoted = false;
            if (!e.angle || in_angle)
                dmarc_element_char(&e, 'x'); /* quoted text after '@' spoils the domain */
            continue;
        }
        if (depth > 0) { /* comments nest (RFC 5322 3.2.2) */
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
            continue;
        }
        if (c == '(') {
            depth = 1;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '<' && !in_angle) {
            in_angle = true;
            e.angle = true;
            e.at = false;
            e.dom_len = 0;
        } else if (c == '>' && in_angle) {
            in_angle = false;
        } else if (e.angle && !in_angle) {
            if (c == ',' || c == ';')
                rc = dmarc_element_end(&e, domains, n, &added);
            /* else: text after the angle-addr, ignored */
        } else if (c == '@') {
            e.at = true;
            e.dom_len = 0;
            e.overlong = false;
        } else if (c == ':') {
            /* "group:" outside an address, or the end of an obsolete route
             * "<@a,@b:user@dom>" inside one: what came before is no address. */
            e.at = false;
            e.dom_len = 0;
        } else if ((c == ',' || c == ';') && !in_angle) {
            rc = dmarc_element_end(&e, domains, n, &added);
        } else if (c == ',' && in_angle) {
            e.at = false; /* obsolete route list */
            e.dom_len = 0;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            dmarc_element_char(&e, c);
        }
    }
    if (rc == 0)
        rc = dmarc_element_end(&e, domains, n, &added);
    if (rc == 0 && added == 0)
        rc = DMARC_FROM_ENONE;
    return rc;
}

/* ---- organizational domain and alignment ---- */

const char *dmarc_org_domain(const char *domain)
{
    /* The built-in list is static data: no allocation, safe from any thread. */
    const psl_ctx_t *psl = psl_builtin();
    const char *reg = psl ? psl_registrable_domain(psl, domain) : NULL;

    return reg ? reg : domain;
}

bool dmarc_aligned(const char *a, const char *b, dmarc_align_t mode)
{
    char la[DMARC_DOMAIN_MAX], lb[DMARC_DOMAIN_MAX];

    if (a == NULL || b == NULL || str_lcpy(la, a, sizeof(la)) < 0 ||
        str_lcpy(lb, b, sizeof(lb)) < 0)
        return false;
    str_lower(la);
    str_lower(lb);
    if (strcmp(la, lb) == 0)
        return true;
    if (mode == DMARC_ALIGN_STRICT)
        return false;
    return strcmp(dmarc_org_domain(la), dmarc_org_domain(lb)) == 0;
}

/* ---- evaluation ---- */

void dmarc_evaluate(const dmarc_input_t *in, dmarc_result_t *out)
{
    const dmarc_record_t *rec = in->rec;
    dmarc_align_t aspf = rec ? rec->aspf : DMARC_ALIGN_RELAXED;
    dmarc_align_t adkim = rec ? rec->adkim : DMARC_ALIGN_RELAXED;

    memset(out, 0, sizeof(*out));
    str_lcpy(out->domain, in->from_domain, sizeof(out->domain));

    /* Alignment is worked out even without a policy: the header reports
     * it, and an aligned DKIM pass spares an SPF fail (authres). */
    if (in->spf.domain && dmarc_aligned(in->spf.domain, in->from_domain, aspf)) {
        out->spf_aligned = in->spf.status == DMARC_ID_PASS;
        out->spf_unknown = in->spf.status == DMARC_ID_TEMPERROR;
    }
    for (size_t i = 0; i < in->ndkim; i++) {
        if (!in->dkim[i].domain || !dmarc_aligned(in->dkim[i].domain, in->from_domain, adkim))
            continue;
        out->dkim_aligned = out->dkim_aligned || in->dkim[i].status == DMARC_ID_PASS;
        out->dkim_unknown = out->dkim_unknown || in->dkim[i].status == DMARC_ID_TEMPERROR;
    }

    switch (in->lookup) {
    case DMARC_LOOKUP_NONE:
        out->status = DMARC_NONE;
        out->reason = "no DMARC record";
        return;
    case DMARC_LOOKUP_TEMPFAIL:
        out->status = DMARC_TEMPERROR;
        out->reason = "DMARC record lookup failed";
        return;
    case DMARC_LOOKUP_INVALID:
        out->status = DMARC_PERMERROR;
        out->reason = in->lookup_why ? in->lookup_why : "unusable DMARC record";
        return;
    case DMARC_LOOKUP_FOUND:
        break;
    }

    out->has_policy = true;
    /* sp= governs subdomains when the record is the organizational domain's
     * (RFC 7489 6.6.3 step 4 and 6.3). */
    out->policy = in->at_org && rec->has_sp ? rec->sp : rec->p;
    out->applied = out->policy;
    if (out->spf_aligned || out->dkim_aligned) {
        out->status = DMARC_PASS;
        return;
    }
    if (out->spf_unknown || out->dkim_unknown) {
        out->status = DMARC_TEMPERROR;
        out->reason = "an aligned identifier could not be checked";
        return;
    }
    out->status = DMARC_FAIL;
    /* pct: the messages not sampled get the next less strict policy
     * (RFC 7489 6.6.4). */
    if (rec->pct < 100 && in->sample(in->sample_arg) >= rec->pct) {
        if (out->applied == DMARC_P_REJECT)
            out->applied = DMARC_P_QUARANTINE;
        else
            out->applied = DMARC_P_NONE;
        out->reason = "pct sampling lowered the policy";
    }
}

const char *dmarc_status_name(dmarc_status_t s)
{
    switch (s) {
    case DMARC_NONE:
        return "none";
    case DMARC_PASS:
        return "pass";
    case DMARC_FAIL:
        return "fail";
    case DMARC_TEMPERROR:
        return "temperror";
    case DMARC_PERMERROR:
        return "permerror";
    }
    return "permerror";
}

const char *dmarc_policy_name(dmarc_policy_t p)
{
    switch (p) {
    case DMARC_P_NONE:
        return "none";
    case DMARC_P_QUARANTINE:
        return "quarantine";
    case DMARC_P_REJECT:
        return "reject";
    }
    return "none";
}
