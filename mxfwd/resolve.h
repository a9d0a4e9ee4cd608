/*
 * resolve - `mxfwd resolve ADDRESS`: what the inbound session would do
 * with mail to ADDRESS (smtpd/rcpt.h), as one line of JSON, so that the
 * running daemon (its control socket, with the table it has loaded) and
 * the command itself (the files, when no daemon answers) say it alike.
 *
 *     {"ok":true,"kind":"forward","dests":["a@example.com"],
 *      "entry":"team@alias.test","file":"etc/forwards","line":3}
 *
 * kind is "forward", "bounce" (an SRS address: "dests" holds the original
 * sender; from <> only), "keyed" (a long sender's SRS address: "dests"
 * holds the key the envelope store knows), "discard", "hold" (postmaster@ with no postmaster set) or "refuse" ("reply"
 * is the whole SMTP
 * reply); "entry", "file" and "line" name the forward table entry that
 * decided, when one did.  docs/queue.md has the request.
 */
#ifndef MXFWD_RESOLVE_H
#define MXFWD_RESOLVE_H

#include "buf.h"
#include "json.h"
#include "rcpt.h"

/* Decide for addr (as typed: "<a@b>" and the bare "postmaster" too) with
 * ctx, the table read from table_path; the reply object into out. */
void resolve_json(const rcpt_ctx_t *ctx, const char *table_path, const char *addr, buf_t *out);

/* Print a reply of resolve_json() for people; source says whose table it
 * is.  The exit status: 0 when mail to the address is accepted. */
int resolve_print(const json_t *v, const char *source);

#endif
