/*
 * dns - the asynchronous resolver: one c-ares channel driven by a libuv loop.
 *
 * A dns_resolver_t owns a c-ares channel, a uv_poll_t for each socket
 * c-ares opens, one uv_timer_t for c-ares' retransmission timeouts, a
 * uv_idle_t that delivers results, and a small cache of answers (positive
 * and negative) that honours their TTLs.  Identical lookups in flight at
 * the same time share one query.
 *
 * Lookups (A, AAAA, MX, TXT, PTR) return results typed for their use: MX
 * preference and host, addresses, TXT records with their strings joined
 * (what SPF, DKIM and DMARC read), PTR host names.  A and AAAA lookups of
 * an IP literal answer with the address itself, as getaddrinfo(3) does.
 *
 * Callbacks run on the loop thread, never from inside the lookup call that
 * started them and never from inside c-ares.  A lookup call that returns
 * an error never calls its callback.  The result passed to a callback
 * belongs to the resolver and is valid only until the callback returns:
 * copy what you keep.
 *
 * Errors are negative DNS_E* codes.  NXDOMAIN and NODATA are permanent
 * (the domain told us; dns_is_permanent() says so); server failures,
 * refusals, timeouts and malformed answers are temporary, as is a lookup
 * cancelled by closing the resolver.  dns_strerror() words them as Postfix
 * does, so reasons read the same in logs and bounces.
 */
#ifndef MXFWD_DNS_H
#define MXFWD_DNS_H

#include <ares.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Longest domain name in text form, without the trailing dot (RFC 1035). */
#define DNS_NAME_MAX 253

/* The dns band of error codes (docs/development.md, "Error codes"). */
#define DNS_EBASE (-10000)
#define DNS_ENXDOMAIN (DNS_EBASE - 1)    /* permanent: the name does not exist */
#define DNS_ENODATA (DNS_EBASE - 2)      /* permanent: the name exists, no record of the type */
#define DNS_EBADNAME (DNS_EBASE - 3)     /* permanent: not a domain name we can look up */
#define DNS_ESERVFAIL (DNS_EBASE - 4)    /* temporary: the server failed (SERVFAIL) */
#define DNS_EREFUSED (DNS_EBASE - 5)     /* temporary: the server refused (REFUSED) */
#define DNS_ETIMEOUT (DNS_EBASE - 6)     /* temporary: no answer in time */
#define DNS_ECONNREFUSED (DNS_EBASE - 7) /* temporary: no server reachable (or willing) */
#define DNS_EBADRESP (DNS_EBASE - 8)     /* temporary: malformed or unusable answer */
#define DNS_EFAIL (DNS_EBASE - 9)        /* temporary: other resolver failure */
#define DNS_ECANCELED (DNS_EBASE - 10)   /* temporary: the resolver was closed */
#define DNS_ECLOSING (DNS_EBASE - 11)    /* lookup refused: the resolver is closing */
#define DNS_EINVAL (DNS_EBASE - 12)      /* bad argument or option (a server address, a type) */

typedef enum {
    DNS_T_A = 1,
    DNS_T_PTR = 12,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
} dns_type_t;

typedef struct {
    uint16_t pref;
    char *host; /* lowercased, no trailing dot; "" is the root (null MX) */
} dns_mx_t;

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } in;
} dns_addr_t;

typedef struct {
    char *text; /* the record's character-strings joined, NUL-terminated */
    size_t len; /* may be shorter than strlen() only if the record held a NUL */
} dns_txt_t;

/* An answer: n records of the type asked for, in the order received. */
typedef struct dns_result {
    dns_type_t type;
    size_t n;
    union {
        dns_mx_t *mx;     /* DNS_T_MX */
        dns_addr_t *addr; /* DNS_T_A, DNS_T_AAAA */
        dns_txt_t *txt;   /* DNS_T_TXT */
        char **ptr;       /* DNS_T_PTR: host names, lowercased */
    } u;
    /* Resolver-private: references and memory held (for the cache). */
    unsigned refs;
    size_t bytes;
} dns_result_t;

/* status is 0 with res set, or a DNS_E* code with res NULL. */
typedef void (*dns_cb)(void *arg, int status, const dns_result_t *res);

/* Monotonic milliseconds; tests inject one to age the cache. */
typedef uint64_t (*dns_clock_fn)(void *arg);

typedef struct {
    /* Name servers, "ip", "ip:port" or "[ip6]:port" (config dns_servers).
     * None: those of /etc/resolv.conf. */
    const char *const *servers;
    size_t nservers;
    unsigned timeout_ms;  /* first try; c-ares doubles it each round.  0: default */
    unsigned tries;       /* 0: default */
    bool no_cache;        /* every lookup asks the servers */
    size_t cache_entries; /* 0: default */
    size_t cache_bytes;   /* 0: default */
    uint32_t max_ttl;     /* positive answers are kept at most this long (s); 0: default */
    uint32_t max_neg_ttl; /* NXDOMAIN/NODATA likewise (RFC 2308); 0: default */
    dns_clock_fn clock;   /* NULL: the loop's clock */
    void *clock_arg;
} dns_options_t;

typedef struct {
    uint64_t lookups;    /* calls that were accepted */
    uint64_t queries;    /* queries sent to c-ares */
    uint64_t cache_hits; /* lookups answered from the cache, negative ones too */
    uint64_t joined;     /* lookups that joined an identical query in flight */
    uint64_t failures;   /* queries that ended in a temporary error */
} dns_stats_t;

typedef struct dns_resolver dns_resolver_t;
typedef struct dns_req dns_req_t;

/* Create a resolver on loop.  0 and *out, or DNS_EINVAL (a bad server
 * address) or DNS_EFAIL (c-ares could not start, e.g. no resolv.conf). */
int dns_resolver_new(uv_loop_t *loop, const dns_options_t *opts, dns_resolver_t **out);

/*
 * Close: refuse new lookups, end every pending lookup with DNS_ECANCELED
 * (callbacks run as usual, later on the loop), shut the channel and close
 * the handles.  closed(arg) runs, if given, once nothing of the resolver is
 * left on the loop; the resolver is freed then.
 */
void dns_resolver_close(dns_resolver_t *r, void (*closed)(void *arg), void *arg);

uv_loop_t *dns_resolver_loop(const dns_resolver_t *r);
void dns_resolver_stats(const dns_resolver_t *r, dns_stats_t *out);

/*
 * Look up records of type for name (case and a trailing dot do not
 * matter).  0: cb(arg, status, res) will be called once, unless the
 * lookup is cancelled; *req (if req is not NULL) identifies it until then.
 * DNS_EBADNAME, DNS_EINVAL or DNS_ECLOSING: no callback.
 */
int dns_lookup(dns_resolver_t *r, dns_type_t type, const char *name, dns_cb cb, void *arg,
               dns_req_t **req);

/* The PTR records of an address (in-addr.arpa / ip6.arpa), as dns_lookup(). */
int dns_ptr_lookup(dns_resolver_t *r, const struct sockaddr *sa, dns_cb cb, void *arg,
                   dns_req_t **req);

/* Forget a pending lookup: its callback will not be called.  The query
 * itself runs to its end and its answer is cached. */
void dns_cancel(dns_req_t *req);

/* Point a c-ares channel at servers written as in dns_options_t (for
 * channels of other modules, e.g. a blocking one for libspf2).  0 or
 * DNS_EINVAL. */
int dns_set_servers(ares_channel channel, const char *const *servers, size_t nservers);

/* Whether err is NXDOMAIN, NODATA or a bad name: the answer will not
 * change by asking again now. */
bool dns_is_permanent(int err);
const char *dns_strerror(int err);
/* "MX", "A", ... */
const char *dns_type_name(dns_type_t type);

#endif
