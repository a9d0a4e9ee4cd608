#include "dkim.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "dkimkey.h"
#include "str.h"
#include "tagval.h"
#include "xalloc.h"

/* Fields kept, whatever their total size: a bound on the field index. */
#define DKIM_FIELDS_MAX 1000

typedef enum { KEY_WAITING, KEY_FOUND, KEY_NONE, KEY_TEMPFAIL, KEY_BAD } key_state_t;

typedef struct {
    dkimsig_t sig;
    dkim_result_t res;
    size_t field; /* index of its own field in the store */
    bool parsed;
    int bh;       /* its body hash (d->bhs), -1 for none */
    bool body_ok; /* set by dkim_end() */
    const char *body_why;
    key_state_t key_state;
    const char *key_why;
    dkimkey_t key;
} sigstate_t;

typedef struct {
    size_t off, len, name_len;
} field_t;

/* One body hash: a signature's, or one asked for by dkim_body_hash_add(). */
typedef struct {
    EVP_MD_CTX *ctx; /* NULL once final, or when it could not start */
    canon_t type;
    uint64_t limit; /* canonical octets hashed at most (l=) */
    uint64_t hashed;
    uint64_t body_len; /* canonical octets seen */
    bool ok;           /* md is the hash */
    unsigned char md[32];
} bodyhash_t;

typedef struct {
    dkim_t *d;
    canon_t type;
} canon_sink_t;

struct dkim {
    dkim_options_t opt;
    enum { IN_HEADERS, IN_BODY, ENDED } state;
    bool cr;         /* a CR ended the last chunk, in the headers */
    size_t line_len; /* bytes of the current line, kept or not */
    buf_t line, cur; /* the line being read; the field it belongs to */
    buf_t store;     /* the raw fields */
    field_t *fields;
    size_t nfields, fields_cap;
    canon_field_t *view; /* the fields as pointers, once the body started */
    bool overflow;       /* headers beyond header_max: none verifies */
    /* A line that is neither a field nor a continuation was met: what
     * follows is not a header field to a receiver's RFC 5322 parser, so
     * none of it is one here either (no From for DMARC, no signature). */
    bool fields_over;
    sigstate_t **sigs;
    size_t nsigs;
    canon_body_t canon[2];
    canon_sink_t sink[2];
    bool canon_used[2];
    uint64_t canon_len[2];
    bodyhash_t *bhs;
    size_t nbhs, bhs_cap;
};

const char *dkim_status_name(dkim_status_t s)
{
    switch (s) {
    case DKIM_PENDING:
        return "pending";
    case DKIM_PASS:
        return "pass";
    case DKIM_FAIL:
        return "fail";
    case DKIM_PERMERROR:
        return "permerror";
    case DKIM_TEMPERROR:
        return "temperror";
    }
    return "permerror";
}

dkim_t *dkim_new(const dkim_options_t *opt)
{
    dkim_t *d = xcalloc(1, sizeof(*d));

    d->opt = *opt;
    buf_init(&d->line, opt->header_max);
    buf_init(&d->cur, opt->header_max);
    buf_init(&d->store, opt->header_max);
    d->sigs = xcalloc(opt->max_signatures ? opt->max_signatures : 1, sizeof(*d->sigs));
    return d;
}

void dkim_free(dkim_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nsigs; i++)
        free(d->sigs[i]);
    for (size_t i = 0; i < d->nbhs; i++)
        EVP_MD_CTX_free(d->bhs[i].ctx);
    free(d->bhs);
    free(d->sigs);
    free(d->fields);
    free(d->view);
    buf_free(&d->line);
    buf_free(&d->cur);
    buf_free(&d->store);
    free(d);
}

bool dkim_headers_done(const dkim_t *d)
{
    return d->state != IN_HEADERS;
}

size_t dkim_count(const dkim_t *d)
{
    return d->nsigs;
}

const dkim_result_t *dkim_result(const dkim_t *d, size_t index)
{
    return index < d->nsigs ? &d->sigs[index]->res : NULL;
}

static bool dkim_is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Best effort for a signature that did not parse: its d= and s=, so the
 * Authentication-Results line can say whose it was. */
static void dkim_salvage(sigstate_t *s, const char *value, size_t len)
{
    tagval_list_t l;
    const tagval_tag_t *t;

    if (tagval_parse(value, len, true, &l) < 0)
        return;
    if ((t = tagval_get(&l, "d")) != NULL && t->value_len < sizeof(s->res.domain)) {
        for (size_t i = 0; i < t->value_len; i++)
            if ((unsigned char)t->value[i] <= 32 || (unsigned char)t->value[i] >= 127)
                return;
        memcpy(s->res.domain, t->value, t->value_len);
        s->res.domain[t->value_len] = '\0';
        str_lower(s->res.domain);
    }
}

/* A DKIM-Signature field is complete; field is its index in the store, or
 * SIZE_MAX when it could not be kept. */
static void dkim_add_signature(dkim_t *d, size_t field, const char *raw, size_t len,
                               size_t name_len)
{
    const char *value = raw + name_len + 1;
    size_t vlen = len - name_len - 1;
    sigstate_t *s;
    const char *why;

    if (d->nsigs >= d->opt.max_signatures)
        return;
    s = xcalloc(1, sizeof(*s));
    d->sigs[d->nsigs] = s;
    s->field = field;
    s->res.status = DKIM_PENDING;
    if (field == SIZE_MAX) { /* not kept: the header section is too large */
        s->res.status = DKIM_PERMERROR;
        s->res.reason = "header section too large";
        dkim_salvage(s, value, vlen);
        d->nsigs++;
        return;
    }
    if (dkimsig_parse(value, vlen, &s->sig, &why) < 0) {
        s->res.status = DKIM_PERMERROR;
        s->res.reason = why;
        dkim_salvage(s, value, vlen);
        d->nsigs++;
        return;
    }
    /* b= was found in the value; make its span relative to the field. */
    s->sig.b_raw_start += name_len + 1;
    s->sig.b_raw_end += name_len + 1;
    s->parsed = true;
    memcpy(s->res.domain, s->sig.domain, sizeof(s->res.domain));
    memcpy(s->res.selector, s->sig.selector, sizeof(s->res.selector));
    memcpy(s->res.auid, s->sig.auid, sizeof(s->res.auid));
    memcpy(s->res.b_prefix, s->sig.b_prefix, sizeof(s->res.b_prefix));
    s->res.has_alg = true;
    s->res.alg = s->sig.alg;
    s->res.has_length = s->sig.has_length;
    s->res.length = s->sig.length;
    d->nsigs++;
    if (d->opt.on_signature)
        d->opt.on_signature(d->opt.arg, d->nsigs - 1);
}

/* The field in d->cur is complete. */
static void dkim_finish_field(dkim_t *d)
{
    const char *raw, *colon;
    size_t len = buf_used(&d->cur), name_len;
    size_t index = d->nfields;

    if (len == 0) /* and buf_ptr() may be NULL */
        return;
    raw = buf_ptr(&d->cur);
    colon = memchr(raw, ':', len);
    if (colon == NULL) /* not a header field; nothing can select it */
        goto done;
    name_len = (size_t)(colon - raw);
    while (name_len > 0 && dkim_is_wsp(raw[name_len - 1]))
        name_len--;
    if (!d->overflow) {
        if (d->nfields == DKIM_FIELDS_MAX || buf_append(&d->store, raw, len) < 0) {
            d->overflow = true;
        } else {
            if (d->nfields == d->fields_cap)
                d->fields = xgrow(d->fields, &d->fields_cap, d->nfields + 1, sizeof(*d->fields));
            d->fields[d->nfields].off = buf_used(&d->store) - len;
            d->fields[d->nfields].len = len;
            d->fields[d->nfields].name_len = name_len;
            d->nfields++;
        }
    }
    if (str_eq_ci_n(raw, name_len, "DKIM-Signature"))
        dkim_add_signature(d, d->overflow ? SIZE_MAX : index, raw, len, (size_t)(colon - raw));
    if (d->opt.on_field)
        d->opt.on_field(d->opt.arg, raw, len, name_len);
done:
    buf_reset(&d->cur);
}

static void dkim_body_out(void *arg, const char *p, size_t n)
{
    canon_sink_t *sink = arg;
    dkim_t *d = sink->d;

    d->canon_len[sink->type] += n;
    for (size_t i = 0; i < d->nbhs; i++) {
        bodyhash_t *h = &d->bhs[i];
        uint64_t take = n;

        if (h->ctx == NULL || h->type != sink->type)
            continue;
        if (h->limit - h->hashed < take)
            take = h->limit - h->hashed;
        if (take > 0 && EVP_DigestUpdate(h->ctx, p, (size_t)take) == 1)
            h->hashed += take;
    }
}

int dkim_body_hash_add(dkim_t *d, canon_t type, uint64_t limit)
{
    bodyhash_t *h;

    if (d->state != IN_HEADERS)
        return -1;
    if (d->nbhs == d->bhs_cap)
        d->bhs = xgrow(d->bhs, &d->bhs_cap, d->nbhs + 1, sizeof(*d->bhs));
    h = &d->bhs[d->nbhs];
    memset(h, 0, sizeof(*h));
    h->type = type;
    h->limit = limit;
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx != NULL && EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
    d->canon_used[type] = true;
    return (int)d->nbhs++;
}

int dkim_body_hash_get(const dkim_t *d, int handle, unsigned char md[32], uint64_t *body_len)
{
    const bodyhash_t *h;

    if (d->state != ENDED || handle < 0 || (size_t)handle >= d->nbhs)
        return -1;
    h = &d->bhs[handle];
    *body_len = h->body_len;
    if (!h->ok)
        return -1;
    memcpy(md, h->md, 32);
    return 0;
}

const canon_field_t *dkim_fields(const dkim_t *d, size_t *n, bool *complete)
{
    *n = d->view != NULL ? d->nfields : 0;
    *complete = !d->overflow;
    return d->view;
}

static void dkim_start_body(dkim_t *d)
{
    const char *store = buf_used(&d->store) ? buf_ptr(&d->store) : "";

    /* Nothing is added to the store from here on: pointers into it last. */
    d->view = xcalloc(d->nfields ? d->nfields : 1, sizeof(*d->view));
    for (size_t i = 0; i < d->nfields; i++) {
        d->view[i].ptr = store + d->fields[i].off;
        d->view[i].len = d->fields[i].len;
    }
    if (d->opt.on_headers_done)
        d->opt.on_headers_done(d->opt.arg);
    for (size_t i = 0; i < d->nsigs; i++) {
        sigstate_t *s = d->sigs[i];

        s->bh = -1;
        if (s->parsed)
            s->bh = dkim_body_hash_add(d, s->sig.bcanon,
                                       s->sig.has_length ? s->sig.length : UINT64_MAX);
    }
    d->state = IN_BODY;
    for (int t = 0; t < 2; t++) {
        d->sink[t].d = d;
        d->sink[t].type = (canon_t)t;
        canon_body_init(&d->canon[t], (canon_t)t, dkim_body_out, &d->sink[t]);
    }
}

/* A whole line of the header section is in d->line. */
static void dkim_header_line(dkim_t *d)
{
    size_t len = buf_used(&d->line);
    const char *line = len ? buf_ptr(&d->line) : "";

    if (d->line_len == 0) {
        dkim_finish_field(d);
        dkim_start_body(d);
    } else if (len > 0 && dkim_is_wsp(line[0]) && buf_used(&d->cur) > 0) {
        if (buf_append(&d->cur, "\r\n", 2) < 0 || buf_append(&d->cur, line, len) < 0)
            d->overflow = true;
    } else {
        dkim_finish_field(d);
        /* A receiver's parser ends the header section here; the body
         * still starts at the empty line for the hashes, as signers
         * count it.  A line too long to keep (len 0) is judged by
         * nothing: the overflow already fails every signature. */
        if (!d->fields_over && len > 0 && !canon_is_field_start(line, len))
            d->fields_over = true;
        if (!d->fields_over && buf_append(&d->cur, line, len) < 0)
            d->overflow = true;
    }
    buf_reset(&d->line);
    d->line_len = 0;
}

static void dkim_line_add(dkim_t *d, const char *p, size_t n)
{
    d->line_len += n;
    if (buf_append(&d->line, p, n) < 0)
        d->overflow = true;
}

/* Consume header bytes; returns how many were used (the rest is body). */
static size_t dkim_feed_headers(dkim_t *d, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && d->state == IN_HEADERS) {
        if (d->cr) {
            d->cr = false;
            if (p[i] == '\n') {
                i++;
                dkim_header_line(d);
                continue;
            }
            dkim_line_add(d, "\r", 1);
        }
        if (p[i] == '\r') {
            d->cr = true;
            i++;
        } else {
            size_t j = i;

            while (j < n && p[j] != '\r')
                j++;
            dkim_line_add(d, p + i, j - i);
            i = j;
        }
    }
    return i;
}

void dkim_feed(dkim_t *d, const char *p, size_t n)
{
    size_t used = 0;

    if (d->state == IN_HEADERS)
        used = dkim_feed_headers(d, p, n);
    if (d->state == IN_BODY && used < n)
        for (int t = 0; t < 2; t++)
            if (d->canon_used[t])
                canon_body_update(&d->canon[t], p + used, n - used);
}

static void dkim_finish_body_hash(dkim_t *d, bodyhash_t *h)
{
    unsigned int mdlen = 0;

    h->body_len = d->canon_len[h->type];
    h->ok =
        h->ctx != NULL && EVP_DigestFinal_ex(h->ctx, h->md, &mdlen) == 1 && mdlen == sizeof(h->md);
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

static void dkim_check_body_hash(dkim_t *d, sigstate_t *s)
{
    const bodyhash_t *h = &d->bhs[s->bh];

    s->res.body_len = h->body_len;
    if (!h->ok)
        s->body_why = "cannot hash";
    else if (s->sig.has_length && s->sig.length > h->body_len)
        s->body_why = "body shorter than l=";
    else if (CRYPTO_memcmp(h->md, s->sig.bh, sizeof(s->sig.bh)) != 0)
        s->body_why = "body hash did not verify";
    else
        s->body_ok = true;
}

void dkim_end(dkim_t *d)
{
    if (d->state == ENDED)
        return;
    if (d->state == IN_HEADERS) {
        /* A message without a body: its last line may lack a CRLF. */
        if (d->cr) {
            d->cr = false;
            dkim_line_add(d, "\r", 1);
        }
        if (d->line_len > 0)
            dkim_header_line(d);
        dkim_finish_field(d);
        dkim_start_body(d);
    }
    for (int t = 0; t < 2; t++)
        if (d->canon_used[t])
            canon_body_final(&d->canon[t]);
    for (size_t i = 0; i < d->nbhs; i++)
        dkim_finish_body_hash(d, &d->bhs[i]);
    for (size_t i = 0; i < d->nsigs; i++)
        if (d->sigs[i]->parsed)
            dkim_check_body_hash(d, d->sigs[i]);
    d->state = ENDED;
}

int dkim_key_name(const dkim_t *d, size_t index, char *dst, size_t size)
{
    if (index >= d->nsigs || !d->sigs[index]->parsed)
        return -1;
    return str_fmt(dst, size, "%s._domainkey.%s", d->sigs[index]->sig.selector,
                   d->sigs[index]->sig.domain);
}

void dkim_set_key(dkim_t *d, size_t index, txt_status_t status, const txt_record_t *records,
                  size_t nrecords)
{
    sigstate_t *s;

    if (index >= d->nsigs || !d->sigs[index]->parsed)
        return;
    s = d->sigs[index];
    if (status == TXT_TEMPFAIL) {
        s->key_state = KEY_TEMPFAIL;
        return;
    }
    if (status == TXT_NONE || nrecords == 0) {
        s->key_state = KEY_NONE;
        return;
    }
    /* Several records at one name are the publisher's mistake (RFC 6376
     * 3.6.2.2 leaves the choice open): the first that parses is used. */
    s->key_state = KEY_BAD;
    s->key_why = NULL;
    for (size_t i = 0; i < nrecords; i++) {
        const char *why;

        if (dkimsig_key_parse(records[i].data, records[i].len, &s->key, &why) == 0) {
            s->key_state = KEY_FOUND;
            return;
        }
        if (s->key_why == NULL)
            s->key_why = why;
    }
}

static EVP_PKEY *dkim_load_key(sigstate_t *s, const char **why)
{
    bool ed = s->key.type == DKIM_KEY_ED25519;

    if (ed != (s->sig.alg == DKIM_ED25519_SHA256)) {
        *why = "key type does not match a=";
        return NULL;
    }
    return dkimkey_public(&s->key, &s->res.key_bits, why);
}

/* The data the signature covers (RFC 6376 3.7): the fields h= names, each
 * the last one not yet used, then the signature's own field with b= blank,
 * without its CRLF. */
static int dkim_header_data(dkim_t *d, sigstate_t *s, buf_t *out)
{
    const canon_field_t *own = &d->view[s->field];
    int rc = canon_select(s->sig.hcanon, d->view, d->nfields, s->sig.hname, s->sig.nhnames, out);

    if (rc == 0)
        rc = canon_header_blank(s->sig.hcanon, own->ptr, own->len, s->sig.b_raw_start,
                                s->sig.b_raw_end, out);
    return rc;
}

static void dkim_verify_one(dkim_t *d, sigstate_t *s)
{
    dkim_result_t *r = &s->res;
    EVP_PKEY *pk = NULL;
    unsigned char hash[32];
    const char *why = NULL;
    buf_t data;

    r->testing = s->key_state == KEY_FOUND && s->key.testing;
    switch (s->key_state) {
    case KEY_WAITING:
    case KEY_TEMPFAIL:
        r->status = DKIM_TEMPERROR;
        r->reason = "key lookup failed";
        return;
    case KEY_NONE:
        r->status = DKIM_PERMERROR;
        r->reason = "no key";
        return;
    case KEY_BAD:
        r->status = DKIM_PERMERROR;
        r->reason = s->key_why;
        return;
    case KEY_FOUND:
        break;
    }
    r->status = DKIM_PERMERROR;
    if (d->overflow) {
        r->reason = "header section too large";
        return;
    }
    if (s->key.p_len == 0) {
        r->reason = "key revoked";
        return;
    }
    if (s->sig.has_expire && (uint64_t)d->opt.now > s->sig.expire) {
        r->reason = "signature expired";
        return;
    }
    if (s->key.strict) {
        const char *at = strrchr(s->sig.auid, '@');

        if (at == NULL || strcmp(at + 1, s->sig.domain) != 0) {
            r->reason = "key requires i= to match d= (t=s)";
            return;
        }
    }
    if ((pk = dkim_load_key(s, &why)) == NULL) {
        r->reason = why;
        return;
    }
    r->status = DKIM_FAIL;
    if (!s->body_ok) {
        r->reason = s->body_why;
        goto done;
    }
    buf_init(&data, d->opt.header_max * 2 + 4096);
    if (dkim_header_data(d, s, &data) < 0 ||
        EVP_Digest(buf_ptr(&data), buf_used(&data), hash, NULL, EVP_sha256(), NULL) != 1) {
        r->status = DKIM_PERMERROR;
        r->reason = "header section too large";
    } else if (dkimkey_verify(pk, s->sig.alg, s->sig.b, s->sig.b_len, hash)) {
        r->status = DKIM_PASS;
        r->reason = NULL;
    } else {
        r->reason = "signature did not verify";
    }
    buf_free(&data);
done:
    EVP_PKEY_free(pk);
}

void dkim_finish(dkim_t *d)
{
    dkim_end(d);
    for (size_t i = 0; i < d->nsigs; i++)
        if (d->sigs[i]->parsed && d->sigs[i]->res.status == DKIM_PENDING)
            dkim_verify_one(d, d->sigs[i]);
}
