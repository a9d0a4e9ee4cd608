/*
 * sign - what mxfwd adds to a message it forwards, with one key: its own
 * DKIM-Signature (d=signing_domain), an ARC set (RFC 8617), and, when
 * nothing else can keep the destination's DMARC check from failing, a
 * rewritten From: (docs/sender-checks.md, "Signing").
 *
 * A sign_ctx_t is a configuration snapshot with its key loaded, swapped
 * whole on reload; it is reference-counted on the loop thread, and its key
 * is only read by the pool's threads while a reference is held.
 *
 * Per message (the inbound session drives it):
 *
 *   sign_msg_new(ctx)                at DATA
 *   sign_msg_feed(m, bytes, n) ...   the message as received: its header
 *                                    section is kept (up to
 *                                    SIGN_HEADER_MAX), its body hashed
 *   sign_msg_set_headers(m, ...)     when filters changed the header
 *                                    section: the one that leaves
 *   sign_msg_prepare(m, ...)         after the verdict, on the loop
 *                                    thread: decides the From rewrite,
 *                                    copies what the signatures need
 *   sign_msg_work(m)                 on libuv's thread pool: the
 *                                    signatures, pure CPU
 *   sign_msg_prepend(m) / _skip(m)   the bytes to put on top (ARC set,
 *                                    DKIM-Signature, the trace fields given
 *                                    to prepare, a rewritten header
 *                                    section), and how much of the
 *                                    message's start they replace
 *   sign_msg_free(m)
 *
 * Nothing here logs; sign_msg_note() says what was done, for the log.
 * Errors are SIGN_E* codes (sign_strerror()).
 */
#ifndef MXFWD_SIGN_H
#define MXFWD_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "authres.h"
#include "buf.h"
#include "dkimsign.h"

/* The header section kept for signing and rewriting; a message with a
 * longer one is forwarded unsigned and untouched. */
#define SIGN_HEADER_MAX (256 * 1024)

/* The sign band of error codes (docs/development.md, "Error codes"). */
#define SIGN_EBASE (-24000)
#define SIGN_EKEY (SIGN_EBASE - 1)     /* the key did not load (see why) */
#define SIGN_EHEADERS (SIGN_EBASE - 2) /* the header section is too long or not one */
#define SIGN_ESTATE (SIGN_EBASE - 3)   /* a call out of order */

typedef enum { SIGN_REWRITE_DMARC, SIGN_REWRITE_OFF, SIGN_REWRITE_ALWAYS } sign_rewrite_t;

typedef struct {
    const char *key_path; /* PEM, RSA of 2048 bits or more, or Ed25519 */
    const char *selector;
    const char *domain; /* d= of every signature and seal */
    bool dkim;          /* dkim_sign */
    bool arc;           /* arc_seal */
    sign_rewrite_t rewrite;
    const char *rewrite_address; /* From: of a rewritten message */
    const char *authserv_id;     /* the ARC-Authentication-Results' authserv-id */
} sign_config_t;

typedef struct sign_ctx sign_ctx_t;
typedef struct sign_msg sign_msg_t;

/* Load the key and copy cfg: 0 and *out (one reference), or SIGN_EKEY with
 * the reason in why[why_size]. */
int sign_ctx_new(const sign_config_t *cfg, sign_ctx_t **out, char *why, size_t why_size);
sign_ctx_t *sign_ctx_ref(sign_ctx_t *ctx);
void sign_ctx_unref(sign_ctx_t *ctx);
/* "RSA 2048" or "Ed25519", for the log. */
const char *sign_ctx_key_text(const sign_ctx_t *ctx, char *dst, size_t size);

/* A message to sign; holds a reference to ctx.  NULL when the hasher
 * cannot be set up (libcrypto out of memory). */
sign_msg_t *sign_msg_new(sign_ctx_t *ctx);
void sign_msg_feed(sign_msg_t *m, const char *p, size_t n);

/*
 * The message's header section as it will leave, p[0..n) (fields with
 * their CRLFs), in place of the first skip bytes of the message fed (its
 * own fields, which stay in the spool, skipped: docs/spool.md, "K").
 * Before prepare; the fields are signed and rewritten in place of the
 * message's own, and are part of what sign_msg_prepend() gives, with
 * skip what sign_msg_skip() gives, whatever else happens.
 */
void sign_msg_set_headers(sign_msg_t *m, const char *p, size_t n, uint64_t skip);

/*
 * The verdict is in and the message will be accepted: res its results,
 * trace[trace_len] the header fields mxfwd puts on top of it
 * (Authentication-Results:, Received:, CRLF after each), alias the
 * address it was sent to (a rewritten From says "via" it), now the
 * signatures' t=.  Decides the rewrite (docs/sender-checks.md) and copies
 * everything sign_msg_work() needs, so that res and trace may go.
 * 0; SIGN_EHEADERS when the header section cannot be signed (too long, or
 * a line that is no field before its end): the message then goes as it
 * is, with the trace alone (sign_msg_prepend() gives it).
 */
int sign_msg_prepare(sign_msg_t *m, const authres_t *res, const char *trace, size_t trace_len,
                     const char *alias, time_t now);

/* The signatures and the seal: on any thread, once, after prepare. */
void sign_msg_work(sign_msg_t *m);

/* After work (or a failed prepare): the bytes to prepend and the bytes of
 * the message they replace at its start (its own header section when
 * From was rewritten, else 0). */
const char *sign_msg_prepend(const sign_msg_t *m, size_t *len);
uint64_t sign_msg_skip(const sign_msg_t *m);

/* What was done, for the log: "dkim arc from-rewritten" style words, ""
 * for nothing; and the first error of the signing, 0 if none. */
const char *sign_msg_note(const sign_msg_t *m);
int sign_msg_error(const sign_msg_t *m);
/* Whether From was rewritten, and why (a static sentence). */
bool sign_msg_rewrote(const sign_msg_t *m, const char **why);

void sign_msg_free(sign_msg_t *m);

/*
 * A whole message mxfwd makes itself (a DSN): its DKIM-Signature field,
 * appended to out.  Any thread.  0, SIGN_EHEADERS, or an error of
 * dkimsign_sign().
 */
int sign_message(const sign_ctx_t *ctx, const char *msg, size_t len, time_t now, buf_t *out);

const char *sign_strerror(int err);

#endif
