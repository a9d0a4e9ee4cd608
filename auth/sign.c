/*
 * sign.c - the forwarded message's signature, seal and From rewrite
 * (docs/sender-checks.md, "Signing").
 */
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "canon.h"
#include "dkimkey.h"
#include "str.h"
#include "xalloc.h"

/* Header fields of a message we sign, ours on top included. */
#define SIGN_FIELDS_MAX 1024
/* A display name longer than this is not carried into a rewritten From. */
#define SIGN_PHRASE_MAX 200

struct sign_ctx {
    unsigned refs;
    dkimkey_private_t *key;
    char *selector, *domain, *rewrite_address, *authserv_id;
    bool dkim, arc;
    sign_rewrite_t rewrite;
};

struct sign_msg {
    sign_ctx_t *ctx;
    dkimsign_body_t body;
    /* The header section as received: kept until its empty line. */
    buf_t head;
    unsigned eol; /* bytes of "\r\n\r\n" matched (2: a line just ended) */
    bool head_done, head_long;
    size_t head_len; /* the fields' bytes, their CRLFs included */
    /* Staged by prepare for work. */
    bool prepared, worked;
    bool do_dkim, do_arc, rewritten;
    const char *rewrite_why;
    unsigned char bh[32];
    uint64_t now;
    dkim_cv_t cv;
    unsigned instances;
    buf_t aar;     /* the ARC-Authentication-Results value */
    buf_t trace;   /* our fields, on top of the message's */
    buf_t headers; /* the message's header section as it leaves */
    uint64_t skip;
    buf_t replaced;     /* the section filters made (sign_msg_set_headers()) */
    bool has_replaced;
    uint64_t replaced_skip;
    /* The result. */
    buf_t out;
    int err;
    char note[64];
};

/* ---- the context ---- */

int sign_ctx_new(const sign_config_t *cfg, sign_ctx_t **out, char *why, size_t why_size)
{
    sign_ctx_t *c = xcalloc(1, sizeof(*c));

    *out = NULL;
    if (dkimkey_load(cfg->key_path, &c->key, why, why_size) != 0) {
        free(c);
        return SIGN_EKEY;
    }
    c->refs = 1;
    c->selector = xstrdup(cfg->selector);
    c->domain = xstrdup(cfg->domain);
    c->rewrite_address = xstrdup(cfg->rewrite_address);
    c->authserv_id = xstrdup(cfg->authserv_id);
    c->dkim = cfg->dkim;
    c->arc = cfg->arc;
    c->rewrite = cfg->rewrite;
    *out = c;
    return 0;
}

sign_ctx_t *sign_ctx_ref(sign_ctx_t *ctx)
{
    ctx->refs++;
    return ctx;
}

void sign_ctx_unref(sign_ctx_t *ctx)
{
    if (ctx == NULL || --ctx->refs > 0)
        return;
    dkimkey_free(ctx->key);
    free(ctx->selector);
    free(ctx->domain);
    free(ctx->rewrite_address);
    free(ctx->authserv_id);
    free(ctx);
}

const char *sign_ctx_key_text(const sign_ctx_t *ctx, char *dst, size_t size)
{
    if (dkimkey_type(ctx->key) == DKIM_KEY_ED25519)
        str_lcpy(dst, "Ed25519", size);
    else
        snprintf(dst, size, "RSA %u", dkimkey_bits(ctx->key));
    return dst;
}

/* ---- reading the message ---- */

sign_msg_t *sign_msg_new(sign_ctx_t *ctx)
{
    sign_msg_t *m = xcalloc(1, sizeof(*m));

    if (dkimsign_body_init(&m->body) != 0) {
        free(m);
        return NULL;
    }
    m->ctx = sign_ctx_ref(ctx);
    buf_init(&m->head, SIGN_HEADER_MAX);
    buf_init(&m->aar, 65536);
    buf_init(&m->trace, SIZE_MAX);
    buf_init(&m->headers, SIZE_MAX);
    buf_init(&m->replaced, SIZE_MAX);
    buf_init(&m->out, SIZE_MAX);
    m->eol = 2; /* the start is a line's start: "\r\n" first is an empty line */
    return m;
}

/* Keep the header section, up to its empty line. */
static void sign_msg_keep(sign_msg_t *m, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && !m->head_done; i++) {
        char c = p[i];

        if (c == '\r' && (m->eol == 0 || m->eol == 2))
            m->eol++;
        else if (c == '\n' && (m->eol == 1 || m->eol == 3))
            m->eol++;
        else
            m->eol = c == '\r' ? 1 : 0;
        if (m->eol == 4) {
            /* The empty line: the fields end before it. */
            m->head_done = true;
            m->head_len = buf_used(&m->head) + i + 1 - 2;
        }
    }
    if (m->head_long)
        return;
    if (buf_append(&m->head, p, i) < 0)
        m->head_long = true;
}

void sign_msg_feed(sign_msg_t *m, const char *p, size_t n)
{
    dkimsign_body_feed(&m->body, p, n);
    if (!m->head_done)
        sign_msg_keep(m, p, n);
}

/* ---- header fields ---- */

/*
 * Split p[0..n) (CRLF lines) into fields, appended to f[*nf] (without
 * their final CRLF).  false when a line is neither a field nor a
 * continuation, or there are too many.
 */
static bool sign_fields(const char *p, size_t n, canon_field_t *f, size_t *nf)
{
    size_t i = 0;

    while (i < n) {
        const char *start = p + i;
        size_t end = i;

        if (!canon_is_field_start(start, n - i) || *nf == SIGN_FIELDS_MAX)
            return false;
        /* To the CRLF not followed by white space. */
        for (;;) {
            const char *crlf = memmem(p + end, n - end, "\r\n", 2);
            if (crlf == NULL)
                return false;
            end = (size_t)(crlf - p) + 2;
            if (end >= n || (p[end] != ' ' && p[end] != '\t'))
                break;
        }
        f[*nf].ptr = start;
        f[*nf].len = end - i - 2;
        (*nf)++;
        i = end;
    }
    return true;
}

static bool sign_is(const canon_field_t *f, const char *name)
{
    size_t n = canon_name_len(f->ptr, f->len);

    return str_eq_ci_n(f->ptr, n, name);
}

/* A field's value: what follows its colon. */
static void sign_value(const canon_field_t *f, const char **v, size_t *n)
{
    const char *colon = memchr(f->ptr, ':', f->len);

    *v = colon + 1;
    *n = f->len - (size_t)(colon + 1 - f->ptr);
}

/* ---- the From rewrite ---- */

/* Why From must be rewritten for the destination's DMARC to pass, or NULL
 * (docs/sender-checks.md, "Signing"). */
static const char *sign_rewrite_reason(const sign_ctx_t *c, const authres_t *res)
{
    if (c->rewrite == SIGN_REWRITE_OFF)
        return NULL;
    if (c->rewrite == SIGN_REWRITE_ALWAYS)
        return "from_rewrite = always";
    for (size_t i = 0; res->dmarc_done && i < res->ndmarc; i++) {
        const dmarc_result_t *d = &res->dmarc[i];

        if (!d->has_policy || d->policy == DMARC_P_NONE || d->dkim_aligned)
            continue;
        return d->policy == DMARC_P_REJECT
                   ? "DMARC p=reject and no valid DKIM signature aligned with the author"
                   : "DMARC p=quarantine and no valid DKIM signature aligned with the author";
    }
    return NULL;
}

/* v[0..n) on one line: folding CRLFs dropped, ends trimmed. */
static void sign_unfold(const char *v, size_t n, buf_t *out)
{
    size_t i = 0;

    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
        i++;
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    for (; i < n; i++)
        if (v[i] != '\r' && v[i] != '\n')
            buf_append(out, v + i, 1);
}

/* Where the angle address starts (an unquoted, uncommented '<'), or -1. */
static long sign_angle(const char *v, size_t n)
{
    int depth = 0;
    bool quoted = false;

    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\\' && (quoted || depth > 0)) {
            i++;
        } else if (quoted) {
            quoted = v[i] != '"';
        } else if (v[i] == '(') {
            depth++;
        } else if (v[i] == ')' && depth > 0) {
            depth--;
        } else if (depth == 0 && v[i] == '"') {
            quoted = true;
        } else if (depth == 0 && v[i] == '<') {
            return (long)i;
        }
    }
    return -1;
}

/* s[0..n) as the inside of a quoted string. */
static void sign_quote(buf_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf_append(out, "\\", 1);
        buf_append(out, s + i, 1);
    }
}

/*
 * The new From: the author's display name (as written: encoded words and
 * quoted strings stay what they were) and "via ALIAS", at the rewrite
 * address; without a display name, the author's address in its place.
 */
static void sign_new_from(buf_t *out, const canon_field_t *from, const char *alias,
                          const char *address)
{
    const char *v;
    size_t n;
    buf_t one;
    long lt;

    sign_value(from, &v, &n);
    buf_init(&one, SIZE_MAX);
    sign_unfold(v, n, &one);
    lt = sign_angle(buf_ptr(&one) ? buf_ptr(&one) : "", buf_used(&one));
    buf_append(out, "From: ", 6);
    if (lt > 0 && (size_t)lt <= SIGN_PHRASE_MAX) {
        size_t k = (size_t)lt;
        while (k > 0 && buf_ptr(&one)[k - 1] == ' ')
            k--;
        buf_append(out, buf_ptr(&one), k);
        if (alias != NULL) {
            buf_append(out, " \"via ", 6);
            sign_quote(out, alias, strlen(alias));
            buf_append(out, "\"", 1);
        }
    } else {
        /* No name to keep: the author's address says who wrote it. */
        const char *a = buf_ptr(&one) ? buf_ptr(&one) : "";
        size_t an = buf_used(&one);

        if (lt >= 0) {
            const char *gt = memchr(a + lt, '>', an - (size_t)lt);
            an = gt != NULL ? (size_t)(gt - a) - (size_t)lt - 1 : an - (size_t)lt - 1;
            a += lt + 1;
        }
        if (an > SIGN_PHRASE_MAX)
            an = 0;
        buf_append(out, "\"", 1);
        sign_quote(out, a, an);
        if (alias != NULL) {
            buf_append(out, an > 0 ? " via " : "via ", an > 0 ? 5 : 4);
            sign_quote(out, alias, strlen(alias));
        }
        buf_append(out, "\"", 1);
    }
    buf_printf(out, " <%s>\r\n", address);
    buf_free(&one);
}

/* The header section with From rewritten: the first From field replaced
 * (others dropped), Reply-To: naming the author unless there is one, and
 * X-Original-From: keeping the original.  false without a From field. */
static bool sign_rewrite(sign_msg_t *m, const canon_field_t *f, size_t nf, const char *alias)
{
    const canon_field_t *from = NULL;
    bool reply_to = false;

    for (size_t i = 0; i < nf; i++) {
        if (from == NULL && sign_is(&f[i], "From"))
            from = &f[i];
        reply_to = reply_to || sign_is(&f[i], "Reply-To");
    }
    if (from == NULL)
        return false;
    for (size_t i = 0; i < nf; i++) {
        const char *v;
        size_t n;

        if (!sign_is(&f[i], "From")) {
            buf_append(&m->headers, f[i].ptr, f[i].len);
            buf_append(&m->headers, "\r\n", 2);
            continue;
        }
        if (&f[i] != from)
            continue;
        sign_new_from(&m->headers, from, alias, m->ctx->rewrite_address);
        sign_value(from, &v, &n);
        if (!reply_to) {
            buf_append(&m->headers, "Reply-To:", 9);
            buf_append(&m->headers, v, n);
            buf_append(&m->headers, "\r\n", 2);
        }
        buf_append(&m->headers, "X-Original-From:", 16);
        buf_append(&m->headers, v, n);
        buf_append(&m->headers, "\r\n", 2);
    }
    return true;
}

/* ---- preparing and signing ---- */

void sign_msg_set_headers(sign_msg_t *m, const char *p, size_t n, uint64_t skip)
{
    buf_reset(&m->replaced);
    buf_append(&m->replaced, p, n);
    m->has_replaced = true;
    m->replaced_skip = skip;
}

int sign_msg_prepare(sign_msg_t *m, const authres_t *res, const char *trace, size_t trace_len,
                     const char *alias, time_t now)
{
    const sign_ctx_t *c = m->ctx;
    canon_field_t *f = NULL;
    const buf_t *src;
    size_t nf = 0, src_len;
    bool own_ok;
    int rc = 0;

    if (m->prepared)
        return SIGN_ESTATE;
    m->prepared = true;
    buf_append(&m->trace, trace, trace_len);
    if (!m->head_done && !m->head_long)
        m->head_len = buf_used(&m->head); /* no body: all of it is fields */
    /* The section that leaves: the filters' when they made one. */
    src = m->has_replaced ? &m->replaced : &m->head;
    src_len = m->has_replaced ? buf_used(&m->replaced) : m->head_len;
    f = xcalloc(SIGN_FIELDS_MAX, sizeof(*f));
    /* The message's own section must be one even when it is replaced:
     * the body hash starts after its empty line. */
    own_ok = !m->head_long &&
             (!m->has_replaced ||
              sign_fields(buf_used(&m->head) > 0 ? buf_ptr(&m->head) : "", m->head_len, f, &nf));
    nf = 0;
    if (!own_ok || !sign_fields(buf_used(src) > 0 ? buf_ptr(src) : "", src_len, f, &nf)) {
        rc = m->err = SIGN_EHEADERS;
        goto done;
    }
    if (dkimsign_body_final(&m->body, m->bh) != 0) {
        rc = m->err = DKIMSIGN_ECRYPTO;
        goto done;
    }
    m->now = (uint64_t)now;
    m->rewrite_why = sign_rewrite_reason(c, res);
    if (m->rewrite_why != NULL && sign_rewrite(m, f, nf, alias)) {
        m->rewritten = true;
    } else {
        m->rewrite_why = NULL;
        buf_append(&m->headers, buf_used(src) > 0 ? buf_ptr(src) : "", src_len);
    }
    m->skip = m->has_replaced ? m->replaced_skip : m->head_len;
    /* A rewritten message is signed whatever dkim_sign says: its new
     * author's domain must pass DMARC by it. */
    m->do_dkim = c->dkim || m->rewritten;
    /* A chain that failed only for want of a key is left as it came:
     * sealing it cv=fail would end it for good. */
    m->do_arc = c->arc && !(res->arc_done && res->arc.temporary);
    if (m->do_arc) {
        m->cv = res->arc_done ? res->arc.cv : DKIM_CV_NONE;
        m->instances = res->arc_done ? res->arc.instances : 0;
        if (authres_write(res, c->authserv_id, "", &m->aar) != 0)
            m->do_arc = false;
    }
done:
    free(f);
    buf_free(&m->head);
    return rc;
}

/* f[*nf]: the fields of p[0..n) appended. */
static bool sign_add_fields(const buf_t *b, canon_field_t *f, size_t *nf)
{
    return sign_fields(buf_ptr(b) ? buf_ptr(b) : "", buf_used(b), f, nf);
}

void sign_msg_work(sign_msg_t *m)
{
    const sign_ctx_t *c = m->ctx;
    dkimsign_t signer = {
        .key = c->key,
        .domain = c->domain,
        .selector = c->selector,
        .time = m->now,
    };
    canon_field_t *f = NULL;
    buf_t dkim, arc;
    size_t nf = 0;
    int rc;

    if (!m->prepared || m->worked)
        return;
    m->worked = true;
    buf_init(&dkim, SIZE_MAX);
    buf_init(&arc, SIZE_MAX);
    if (m->err != 0)
        goto out;
    f = xcalloc(SIGN_FIELDS_MAX + 4, sizeof(*f));
    /* The DKIM signature's field goes first, so the seal's message
     * signature covers it like the rest. */
    nf = 1;
    if (!sign_add_fields(&m->trace, f, &nf) || !sign_add_fields(&m->headers, f, &nf)) {
        m->err = SIGN_EHEADERS;
        goto out;
    }
    if (m->do_dkim) {
        signer.kind = DKIMSIG_DKIM;
        if ((rc = dkimsign_sign(&signer, f + 1, nf - 1, m->bh, &dkim)) != 0) {
            m->err = rc;
            goto out;
        }
        f[0].ptr = buf_ptr(&dkim);
        f[0].len = buf_used(&dkim) - 2;
    }
    if (m->do_arc) {
        const canon_field_t *sealed = m->do_dkim ? f : f + 1;
        size_t nsealed = m->do_dkim ? nf : nf - 1;

        rc = arc_seal(&signer, sealed, nsealed, m->bh, buf_ptr(&m->aar), buf_used(&m->aar), m->cv,
                      m->instances, &arc);
        /* A chain whose latest seal says fail is not extended: not an
         * error, the message just goes without a set of ours. */
        if (rc != 0 && rc != ARC_ECHAINFAILED && rc != ARC_EFULL)
            m->err = rc;
        m->do_arc = rc == 0;
    }
out:
    if (m->err == 0) {
        buf_append(&m->out, buf_ptr(&arc), buf_used(&arc));
        buf_append(&m->out, buf_ptr(&dkim), buf_used(&dkim));
    } else {
        /* Nothing half done: the message goes as it came, but for the
         * filters' section. */
        m->do_dkim = m->do_arc = m->rewritten = false;
    }
    buf_append(&m->out, buf_ptr(&m->trace), buf_used(&m->trace));
    if (m->rewritten)
        buf_append(&m->out, buf_ptr(&m->headers), buf_used(&m->headers));
    else if (m->has_replaced)
        buf_append(&m->out, buf_ptr(&m->replaced), buf_used(&m->replaced));
    snprintf(m->note, sizeof(m->note), "%s%s%s", m->do_dkim ? "dkim " : "", m->do_arc ? "arc " : "",
             m->rewritten ? "from-rewritten " : "");
    if (m->note[0] != '\0')
        m->note[strlen(m->note) - 1] = '\0';
    buf_free(&dkim);
    buf_free(&arc);
    free(f);
}

const char *sign_msg_prepend(const sign_msg_t *m, size_t *len)
{
    if (!m->worked) {
        /* Not signed (work is what writes out): the trace alone. */
        *len = buf_used(&m->trace);
        return buf_ptr(&m->trace) ? buf_ptr(&m->trace) : "";
    }
    *len = buf_used(&m->out);
    return buf_ptr(&m->out) ? buf_ptr(&m->out) : "";
}

uint64_t sign_msg_skip(const sign_msg_t *m)
{
    if (!m->worked)
        return 0;
    return m->rewritten ? m->skip : m->has_replaced ? m->replaced_skip : 0;
}

const char *sign_msg_note(const sign_msg_t *m)
{
    return m->note;
}

int sign_msg_error(const sign_msg_t *m)
{
    return m->err;
}

bool sign_msg_rewrote(const sign_msg_t *m, const char **why)
{
    *why = m->rewrite_why;
    return m->worked && m->rewritten;
}

void sign_msg_free(sign_msg_t *m)
{
    if (m == NULL)
        return;
    dkimsign_body_free(&m->body);
    buf_free(&m->head);
    buf_free(&m->aar);
    buf_free(&m->trace);
    buf_free(&m->headers);
    buf_free(&m->replaced);
    buf_free(&m->out);
    sign_ctx_unref(m->ctx);
    free(m);
}

/* ---- messages of our own ---- */

int sign_message(const sign_ctx_t *ctx, const char *msg, size_t len, time_t now, buf_t *out)
{
    const char *end = memmem(msg, len, "\r\n\r\n", 4);
    size_t head = end != NULL ? (size_t)(end - msg) + 2 : len;
    dkimsign_t signer = {
        .kind = DKIMSIG_DKIM,
        .key = ctx->key,
        .domain = ctx->domain,
        .selector = ctx->selector,
        .time = (uint64_t)now,
    };
    canon_field_t *f = xcalloc(SIGN_FIELDS_MAX, sizeof(*f));
    dkimsign_body_t body;
    unsigned char bh[32];
    size_t nf = 0;
    int rc;

    if (!sign_fields(msg, head, f, &nf)) {
        free(f);
        return SIGN_EHEADERS;
    }
    if ((rc = dkimsign_body_init(&body)) != 0) {
        free(f);
        return rc;
    }
    dkimsign_body_feed(&body, msg, len);
    rc = dkimsign_body_final(&body, bh);
    dkimsign_body_free(&body);
    if (rc == 0)
        rc = dkimsign_sign(&signer, f, nf, bh, out);
    free(f);
    return rc;
}

const char *sign_strerror(int err)
{
    switch (err) {
    case SIGN_EKEY:
        return "the signing key did not load";
    case SIGN_EHEADERS:
        return "the header section is too long or has a line that is no header field";
    case SIGN_ESTATE:
        return "a signing call out of order";
    default:
        return err <= DKIMSIGN_EBASE && err > DKIMSIGN_EBASE - 1000 ? dkimsign_strerror(err)
               : err <= ARC_EBASE && err > ARC_EBASE - 1000         ? arc_strerror(err)
                                                                    : "unknown signing error";
    }
}
