/*
 * srs - the Sender Rewriting Scheme: SRS0/SRS1 forward and reverse, in the
 * Guarded scheme of Mail::SRS, compatible with it and with PostSRSd.
 *
 *     user@example.com  ->  SRS0=HHHH=TT=example.com=user@srs_domain
 *     SRS0=hhhh=TT=orig.example=user@fwd.example
 *                       ->  SRS1=HHHH=fwd.example==hhhh=TT=orig.example=user@srs_domain
 *
 * TT is the day number (unix time / 86400) mod 1024 in base32; HHHH the
 * first four base64 characters of HMAC-SHA1(secret, lc(fields)).  Hashes
 * are written in the URL-safe alphabet ("-" and "_" for "+" and "/");
 * reverse accepts both alphabets, any letter case, and every secret.
 *
 * Reversing an SRS1 address yields the SRS0 address at the first
 * forwarder, as Mail::SRS does: only that forwarder's secret can check the
 * inner hash and stamp, so a bounce goes back along the chain one hop.
 *
 * A sender whose address would not fit 64 octets of local part is the
 * caller's choice (srs_forward_long(), docs/srs.md "Long senders"):
 * refused, written long all the same, or replaced by a key under which the
 * caller keeps the sender (srs_store.h):
 *
 *     SRS0=HHHH=TT=-=KEY@srs_domain      KEY: SRS_KEY_LEN base32 characters
 *
 * An srs_t is immutable once made and may be shared by threads; it owns
 * copies of the domain and of the secrets.  The clock is the caller's: every
 * call takes the current unix time, so tests pin it.  Results are written
 * into the caller's array of at least SRS_ADDR_SIZE bytes, NUL-terminated.
 * Errors are the negative SRS_E* codes; srs_errname() gives the one-word
 * name the CLI prints ("bad-hash"), srs_strerror() a sentence.
 */
#ifndef MXFWD_SRS_H
#define MXFWD_SRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"

/* Room for any result: an address of ADDR_INPUT_MAX octets and its NUL. */
#define SRS_ADDR_SIZE (ADDR_INPUT_MAX + 1)
/* Characters of the hash written; shorter ones are refused on reverse. */
#define SRS_HASH_LEN 4
/* A store key: 130 bits of HMAC-SHA256 in base32 (A-Z, 2-7), and its NUL. */
#define SRS_KEY_LEN 26
#define SRS_KEY_SIZE (SRS_KEY_LEN + 1)
/* The host field of a keyed SRS0 address: no domain can be "-". */
#define SRS_KEY_MARKER "-"

/* Not an error: the SRS address names a store key (srs_forward_long(),
 * srs_reverse()). */
#define SRS_KEYED 1

/* srs_long_senders: what becomes of a sender whose SRS address would not
 * fit (docs/srs.md). */
typedef enum { SRS_LONG_REJECT, SRS_LONG_STORE, SRS_LONG_EMBED } srs_long_t;

/* The srs band of error codes (docs/development.md, "Error codes"). */
#define SRS_EBASE (-9000)
#define SRS_ENOTSRS (SRS_EBASE - 1)    /* not-srs: the local part is not SRS0/SRS1 */
#define SRS_EMALFORMED (SRS_EBASE - 2) /* malformed: fields missing, empty or ill-formed */
#define SRS_EBADHASH (SRS_EBASE - 3)   /* bad-hash: no secret gives this hash */
#define SRS_EEXPIRED (SRS_EBASE - 4)   /* expired: stamp older than max age, or in the future */
#define SRS_ETOOLONG (SRS_EBASE - 5)   /* too-long: the new local part would exceed 64 octets */
#define SRS_ENOSECRET (SRS_EBASE - 6)  /* srs_new() was given no secret */
#define SRS_ECRYPTO (SRS_EBASE - 7)    /* libcrypto failed (HMAC-SHA1 unavailable) */

typedef struct srs srs_t;

/*
 * Make a rewriter for domain (the srs_domain) with the secrets, the first
 * of which signs; all of them verify.  max_age is in seconds and counts in
 * whole days (rounded down), as SRS stamps do.  0 and *out, or an error.
 */
int srs_new(const char *domain, uint64_t max_age, const char *const *secrets, size_t nsecrets,
            srs_t **out);
void srs_free(srs_t *srs);

/*
 * Rewrite the envelope sender s[0..len) at time now into dst.
 *  - the null sender (len 0) stays empty;
 *  - a sender in our own domain is copied unchanged (not rewritten twice);
 *  - an SRS0 or SRS1 sender from another forwarder becomes SRS1;
 *  - any other becomes SRS0.
 * Errors: SRS_ETOOLONG when the result would not be a valid address (local
 * part over 64 octets or address over 254); SRS_EMALFORMED when s is not a
 * mailbox SRS can carry (no @domain, a quoted local part, an address
 * literal); SRS_ECRYPTO.
 */
int srs_forward(const srs_t *srs, const char *s, size_t len, time_t now, char *dst, size_t size);

/*
 * srs_forward(), except for a sender whose SRS address would have a local
 * part over 64 octets or be over 254 octets:
 *   SRS_LONG_REJECT  SRS_ETOOLONG, as srs_forward();
 *   SRS_LONG_EMBED   that address all the same (SRS_ETOOLONG only beyond
 *                    ADDR_INPUT_MAX octets);
 *   SRS_LONG_STORE   SRS_KEYED: dst is SRS0=HHHH=TT=-=KEY@srs_domain and
 *                    key (not NULL then) is KEY, srs_key() of the sender;
 *                    the caller keeps the sender under it.
 */
int srs_forward_long(const srs_t *srs, srs_long_t mode, const char *s, size_t len, time_t now,
                     char *dst, size_t size, char key[SRS_KEY_SIZE]);

/*
 * The store key of the sender s[0..len): base32 of HMAC-SHA256 with the
 * signing secret over the address as given, so the same sender always
 * gets the same key, nobody without the secret can make or guess one, and
 * the key says nothing of the address.  0 or SRS_ECRYPTO.
 */
int srs_key(const srs_t *srs, const char *s, size_t len, char key[SRS_KEY_SIZE]);

/*
 * The original address behind the SRS address s[0..len) at time now.  The
 * domain of s is not looked at: the caller decides which domains are ours
 * (srs_is_own_domain()).  SRS0 gives the original sender, SRS1 the SRS0
 * address at the first forwarder, and both return 0; a keyed SRS0 address
 * whose hash and stamp hold returns SRS_KEYED with its key (upper case)
 * in dst, for the caller to look up.  On SRS_EEXPIRED, *age (when not NULL)
 * is the stamp's age in days, 0 to 1023, the wrap making a stamp from the
 * future look very old.  Errors: SRS_ENOTSRS, SRS_EMALFORMED,
 * SRS_EBADHASH, SRS_EEXPIRED, SRS_ECRYPTO.
 */
int srs_reverse(const srs_t *srs, const char *s, size_t len, time_t now, char *dst, size_t size,
                unsigned *age);

/*
 * The key a keyed SRS0 address s[0..len) names, upper case, into key,
 * without checking its hash or stamp: for addresses this forwarder wrote
 * itself (its queued messages').  SRS_KEYED, or SRS_ENOTSRS for any other
 * address.
 */
int srs_address_key(const char *s, size_t len, char key[SRS_KEY_SIZE]);

/* Whether domain[0..len) is our srs_domain (ASCII case-insensitive). */
bool srs_is_own_domain(const srs_t *srs, const char *domain, size_t len);
const char *srs_domain(const srs_t *srs);
unsigned srs_max_age_days(const srs_t *srs);

/* "not-srs", "malformed", "bad-hash", "expired", "too-long", ... */
const char *srs_errname(int err);
/* A sentence about err, without a final period. */
const char *srs_strerror(int err);

#endif
