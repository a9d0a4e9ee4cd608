/*
 * reply - the words of mxfwd's SMTP replies, in one place.
 *
 * The inbound session and `mxfwd resolve` say the same thing about the
 * same address, so the texts live here rather than in either of them.
 * Codes follow SPEC.md's table; the enhanced status codes are RFC 3463's.
 */
#ifndef MXFWD_REPLY_H
#define MXFWD_REPLY_H

#include <stddef.h>

#include "table.h"

/* Format the reply to RCPT for a forward-table result other than
 * TABLE_FOUND, without CRLF: "554 5.7.1 <x@y>: Relay access denied".
 * Returns dst. */
char *reply_for_lookup(table_result_t result, const char *addr, char *dst, size_t size);

/* The reply to RCPT for an address in srs_domain that srs_reverse()
 * refused with err (SRS_E*): "550 5.7.1 <addr>: ..." for a bad hash, an
 * expired or malformed address; not-srs is an unknown user.  Returns dst. */
char *reply_for_srs_reverse(int err, const char *addr, char *dst, size_t size);

/* The reply to RCPT for an SRS address from a sender other than <>: only
 * bounces may use one, so a leaked SRS address is no open relay. */
char *reply_for_srs_sender(const char *addr, char *dst, size_t size);

/* The reply to MAIL FROM for a sender srs_forward() refused with err:
 * "550 5.1.7 <addr>: ..." for one too long or impossible to rewrite. */
char *reply_for_srs_forward(int err, const char *addr, char *dst, size_t size);

#endif
