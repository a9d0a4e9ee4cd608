/*
 * arc - the Authenticated Received Chain (RFC 8617): a message's ARC sets
 * and their structure, validating a chain as the message streams in, and
 * sealing a message that leaves.
 *
 * Parsing is pure (arc_chain_collect(), arc_aar_parse()): the seals and
 * message signatures go through dkimsig's parser (DKIM's syntax, ARC's
 * kinds), the chain's fields are pointers into the caller's.  Validation
 * (arc_t) rides on the DKIM verifier (dkim.h): its header fields, and one
 * more of its body hashes for the latest ARC-Message-Signature; keys come
 * through arc_set_key() as DKIM's do.  Sealing (arc_seal()) signs through
 * dkimsign, so it is as pure and thread-safe as dkimsign_sign().
 *
 * Ownership: arc_new() returns an object the caller frees with arc_free();
 * results point into it.  Nothing here logs or does I/O.  Errors are
 * ARC_E* codes (arc_strerror()) or those of dkimsign_sign().
 */
#ifndef MXFWD_ARC_H
#define MXFWD_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "canon.h"
#include "dkim.h"
#include "dkimsig.h"
#include "dkimsign.h"
#include "txt.h"

#define ARC_INSTANCE_MAX 50 /* RFC 8617 4.2.1 */

/* The arc band of error codes (docs/development.md, "Error codes"). */
#define ARC_EBASE (-23000)
#define ARC_ESTRUCT (ARC_EBASE - 1)      /* the chain's structure is broken (see why) */
#define ARC_ECHAINFAILED (ARC_EBASE - 2) /* the latest seal says cv=fail: not extended */
#define ARC_EFULL (ARC_EBASE - 3)        /* 50 sets already: no room for another */
#define ARC_EINVAL (ARC_EBASE - 4)       /* the chain in the fields is not the one validated */

/* One ARC set: its three fields, each without its final CRLF. */
typedef struct {
    canon_field_t aar, ams, as;
} arc_set_t;

typedef struct {
    unsigned n;       /* the highest instance met (0: none) */
    bool any;         /* some ARC field was there */
    bool latest_fail; /* the seal of instance n parsed and says cv=fail */
    arc_set_t set[ARC_INSTANCE_MAX + 1]; /* set[i] for instance i, 1 to n */
} arc_chain_t;

/*
 * The ARC sets among a message's header fields (top to bottom, without
 * their CRLFs) and the chain's structure (RFC 8617 5.2 steps 1 to 4):
 * every ARC field parses, instances 1 to n are there exactly once each, n
 * at most 50, the latest seal does not say cv=fail, the first says
 * cv=none and every other cv=pass.  0 (no ARC field at all: n 0), or
 * ARC_ESTRUCT with *why; chain->n and chain->latest_fail are filled
 * either way, for sealing.
 */
int arc_chain_collect(const canon_field_t *fields, size_t nfields, arc_chain_t *chain,
                      const char **why);

/* The instance of an ARC-Authentication-Results value ("i=N; payload",
 * RFC 8617 4.1.1): 0 and *instance (1 to 999), *payload the offset of
 * what follows the ';'; or ARC_ESTRUCT. */
int arc_aar_parse(const char *value, size_t len, unsigned *instance, size_t *payload);

/* ---- validating an incoming chain ---- */

typedef struct {
    dkim_cv_t cv;       /* none: no chain */
    bool present;       /* the message carried ARC fields */
    unsigned instances; /* the highest instance, N */
    const char *reason; /* static; NULL for pass and none */
    bool temporary;     /* failed only for want of a key lookup */
    char domain[DKIMSIG_DOMAIN_MAX]; /* d= of the latest seal ("" if unknown) */
} arc_result_t;

typedef struct arc arc_t;

/* now: for x= of the message signature. */
arc_t *arc_new(time_t now);
void arc_free(arc_t *a);

/* A header field is complete (the DKIM verifier's on_field): notes whether
 * the message has ARC fields, even beyond what the verifier keeps. */
void arc_field(arc_t *a, const char *field, size_t len, size_t name_len);
/* The header section is over (the verifier's on_headers_done): collects
 * the chain from d's fields, checks its structure, and asks d for the body
 * hash of the latest message signature.  Keys are wanted afterwards. */
void arc_headers_done(arc_t *a, dkim_t *d);

/* The keys to fetch (distinct SELECTOR._domainkey.DOMAIN names). */
size_t arc_key_count(const arc_t *a);
int arc_key_name(const arc_t *a, size_t index, char *dst, size_t size);
/* The outcome of a key lookup, as dkim_set_key(). */
void arc_set_key(arc_t *a, size_t index, txt_status_t status, const txt_record_t *records,
                 size_t nrecords);

/* After dkim_end(d): validate the latest message signature and every seal
 * (RFC 8617 5.2 steps 5 to 8); keys still missing fail it, temporarily. */
void arc_finish(arc_t *a, const dkim_t *d);
const arc_result_t *arc_result(const arc_t *a);

/* ---- sealing ---- */

/*
 * Append the three fields of a new ARC set, each with its CRLF, in the
 * order they go on top of the message: ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results, instance n + 1.
 *
 * signer: key, domain, selector, time, and the names the message
 * signature signs (NULL: the usual set); its kind, instance and cv are
 * ignored.  fields: the message's header fields as it will leave, top to
 * bottom (the chain among them).  bh: the body hash.  aar[aar_len]: the
 * results, what authres_write() puts after its prefix (a final CRLF is
 * dropped).  cv and n: the chain's validation (arc_result_t).  The seal
 * says cv=none for n 0, pass or fail as validated; a failed chain's seal
 * covers only its own set (RFC 8617 5.1.2).
 *
 * 0; ARC_ECHAINFAILED when the latest seal in the fields says cv=fail (the
 * chain is not extended, RFC 8617 5.1.2); ARC_EFULL at 50 sets;
 * ARC_EINVAL when fields hold another chain than cv and n say; or an
 * error of dkimsign_sign().  out is unchanged on error.
 */
int arc_seal(const dkimsign_t *signer, const canon_field_t *fields, size_t nfields,
             const unsigned char bh[32], const char *aar, size_t aar_len, dkim_cv_t cv,
             unsigned n, buf_t *out);

const char *arc_cv_name(dkim_cv_t cv);
const char *arc_strerror(int err);

#endif
