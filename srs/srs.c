#include "srs.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

#define SRS_DAY 86400
/* Two base32 characters: the day number wraps every 1024 days. */
#define SRS_STAMP_SLOTS 1024
#define SRS_SHA1_LEN 20
/* Base64 of a SHA-1 digest without padding: the longest hash that can
 * be checked (Mail::SRS compares as many characters as it is given). */
#define SRS_HASH_MAX 27

static const char srs_base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

struct srs {
    char *domain;
    size_t domain_len;
    unsigned max_age_days;
    size_t nsecrets;
    /* One HMAC context per secret, keyed once; each hash works on a copy,
     * so the srs_t stays read-only and can be shared. */
    EVP_MAC_CTX **keyed;
    /* HMAC-SHA256 with the signing secret, for store keys. */
    EVP_MAC_CTX *keyctx;
};

/* Before the sender in a store key's HMAC: no SRS hash covers the same
 * bytes. */
#define SRS_KEY_CONTEXT "mxfwd srs store key\n"

/* A piece of an address: the hash covers the lowercased fields, one after
 * the other with nothing between them. */
typedef struct {
    const char *p;
    size_t len;
} srs_field_t;

/* An output address being assembled in the caller's array. */
typedef struct {
    char *p;
    size_t len;
    size_t size;
    bool over;
} srs_out_t;

static void srs_out_add(srs_out_t *o, const char *s, size_t n)
{
    if (o->over || n >= o->size - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void srs_out_field(srs_out_t *o, srs_field_t f)
{
    srs_out_add(o, f.p, f.len);
}

int srs_new(const char *domain, uint64_t max_age, const char *const *secrets, size_t nsecrets,
            srs_t **out)
{
    OSSL_PARAM params[2];
    EVP_MAC *mac = NULL;
    srs_t *srs;
    int rc = SRS_ECRYPTO;

    *out = NULL;
    if (nsecrets == 0)
        return SRS_ENOSECRET;
    srs = xcalloc(1, sizeof(*srs));
    srs->domain = xstrdup(domain);
    srs->domain_len = strlen(domain);
    srs->max_age_days = max_age / SRS_DAY >= SRS_STAMP_SLOTS ? SRS_STAMP_SLOTS - 1
                                                             : (unsigned)(max_age / SRS_DAY);
    srs->keyed = xcalloc(nsecrets, sizeof(*srs->keyed));
    srs->nsecrets = nsecrets;

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        goto fail;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0);
    params[1] = OSSL_PARAM_construct_end();
    for (size_t i = 0; i < nsecrets; i++) {
        srs->keyed[i] = EVP_MAC_CTX_new(mac);
        if (srs->keyed[i] == NULL ||
            !EVP_MAC_init(srs->keyed[i], (const unsigned char *)secrets[i], strlen(secrets[i]),
                          params))
            goto fail;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    srs->keyctx = EVP_MAC_CTX_new(mac);
    if (srs->keyctx == NULL ||
        !EVP_MAC_init(srs->keyctx, (const unsigned char *)secrets[0], strlen(secrets[0]), params))
        goto fail;
    EVP_MAC_free(mac);
    *out = srs;
    return 0;

fail:
    EVP_MAC_free(mac);
    srs_free(srs);
    return rc;
}

void srs_free(srs_t *srs)
{
    if (srs == NULL)
        return;
    for (size_t i = 0; i < srs->nsecrets; i++)
        EVP_MAC_CTX_free(srs->keyed[i]);
    free(srs->keyed);
    EVP_MAC_CTX_free(srs->keyctx);
    free(srs->domain);
    free(srs);
}

bool srs_is_own_domain(const srs_t *srs, const char *domain, size_t len)
{
    return len == srs->domain_len && str_ncasecmp(domain, srs->domain, len) == 0;
}

const char *srs_domain(const srs_t *srs)
{
    return srs->domain;
}

unsigned srs_max_age_days(const srs_t *srs)
{
    return srs->max_age_days;
}

/*
 * The hash of the fields with secret number i: base64 (standard
 * alphabet) of HMAC-SHA1 over their lowercased concatenation, 27
 * characters and a NUL in out.
 */
static int srs_hash(const srs_t *srs, size_t i, const srs_field_t *fields, size_t nfields,
                    char out[SRS_HASH_MAX + 2])
{
    unsigned char md[EVP_MAX_MD_SIZE], b64[4 * ((SRS_SHA1_LEN + 2) / 3) + 1];
    char lower[SRS_ADDR_SIZE];
    size_t used = 0, mdlen = 0;
    EVP_MAC_CTX *ctx;
    int ok;

    /* Every field comes out of one address of at most ADDR_INPUT_MAX
     * octets. */
    for (size_t k = 0; k < nfields; k++) {
        if (fields[k].len > sizeof(lower) - used)
            abort();
        for (size_t j = 0; j < fields[k].len; j++)
            lower[used++] = str_lower_c(fields[k].p[j]);
    }
    ctx = EVP_MAC_CTX_dup(srs->keyed[i]);
    if (ctx == NULL)
        return SRS_ECRYPTO;
    ok = EVP_MAC_update(ctx, (const unsigned char *)lower, used) &&
         EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) && mdlen == SRS_SHA1_LEN;
    EVP_MAC_CTX_free(ctx);
    OPENSSL_cleanse(lower, used);
    if (!ok)
        return SRS_ECRYPTO;
    EVP_EncodeBlock(b64, md, SRS_SHA1_LEN);
    memcpy(out, b64, SRS_HASH_MAX);
    out[SRS_HASH_MAX] = '\0';
    return 0;
}

/* The hash to write: the first SRS_HASH_LEN characters, URL-safe. */
static int srs_sign(const srs_t *srs, const srs_field_t *fields, size_t nfields,
                    char hash[SRS_HASH_MAX + 2])
{
    int rc = srs_hash(srs, 0, fields, nfields, hash);

    if (rc < 0)
        return rc;
    hash[SRS_HASH_LEN] = '\0';
    for (size_t i = 0; i < SRS_HASH_LEN; i++) {
        if (hash[i] == '+')
            hash[i] = '-';
        else if (hash[i] == '/')
            hash[i] = '_';
    }
    return 0;
}

/* A hash character of either alphabet in canonical form: the standard
 * alphabet, lowercased (hashes compare case-insensitively); 0 when c
 * cannot be part of a hash. */
static char srs_hash_char(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return c;
    if (c >= 'A' && c <= 'Z')
        return str_lower_c(c);
    if (c == '+' || c == '-')
        return '+';
    if (c == '/' || c == '_')
        return '/';
    return 0;
}

static bool srs_hash_wellformed(srs_field_t h)
{
    if (h.len < SRS_HASH_LEN || h.len > SRS_HASH_MAX)
        return false;
    for (size_t i = 0; i < h.len; i++)
        if (srs_hash_char(h.p[i]) == 0)
            return false;
    return true;
}

/*
 * Whether some secret gives the hash h (as many characters as h has, as
 * Mail::SRS compares).  The comparison takes the same time wherever the
 * first difference is.
 */
static int srs_verify(const srs_t *srs, srs_field_t h, const srs_field_t *fields, size_t nfields)
{
    char want[SRS_HASH_MAX + 2];
    int rc;

    for (size_t i = 0; i < srs->nsecrets; i++) {
        unsigned diff = 0;
        if ((rc = srs_hash(srs, i, fields, nfields, want)) < 0)
            return rc;
        for (size_t k = 0; k < h.len; k++)
            diff |= (unsigned)(srs_hash_char(h.p[k]) ^ srs_hash_char(want[k]));
        if (diff == 0)
            return 0;
    }
    return SRS_EBADHASH;
}

/* Whether local[0..len) starts with tag ("SRS0" or "SRS1", any case) and
 * one of the separators Mail::SRS and libsrs2 allow after it. */
static bool srs_tagged(const char *local, size_t len, const char *tag)
{
    /* strchr() would find the terminator for a NUL byte: exclude it. */
    return len > 4 && str_ncasecmp(local, tag, 4) == 0 && local[4] != '\0' &&
           strchr("=+-", local[4]) != NULL;
}

/* Split the next '='-terminated field off *rest; false when there is no
 * '=' or the field is empty. */
static bool srs_next_field(srs_field_t *rest, srs_field_t *field)
{
    const char *eq = memchr(rest->p, '=', rest->len);

    if (eq == NULL || eq == rest->p)
        return false;
    field->p = rest->p;
    field->len = (size_t)(eq - rest->p);
    rest->p = eq + 1;
    rest->len -= field->len + 1;
    return true;
}

/* The day number of now, modulo the wrap: what a stamp holds. */
static unsigned srs_day(time_t now)
{
    return (unsigned)((now > 0 ? (uint64_t)now / SRS_DAY : 0) % SRS_STAMP_SLOTS);
}

static void srs_stamp(time_t now, char stamp[3])
{
    unsigned day = srs_day(now);

    stamp[0] = srs_base32[day >> 5];
    stamp[1] = srs_base32[day & 31];
    stamp[2] = '\0';
}

/* The day number (mod 1024) of a two-character base32 stamp, or -1. */
static int srs_stamp_day(srs_field_t st)
{
    int day = 0;

    if (st.len != 2)
        return -1;
    for (size_t i = 0; i < 2; i++) {
        const char *p = strchr(srs_base32, str_upper_c(st.p[i]));
        if (p == NULL || *p == '\0')
            return -1;
        day = day * 32 + (int)(p - srs_base32);
    }
    return day;
}

/* Finish "LOCAL@srs_domain": the local part is already in o.  long_ok:
 * up to ADDR_INPUT_MAX octets (srs_long_senders = embed), else RFC 5321's
 * limits. */
static int srs_out_finish(const srs_t *srs, srs_out_t *o, bool long_ok)
{
    if (o->over || (!long_ok && o->len > ADDR_LOCAL_MAX))
        return SRS_ETOOLONG;
    srs_out_add(o, "@", 1);
    srs_out_add(o, srs->domain, srs->domain_len);
    if (o->over || o->len > (long_ok ? ADDR_INPUT_MAX : ADDR_MAX))
        return SRS_ETOOLONG;
    return 0;
}

/* SRS1=HASH=host=user@us, the hash over host and user. */
static int srs_forward_srs1(const srs_t *srs, srs_field_t host, srs_field_t user, srs_out_t *o,
                            bool long_ok)
{
    srs_field_t fields[2] = {host, user};
    char hash[SRS_HASH_MAX + 2];
    int rc;

    if ((rc = srs_sign(srs, fields, 2, hash)) < 0)
        return rc;
    srs_out_add(o, "SRS1=", 5);
    srs_out_add(o, hash, SRS_HASH_LEN);
    srs_out_add(o, "=", 1);
    srs_out_field(o, host);
    srs_out_add(o, "=", 1);
    srs_out_field(o, user);
    return srs_out_finish(srs, o, long_ok);
}

/* SRS0=HASH=TT=host=user@us, the hash over TT, host and user. */
static int srs_forward_srs0(const srs_t *srs, srs_field_t host, srs_field_t user, time_t now,
                            srs_out_t *o, bool long_ok)
{
    char stamp[3], hash[SRS_HASH_MAX + 2];
    srs_field_t fields[3];
    int rc;

    srs_stamp(now, stamp);
    fields[0] = (srs_field_t){stamp, 2};
    fields[1] = host;
    fields[2] = user;
    if ((rc = srs_sign(srs, fields, 3, hash)) < 0)
        return rc;
    srs_out_add(o, "SRS0=", 5);
    srs_out_add(o, hash, SRS_HASH_LEN);
    srs_out_add(o, "=", 1);
    srs_out_add(o, stamp, 2);
    srs_out_add(o, "=", 1);
    srs_out_field(o, host);
    srs_out_add(o, "=", 1);
    srs_out_field(o, user);
    return srs_out_finish(srs, o, long_ok);
}

int srs_key(const srs_t *srs, const char *s, size_t len, char key[SRS_KEY_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0, bit = 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(srs->keyctx);
    int ok;

    key[0] = '\0';
    if (ctx == NULL)
        return SRS_ECRYPTO;
    ok = EVP_MAC_update(ctx, (const unsigned char *)SRS_KEY_CONTEXT, strlen(SRS_KEY_CONTEXT)) &&
         EVP_MAC_update(ctx, (const unsigned char *)s, len) &&
         EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) && mdlen * 8 >= SRS_KEY_LEN * 5;
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return SRS_ECRYPTO;
    /* Five bits a character, most significant first (RFC 4648 6). */
    for (size_t i = 0; i < SRS_KEY_LEN; i++, bit += 5) {
        unsigned v = (unsigned)md[bit / 8] << 8 | (bit / 8 + 1 < mdlen ? md[bit / 8 + 1] : 0);
        key[i] = srs_base32[(v >> (11 - bit % 8)) & 31];
    }
    key[SRS_KEY_LEN] = '\0';
    return 0;
}

/* The standard rewrite of the mailbox a (SRS1 for another forwarder's
 * SRS address, else SRS0); long_ok as srs_out_finish(). */
static int srs_forward_std(const srs_t *srs, const addr_t *a, time_t now, srs_out_t *o,
                           bool long_ok)
{
    srs_field_t local = {a->local, a->local_len}, host = {a->domain, a->domain_len};

    /* SRS1 from another forwarder: keep the first forwarder's host and
     * SRS0 part, re-sign them with our secret.  A local part that only
     * looks like SRS1 (fields missing) is rewritten like any other. */
    if (srs_tagged(local.p, local.len, "SRS1")) {
        srs_field_t rest = {local.p + 5, local.len - 5}, h, srshost;
        if (srs_next_field(&rest, &h) && srs_next_field(&rest, &srshost) && rest.len > 0)
            return srs_forward_srs1(srs, srshost, rest, o, long_ok);
    }
    /* SRS0 from another forwarder: wrap it, keeping its separator. */
    if (srs_tagged(local.p, local.len, "SRS0"))
        return srs_forward_srs1(srs, host, (srs_field_t){local.p + 4, local.len - 4}, o,
                                long_ok);
    return srs_forward_srs0(srs, host, local, now, o, long_ok);
}

int srs_forward_long(const srs_t *srs, srs_long_t mode, const char *s, size_t len, time_t now,
                     char *dst, size_t size, char key[SRS_KEY_SIZE])
{
    srs_out_t o = {.p = dst, .size = size};
    char k[SRS_KEY_SIZE];
    addr_t a;
    int rc;

    if (size < SRS_ADDR_SIZE)
        abort();
    dst[0] = '\0';
    if (key != NULL)
        key[0] = '\0';
    if (len == 0)
        return 0;
    rc = addr_parse_input(s, len, &a);
    if (rc == ADDR_ELOCALLEN || rc == ADDR_ELEN)
        return SRS_ETOOLONG;
    if (rc < 0 || a.quoted || a.literal)
        return SRS_EMALFORMED;
    if (srs_is_own_domain(srs, a.domain, a.domain_len)) {
        srs_out_add(&o, s, len);
        return 0;
    }
    rc = srs_forward_std(srs, &a, now, &o, mode == SRS_LONG_EMBED);
    if (rc != SRS_ETOOLONG || mode != SRS_LONG_STORE)
        return rc;
    /* Too long: the key stands for the sender, signed and stamped as any
     * SRS0 address is (docs/srs.md, "Long senders"). */
    o = (srs_out_t){.p = dst, .size = size};
    dst[0] = '\0';
    if ((rc = srs_key(srs, s, len, k)) < 0)
        return rc;
    rc = srs_forward_srs0(srs, (srs_field_t){SRS_KEY_MARKER, strlen(SRS_KEY_MARKER)},
                          (srs_field_t){k, SRS_KEY_LEN}, now, &o, false);
    if (rc < 0)
        return rc;
    if (key != NULL)
        memcpy(key, k, SRS_KEY_SIZE);
    return SRS_KEYED;
}

int srs_forward(const srs_t *srs, const char *s, size_t len, time_t now, char *dst, size_t size)
{
    return srs_forward_long(srs, SRS_LONG_REJECT, s, len, now, dst, size, NULL);
}

/* The key of a keyed address, upper case: SRS_KEYED, or SRS_EMALFORMED
 * when it is no key (it was signed all the same: made by a peer that
 * means something else by the marker). */
static int srs_reverse_key(srs_field_t key, srs_out_t *o)
{
    char k[SRS_KEY_SIZE];

    if (key.len != SRS_KEY_LEN)
        return SRS_EMALFORMED;
    for (size_t i = 0; i < key.len; i++) {
        char c = str_upper_c(key.p[i]);
        if (strchr(srs_base32, c) == NULL || c == '\0')
            return SRS_EMALFORMED;
        k[i] = c;
    }
    srs_out_add(o, k, SRS_KEY_LEN);
    return SRS_KEYED;
}

/* SRS0=HASH=TT=host=user: user@host, when the hash and stamp hold. */
static int srs_reverse_srs0(const srs_t *srs, srs_field_t rest, time_t now, srs_out_t *o,
                            unsigned *age)
{
    srs_field_t h, st, host, fields[3];
    int then, rc;
    unsigned days;

    if (!srs_next_field(&rest, &h) || !srs_next_field(&rest, &st) ||
        !srs_next_field(&rest, &host) || rest.len == 0)
        return SRS_EMALFORMED;
    if (!srs_hash_wellformed(h) || (then = srs_stamp_day(st)) < 0)
        return SRS_EMALFORMED;
    fields[0] = st;
    fields[1] = host;
    fields[2] = rest;
    if ((rc = srs_verify(srs, h, fields, 3)) < 0)
        return rc;
    /* Mail::SRS's rule: the age is today minus the stamp, modulo the
     * 1024-day wrap, so a stamp from the future is about 1023 days old. */
    days = (srs_day(now) + SRS_STAMP_SLOTS - (unsigned)then) % SRS_STAMP_SLOTS;
    if (days > srs->max_age_days) {
        if (age != NULL)
            *age = days;
        return SRS_EEXPIRED;
    }
    if (host.len == strlen(SRS_KEY_MARKER) && memcmp(host.p, SRS_KEY_MARKER, host.len) == 0)
        return srs_reverse_key(rest, o);
    srs_out_field(o, rest);
    srs_out_add(o, "@", 1);
    srs_out_field(o, host);
    return 0;
}

int srs_address_key(const char *s, size_t len, char key[SRS_KEY_SIZE])
{
    const char *at = memchr(s, '@', len);
    srs_out_t o = {.p = key, .size = SRS_KEY_SIZE};
    srs_field_t rest, h, st, host;

    key[0] = '\0';
    if (at == NULL || !srs_tagged(s, (size_t)(at - s), "SRS0"))
        return SRS_ENOTSRS;
    rest = (srs_field_t){s + 5, (size_t)(at - s) - 5};
    if (!srs_next_field(&rest, &h) || !srs_next_field(&rest, &st) ||
        !srs_next_field(&rest, &host) || host.len != strlen(SRS_KEY_MARKER) ||
        memcmp(host.p, SRS_KEY_MARKER, host.len) != 0)
        return SRS_ENOTSRS;
    return srs_reverse_key(rest, &o) == SRS_KEYED ? SRS_KEYED : SRS_ENOTSRS;
}

/* SRS1=HASH=host=rest: SRS0rest@host, when the hash holds.  SRS1 has no
 * stamp of its own; the first forwarder checks the one inside. */
static int srs_reverse_srs1(const srs_t *srs, srs_field_t rest, srs_out_t *o)
{
    srs_field_t h, host, fields[2];
    int rc;

    if (!srs_next_field(&rest, &h) || !srs_next_field(&rest, &host) || rest.len == 0)
        return SRS_EMALFORMED;
    if (!srs_hash_wellformed(h))
        return SRS_EMALFORMED;
    fields[0] = host;
    fields[1] = rest;
    if ((rc = srs_verify(srs, h, fields, 2)) < 0)
        return rc;
    srs_out_add(o, "SRS0", 4);
    srs_out_field(o, rest);
    srs_out_add(o, "@", 1);
    srs_out_field(o, host);
    return 0;
}

int srs_reverse(const srs_t *srs, const char *s, size_t len, time_t now, char *dst, size_t size,
                unsigned *age)
{
    srs_out_t o = {.p = dst, .size = size};
    const char *at;
    size_t local_len;
    int rc;

    if (size < SRS_ADDR_SIZE)
        abort();
    dst[0] = '\0';
    if (age != NULL)
        *age = 0;
    /* Nothing we write is longer, or holds a NUL, a control character,
     * a space or a second '@'. */
    if (len == 0 || len > ADDR_INPUT_MAX)
        return SRS_EMALFORMED;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return SRS_EMALFORMED;
    at = memchr(s, '@', len);
    if (at == NULL || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
        return SRS_EMALFORMED;
    local_len = (size_t)(at - s);
    if (srs_tagged(s, local_len, "SRS0"))
        rc = srs_reverse_srs0(srs, (srs_field_t){s + 5, local_len - 5}, now, &o, age);
    else if (srs_tagged(s, local_len, "SRS1"))
        rc = srs_reverse_srs1(srs, (srs_field_t){s + 5, local_len - 5}, &o);
    else
        return SRS_ENOTSRS;
    if (rc < 0)
        dst[0] = '\0';
    return rc;
}

const char *srs_errname(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case SRS_ENOTSRS:
        return "not-srs";
    case SRS_EMALFORMED:
        return "malformed";
    case SRS_EBADHASH:
        return "bad-hash";
    case SRS_EEXPIRED:
        return "expired";
    case SRS_ETOOLONG:
        return "too-long";
    case SRS_KEYED:
        return "keyed";
    case SRS_ENOSECRET:
        return "no-secret";
    case SRS_ECRYPTO:
        return "crypto";
    }
    return "unknown";
}

const char *srs_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SRS_ENOTSRS:
        return "the address is not an SRS address (its local part does not start with SRS0= "
               "or SRS1=)";
    case SRS_EMALFORMED:
        return "the address is not well-formed SRS (a field is missing or empty, the hash is "
               "short or the stamp is not two base32 characters)";
    case SRS_EBADHASH:
        return "the hash does not match any configured secret: the address was not made here, "
               "or was altered";
    case SRS_EEXPIRED:
        return "the SRS address is older than the maximum age";
    case SRS_ETOOLONG:
        return "the rewritten sender would have a local part over 64 octets";
    case SRS_KEYED:
        return "the SRS address names an entry of the envelope store";
    case SRS_ENOSECRET:
        return "no SRS secret configured";
    case SRS_ECRYPTO:
        return "HMAC-SHA1 failed in libcrypto";
    }
    return "unknown SRS error";
}
