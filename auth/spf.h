/*
 * spf - SPF (RFC 7208) with libspf2, on the loop thread, its DNS answered
 * by the loop's resolver (dns.h).
 *
 * libspf2 evaluates synchronously and asks its DNS layer as it goes.  Here
 * that layer answers only from what the evaluation has already learnt: a
 * question it cannot answer yet ends the run (its result is thrown away),
 * the question goes to the resolver asynchronously, and once the answer is
 * in, the evaluation runs again from the start.  A run costs microseconds;
 * the evaluation runs once per DNS-querying step plus once, and each run
 * asks exactly what the last asked, in the same order, so the final run
 * sees every answer and is the evaluation a blocking resolver would have
 * made.  Nothing blocks and no thread is involved; answers with a TTL come
 * from the resolver's cache, and lookups in flight for the same name are
 * shared with every other check.
 *
 * The RFC's limits are enforced here rather than trusted to libspf2, which
 * restarts its count inside every include: at most 10 DNS-querying terms
 * (include, a, mx, ptr, exists, redirect) over the whole evaluation and at
 * most 2 void lookups, exceeding either being a permerror (4.6.4); the
 * SPF RR type (99) is never queried (RFC 7208 3.1 retired it).  The whole
 * evaluation also has a deadline (4.6.4 says at least 20 s), checked as
 * each answer arrives, past which it is a temperror.
 *
 * Loopback clients get no free pass (libspf2's own entry point gives them
 * one): mxfwd is an MX, and mail reaching it over loopback is checked like
 * any other.
 *
 * Ownership: the caller owns the resolver, which must outlive the context;
 * the context must outlive its checks (finished or cancelled).  Callbacks
 * run on the loop thread, never from inside spf_check_start().
 */
#ifndef MXFWD_SPF_H
#define MXFWD_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dns.h"

typedef enum {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
} spf_status_t;

#define SPF_TEXT_MAX 256

typedef struct {
    spf_status_t status;
    bool helo;                      /* the identity was the HELO name (MAIL FROM <>) */
    char domain[256];               /* the domain whose policy was checked; "" if none */
    char explanation[SPF_TEXT_MAX]; /* fail/softfail: "D does not authorize IP ..." */
    char problem[SPF_TEXT_MAX];     /* temperror/permerror/none: why */
    unsigned lookups;               /* DNS-querying terms evaluated */
    unsigned void_lookups;
} spf_result_t;

typedef struct spf_ctx spf_ctx_t;
typedef struct spf_req spf_req_t;

typedef struct {
    dns_resolver_t *resolver;  /* answers every query; borrowed */
    unsigned total_timeout_ms; /* the whole evaluation */
    const char *hostname;      /* ours, for the %{r} macro */
} spf_options_t;

/* The spf band of error codes (docs/development.md, "Error codes"). */
#define SPF_EBASE (-14000)
#define SPF_EINVAL (SPF_EBASE - 1) /* bad option: no resolver */
#define SPF_ENOMEM (SPF_EBASE - 2) /* libspf2 could not set up */

/* spf_check_start()'s return when the result is known at once. */
#define SPF_DONE 1

int spf_ctx_new(const spf_options_t *opt, spf_ctx_t **out);
/* Only once no check is under way any more. */
void spf_ctx_free(spf_ctx_t *ctx);

/* The evaluation is over; res is valid during the call only. */
typedef void (*spf_done_fn)(void *arg, const spf_result_t *res);

/*
 * Start check_host() for a client.  sender is the MAIL FROM address
 * without brackets, "" for the null sender, in which case the HELO name is
 * the identity (RFC 7208 2.4).  Every outcome, DNS trouble included, is a
 * result, a resolver that is closing included (temperror):
 *   0         done(arg, res) will be called once (unless cancelled); *req
 *             identifies the check until then
 *   SPF_DONE  the result needed no DNS (a sender domain that is not one)
 *             and is in *now; no callback
 */
int spf_check_start(spf_ctx_t *ctx, const struct sockaddr *client, const char *helo,
                    const char *sender, spf_done_fn done, void *arg, spf_result_t *now,
                    spf_req_t **req);
/* Drop a check under way: its callback will not be called. */
void spf_check_cancel(spf_req_t *req);

/* Whether a TXT record (its strings joined) is an SPF record: "v=spf1"
 * alone or followed by a space, in any case (RFC 7208 4.5). */
bool spf_is_record(const char *txt, size_t len);

const char *spf_status_name(spf_status_t s);
const char *spf_strerror(int err);

#endif
