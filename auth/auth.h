/*
 * auth - the sender checks of one message, run while it streams in.
 *
 * The inbound session drives one auth_msg_t per transaction:
 *
 *   auth_msg_new(ctx, client, helo)       once the sender is known (serve:
 *   auth_msg_mail_from(m, sender)         at the first accepted RCPT), with
 *                                         SPF starting at once (spf.h)
 *   auth_msg_feed(m, bytes, n) ...        during DATA, as bytes arrive:
 *                                         DKIM keys are fetched as soon as
 *                                         each signature is parsed, the
 *                                         DMARC policy once From is known,
 *                                         body hashes computed on the fly
 *   auth_msg_end(m, done, arg)            at the final dot; done() runs
 *                                         once, on the loop thread, when
 *                                         every check is in (or after
 *                                         check_timeout_ms, the missing
 *                                         ones as temperror)
 *   auth_msg_free(m)                      after done(): m->result is read
 *                                         in done() or any time before
 *   auth_msg_cancel(m)                    instead of all that, when the
 *                                         client leaves or the transaction
 *                                         is reset: no callback
 *
 * The bytes fed are the message as received after dot-unstuffing, CRLF
 * line ends, without the headers mxfwd prepends.  Nothing here reads the
 * spool file.
 *
 * auth_ctx_t holds what all messages share (SPF's libspf2 server, the
 * resolvers, the actions, the hooks); it is reference-counted so a config
 * reload can drop it while older sessions still finish with it.
 *
 * Ownership: the caller owns the loop and both resolvers, which must
 * outlive the context.  Both objects free themselves only once no work of
 * theirs is left in flight (a TXT lookup still out), like a libuv
 * handle's close.
 * Functions returning int give 0 or a negative AUTH_E*; the ones with a
 * callback do not call it when they fail.
 */
#ifndef MXFWD_AUTH_H
#define MXFWD_AUTH_H

#include <stddef.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "authres.h"
#include "dns.h"
#include "txt.h"

/* The auth band of error codes (docs/development.md, "Error codes"). */
#define AUTH_EBASE (-13000)
#define AUTH_EINVAL (AUTH_EBASE - 1) /* bad configuration, or a call out of order */
#define AUTH_ESPF (AUTH_EBASE - 2)   /* SPF could not be set up (no resolver, or libspf2) */

typedef struct auth_ctx auth_ctx_t;
typedef struct auth_msg auth_msg_t;

typedef struct {
    uv_loop_t *loop;
    const char *hostname;            /* authserv-id, and SPF's %{r} */
    dns_resolver_t *resolver;        /* SPF's lookups (the loop's resolver) */
    txt_resolver_t txt;              /* DKIM keys and DMARC records */
    auth_action_t spf_action, dmarc_action;
    size_t header_max;               /* header bytes kept for DKIM; 0: default */
    unsigned max_signatures;         /* 0: default */
    unsigned spf_timeout_ms;         /* whole SPF evaluation; 0: default */
    unsigned check_timeout_ms;       /* end of data to result, at most; 0: default */
    /* Test hooks; NULL for the real clock and randomness. */
    time_t (*now)(void *arg);        /* for DKIM x= */
    unsigned (*sample)(void *arg);   /* 0..99, for DMARC pct */
    void *hook_arg;
} auth_config_t;

int auth_ctx_new(const auth_config_t *cfg, auth_ctx_t **out);
/* Drop the creator's reference. */
void auth_ctx_release(auth_ctx_t *ctx);

/* helo may be NULL or "" when the client sent none. */
int auth_msg_new(auth_ctx_t *ctx, const struct sockaddr *client, const char *helo,
                 auth_msg_t **out);
/* sender without brackets, "" for <>.  At most once per message. */
int auth_msg_mail_from(auth_msg_t *m, const char *sender);
void auth_msg_feed(auth_msg_t *m, const char *p, size_t n);

typedef void (*auth_done_fn)(auth_msg_t *m, const authres_t *result, void *arg);
int auth_msg_end(auth_msg_t *m, auth_done_fn done, void *arg);

/* The results so far; complete, with the decision made, once done() ran. */
const authres_t *auth_msg_result(const auth_msg_t *m);

void auth_msg_cancel(auth_msg_t *m);
void auth_msg_free(auth_msg_t *m);

const char *auth_strerror(int err);

/*
 * The TXT lookups of the checks answered by the loop's resolver (dns.h):
 * fills *out so that cfg.txt can be it.  NXDOMAIN, NODATA and a name DNS
 * cannot carry are TXT_NONE; every other error is TXT_TEMPFAIL.  The
 * resolver must outlive the contexts using it; closing it ends lookups in
 * flight with a temporary error, as txt.h requires.
 */
void auth_txt_resolver(dns_resolver_t *r, txt_resolver_t *out);

#endif
