/*
 * dkimsig - the syntax of DKIM: the DKIM-Signature header field's value
 * (RFC 6376 3.5) and the key record published at
 * SELECTOR._domainkey.DOMAIN (RFC 6376 3.6.1, RFC 8463).
 *
 * Both parsers are pure functions over untrusted bytes: no allocation, no
 * I/O, fixed-size results, every length checked, so a hostile signature or
 * key is an error code and a short reason, never a crash.  The reason is a
 * static string for the Authentication-Results comment ("missing d=").
 *
 * Accepted algorithms are rsa-sha256 and ed25519-sha256; rsa-sha1 is
 * refused as RFC 8301 requires.
 */
#ifndef MXFWD_DKIMSIG_H
#define MXFWD_DKIMSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon.h"

#define DKIMSIG_DOMAIN_MAX 254   /* d= and the i= domain, with the NUL */
#define DKIMSIG_SELECTOR_MAX 128 /* s= */
#define DKIMSIG_AUID_MAX 320     /* i= */
#define DKIMSIG_HNAMES_MAX CANON_SELECT_MAX /* names in h= (oversigning included) */
#define DKIMSIG_HLIST_MAX 2048   /* bytes of h= */
#define DKIMSIG_B_MAX 2048       /* decoded signature: RSA up to 16384 bits */
#define DKIMKEY_P_MAX 2600       /* decoded key: an RSA-16384 SubjectPublicKeyInfo */

/* The dkimsig band of error codes (docs/development.md, "Error codes"). */
#define DKIMSIG_EBASE (-15000)
#define DKIMSIG_EINVAL (DKIMSIG_EBASE - 1) /* see the reason */

typedef enum { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 } dkim_alg_t;
/* What carries a signature in DKIM's syntax: a DKIM-Signature, or ARC's
 * ARC-Message-Signature and ARC-Seal (RFC 8617 4.1.2, 4.1.3). */
typedef enum { DKIMSIG_DKIM, DKIMSIG_AMS, DKIMSIG_SEAL } dkimsig_kind_t;
/* An ARC-Seal's cv= (RFC 8617 4.1.3); also the outcome of validating a
 * chain (arc.h). */
typedef enum { DKIM_CV_NONE, DKIM_CV_PASS, DKIM_CV_FAIL } dkim_cv_t;
typedef enum { DKIM_KEY_RSA, DKIM_KEY_ED25519 } dkim_keytype_t;

typedef struct {
    dkimsig_kind_t kind;
    unsigned instance; /* ARC: i= */
    dkim_cv_t cv;      /* ARC-Seal: cv= */
    dkim_alg_t alg;
    canon_t hcanon, bcanon;
    char domain[DKIMSIG_DOMAIN_MAX];     /* d=, lowercased */
    char selector[DKIMSIG_SELECTOR_MAX]; /* s= */
    char auid[DKIMSIG_AUID_MAX];         /* i=, or "@" d= when absent (and for ARC) */
    /* h=: names, NUL-separated in hlist; hname[k] points into it. */
    char hlist[DKIMSIG_HLIST_MAX];
    const char *hname[DKIMSIG_HNAMES_MAX];
    size_t nhnames;
    bool has_length;
    uint64_t length; /* l=; UINT64_MAX when it overflowed */
    bool has_timestamp, has_expire;
    uint64_t timestamp, expire; /* t=, x= */
    unsigned char bh[32];       /* bh=: SHA-256 is all either algorithm uses */
    unsigned char b[DKIMSIG_B_MAX];
    size_t b_len;
    char b_prefix[12]; /* the first 8 characters of b=, for header.b (RFC 6008) */
    /* Where b='s value lies in the parsed value, to blank it (RFC 6376 3.7). */
    size_t b_raw_start, b_raw_end;
} dkimsig_t;

typedef struct {
    dkim_keytype_t type;
    unsigned char p[DKIMKEY_P_MAX]; /* decoded p= */
    size_t p_len;                   /* 0: revoked */
    bool testing;                   /* t=y */
    bool strict;                    /* t=s: i= must be d= exactly */
} dkimkey_t;

/* Parse the value of a DKIM-Signature field (what follows the colon, folding
 * included).  0, or DKIMSIG_EINVAL with *why set. */
int dkimsig_parse(const char *value, size_t len, dkimsig_t *sig, const char **why);

/* The same for ARC's signatures: kind DKIMSIG_AMS (i= the instance, h= must
 * not list ARC-Seal, v= ignored) or DKIMSIG_SEAL (i=, cv=, no h=, bh=, c=:
 * relaxed header canonicalization), or DKIMSIG_DKIM as dkimsig_parse(). */
int dkimsig_parse_kind(dkimsig_kind_t kind, const char *value, size_t len, dkimsig_t *sig,
                       const char **why);

/* Parse one TXT record of a key.  0 (a revoked key parses, with p_len 0),
 * or DKIMSIG_EINVAL with *why set. */
int dkimsig_key_parse(const char *rec, size_t len, dkimkey_t *key, const char **why);

/* Whether the signature signs the header field called name (any case). */
bool dkimsig_signs(const dkimsig_t *sig, const char *name);

/* Base64 (RFC 4648) with white space ignored, strict padding.  The decoded
 * length, or -1 on a bad character, bad padding or no room. */
long dkimsig_b64_decode(const char *s, size_t len, unsigned char *dst, size_t size);

const char *dkimsig_alg_name(dkim_alg_t alg);

#endif
