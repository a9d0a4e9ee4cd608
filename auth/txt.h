/*
 * txt - the seam between the sender checks and whatever answers DNS TXT
 * queries.
 *
 * DKIM key records and DMARC policy records are TXT lookups made while a
 * message streams in.  The checks ask through this small function table so
 * the loop's c-ares resolver can answer them in the daemon and a scripted
 * implementation in tests, with no network.
 *
 * Contract for an implementation:
 * - lookup() returns 0 and then calls done() exactly once, on the loop
 *   thread, never from inside lookup() itself; or returns non-zero, and
 *   done() is never called (libuv's rule for async calls).
 * - A query in flight when the resolver shuts down completes with
 *   TXT_TEMPFAIL, so callers can always count on their callback.
 * - Each answer record is the concatenation of the record's character
 *   strings (RFC 6376 3.6.2.2, RFC 7489 6.6.3 and RFC 7208 3.3 all join
 *   them without separators).  The records and their bytes belong to the
 *   implementation and are valid only during the callback.
 * - "No such name" and "name exists, no TXT record" are both TXT_NONE:
 *   none of the callers tells them apart.  Timeouts, SERVFAIL, REFUSED and
 *   malformed replies are TXT_TEMPFAIL.
 */
#ifndef MXFWD_TXT_H
#define MXFWD_TXT_H

#include <stddef.h>

typedef enum {
    TXT_OK,       /* nrecords >= 1 */
    TXT_NONE,     /* NXDOMAIN or no TXT record at the name */
    TXT_TEMPFAIL, /* try again later */
} txt_status_t;

typedef struct {
    const char *data; /* not NUL-terminated; may contain any byte */
    size_t len;
} txt_record_t;

typedef void (*txt_done_fn)(void *arg, txt_status_t status, const txt_record_t *records,
                            size_t nrecords);

typedef struct txt_ops {
    /* Look up the TXT records of name (no trailing dot needed). */
    int (*lookup)(void *impl, const char *name, txt_done_fn done, void *arg);
} txt_ops_t;

typedef struct {
    const txt_ops_t *ops;
    void *impl;
} txt_resolver_t;

#endif
