/*
 * dkimkey - DKIM keys in both directions: the public key a verifier makes
 * from a published record's p= (RFC 6376 3.6.1, RFC 8463), the private key
 * a signer loads from a PEM file, the record that publishes its public
 * half, and the signing and verifying primitives over OpenSSL 3's EVP.
 *
 * Signing keys are RSA of 2048 bits or more or Ed25519; anything else is
 * refused at load time with a reason a person can act on.  A loaded key is
 * read-only afterwards, so any number of threads may sign with it at once
 * (OpenSSL 3 allows concurrent use of a shared EVP_PKEY); nothing here logs,
 * and only dkimkey_load() does I/O (the one file read).
 *
 * Ownership: dkimkey_load() returns a key the caller frees with
 * dkimkey_free(); dkimkey_public() an EVP_PKEY the caller frees with
 * EVP_PKEY_free().  Errors are DKIMKEY_E* codes (dkimkey_strerror()) or
 * BUF_EFULL where a buf_t is written.
 */
#ifndef MXFWD_DKIMKEY_H
#define MXFWD_DKIMKEY_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "dkimsig.h"

/* RFC 8301 3.2: a verifier refuses RSA keys under 1024 bits; a signer
 * should use 2048.  16384 bits is what a signature buffer holds. */
#define DKIMKEY_RSA_VERIFY_MIN_BITS 1024
#define DKIMKEY_RSA_SIGN_MIN_BITS 2048
#define DKIMKEY_RSA_MAX_BITS 16384
#define DKIMKEY_FILE_MAX 65536          /* bytes of a PEM key file */
#define DKIMKEY_SIG_MAX DKIMSIG_B_MAX   /* bytes of a signature */
#define DKIMKEY_WHY_MAX 160             /* a reason, with its NUL */

/* The dkimkey band of error codes (docs/development.md, "Error codes"). */
#define DKIMKEY_EBASE (-21000)
#define DKIMKEY_EREAD (DKIMKEY_EBASE - 1)   /* the key file cannot be read */
#define DKIMKEY_EFORMAT (DKIMKEY_EBASE - 2) /* not a PEM private key */
#define DKIMKEY_ETYPE (DKIMKEY_EBASE - 3)   /* neither RSA nor Ed25519 */
#define DKIMKEY_ESIZE (DKIMKEY_EBASE - 4)   /* an RSA key too small or too large */
#define DKIMKEY_ECRYPTO (DKIMKEY_EBASE - 5) /* OpenSSL failed (memory, most likely) */

typedef struct dkimkey dkimkey_private_t;

/*
 * Load a signing key from a PEM file: PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
 * ("PRIVATE KEY"), unencrypted.  0 and *out, or a DKIMKEY_E* code with the
 * reason in why[why_size] ("RSA key of 1024 bits: signing needs at least
 * 2048", "not an RSA or Ed25519 key", "cannot read: No such file or
 * directory", "not a PEM private key").
 */
int dkimkey_load(const char *path, dkimkey_private_t **out, char *why, size_t why_size);
/* The same from PEM text in memory (what dkimkey_load() does after reading). */
int dkimkey_load_pem(const char *pem, size_t len, dkimkey_private_t **out, char *why,
                     size_t why_size);
void dkimkey_free(dkimkey_private_t *k);

dkim_keytype_t dkimkey_type(const dkimkey_private_t *k);
/* The algorithm a signature by k uses: rsa-sha256 or ed25519-sha256. */
dkim_alg_t dkimkey_alg(const dkimkey_private_t *k);
unsigned dkimkey_bits(const dkimkey_private_t *k); /* 256 for Ed25519 */

/* Append the TXT record publishing k's public half, as RFC 6376 and RFC
 * 8463 publish them: "v=DKIM1; k=rsa; p=BASE64" (p= the DER
 * SubjectPublicKeyInfo) or "v=DKIM1; k=ed25519; p=BASE64" (the 32-byte
 * key).  0, BUF_EFULL, or DKIMKEY_ECRYPTO. */
int dkimkey_record(const dkimkey_private_t *k, buf_t *out);

/* Whether the published record rec is the public half of k; when it is
 * not, *why says how it differs ("the record is revoked (empty p=)", "the
 * record is for an Ed25519 key, this key is RSA", "a different key"). */
bool dkimkey_matches(const dkimkey_t *rec, const dkimkey_private_t *k, const char **why);

/*
 * The verifier's key from a parsed record: an RSA key (SubjectPublicKeyInfo
 * or the bare PKCS#1 RSAPublicKey some publish) of 1024 to 16384 bits, or a
 * 32-byte Ed25519 key.  The EVP_PKEY and *bits (256 for Ed25519), or NULL
 * with *why ("bad RSA key", "RSA key under 1024 bits", "bad Ed25519 key").
 * A revoked record (empty p=) is the caller's to refuse first.
 */
EVP_PKEY *dkimkey_public(const dkimkey_t *rec, unsigned *bits, const char **why);

/*
 * Sign data[len] for a DKIM-style signature (RFC 6376 3.7, RFC 8463): RSA
 * PKCS#1 v1.5 with SHA-256 over the data, or Ed25519 over the SHA-256 of
 * the data.  sig must hold DKIMKEY_SIG_MAX bytes; 0 and *sig_len, or
 * DKIMKEY_ECRYPTO.  Thread-safe.
 */
int dkimkey_sign(const dkimkey_private_t *k, const void *data, size_t len, unsigned char *sig,
                 size_t *sig_len);

/* Whether sig is alg's signature by pk over the data whose SHA-256 is
 * hash.  Thread-safe. */
bool dkimkey_verify(EVP_PKEY *pk, dkim_alg_t alg, const unsigned char *sig, size_t sig_len,
                    const unsigned char hash[32]);

const char *dkimkey_strerror(int err);

#endif
