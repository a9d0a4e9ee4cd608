#include "dkimkey.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "str.h"
#include "xalloc.h"

struct dkimkey {
    EVP_PKEY *pk;
    dkim_keytype_t type;
    unsigned bits;
};

const char *dkimkey_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case DKIMKEY_EREAD:
        return "cannot read the key file";
    case DKIMKEY_EFORMAT:
        return "not a PEM private key";
    case DKIMKEY_ETYPE:
        return "not an RSA or Ed25519 key";
    case DKIMKEY_ESIZE:
        return "RSA key of a size signing cannot use";
    case DKIMKEY_ECRYPTO:
        return "cryptographic library failure";
    }
    return "unknown error";
}

/* ---- private keys ---- */

/* Encrypted keys need a passphrase; none is asked for (OpenSSL's default
 * callback would prompt on the terminal). */
static int dkimkey_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

int dkimkey_load_pem(const char *pem, size_t len, dkimkey_private_t **out, char *why,
                     size_t why_size)
{
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    dkimkey_private_t *k = NULL;
    int rc = DKIMKEY_EFORMAT, bits;

    *out = NULL;
    str_lcpy(why, "not a PEM private key", why_size);
    if (len > DKIMKEY_FILE_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
        goto done;
    pk = PEM_read_bio_PrivateKey(bio, NULL, dkimkey_no_passphrase, NULL);
    if (pk == NULL)
        goto done;
    rc = DKIMKEY_ETYPE;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
        bits = 256;
    } else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        bits = EVP_PKEY_get_bits(pk);
        rc = DKIMKEY_ESIZE;
        if (bits < DKIMKEY_RSA_SIGN_MIN_BITS) {
            str_fmt(why, why_size, "RSA key of %d bits: signing needs at least %d", bits,
                    DKIMKEY_RSA_SIGN_MIN_BITS);
            goto done;
        }
        if (bits > DKIMKEY_RSA_MAX_BITS) {
            str_fmt(why, why_size, "RSA key of %d bits: verifiers take at most %d", bits,
                    DKIMKEY_RSA_MAX_BITS);
            goto done;
        }
    } else {
        str_lcpy(why, "not an RSA or Ed25519 key", why_size);
        goto done;
    }
    k = xcalloc(1, sizeof(*k));
    k->pk = pk;
    k->type = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
    k->bits = (unsigned)bits;
    pk = NULL;
    *out = k;
    rc = 0;
    str_lcpy(why, "", why_size);
done:
    EVP_PKEY_free(pk);
    BIO_free(bio);
    ERR_clear_error(); /* failures leave entries in this thread's queue */
    return rc;
}

int dkimkey_load(const char *path, dkimkey_private_t **out, char *why, size_t why_size)
{
    char *text = NULL;
    size_t len = 0;
    int rc = file_read(path, DKIMKEY_FILE_MAX, &text, &len, NULL);

    *out = NULL;
    if (rc == FILE_EOPEN || rc == FILE_EREAD) {
        str_fmt(why, why_size, "cannot read: %s", strerror(errno));
        rc = DKIMKEY_EREAD;
    } else if (rc < 0) {
        str_fmt(why, why_size, "cannot read: %s", file_strerror(rc));
        rc = DKIMKEY_EREAD;
    } else {
        rc = dkimkey_load_pem(text, len, out, why, why_size);
    }
    if (text != NULL) {
        OPENSSL_cleanse(text, len); /* the private key, in the clear */
        free(text);
    }
    return rc;
}

void dkimkey_free(dkimkey_private_t *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pk);
    free(k);
}

dkim_keytype_t dkimkey_type(const dkimkey_private_t *k)
{
    return k->type;
}

dkim_alg_t dkimkey_alg(const dkimkey_private_t *k)
{
    return k->type == DKIM_KEY_ED25519 ? DKIM_ED25519_SHA256 : DKIM_RSA_SHA256;
}

unsigned dkimkey_bits(const dkimkey_private_t *k)
{
    return k->bits;
}

int dkimkey_record(const dkimkey_private_t *k, buf_t *out)
{
    unsigned char *der = NULL, raw[32];
    size_t len = sizeof(raw);
    int n, rc = DKIMKEY_ECRYPTO;
    char *dst;
    const unsigned char *pub = raw;

    if (k->type == DKIM_KEY_ED25519) {
        if (EVP_PKEY_get_raw_public_key(k->pk, raw, &len) != 1 || len != sizeof(raw))
            goto done;
    } else {
        if ((n = i2d_PUBKEY(k->pk, &der)) <= 0)
            goto done;
        pub = der;
        len = (size_t)n;
    }
    rc = buf_puts(out, k->type == DKIM_KEY_ED25519 ? "v=DKIM1; k=ed25519; p=" : "v=DKIM1; k=rsa; p=");
    if (rc < 0)
        goto done;
    rc = BUF_EFULL;
    if ((dst = buf_reserve(out, 4 * ((len + 2) / 3) + 1)) == NULL)
        goto done;
    buf_commit(out, (size_t)EVP_EncodeBlock((unsigned char *)dst, pub, (int)len));
    rc = 0;
done:
    OPENSSL_free(der);
    ERR_clear_error();
    return rc;
}

bool dkimkey_matches(const dkimkey_t *rec, const dkimkey_private_t *k, const char **why)
{
    EVP_PKEY *pub = NULL;
    unsigned bits;
    bool same = false;

    if (rec->p_len == 0) {
        *why = "the record is revoked (empty p=)";
    } else if (rec->type != k->type) {
        *why = rec->type == DKIM_KEY_ED25519 ? "the record is for an Ed25519 key, this key is RSA"
                                             : "the record is for an RSA key, this key is Ed25519";
    } else if ((pub = dkimkey_public(rec, &bits, why)) != NULL) {
        same = EVP_PKEY_eq(pub, k->pk) == 1;
        *why = same ? NULL : "a different key";
    }
    EVP_PKEY_free(pub);
    ERR_clear_error();
    return same;
}

/* ---- public keys from records ---- */

/* One DER element at *p (tag, then a length in at most 2 octets): its
 * tag, and its contents in [*c, *c + *clen).  0, or -1 when malformed. */
static int dkimkey_der_next(const unsigned char **p, const unsigned char *end, unsigned *tag,
                            const unsigned char **c, size_t *clen)
{
    const unsigned char *q = *p;
    size_t len;

    if (end - q < 2)
        return -1;
    *tag = *q++;
    len = *q++;
    if (len == 0x81 || len == 0x82) {
        size_t k = len - 0x80;

        if ((size_t)(end - q) < k)
            return -1;
        len = k == 1 ? q[0] : (size_t)q[0] << 8 | q[1];
        q += k;
    } else if (len > 0x7f) {
        return -1;
    }
    if ((size_t)(end - q) < len)
        return -1;
    *c = q;
    *clen = len;
    *p = q + len;
    return 0;
}

/*
 * The RSAPublicKey inside a SubjectPublicKeyInfo for rsaEncryption, found
 * by hand: OpenSSL 3 decodes an SPKI through its provider decoders at some
 * 200 us a key, the inner PKCS#1 structure in 2 us.  Anything else (other
 * OIDs, odd encodings) is left to d2i_PUBKEY().
 */
static bool dkimkey_spki_rsa(const unsigned char *der, size_t len, const unsigned char **inner,
                             size_t *inner_len)
{
    static const unsigned char rsa_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                            0xf7, 0x0d, 0x01, 0x01, 0x01};
    const unsigned char *p = der, *end = der + len, *c, *alg, *bits;
    size_t clen, alg_len, bits_len;
    unsigned tag;

    if (dkimkey_der_next(&p, end, &tag, &c, &clen) < 0 || tag != 0x30)
        return false;
    p = c;
    end = c + clen;
    if (dkimkey_der_next(&p, end, &tag, &alg, &alg_len) < 0 || tag != 0x30 ||
        alg_len < sizeof(rsa_oid) || memcmp(alg, rsa_oid, sizeof(rsa_oid)) != 0)
        return false;
    if (dkimkey_der_next(&p, end, &tag, &bits, &bits_len) < 0 || tag != 0x03 || bits_len < 2 ||
        bits[0] != 0)
        return false;
    *inner = bits + 1;
    *inner_len = bits_len - 1;
    return true;
}

EVP_PKEY *dkimkey_public(const dkimkey_t *rec, unsigned *bits, const char **why)
{
    EVP_PKEY *pk = NULL;
    const unsigned char *q, *inner;
    size_t inner_len;

    if (rec->type == DKIM_KEY_ED25519) {
        if (rec->p_len == 32)
            pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, rec->p, rec->p_len);
        *bits = 256;
        *why = pk == NULL ? "bad Ed25519 key" : NULL;
        goto done;
    }
    /* Publishers use SubjectPublicKeyInfo; a few publish the bare PKCS#1
     * RSAPublicKey that RFC 6376's wording suggests.  Accept both. */
    if (dkimkey_spki_rsa(rec->p, rec->p_len, &inner, &inner_len)) {
        q = inner;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)inner_len);
    }
    if (pk == NULL) {
        q = rec->p;
        pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)rec->p_len);
    }
    if (pk == NULL) {
        q = rec->p;
        pk = d2i_PUBKEY(NULL, &q, (long)rec->p_len);
    }
    *why = NULL;
    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
        *why = "bad RSA key";
    } else {
        *bits = (unsigned)EVP_PKEY_get_bits(pk);
        if (*bits < DKIMKEY_RSA_VERIFY_MIN_BITS)
            *why = "RSA key under 1024 bits";
        else if (*bits > DKIMKEY_RSA_MAX_BITS)
            *why = "RSA key too large";
    }
    if (*why != NULL) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
done:
    ERR_clear_error();
    return pk;
}

/* ---- signatures ---- */

int dkimkey_sign(const dkimkey_private_t *k, const void *data, size_t len, unsigned char *sig,
                 size_t *sig_len)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char hash[32];
    int rc = DKIMKEY_ECRYPTO;

    *sig_len = DKIMKEY_SIG_MAX;
    if (m == NULL)
        goto done;
    if (k->type == DKIM_KEY_ED25519) {
        /* RFC 8463: PureEdDSA over the SHA-256 of the data, so one-shot
         * with no digest of OpenSSL's own. */
        if (EVP_Digest(data, len, hash, NULL, EVP_sha256(), NULL) != 1 ||
            EVP_DigestSignInit(m, NULL, NULL, NULL, k->pk) != 1 ||
            EVP_DigestSign(m, sig, sig_len, hash, sizeof(hash)) != 1)
            goto done;
    } else {
        EVP_PKEY_CTX *pc = NULL;

        if (EVP_DigestSignInit(m, &pc, EVP_sha256(), NULL, k->pk) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1 ||
            EVP_DigestSign(m, sig, sig_len, data, len) != 1)
            goto done;
    }
    rc = 0;
done:
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return rc;
}

bool dkimkey_verify(EVP_PKEY *pk, dkim_alg_t alg, const unsigned char *sig, size_t sig_len,
                    const unsigned char hash[32])
{
    bool ok = false;

    if (alg == DKIM_ED25519_SHA256) {
        /* RFC 8463: Ed25519 (pure, no prehash of its own) over the SHA-256
         * of the header data. */
        EVP_MD_CTX *m = EVP_MD_CTX_new();

        ok = m != NULL && EVP_DigestVerifyInit(m, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestVerify(m, sig, sig_len, hash, 32) == 1;
        EVP_MD_CTX_free(m);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);

        ok = c != NULL && EVP_PKEY_verify_init(c) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
             EVP_PKEY_verify(c, sig, sig_len, hash, 32) == 1;
        EVP_PKEY_CTX_free(c);
    }
    ERR_clear_error(); /* failures leave entries in this thread's queue */
    return ok;
}
