#include "arc.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "dkimkey.h"
#include "str.h"
#include "xalloc.h"

typedef enum { ARC_AAR, ARC_AMS, ARC_AS, ARC_OTHER } arc_kind_t;

typedef enum { ARC_KEY_WAITING, ARC_KEY_FOUND, ARC_KEY_NONE, ARC_KEY_TEMPFAIL, ARC_KEY_BAD } arc_key_state_t;

typedef struct {
    char name[DKIMSIG_SELECTOR_MAX + DKIMSIG_DOMAIN_MAX + 16];
    arc_key_state_t state;
    const char *why;
    EVP_PKEY *pk;
    dkim_keytype_t type;
} arc_key_t;

struct arc {
    time_t now;
    bool seen;    /* ARC fields were met */
    bool pending; /* the structure holds: signatures to verify */
    arc_result_t res;
    arc_chain_t chain;
    dkimsig_t *sigs; /* [0]: the latest message signature; [i]: seal i */
    size_t *keyof;   /* the key of each of sigs */
    arc_key_t *keys;
    size_t nkeys;
    int bh; /* the message signature's body hash (dkim.h) */
};

const char *arc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case ARC_ESTRUCT:
        return "broken ARC chain";
    case ARC_ECHAINFAILED:
        return "the ARC chain arrived failed; it is not extended";
    case ARC_EFULL:
        return "the ARC chain has 50 sets already";
    case ARC_EINVAL:
        return "the ARC chain is not the one validated";
    }
    return "unknown error";
}

const char *arc_cv_name(dkim_cv_t cv)
{
    return cv == DKIM_CV_PASS ? "pass" : cv == DKIM_CV_FAIL ? "fail" : "none";
}

/* ---- the chain's structure ---- */

static arc_kind_t arc_kind_of(const char *field, size_t len, size_t *value)
{
    size_t n = canon_name_len(field, len);
    const char *colon = memchr(field, ':', len);

    if (colon == NULL)
        return ARC_OTHER;
    *value = (size_t)(colon - field) + 1;
    if (str_eq_ci_n(field, n, "ARC-Authentication-Results"))
        return ARC_AAR;
    if (str_eq_ci_n(field, n, "ARC-Message-Signature"))
        return ARC_AMS;
    if (str_eq_ci_n(field, n, "ARC-Seal"))
        return ARC_AS;
    return ARC_OTHER;
}

static size_t arc_skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

int arc_aar_parse(const char *value, size_t len, unsigned *instance, size_t *payload)
{
    size_t i = arc_skip_ws(value, 0, len), digits = 0;
    unsigned v = 0;

    if (i >= len || value[i] != 'i')
        return ARC_ESTRUCT;
    i = arc_skip_ws(value, i + 1, len);
    if (i >= len || value[i] != '=')
        return ARC_ESTRUCT;
    i = arc_skip_ws(value, i + 1, len);
    for (; i < len && value[i] >= '0' && value[i] <= '9' && digits < 4; i++, digits++)
        v = v * 10 + (unsigned)(value[i] - '0');
    i = arc_skip_ws(value, i, len);
    if (digits == 0 || digits > 3 || v == 0 || i >= len || value[i] != ';')
        return ARC_ESTRUCT;
    *instance = v;
    *payload = i + 1;
    return 0;
}

/* The instance of one ARC field, and for a seal its cv=; 0 when the field
 * does not parse. */
static unsigned arc_instance_of(arc_kind_t kind, const char *value, size_t len, dkim_cv_t *cv)
{
    unsigned instance = 0;
    size_t payload;
    const char *why;
    dkimsig_t *sig;

    if (kind == ARC_AAR)
        return arc_aar_parse(value, len, &instance, &payload) == 0 ? instance : 0;
    sig = xmalloc(sizeof(*sig));
    if (dkimsig_parse_kind(kind == ARC_AMS ? DKIMSIG_AMS : DKIMSIG_SEAL, value, len, sig, &why) ==
        0) {
        instance = sig->instance;
        *cv = sig->cv;
    }
    free(sig);
    return instance;
}

int arc_chain_collect(const canon_field_t *fields, size_t nfields, arc_chain_t *chain,
                      const char **why)
{
    static const char *const malformed[] = {"malformed ARC-Authentication-Results",
                                            "malformed ARC-Message-Signature",
                                            "malformed ARC-Seal"};
    dkim_cv_t cv[ARC_INSTANCE_MAX + 1] = {DKIM_CV_NONE};

    memset(chain, 0, sizeof(*chain));
    *why = NULL;
    for (size_t f = 0; f < nfields; f++) {
        size_t off = 0;
        arc_kind_t kind = arc_kind_of(fields[f].ptr, fields[f].len, &off);
        dkim_cv_t c = DKIM_CV_NONE;
        unsigned i;
        canon_field_t *slot;

        if (kind == ARC_OTHER)
            continue;
        chain->any = true;
        i = arc_instance_of(kind, fields[f].ptr + off, fields[f].len - off, &c);
        if (i == 0 || i > ARC_INSTANCE_MAX) {
            if (*why == NULL)
                *why = i == 0 ? malformed[kind] : "more than 50 ARC sets";
            continue;
        }
        slot = kind == ARC_AAR ? &chain->set[i].aar
               : kind == ARC_AMS ? &chain->set[i].ams
                                 : &chain->set[i].as;
        if (slot->ptr != NULL) {
            if (*why == NULL)
                *why = "an ARC field twice in one instance";
            continue;
        }
        *slot = fields[f];
        if (kind == ARC_AS)
            cv[i] = c;
        if (i > chain->n)
            chain->n = i;
    }
    if (chain->n > 0 && chain->set[chain->n].as.ptr != NULL)
        chain->latest_fail = cv[chain->n] == DKIM_CV_FAIL;
    for (unsigned i = 1; *why == NULL && i <= chain->n; i++)
        if (!chain->set[i].aar.ptr || !chain->set[i].ams.ptr || !chain->set[i].as.ptr)
            *why = "ARC sets not complete from 1 up";
    if (*why == NULL && chain->latest_fail)
        *why = "the latest ARC-Seal says cv=fail";
    for (unsigned i = 1; *why == NULL && i <= chain->n; i++)
        if (cv[i] != (i == 1 ? DKIM_CV_NONE : DKIM_CV_PASS))
            *why = i == 1 ? "the first ARC-Seal does not say cv=none"
                          : "an ARC-Seal after the first does not say cv=pass";
    if (*why == NULL && chain->any && chain->n == 0)
        *why = "malformed ARC fields";
    return *why != NULL ? ARC_ESTRUCT : 0;
}

/* ---- validation ---- */

arc_t *arc_new(time_t now)
{
    arc_t *a = xcalloc(1, sizeof(*a));

    a->now = now;
    a->bh = -1;
    return a;
}

void arc_free(arc_t *a)
{
    if (a == NULL)
        return;
    for (size_t k = 0; k < a->nkeys; k++)
        EVP_PKEY_free(a->keys[k].pk);
    free(a->keys);
    free(a->keyof);
    free(a->sigs);
    free(a);
}

void arc_field(arc_t *a, const char *field, size_t len, size_t name_len)
{
    size_t off;

    (void)name_len;
    if (arc_kind_of(field, len, &off) != ARC_OTHER)
        a->seen = true;
}

/* The key of selector and domain: one lookup per distinct name. */
static size_t arc_key_add(arc_t *a, const dkimsig_t *sig)
{
    char name[sizeof(a->keys[0].name)];

    str_fmt(name, sizeof(name), "%s._domainkey.%s", sig->selector, sig->domain);
    for (size_t k = 0; k < a->nkeys; k++)
        if (strcmp(a->keys[k].name, name) == 0)
            return k;
    memcpy(a->keys[a->nkeys].name, name, sizeof(name));
    return a->nkeys++;
}

static void arc_parse_sig(const canon_field_t *f, dkimsig_kind_t kind, dkimsig_t *sig)
{
    const char *colon = memchr(f->ptr, ':', f->len), *why;
    size_t off = (size_t)(colon - f->ptr) + 1;

    /* arc_chain_collect() parsed it already: it parses again. */
    dkimsig_parse_kind(kind, f->ptr + off, f->len - off, sig, &why);
    sig->b_raw_start += off; /* relative to the field, to blank b= */
    sig->b_raw_end += off;
}

void arc_headers_done(arc_t *a, dkim_t *d)
{
    bool complete;
    size_t nfields;
    const canon_field_t *fields = dkim_fields(d, &nfields, &complete);
    const char *why;
    unsigned n;

    if (!a->seen)
        return;
    a->res.present = true;
    a->res.cv = DKIM_CV_FAIL;
    if (!complete) {
        a->res.reason = "header section too large";
        return;
    }
    if (arc_chain_collect(fields, nfields, &a->chain, &why) < 0) {
        a->res.instances = a->chain.n;
        a->res.reason = why;
        return;
    }
    n = a->res.instances = a->chain.n;
    a->sigs = xcalloc(n + 1, sizeof(*a->sigs));
    a->keyof = xcalloc(n + 1, sizeof(*a->keyof));
    a->keys = xcalloc(n + 1, sizeof(*a->keys));
    arc_parse_sig(&a->chain.set[n].ams, DKIMSIG_AMS, &a->sigs[0]);
    for (unsigned i = 1; i <= n; i++)
        arc_parse_sig(&a->chain.set[i].as, DKIMSIG_SEAL, &a->sigs[i]);
    for (unsigned i = 0; i <= n; i++)
        a->keyof[i] = arc_key_add(a, &a->sigs[i]);
    memcpy(a->res.domain, a->sigs[n].domain, sizeof(a->res.domain));
    a->bh = dkim_body_hash_add(d, a->sigs[0].bcanon,
                               a->sigs[0].has_length ? a->sigs[0].length : UINT64_MAX);
    a->pending = true;
}

size_t arc_key_count(const arc_t *a)
{
    return a->nkeys;
}

int arc_key_name(const arc_t *a, size_t index, char *dst, size_t size)
{
    if (index >= a->nkeys)
        return -1;
    return str_lcpy(dst, a->keys[index].name, size);
}

void arc_set_key(arc_t *a, size_t index, txt_status_t status, const txt_record_t *records,
                 size_t nrecords)
{
    arc_key_t *k;
    dkimkey_t *rec;
    unsigned bits;

    if (index >= a->nkeys)
        return;
    k = &a->keys[index];
    if (status != TXT_OK || nrecords == 0) {
        k->state = status == TXT_TEMPFAIL ? ARC_KEY_TEMPFAIL : ARC_KEY_NONE;
        return;
    }
    /* As DKIM's: the first record that parses (RFC 6376 3.6.2.2). */
    rec = xmalloc(sizeof(*rec));
    k->state = ARC_KEY_BAD;
    k->why = NULL;
    for (size_t i = 0; i < nrecords && k->state == ARC_KEY_BAD; i++) {
        const char *why;

        if (dkimsig_key_parse(records[i].data, records[i].len, rec, &why) < 0) {
            k->why = k->why ? k->why : why;
        } else if (rec->p_len == 0) {
            k->why = "key revoked";
            break;
        } else if ((k->pk = dkimkey_public(rec, &bits, &k->why)) != NULL) {
            k->type = rec->type;
            k->state = ARC_KEY_FOUND;
        } else {
            break;
        }
    }
    free(rec);
}

/* Verify sig (sigs[index]) over data.  NULL, or why not. */
static const char *arc_verify(arc_t *a, size_t index, const buf_t *data, const char *failed)
{
    const dkimsig_t *sig = &a->sigs[index];
    const arc_key_t *k = &a->keys[a->keyof[index]];
    unsigned char hash[32];

    switch (k->state) {
    case ARC_KEY_WAITING:
    case ARC_KEY_TEMPFAIL:
        a->res.temporary = true;
        return "key lookup failed";
    case ARC_KEY_NONE:
        return "no key";
    case ARC_KEY_BAD:
        return k->why ? k->why : "bad key";
    case ARC_KEY_FOUND:
        break;
    }
    if ((k->type == DKIM_KEY_ED25519) != (sig->alg == DKIM_ED25519_SHA256))
        return "key type does not match a=";
    if (EVP_Digest(buf_used(data) ? buf_ptr(data) : "", buf_used(data), hash, NULL, EVP_sha256(),
                   NULL) != 1 ||
        !dkimkey_verify(k->pk, sig->alg, sig->b, sig->b_len, hash))
        return failed;
    return NULL;
}

/* RFC 8617 5.2 step 5: the latest message signature, as DKIM's. */
static const char *arc_check_ams(arc_t *a, const dkim_t *d, const canon_field_t *fields,
                                 size_t nfields, buf_t *data)
{
    const dkimsig_t *sig = &a->sigs[0];
    const canon_field_t *own = &a->chain.set[a->chain.n].ams;
    unsigned char md[32];
    uint64_t body_len;

    if (sig->has_expire && (uint64_t)a->now > sig->expire)
        return "ARC-Message-Signature expired";
    if (dkim_body_hash_get(d, a->bh, md, &body_len) < 0)
        return "cannot hash";
    if (sig->has_length && sig->length > body_len)
        return "body shorter than l=";
    if (CRYPTO_memcmp(md, sig->bh, sizeof(md)) != 0)
        return "ARC-Message-Signature body hash did not verify";
    if (canon_select(sig->hcanon, fields, nfields, sig->hname, sig->nhnames, data) < 0 ||
        canon_header_blank(sig->hcanon, own->ptr, own->len, sig->b_raw_start, sig->b_raw_end,
                           data) < 0)
        return "header section too large";
    return arc_verify(a, 0, data, "ARC-Message-Signature did not verify");
}

/* RFC 8617 5.1.1: seal i covers every set up to its own, in order, each
 * as AAR, AMS, AS, relaxed; its own seal with b= blank, no CRLF. */
static const char *arc_check_seal(arc_t *a, unsigned i, buf_t *data)
{
    const dkimsig_t *sig = &a->sigs[i];
    int rc = 0;

    buf_reset(data);
    for (unsigned j = 1; j <= i && rc == 0; j++) {
        const arc_set_t *s = &a->chain.set[j];

        rc = canon_header(CANON_RELAXED, s->aar.ptr, s->aar.len, true, data);
        if (rc == 0)
            rc = canon_header(CANON_RELAXED, s->ams.ptr, s->ams.len, true, data);
        if (rc == 0 && j < i)
            rc = canon_header(CANON_RELAXED, s->as.ptr, s->as.len, true, data);
        else if (rc == 0)
            rc = canon_header_blank(CANON_RELAXED, s->as.ptr, s->as.len, sig->b_raw_start,
                                    sig->b_raw_end, data);
    }
    if (rc < 0)
        return "header section too large";
    return arc_verify(a, i, data, "ARC-Seal did not verify");
}

void arc_finish(arc_t *a, const dkim_t *d)
{
    size_t nfields, max = 4096;
    bool complete;
    const canon_field_t *fields = dkim_fields(d, &nfields, &complete);
    const char *why;
    buf_t data;

    if (!a->pending)
        return;
    a->pending = false;
    for (size_t f = 0; f < nfields; f++)
        max += fields[f].len + 3;
    buf_init(&data, max);
    why = arc_check_ams(a, d, fields, nfields, &data);
    for (unsigned i = a->chain.n; why == NULL && i >= 1; i--)
        why = arc_check_seal(a, i, &data);
    buf_free(&data);
    a->res.cv = why ? DKIM_CV_FAIL : DKIM_CV_PASS;
    a->res.reason = why;
    if (why == NULL)
        a->res.temporary = false;
}

const arc_result_t *arc_result(const arc_t *a)
{
    return &a->res;
}

/* ---- sealing ---- */

int arc_seal(const dkimsign_t *signer, const canon_field_t *fields, size_t nfields,
             const unsigned char bh[32], const char *aar, size_t aar_len, dkim_cv_t cv,
             unsigned n, buf_t *out)
{
    arc_chain_t *chain = xmalloc(sizeof(*chain));
    canon_field_t *all = xcalloc(nfields + 1, sizeof(*all)), sealed[3 * ARC_INSTANCE_MAX + 2];
    dkimsign_t p = *signer;
    size_t ns = 0, before = buf_used(out);
    buf_t head, ams;
    const char *why;
    int rc = arc_chain_collect(fields, nfields, chain, &why);

    buf_init(&head, aar_len + 64);
    buf_init(&ams, 65536);
    if (chain->latest_fail) {
        rc = ARC_ECHAINFAILED;
        goto done;
    }
    if (chain->n != n || (cv == DKIM_CV_NONE && n != 0) || (cv == DKIM_CV_PASS && rc < 0) ||
        (cv == DKIM_CV_FAIL && n == 0 && !chain->any)) {
        rc = ARC_EINVAL;
        goto done;
    }
    if (n >= ARC_INSTANCE_MAX) {
        rc = ARC_EFULL;
        goto done;
    }
    while (aar_len > 0 && (aar[aar_len - 1] == '\n' || aar[aar_len - 1] == '\r'))
        aar_len--;
    rc = buf_printf(&head, "ARC-Authentication-Results: i=%u; ", n + 1);
    if (rc == 0)
        rc = buf_append(&head, aar, aar_len);
    if (rc < 0)
        goto done;
    /* The message signature sees the message as it will leave: the new
     * AAR on top of the fields. */
    all[0].ptr = buf_ptr(&head);
    all[0].len = buf_used(&head);
    if (nfields > 0)
        memcpy(all + 1, fields, nfields * sizeof(*fields));
    p.kind = DKIMSIG_AMS;
    p.instance = n + 1;
    if ((rc = dkimsign_sign(&p, all, nfields + 1, bh, &ams)) < 0)
        goto done;
    /* A failed chain's seal covers its own set alone (RFC 8617 5.1.2). */
    for (unsigned i = 1; cv != DKIM_CV_FAIL && i <= n; i++) {
        sealed[ns++] = chain->set[i].aar;
        sealed[ns++] = chain->set[i].ams;
        sealed[ns++] = chain->set[i].as;
    }
    sealed[ns++] = all[0];
    sealed[ns].ptr = buf_ptr(&ams);
    sealed[ns++].len = buf_used(&ams) - 2; /* without its CRLF */
    p.kind = DKIMSIG_SEAL;
    p.cv = n == 0 ? DKIM_CV_NONE : cv;
    if ((rc = dkimsign_sign(&p, sealed, ns, NULL, out)) < 0)
        goto done;
    rc = buf_append(out, buf_ptr(&ams), buf_used(&ams));
    if (rc == 0)
        rc = buf_append(out, buf_ptr(&head), buf_used(&head));
    if (rc == 0)
        rc = buf_append(out, "\r\n", 2);
done:
    if (rc < 0)
        out->len = out->off + before; /* nothing half-written */
    buf_free(&head);
    buf_free(&ams);
    free(all);
    free(chain);
    return rc;
}
