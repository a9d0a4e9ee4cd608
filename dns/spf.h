/*
 * spf - SPF (RFC 7208) with libspf2, its DNS layer backed by c-ares.
 *
 * libspf2 is synchronous, so spf_check() blocks: call it from libuv's
 * thread pool (auth.c does), never on the loop thread.  Its DNS layer is a
 * custom SPF_dns_server_t whose lookups go to a blocking c-ares channel of
 * its own, pointed at the configured DNS servers ("ip", "ip:port",
 * "[ip6]:port"; /etc/resolv.conf when none), never at libresolv.  Each pool
 * thread borrows a {channel, libspf2 server} pair from the spf_pool_t under
 * a mutex and gives it back, so evaluations never share one.
 *
 * The RFC's limits are enforced here rather than trusted to libspf2, which
 * restarts its count inside every include: at most 10 DNS-querying terms
 * (include, a, mx, ptr, exists, redirect) over the whole evaluation and at
 * most 2 void lookups, exceeding either being a permerror (4.6.4); the
 * SPF RR type (99) is never queried (RFC 7208 3.1 retired it).  The whole
 * evaluation also has a deadline (4.6.4 says at least 20 s), past which it
 * is a temperror.
 *
 * Loopback clients get no free pass (libspf2's own entry point gives them
 * one): mxfwd is an MX, and mail reaching it over loopback is checked like
 * any other.
 */
#ifndef MXFWD_SPF_H
#define MXFWD_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

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
    bool helo;                        /* the identity was the HELO name (MAIL FROM <>) */
    char domain[256];                 /* the domain whose policy was checked; "" if none */
    char explanation[SPF_TEXT_MAX];   /* fail/softfail: "D does not authorize IP ..." */
    char problem[SPF_TEXT_MAX];       /* temperror/permerror/none: why */
    unsigned lookups;                 /* DNS-querying terms evaluated */
    unsigned void_lookups;
} spf_result_t;

typedef struct spf_pool spf_pool_t;

typedef struct {
    const char *const *dns_servers; /* c-ares CSV elements; none: /etc/resolv.conf */
    size_t ndns_servers;
    unsigned query_timeout_ms;      /* per try of one query (c-ares timeout) */
    unsigned tries;                 /* tries per query */
    unsigned total_timeout_ms;      /* the whole evaluation */
    const char *hostname;           /* ours, for the %{r} macro */
} spf_options_t;

#define SPF_EINVAL (-1)  /* bad option: a DNS server c-ares refuses */
#define SPF_ENOMEM (-2)
#define SPF_EDNS (-3)    /* c-ares could not be set up */

int spf_pool_new(const spf_options_t *opt, spf_pool_t **out);
/* Only once no spf_check() runs any more. */
void spf_pool_free(spf_pool_t *pool);

/*
 * Evaluate check_host() for a client.  sender is the MAIL FROM address
 * without brackets, "" for the null sender, in which case the HELO name is
 * the identity (RFC 7208 2.4).  Blocks for up to total_timeout_ms.  0 and
 * *out filled (every outcome, DNS trouble included, is a result), or a
 * negative SPF_E* when the pool cannot provide a resolver.
 */
int spf_check(spf_pool_t *pool, const struct sockaddr *client, const char *helo,
              const char *sender, spf_result_t *out);

const char *spf_status_name(spf_status_t s);
const char *spf_strerror(int err);

#endif
