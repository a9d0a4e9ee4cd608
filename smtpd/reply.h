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

#endif
