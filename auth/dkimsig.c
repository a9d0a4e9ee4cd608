#include "dkimsig.h"

#include <string.h>

#include "addr.h"
#include "str.h"
#include "tagval.h"

static int dkimsig_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long dkimsig_b64_decode(const char *s, size_t len, unsigned char *dst, size_t size)
{
    uint32_t acc = 0;
    size_t n = 0, bits = 0, pad = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v;

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0) /* data after padding */
            return -1;
        v = dkimsig_b64_value(c);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == size)
                return -1;
            dst[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 2 or 4 leftover bits must be zero padding matched by '=' signs. */
    if (bits == 6 || pad > 2 || acc != 0)
        return -1;
    if ((bits == 4 && pad != 2 && pad != 0) || (bits == 2 && pad != 1 && pad != 0) ||
        (bits == 0 && pad != 0))
        return -1;
    return (long)n;
}

/* Digits only, at most max_digits of them; the value saturates. */
static bool dkimsig_parse_digits(const tagval_tag_t *t, size_t max_digits, uint64_t *out)
{
    uint64_t v = 0;

    if (t->value_len == 0 || t->value_len > max_digits)
        return false;
    for (size_t i = 0; i < t->value_len; i++) {
        unsigned d;

        if (t->value[i] < '0' || t->value[i] > '9')
            return false;
        d = (unsigned)(t->value[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

static bool dkimsig_parse_canon_word(const char *s, size_t n, canon_t *out)
{
    if (str_eq_ci_n(s, n, "simple"))
        *out = CANON_SIMPLE;
    else if (str_eq_ci_n(s, n, "relaxed"))
        *out = CANON_RELAXED;
    else
        return false;
    return true;
}

static bool dkimsig_parse_c(const tagval_tag_t *t, canon_t *h, canon_t *b)
{
    const char *slash = memchr(t->value, '/', t->value_len);

    *h = *b = CANON_SIMPLE;
    if (slash == NULL)
        return dkimsig_parse_canon_word(t->value, t->value_len, h);
    return dkimsig_parse_canon_word(t->value, (size_t)(slash - t->value), h) &&
           dkimsig_parse_canon_word(slash + 1, t->value_len - (size_t)(slash - t->value) - 1, b);
}

/* The next element of a colon-separated tag value, white space around the
 * colons trimmed, as [*elem, *elem_end); *p moves past it, to NULL after
 * the last one.  false once the list is done.  An empty value has one
 * empty element. */
static bool dkimsig_next_elem(const char **p, const char *end, const char **elem,
                              const char **elem_end)
{
    const char *colon, *b = *p, *e;

    if (b == NULL)
        return false;
    colon = memchr(b, ':', (size_t)(end - b));
    e = colon != NULL ? colon : end;
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    *elem = b;
    *elem_end = e;
    *p = colon != NULL ? colon + 1 : NULL;
    return true;
}

/* Split h= into names.  Each is a header field name: printable ASCII
 * without ':' (RFC 5322 ftext), white space allowed around the colons. */
static const char *dkimsig_parse_h(const tagval_tag_t *t, dkimsig_t *sig)
{
    size_t n = 0;
    bool from = false, seal = false;
    const char *p = t->value, *end = t->value + t->value_len, *b, *e;

    sig->nhnames = 0;
    while (dkimsig_next_elem(&p, end, &b, &e)) {
        if (e == b)
            return "empty header name in h=";
        if (sig->nhnames == DKIMSIG_HNAMES_MAX || n + (size_t)(e - b) + 1 > sizeof(sig->hlist))
            return "h= lists too many header fields";
        for (const char *q = b; q < e; q++)
            if ((unsigned char)*q < 33 || (unsigned char)*q > 126)
                return "bad header name in h=";
        memcpy(sig->hlist + n, b, (size_t)(e - b));
        sig->hname[sig->nhnames++] = sig->hlist + n;
        from = from || str_eq_ci_n(b, (size_t)(e - b), "from");
        seal = seal || str_eq_ci_n(b, (size_t)(e - b), "arc-seal");
        n += (size_t)(e - b);
        sig->hlist[n++] = '\0';
    }
    /* RFC 8617 4.1.2: seals change as the chain grows. */
    if (seal && sig->kind == DKIMSIG_AMS)
        return "ARC-Message-Signature signs ARC-Seal";
    return from ? NULL : "From is not signed";
}

/* Whether word is one element of the colon-separated list (any case). */
static bool dkimsig_list_has(const tagval_tag_t *t, const char *word)
{
    const char *p = t->value, *end = t->value + t->value_len, *b, *e;

    while (dkimsig_next_elem(&p, end, &b, &e))
        if (str_eq_ci_n(b, (size_t)(e - b), word))
            return true;
    return false;
}

static const char *dkimsig_parse_i(const tagval_tag_t *t, dkimsig_t *sig)
{
    const char *at = NULL;
    char dom[DKIMSIG_DOMAIN_MAX];
    size_t dlen, slen = strlen(sig->domain);
    int n;

    for (size_t k = 0; k < t->value_len; k++)
        if (t->value[k] == '@')
            at = t->value + k;
    if (at == NULL || t->value_len >= sizeof(sig->auid))
        return "bad i=";
    n = addr_dns_name(at + 1, t->value_len - (size_t)(at + 1 - t->value), dom, sizeof(dom));
    if (n < 0)
        return "bad i= domain";
    dlen = (size_t)n;
    /* i='s domain is d= or a subdomain of it (RFC 6376 3.5). */
    if (!(dlen == slen && strcmp(dom, sig->domain) == 0) &&
        !(dlen > slen && dom[dlen - slen - 1] == '.' &&
          strcmp(dom + dlen - slen, sig->domain) == 0))
        return "i= is not within d=";
    memcpy(sig->auid, t->value, t->value_len);
    sig->auid[t->value_len] = '\0';
    return NULL;
}

/* i= of an ARC field: the instance, 1 to 999 (the chain's own limit of
 * 50 is the chain's business, arc.c). */
static const char *dkimsig_parse_instance(const tagval_list_t *l, dkimsig_t *sig)
{
    const tagval_tag_t *t = tagval_get(l, "i");
    uint64_t v;

    if (t == NULL)
        return "missing i=";
    if (!dkimsig_parse_digits(t, 3, &v) || v == 0)
        return "bad i=";
    sig->instance = (unsigned)v;
    return NULL;
}

static const char *dkimsig_parse_cv(const tagval_list_t *l, dkimsig_t *sig)
{
    const tagval_tag_t *t = tagval_get(l, "cv");

    if (t == NULL)
        return "missing cv=";
    if (tagval_is_ci(t, "none"))
        sig->cv = DKIM_CV_NONE;
    else if (tagval_is_ci(t, "pass"))
        sig->cv = DKIM_CV_PASS;
    else if (tagval_is_ci(t, "fail"))
        sig->cv = DKIM_CV_FAIL;
    else
        return "bad cv=";
    return NULL;
}

static const char *dkimsig_parse_sig(dkimsig_kind_t kind, const char *value, size_t len,
                                     dkimsig_t *sig)
{
    const bool seal = kind == DKIMSIG_SEAL;
    tagval_list_t l;
    const tagval_tag_t *t;
    const char *why;
    long n;

    memset(sig, 0, sizeof(*sig));
    sig->kind = kind;
    if (tagval_parse(value, len, false, &l) < 0)
        return "malformed signature";

    /* ARC's signatures have no v= and ignore one (RFC 8617 4.1.2). */
    if (kind == DKIMSIG_DKIM && ((t = tagval_get(&l, "v")) == NULL || !tagval_is(t, "1")))
        return "missing or unknown v=";
    if (kind != DKIMSIG_DKIM && (why = dkimsig_parse_instance(&l, sig)) != NULL)
        return why;
    if (seal && (why = dkimsig_parse_cv(&l, sig)) != NULL)
        return why;

    if ((t = tagval_get(&l, "a")) == NULL)
        return "missing a=";
    if (tagval_is_ci(t, "rsa-sha256"))
        sig->alg = DKIM_RSA_SHA256;
    else if (tagval_is_ci(t, "ed25519-sha256"))
        sig->alg = DKIM_ED25519_SHA256;
    else if (tagval_is_ci(t, "rsa-sha1"))
        return "rsa-sha1 is not accepted (RFC 8301)";
    else
        return "unknown algorithm";

    if ((t = tagval_get(&l, "b")) == NULL)
        return "missing b=";
    n = dkimsig_b64_decode(t->value, t->value_len, sig->b, sizeof(sig->b));
    if (n <= 0)
        return "bad b=";
    sig->b_len = (size_t)n;
    sig->b_raw_start = t->raw_start;
    sig->b_raw_end = t->raw_end;
    if (tagval_copy_nows(t, sig->b_prefix, 9) < 0) /* only the first 8 are wanted */
        sig->b_prefix[8] = '\0';

    /* The seal signs implicit fields, always relaxed: no bh=, c=, h=, l=,
     * q= of its own (RFC 8617 4.1.3, 5.1.1); an h= makes it invalid. */
    if (seal) {
        sig->hcanon = CANON_RELAXED;
        if (tagval_get(&l, "h") != NULL)
            return "ARC-Seal has h=";
    } else {
        if ((t = tagval_get(&l, "bh")) == NULL)
            return "missing bh=";
        if (dkimsig_b64_decode(t->value, t->value_len, sig->bh, sizeof(sig->bh)) != 32)
            return "bad bh=";
        if ((t = tagval_get(&l, "c")) != NULL && !dkimsig_parse_c(t, &sig->hcanon, &sig->bcanon))
            return "unknown canonicalization";
    }

    if ((t = tagval_get(&l, "d")) == NULL)
        return "missing d=";
    if (addr_dns_name(t->value, t->value_len, sig->domain, sizeof(sig->domain)) < 0)
        return "bad d=";

    if (!seal) {
        if ((t = tagval_get(&l, "h")) == NULL)
            return "missing h=";
        if ((why = dkimsig_parse_h(t, sig)) != NULL)
            return why;
    }

    if (kind == DKIMSIG_DKIM && (t = tagval_get(&l, "i")) != NULL) {
        if ((why = dkimsig_parse_i(t, sig)) != NULL)
            return why;
    } else if (str_fmt(sig->auid, sizeof(sig->auid), "@%s", sig->domain) < 0) {
        return "bad d=";
    }

    if (!seal && (t = tagval_get(&l, "l")) != NULL) {
        if (!dkimsig_parse_digits(t, 76, &sig->length))
            return "bad l=";
        sig->has_length = true;
    }

    if (!seal && (t = tagval_get(&l, "q")) != NULL && !dkimsig_list_has(t, "dns/txt"))
        return "no supported query method in q=";

    if ((t = tagval_get(&l, "s")) == NULL)
        return "missing s=";
    if (addr_dns_name(t->value, t->value_len, sig->selector, sizeof(sig->selector)) < 0)
        return "bad s=";

    if ((t = tagval_get(&l, "t")) != NULL) {
        if (!dkimsig_parse_digits(t, 12, &sig->timestamp))
            return "bad t=";
        sig->has_timestamp = true;
    }
    if ((t = tagval_get(&l, "x")) != NULL) {
        if (!dkimsig_parse_digits(t, 12, &sig->expire))
            return "bad x=";
        sig->has_expire = true;
        if (sig->has_timestamp && sig->expire < sig->timestamp)
            return "x= is before t=";
    }
    return NULL;
}

int dkimsig_parse(const char *value, size_t len, dkimsig_t *sig, const char **why)
{
    *why = dkimsig_parse_sig(DKIMSIG_DKIM, value, len, sig);
    return *why ? DKIMSIG_EINVAL : 0;
}

int dkimsig_parse_kind(dkimsig_kind_t kind, const char *value, size_t len, dkimsig_t *sig,
                       const char **why)
{
    *why = dkimsig_parse_sig(kind, value, len, sig);
    return *why ? DKIMSIG_EINVAL : 0;
}

static const char *dkimsig_parse_key(const char *rec, size_t len, dkimkey_t *key)
{
    tagval_list_t l;
    const tagval_tag_t *t;
    long n;

    memset(key, 0, sizeof(*key));
    if (tagval_parse(rec, len, false, &l) < 0)
        return "malformed key record";
    /* v= is optional, but when present it comes first (RFC 6376 3.6.1). */
    if ((t = tagval_get(&l, "v")) != NULL && (t != &l.tag[0] || !tagval_is(t, "DKIM1")))
        return "key record has a bad v=";
    if ((t = tagval_get(&l, "h")) != NULL && !dkimsig_list_has(t, "sha256"))
        return "key does not allow sha256";
    key->type = DKIM_KEY_RSA;
    if ((t = tagval_get(&l, "k")) != NULL) {
        if (tagval_is_ci(t, "ed25519"))
            key->type = DKIM_KEY_ED25519;
        else if (!tagval_is_ci(t, "rsa"))
            return "unknown key type";
    }
    if ((t = tagval_get(&l, "s")) != NULL && !dkimsig_list_has(t, "*") &&
        !dkimsig_list_has(t, "email"))
        return "key is not for email";
    if ((t = tagval_get(&l, "t")) != NULL) {
        key->testing = dkimsig_list_has(t, "y");
        key->strict = dkimsig_list_has(t, "s");
    }
    if ((t = tagval_get(&l, "p")) == NULL)
        return "key record has no p=";
    n = dkimsig_b64_decode(t->value, t->value_len, key->p, sizeof(key->p));
    if (n < 0)
        return "bad p=";
    key->p_len = (size_t)n;
    return NULL;
}

int dkimsig_key_parse(const char *rec, size_t len, dkimkey_t *key, const char **why)
{
    *why = dkimsig_parse_key(rec, len, key);
    return *why ? DKIMSIG_EINVAL : 0;
}

bool dkimsig_signs(const dkimsig_t *sig, const char *name)
{
    for (size_t k = 0; k < sig->nhnames; k++)
        if (str_eq_ci(sig->hname[k], name))
            return true;
    return false;
}

const char *dkimsig_alg_name(dkim_alg_t alg)
{
    return alg == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}
