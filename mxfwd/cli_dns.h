/*
 * cli_dns - DNS for the admin commands that ask it (doctor, explain): the
 * daemon's resolver (dns.h) on dns_servers, with its SPF (spf.h), on a
 * libuv loop of the command's own.
 *
 * A command starts lookups (each filling an answer it owns), then
 * cli_dns_wait() runs the loop until every one is in; lookups started
 * together run at once.  Each ends in a bounded time, since the resolver
 * and SPF have their own timeouts (docs/dns.md): a timeout or SERVFAIL is
 * an answer with its DNS_E* status, never a hang.
 *
 * Answers are copies the caller frees with cli_dns_answer_free(); an
 * answer must stay where it is until cli_dns_wait() has returned.
 */
#ifndef MXFWD_CLI_DNS_H
#define MXFWD_CLI_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"
#include "dmarc.h"
#include "dns.h"
#include "rdns.h"
#include "spf.h"

typedef struct cli_dns cli_dns_t;

/* One lookup's answer: status 0 and n records of its type, or a DNS_E*
 * code and n == 0. */
typedef struct {
    dns_type_t type;
    int status;
    size_t n;
    dns_mx_t *mx;     /* DNS_T_MX */
    dns_addr_t *addr; /* DNS_T_A, DNS_T_AAAA */
    dns_txt_t *txt;   /* DNS_T_TXT */
} cli_dns_answer_t;

/* A forward-confirmed name of an address (rdns.h), copied. */
typedef struct {
    rdns_status_t status;
    char name[DNS_NAME_MAX + 1];       /* RDNS_OK: the confirmed name */
    char unverified[DNS_NAME_MAX + 1]; /* otherwise: a PTR name that did not map back, or "" */
    int error;                         /* RDNS_TEMPFAIL: the DNS_E* code */
} cli_dns_rdns_t;

/* The DMARC record that applies to a domain (RFC 7489 6.6.3): the
 * domain's own, else its organizational domain's. */
typedef struct {
    dmarc_lookup_t lookup;           /* of the record finally used */
    dmarc_record_t rec;              /* FOUND */
    bool at_org;                     /* the record is the organizational domain's */
    char org[DMARC_DOMAIN_MAX];      /* the organizational domain */
    char name[DMARC_DOMAIN_MAX + 8]; /* where the record used was looked up */
    char *text;                      /* FOUND: the record, cli_dns_printable() */
    const char *why;                 /* INVALID: why (static) */
    int error;                       /* TEMPFAIL: the DNS_E* code */
    dmarc_policy_t applied;          /* FOUND: p=, or sp= for a subdomain under at_org */
} cli_dns_dmarc_t;

/* A resolver on cfg's dns_servers, and SPF with cfg's hostname.  CLI_OK
 * and *out, or CLI_FAIL with the reason on stderr. */
int cli_dns_open(const config_t *cfg, cli_dns_t **out);
/* Close everything and run the loop to its end. */
void cli_dns_close(cli_dns_t *d);

/* Start a lookup into *ans; a name DNS cannot carry is an answer at once. */
void cli_dns_start(cli_dns_t *d, dns_type_t type, const char *name, cli_dns_answer_t *ans);
/* Start the forward-confirmed reverse lookup of addr into *out. */
void cli_dns_start_rdns(cli_dns_t *d, const dns_addr_t *addr, cli_dns_rdns_t *out);
/* Start an SPF check_host() for a client at addr, as a receiver makes it
 * for mail with that HELO name and envelope sender ("" for <>). */
void cli_dns_start_spf(cli_dns_t *d, const dns_addr_t *addr, const char *helo, const char *sender,
                       spf_result_t *out);
/* Run the loop until everything started is answered. */
void cli_dns_wait(cli_dns_t *d);
/* cli_dns_start() and cli_dns_wait(). */
void cli_dns_lookup(cli_dns_t *d, dns_type_t type, const char *name, cli_dns_answer_t *ans);
void cli_dns_answer_free(cli_dns_answer_t *ans);

/* Find the DMARC record for domain (lowercased), waiting for it;
 * cli_dns_dmarc_free() releases *out. */
void cli_dns_dmarc(cli_dns_t *d, const char *domain, cli_dns_dmarc_t *out);
void cli_dns_dmarc_free(cli_dns_dmarc_t *dm);

/* A copy of DNS text fit for a terminal: bytes other than printable
 * ASCII (escapes, NULs, UTF-8) as '?'.  The caller frees it. */
char *cli_dns_printable(const char *s, size_t len);

/* The text form of an address into dst[INET6_ADDRSTRLEN]. */
const char *cli_dns_addr_str(const dns_addr_t *addr, char *dst, size_t size);

/* The name of addr's PTR record ("4.3.2.1.in-addr.arpa", ip6.arpa
 * nibbles) into dst[80]. */
const char *cli_dns_ptr_name(const dns_addr_t *addr, char *dst, size_t size);

/* Append the zone-file line that publishes a TXT record at name:
 * 'NAME. TXT "..." "..."', the value cut into strings of at most 255
 * octets (RFC 1035 3.3.14), which readers of SPF, DKIM and DMARC join. */
int cli_dns_zone_txt(const char *name, const char *value, buf_t *out);

#endif
