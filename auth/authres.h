/*
 * authres - the outcome of the sender checks of one message, and what the
 * session makes of it: the reply (authres_decide), the
 * Authentication-Results header field (authres_header, RFC 8601) and the
 * log fragment (authres_log), all three from the same struct so they can
 * never disagree.
 *
 * ARC's outcome is recorded beside the others and reported, but no rule
 * of the decision uses it yet.
 *
 * The struct is plain data, filled by auth.c and readable by anyone;
 * everything here is a pure function of it and of the configured actions.
 * Texts are printable ASCII: domains went through syntax checks, reasons
 * are static strings, SPF's explanation is sanitized.
 *
 * The decision, in order (docs/sender-checks.md has the table):
 *  1. DMARC fail whose policy, after pct, is reject, dmarc_action enforce:
 *     550 5.7.1; so is a message without a usable From under enforce, with
 *     a reply saying what is wrong with its From.
 *  2. SPF fail, spf_action reject, and no valid DKIM signature aligned with
 *     the From domain: 550 5.7.23 (451 4.4.3 when an aligned signature's
 *     key could not be fetched: it might have passed).
 *  3. A temporary DNS error that could have changed 1 or 2: 451 4.4.3.
 *  4. Otherwise accept; a DMARC fail asking for quarantine is recorded
 *     (quarantine flag, header, log), since a forwarder has no junk folder.
 */
#ifndef MXFWD_AUTHRES_H
#define MXFWD_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "arc.h"
#include "buf.h"
#include "dkim.h"
#include "dmarc.h"
#include "spf.h"

#define AUTHRES_DKIM_MAX 10     /* signatures evaluated and reported */
#define AUTHRES_REPLY_MAX 512   /* an SMTP reply line, RFC 5321 4.5.3.1.5 */

/* The configured actions (docs/configuration.md: spf_action, dmarc_action); for DMARC,
 * AUTH_ACTION_REJECT is "enforce". */
typedef enum { AUTH_ACTION_REJECT, AUTH_ACTION_TAG, AUTH_ACTION_OFF } auth_action_t;

typedef enum {
    AUTHRES_ACCEPT,
    AUTHRES_DEFER,  /* 4xx */
    AUTHRES_REJECT, /* 5xx */
} authres_verdict_t;

typedef struct {
    authres_verdict_t verdict;
    bool quarantine;  /* accepted, but DMARC asked for quarantine */
    const char *why;  /* "spf", "dmarc", "from" (no usable author), "dns" or NULL: for counters */
    char reply[AUTHRES_REPLY_MAX]; /* "550 5.7.1 ...", no CRLF; "" on accept */
} authres_decision_t;

/* Why DMARC had no author domain to check (RFC 7489 6.6.1). */
typedef enum {
    AUTHRES_FROM_OK,       /* one or more usable From domains */
    AUTHRES_FROM_ABSENT,   /* no From header field */
    AUTHRES_FROM_UNUSABLE, /* From fields, but no address with a domain in them */
    AUTHRES_FROM_TOO_MANY, /* more From domains than DMARC_FROM_MAX */
} authres_from_t;

typedef struct {
    bool spf_done;  /* SPF was evaluated */
    spf_result_t spf;
    bool dkim_done; /* DKIM was evaluated (ndkim may still be 0) */
    size_t ndkim;
    dkim_result_t dkim[AUTHRES_DKIM_MAX];
    bool arc_done;  /* an incoming ARC chain was looked for */
    arc_result_t arc;
    bool dmarc_done;
    size_t ndmarc;  /* one per From domain; one permerror when From is unusable */
    dmarc_result_t dmarc[DMARC_FROM_MAX];
    authres_from_t from_missing; /* no usable From: why (dmarc[0] says it too) */
    authres_decision_t decision; /* filled by authres_decide() */
} authres_t;

/* Fill r->decision from the results and the actions. */
void authres_decide(authres_t *r, auth_action_t spf_action, auth_action_t dmarc_action);

/* Append "Authentication-Results: AUTHSERV-ID; ...\r\n", folded at 78
 * columns where it can be.  0, or BUF_EFULL. */
int authres_header(const authres_t *r, const char *authserv_id, buf_t *out);
/* The same results after another prefix (authres_header()'s is
 * "Authentication-Results: "; "" gives the value alone, what an ARC set's
 * ARC-Authentication-Results carries, arc_seal()): prefix, the value,
 * CRLF, folded counting the prefix's columns.  0, or BUF_EFULL. */
int authres_write(const authres_t *r, const char *authserv_id, const char *prefix, buf_t *out);

/* "spf=pass dkim=pass dmarc=pass" into dst[size] ("off" for a check that
 * did not run), then " arc=pass" when the message carried an ARC chain.
 * 0, or -1 when truncated. */
int authres_log(const authres_t *r, char *dst, size_t size);

/* The one word summing up the DKIM signatures: pass when any passed. */
const char *authres_dkim_summary(const authres_t *r);
/* Over all From domains: the strictest outcome. */
const char *authres_dmarc_summary(const authres_t *r);

#endif
