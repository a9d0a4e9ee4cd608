/*
 * dkimsign - making signatures in DKIM's syntax: a DKIM-Signature (RFC
 * 6376, RFC 8463), an ARC-Message-Signature or an ARC-Seal (RFC 8617), all
 * three through dkimsign_sign(), one code path for the field's layout,
 * its canonicalization (canon.h) and the signing (dkimkey.h).
 *
 * The body hash comes apart from the signature: dkimsign_body_* takes the
 * message as received and hashes its body (relaxed, SHA-256) as it
 * streams, so headers rewritten later need no second pass over the body.
 *
 * Everything here is pure: no I/O, no logging, no shared state; the
 * signing functions may run on any thread (libuv's pool), several at once
 * with one key.  Errors are DKIMSIGN_E* codes (dkimsign_strerror()) or
 * BUF_EFULL when out's cap was reached (out is then as it was).
 */
#ifndef MXFWD_DKIMSIGN_H
#define MXFWD_DKIMSIGN_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "canon.h"
#include "dkimkey.h"
#include "dkimsig.h"

/* The dkimsign band of error codes (docs/development.md, "Error codes"). */
#define DKIMSIGN_EBASE (-22000)
#define DKIMSIGN_EINVAL (DKIMSIGN_EBASE - 1)  /* bad parameters (see dkimsign_sign()) */
#define DKIMSIGN_ECRYPTO (DKIMSIGN_EBASE - 2) /* hashing or signing failed */

#define DKIMSIGN_WIDTH 78 /* columns a signature field is folded at */

/* The usual header set, signed where present (From always, oversigned):
 * From, To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To,
 * References, MIME-Version, Content-Type, Content-Transfer-Encoding,
 * List-Id, List-Unsubscribe, List-Unsubscribe-Post, Sender. */
#define DKIMSIGN_USUAL_NNAMES 16
extern const char *const dkimsign_usual_names[DKIMSIGN_USUAL_NNAMES];

/* ---- the body hash ---- */

typedef struct {
    EVP_MD_CTX *md;
    canon_body_t canon;
    int state; /* where in the header section, or in the body */
} dkimsign_body_t;

/* 0, or DKIMSIGN_ECRYPTO (then nothing to free). */
int dkimsign_body_init(dkimsign_body_t *b);
/* The whole message as received, header section and body, CRLF line
 * ends, in chunks cut anywhere: the body is what follows the first empty
 * line (none: an empty body). */
void dkimsign_body_feed(dkimsign_body_t *b, const char *p, size_t n);
/* The relaxed body hash (RFC 6376 3.4.4, 3.7): 0, or DKIMSIGN_ECRYPTO.
 * Nothing may be fed afterwards. */
int dkimsign_body_final(dkimsign_body_t *b, unsigned char bh[32]);
void dkimsign_body_free(dkimsign_body_t *b);

/* ---- the signature ---- */

typedef struct {
    dkimsig_kind_t kind;          /* DKIMSIG_DKIM, DKIMSIG_AMS or DKIMSIG_SEAL */
    const dkimkey_private_t *key; /* a= follows its type */
    const char *domain;           /* d= */
    const char *selector;         /* s= */
    uint64_t time;                /* t= */
    unsigned instance;            /* AMS, seal: i=, 1 to 50 */
    dkim_cv_t cv;                 /* seal: cv= */
    /* DKIM, AMS: the names of the fields to sign (any case); those present
     * are signed, each once per instance, From (listed or not) once more
     * than it occurs.  NULL: dkimsign_usual_names. */
    const char *const *names;
    size_t nnames;
} dkimsign_t;

/*
 * Append the complete field, "DKIM-Signature: ..." (or
 * "ARC-Message-Signature: ...", "ARC-Seal: ...") with its CRLF, folded at
 * DKIMSIGN_WIDTH columns, c=relaxed/relaxed, no l=, no x=.
 *
 * DKIM and AMS: fields are the header fields of the message as it will
 * leave, top to bottom, each without its final CRLF (an AMS's own
 * ARC-Authentication-Results among them, on top); bh the body hash
 * (dkimsign_body_final()).  h= lists each name present once per field of
 * that name (RFC 6376 5.4.2 selects the bottom-most first) and From once
 * more.  An AMS starts with i= and must not sign ARC-Seal or
 * Authentication-Results (RFC 8617 4.1.2): such a name is DKIMSIGN_EINVAL.
 *
 * Seal: fields are exactly the fields it seals, in order (RFC 8617 5.1.1:
 * each ARC set's ARC-Authentication-Results, ARC-Message-Signature,
 * ARC-Seal from i=1 up, then its own set's first two); bh is unused.
 *
 * 0, BUF_EFULL, DKIMSIGN_ECRYPTO, or DKIMSIGN_EINVAL: no key, a domain or
 * selector that is no DNS name, an instance outside 1 to 50, more than
 * DKIMSIG_HNAMES_MAX names in h=.
 */
int dkimsign_sign(const dkimsign_t *p, const canon_field_t *fields, size_t nfields,
                  const unsigned char *bh, buf_t *out);

const char *dkimsign_strerror(int err);

#endif
