/*
 * addr - mailbox syntax (RFC 5321 4.1.2, RFC 6531 for UTF-8).
 *
 * addr_parse() checks "local@domain" without angle brackets or parameters
 * and reports where the parts are; it allocates nothing and the parts point
 * into the caller's string.  Path syntax ("<...>", source routes, ESMTP
 * parameters) is the SMTP layer's business; this module knows mailboxes.
 */
#ifndef MXFWD_ADDR_H
#define MXFWD_ADDR_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1: the limits of what mxfwd writes (its SRS addresses). */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_MAX 254
/* What mxfwd takes from others: RFC 5321 4.5.3.1 asks implementations to
 * avoid limits on the local part, so MAIL FROM and RCPT TO take addresses
 * as long as the command line allows, up to this (docs/smtp.md). */
#define ADDR_INPUT_MAX 2048

/* The addr band of error codes (docs/development.md, "Error codes"). */
#define ADDR_EBASE (-6000)
#define ADDR_EEMPTY (ADDR_EBASE - 1)     /* empty address */
#define ADDR_ENOAT (ADDR_EBASE - 2)      /* no "@domain" */
#define ADDR_ELOCAL (ADDR_EBASE - 3)     /* local part is not a dot-atom or quoted string */
#define ADDR_EDOMAIN (ADDR_EBASE - 4)    /* domain is not a host name or address literal */
#define ADDR_ELOCALLEN (ADDR_EBASE - 5)  /* local part over 64 octets */
#define ADDR_EDOMAINLEN (ADDR_EBASE - 6) /* domain over 255 octets */
#define ADDR_ELEN (ADDR_EBASE - 7)       /* address over 254 octets (input: ADDR_INPUT_MAX) */
#define ADDR_EUTF8 (ADDR_EBASE - 8)      /* invalid UTF-8 */

typedef struct {
    const char *local;
    size_t local_len;
    const char *domain;
    size_t domain_len;
    bool quoted;  /* local part is a quoted string */
    bool utf8;    /* some byte is outside ASCII (needs SMTPUTF8) */
    bool literal; /* domain is an address literal, "[...]" */
} addr_t;

/* Parse s[0..len).  0 and *out filled, or an ADDR_E* code. */
int addr_parse(const char *s, size_t len, addr_t *out);
/* The same for an address someone else wrote (MAIL FROM, RCPT TO): the
 * local part and the address may be up to ADDR_INPUT_MAX octets
 * (ADDR_ELEN beyond); the domain's limits are DNS's and stay. */
int addr_parse_input(const char *s, size_t len, addr_t *out);
const char *addr_strerror(int err);

/* Check a domain on its own (host name or address literal). */
int addr_domain_check(const char *d, size_t len);

/*
 * Whether the local part hides another address, the relay tricks of old:
 * "%" hacks (user%other@us), bang paths (host!user@us) and quoted local
 * parts holding "@".  A forwarder refuses them like any foreign domain.
 */
bool addr_is_relay_trick(const addr_t *a);

/*
 * A domain name as DNS-based protocols write it (DKIM d= and s=, DMARC and
 * SPF domains): ASCII letters, digits, '-' and '_' (underscore labels are
 * common there), labels of 1 to 63 octets, at most 253 octets without an
 * optional final dot.  Copied lowercased, without that dot, into dst[size].
 * Returns the length, or -1 when s is no such name or does not fit.
 */
int addr_dns_name(const char *s, size_t len, char *dst, size_t size);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool addr_utf8_valid(const char *s, size_t len);

#endif
