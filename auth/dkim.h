/*
 * dkim - streaming DKIM verification (RFC 6376, RFC 8463) on OpenSSL 3.
 *
 * The verifier takes the message as it arrives: dkim_feed() accepts chunks
 * cut anywhere, including inside a CRLF.  While in the header section it
 * assembles header fields (unfolding is canonicalization's business: the
 * raw bytes are kept), at most header_max bytes of them; each DKIM-Signature
 * is parsed as soon as its field is complete and announced through
 * on_signature so its key lookup can start while the body still streams.
 * Every complete field is also shown to on_field (DMARC wants From); after
 * a line that is neither a field nor a continuation no field is, as a
 * receiver's RFC 5322 parser ends the header section there.  The
 * body is canonicalized and hashed on the fly for every signature, each
 * body canonicalization done once however many signatures use it, so
 * nothing is kept of the body and no second pass over the spool is needed.
 *
 * Keys arrive through dkim_set_key() in any order; dkim_end() closes the
 * body; dkim_finish() then verifies every signature that has its key and
 * fills in the results.  Time for x= comes from the options, so tests pin
 * it.  A signature that cannot be parsed, or whose key is missing, revoked,
 * malformed, too small (RSA under 1024 bits, RFC 8301) or of the wrong
 * type, is a permerror for that signature alone.
 *
 * Ownership: dkim_new() returns an object the caller frees with
 * dkim_free(); results point into it.  Nothing here logs or does I/O.
 */
#ifndef MXFWD_DKIM_H
#define MXFWD_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dkimsig.h"
#include "txt.h"

typedef enum {
    DKIM_PENDING,   /* not verified yet */
    DKIM_PASS,
    DKIM_FAIL,      /* the body hash or the signature did not verify */
    DKIM_PERMERROR, /* unusable signature or key */
    DKIM_TEMPERROR, /* the key could not be fetched now */
} dkim_status_t;

typedef struct {
    dkim_status_t status;
    const char *reason; /* static text for the A-R comment; NULL on pass */
    /* What is known of the signature (empty strings when it did not parse
     * far enough): */
    char domain[DKIMSIG_DOMAIN_MAX];
    char selector[DKIMSIG_SELECTOR_MAX];
    char auid[DKIMSIG_AUID_MAX];
    char b_prefix[12];
    bool has_alg;
    dkim_alg_t alg;
    bool has_length;    /* l= was given ... */
    uint64_t length;    /* ... with this value */
    uint64_t body_len;  /* canonical body length actually seen */
    unsigned key_bits;  /* 256 for Ed25519 */
    bool testing;       /* the key says t=y */
} dkim_result_t;

typedef struct dkim dkim_t;

typedef struct {
    size_t header_max;       /* bytes of header fields kept; more: permerror */
    unsigned max_signatures; /* signatures beyond these are not evaluated */
    time_t now;              /* for x= */
    /* A DKIM-Signature field was complete and parsed: its key may be fetched
     * (dkim_key_name()).  Optional. */
    void (*on_signature)(void *arg, size_t index);
    /* A header field is complete: raw bytes, folding included, without the
     * final CRLF; name_len is the name's length before the colon.  Optional. */
    void (*on_field)(void *arg, const char *field, size_t len, size_t name_len);
    /* The header section is over, no body byte hashed yet: dkim_fields()
     * has them all and dkim_body_hash_add() may ask for more.  Optional. */
    void (*on_headers_done)(void *arg);
    void *arg;
} dkim_options_t;

dkim_t *dkim_new(const dkim_options_t *opt);
void dkim_free(dkim_t *d);

void dkim_feed(dkim_t *d, const char *p, size_t n);
/* The whole message has been fed. */
void dkim_end(dkim_t *d);
/* Whether the header section is over (fields are then all known). */
bool dkim_headers_done(const dkim_t *d);

/* Signatures seen (evaluated ones, at most max_signatures). */
size_t dkim_count(const dkim_t *d);
/* "SELECTOR._domainkey.DOMAIN" for a signature that parsed.  0, or -1 when
 * the signature did not parse or the name does not fit. */
int dkim_key_name(const dkim_t *d, size_t index, char *dst, size_t size);
/* The outcome of the key lookup for a signature.  Records are parsed at
 * once and need not outlive the call. */
void dkim_set_key(dkim_t *d, size_t index, txt_status_t status, const txt_record_t *records,
                  size_t nrecords);
/* Verify every signature (after dkim_end()); ones still without a key
 * become temperrors. */
void dkim_finish(dkim_t *d);
const dkim_result_t *dkim_result(const dkim_t *d, size_t index);

const char *dkim_status_name(dkim_status_t s);

/*
 * For signatures of other kinds over the same message (ARC's, arc.h):
 *
 * The header fields kept, top to bottom, once the header section is over
 * (NULL and 0 before); *complete is false when the section was larger than
 * header_max and some are missing.  They live as long as d.
 */
const canon_field_t *dkim_fields(const dkim_t *d, size_t *n, bool *complete);
/* One more body hash: SHA-256 of the body canonicalized as type, at most
 * limit canonical octets (UINT64_MAX: all), computed as the body streams
 * with the same canonicalization every signature shares.  Only before the
 * body starts (from on_headers_done): a handle, or -1. */
int dkim_body_hash_add(dkim_t *d, canon_t type, uint64_t limit);
/* After dkim_end(): 0 with the hash and the canonical body length, or -1
 * (no such handle, or hashing failed; *body_len is still set). */
int dkim_body_hash_get(const dkim_t *d, int handle, unsigned char md[32], uint64_t *body_len);

#endif
