#include "authres.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "str.h"

/* ---- the decision ---- */

static int authres_rank_dmarc(dmarc_status_t s)
{
    switch (s) {
    case DMARC_FAIL:
        return 4;
    case DMARC_TEMPERROR:
        return 3;
    case DMARC_PERMERROR:
        return 2;
    case DMARC_PASS:
        return 1;
    case DMARC_NONE:
        break;
    }
    return 0;
}

static int authres_rank_dkim(dkim_status_t s)
{
    switch (s) {
    case DKIM_PASS:
        return 4;
    case DKIM_FAIL:
        return 3;
    case DKIM_TEMPERROR:
        return 2;
    case DKIM_PERMERROR:
    case DKIM_PENDING:
        break;
    }
    return 1;
}

const char *authres_dkim_summary(const authres_t *r)
{
    const dkim_result_t *best = NULL;

    if (!r->dkim_done)
        return "off";
    for (size_t i = 0; i < r->ndkim; i++)
        if (best == NULL || authres_rank_dkim(r->dkim[i].status) > authres_rank_dkim(best->status))
            best = &r->dkim[i];
    return best ? dkim_status_name(best->status) : "none";
}

const char *authres_dmarc_summary(const authres_t *r)
{
    const dmarc_result_t *worst = NULL;

    if (!r->dmarc_done)
        return "off";
    for (size_t i = 0; i < r->ndmarc; i++)
        if (worst == NULL ||
            authres_rank_dmarc(r->dmarc[i].status) > authres_rank_dmarc(worst->status))
            worst = &r->dmarc[i];
    return worst ? dmarc_status_name(worst->status) : "none";
}

static void authres_set(authres_decision_t *d, authres_verdict_t v, const char *why,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void authres_set(authres_decision_t *d, authres_verdict_t v, const char *why,
                        const char *fmt, ...)
{
    va_list ap;

    d->verdict = v;
    d->why = why;
    /* A too long domain or explanation is cut: the reply stays one line. */
    va_start(ap, fmt);
    vsnprintf(d->reply, sizeof(d->reply), fmt, ap);
    va_end(ap);
}

void authres_decide(authres_t *r, auth_action_t spf_action, auth_action_t dmarc_action)
{
    authres_decision_t *d = &r->decision;
    bool enforce = r->dmarc_done && dmarc_action == AUTH_ACTION_REJECT;
    bool dkim_aligned = false, dkim_unknown = false;

    memset(d, 0, sizeof(*d));
    d->verdict = AUTHRES_ACCEPT;
    for (size_t i = 0; r->dmarc_done && i < r->ndmarc; i++) {
        dkim_aligned = dkim_aligned || r->dmarc[i].dkim_aligned;
        dkim_unknown = dkim_unknown || r->dmarc[i].dkim_unknown;
    }

    /* 1. DMARC asks for rejection. */
    /* Such a message is not an RFC 5322 message (7489 6.6.1): the reply
     * tells its sender what to fix, in words a user can act on. */
    if (enforce && r->from_missing == AUTHRES_FROM_ABSENT) {
        authres_set(d, AUTHRES_REJECT, "from",
                    "550 5.7.1 Message has no From: header; RFC 5322 requires one");
        return;
    }
    if (enforce && r->from_missing == AUTHRES_FROM_UNUSABLE) {
        authres_set(
            d, AUTHRES_REJECT, "from",
            "550 5.7.1 Message has no usable address in its From: header; RFC 5322 requires one");
        return;
    }
    if (enforce && r->from_missing != AUTHRES_FROM_OK) {
        authres_set(d, AUTHRES_REJECT, "from",
                    "550 5.7.1 Message has too many From: domains to check its author under DMARC");
        return;
    }
    for (size_t i = 0; enforce && i < r->ndmarc; i++) {
        const dmarc_result_t *m = &r->dmarc[i];

        if (m->status == DMARC_FAIL && m->applied == DMARC_P_REJECT) {
            authres_set(
                d, AUTHRES_REJECT, "dmarc",
                "550 5.7.1 %s publishes DMARC p=reject and this message has neither an aligned "
                "SPF pass nor a valid aligned DKIM signature",
                m->domain);
            return;
        }
    }

    /* 2. SPF fail, unless an aligned DKIM signature vouches for the author. */
    if (r->spf_done && spf_action == AUTH_ACTION_REJECT && r->spf.status == SPF_FAIL &&
        !dkim_aligned) {
        if (dkim_unknown)
            authres_set(d, AUTHRES_DEFER, "dns",
                        "451 4.4.3 Temporary DNS error fetching a DKIM key for %s; try again later",
                        r->dmarc[0].domain);
        else
            authres_set(d, AUTHRES_REJECT, "spf", "550 5.7.23 SPF fail: %s", r->spf.explanation);
        return;
    }

    /* 3. Temporary errors that could have led to 1 or 2. */
    if (r->spf_done && spf_action == AUTH_ACTION_REJECT && r->spf.status == SPF_TEMPERROR &&
        !dkim_aligned) {
        authres_set(d, AUTHRES_DEFER, "dns",
                    "451 4.4.3 Temporary DNS error checking SPF for %s; try again later",
                    r->spf.domain);
        return;
    }
    for (size_t i = 0; enforce && i < r->ndmarc; i++) {
        const dmarc_result_t *m = &r->dmarc[i];

        if (m->status == DMARC_TEMPERROR && !m->spf_aligned && !m->dkim_aligned &&
            (!m->has_policy || m->policy == DMARC_P_REJECT)) {
            authres_set(d, AUTHRES_DEFER, "dns",
                        "451 4.4.3 Temporary DNS error checking DMARC for %s; try again later",
                        m->domain);
            return;
        }
    }

    /* 4. Accept; remember a quarantine request. */
    for (size_t i = 0; r->dmarc_done && dmarc_action != AUTH_ACTION_OFF && i < r->ndmarc; i++)
        if (r->dmarc[i].status == DMARC_FAIL && r->dmarc[i].applied != DMARC_P_NONE)
            d->quarantine = true;
}

/* ---- Authentication-Results ---- */

#define AR_WIDTH 78

typedef struct {
    buf_t *out;
    size_t col; /* column of the line being written */
    int rc;
} ar_t;

static void authres_put(ar_t *a, const char *s, size_t n)
{
    if (a->rc == 0)
        a->rc = buf_append(a->out, s, n);
    a->col += n;
}

/* A token of a resinfo: folded onto a new line when it would not fit. */
static void authres_token(ar_t *a, const char *s, size_t n)
{
    if (a->col + 1 + n > AR_WIDTH && a->col > 8) {
        authres_put(a, "\r\n\t  ", 5);
        a->col = 10;
    } else {
        authres_put(a, " ", 1);
    }
    authres_put(a, s, n);
}

/* A comment: "(" text ")", with ( ) \ escaped as quoted-pairs. */
static void authres_comment(ar_t *a, const char *text)
{
    char tmp[400];
    size_t n = 0;

    if (text == NULL || *text == '\0')
        return;
    tmp[n++] = '(';
    for (const char *p = text; *p && n + 4 < sizeof(tmp); p++) {
        if (*p == '(' || *p == ')' || *p == '\\')
            tmp[n++] = '\\';
        tmp[n++] = (*p >= 32 && *p < 127) ? *p : '?';
    }
    tmp[n++] = ')';
    authres_token(a, tmp, n);
}

/* RFC 2045 token characters: anything printable but tspecials and space. */
static bool authres_is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s <= 32 || *s >= 127 || strchr("()<>@,;:\\\"/[]?=", *s))
            return false;
    return true;
}

/* A domain name, or [local-part] "@" domain: allowed bare (RFC 8601 pvalue). */
static bool authres_is_pvalue_domain(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("-._@+=!#$%&'*/?^`{|}~", *s)))
            return false;
    return true;
}

/* "name=value", the value quoted when it is not a token or domain. */
static void authres_prop(ar_t *a, const char *name, const char *value, bool domainish)
{
    char tmp[400];
    size_t n;

    if (value == NULL || *value == '\0')
        return;
    n = strlen(name);
    memcpy(tmp, name, n); /* names are short constants */
    tmp[n++] = '=';
    if (authres_is_token(value) || (domainish && authres_is_pvalue_domain(value))) {
        for (const char *p = value; *p && n + 1 < sizeof(tmp); p++)
            tmp[n++] = *p;
    } else {
        tmp[n++] = '"';
        for (const char *p = value; *p && n + 3 < sizeof(tmp); p++) {
            if (*p == '"' || *p == '\\')
                tmp[n++] = '\\';
            tmp[n++] = (*p >= 32 && *p < 127) ? *p : '?';
        }
        tmp[n++] = '"';
    }
    authres_token(a, tmp, n);
}

/* Start a resinfo on its own line: ";" CRLF TAB "method=result". */
static void authres_method(ar_t *a, const char *name, const char *result)
{
    authres_put(a, ";\r\n\t", 4);
    a->col = 8;
    authres_put(a, name, strlen(name));
    authres_put(a, "=", 1);
    authres_put(a, result, strlen(result));
}

static void authres_spf_resinfo(ar_t *a, const spf_result_t *s)
{
    authres_method(a, "spf", spf_status_name(s->status));
    if (s->status == SPF_FAIL || s->status == SPF_SOFTFAIL)
        authres_comment(a, s->explanation);
    else
        authres_comment(a, s->problem);
    authres_prop(a, s->helo ? "smtp.helo" : "smtp.mailfrom", s->domain, true);
}

static void authres_dkim_resinfo(ar_t *a, const dkim_result_t *k)
{
    char why[200];

    authres_method(a, "dkim", dkim_status_name(k->status));
    if (k->has_length) {
        /* l= is reported: a pass then vouches for part of the body only. */
        str_fmt(why, sizeof(why), "%s%sl=%llu of %llu body octets signed",
                k->reason ? k->reason : "", k->reason ? "; " : "", (unsigned long long)k->length,
                (unsigned long long)k->body_len);
        authres_comment(a, why);
    } else {
        authres_comment(a, k->reason);
    }
    if (k->testing)
        authres_comment(a, "key in test mode");
    authres_prop(a, "header.d", k->domain, true);
    authres_prop(a, "header.i", k->auid, true);
    authres_prop(a, "header.s", k->selector, true);
    if (k->has_alg)
        authres_prop(a, "header.a", dkimsig_alg_name(k->alg), false);
    authres_prop(a, "header.b", k->b_prefix, false);
}

static void authres_dmarc_resinfo(ar_t *a, const dmarc_result_t *m)
{
    char why[200];

    authres_method(a, "dmarc", dmarc_status_name(m->status));
    if (m->has_policy) {
        str_fmt(why, sizeof(why), "p=%s dis=%s%s%s", dmarc_policy_name(m->policy),
                m->status == DMARC_FAIL ? dmarc_policy_name(m->applied) : "none",
                m->reason ? "; " : "", m->reason ? m->reason : "");
        authres_comment(a, why);
    } else {
        authres_comment(a, m->reason);
    }
    authres_prop(a, "header.from", m->domain, true);
}

/* arc=pass (i=2 d=example.net), the reason after a ';' when it failed
 * (RFC 8617 7.2, RFC 8601 2.2). */
static void authres_arc_resinfo(ar_t *a, const arc_result_t *c)
{
    char why[300] = "";
    size_t n;

    authres_method(a, "arc", arc_cv_name(c->cv));
    if (c->instances > 0)
        str_fmt(why, sizeof(why), "i=%u%s%s", c->instances, c->domain[0] ? " d=" : "", c->domain);
    n = strlen(why);
    if (c->reason != NULL)
        str_fmt(why + n, sizeof(why) - n, "%s%s", n ? "; " : "", c->reason);
    authres_comment(a, why);
}

int authres_header(const authres_t *r, const char *authserv_id, buf_t *out)
{
    return authres_write(r, authserv_id, "Authentication-Results: ", out);
}

int authres_write(const authres_t *r, const char *authserv_id, const char *prefix, buf_t *out)
{
    ar_t a = {.out = out, .col = 0, .rc = 0};
    size_t before = buf_used(out);

    authres_put(&a, prefix, strlen(prefix));
    authres_put(&a, authserv_id, strlen(authserv_id));
    if (r->spf_done)
        authres_spf_resinfo(&a, &r->spf);
    if (r->dkim_done) {
        if (r->ndkim == 0) {
            authres_method(&a, "dkim", "none");
            authres_comment(&a, "message not signed");
        }
        for (size_t i = 0; i < r->ndkim; i++)
            authres_dkim_resinfo(&a, &r->dkim[i]);
    }
    if (r->arc_done)
        authres_arc_resinfo(&a, &r->arc);
    if (r->dmarc_done)
        for (size_t i = 0; i < r->ndmarc; i++)
            authres_dmarc_resinfo(&a, &r->dmarc[i]);
    if (!r->spf_done && !r->dkim_done && !r->arc_done && !r->dmarc_done)
        authres_put(&a, "; none", 6);
    authres_put(&a, "\r\n", 2);
    if (a.rc < 0)
        out->len = out->off + before; /* nothing half-written */
    return a.rc;
}

int authres_log(const authres_t *r, char *dst, size_t size)
{
    /* " arc=" only for messages that carried a chain: the line of any
     * other message reads as it always has. */
    return str_fmt(dst, size, "spf=%s, dkim=%s, dmarc=%s%s%s",
                   r->spf_done ? spf_status_name(r->spf.status) : "off", authres_dkim_summary(r),
                   authres_dmarc_summary(r), r->arc_done && r->arc.present ? ", arc=" : "",
                   r->arc_done && r->arc.present ? arc_cv_name(r->arc.cv) : "");
}
