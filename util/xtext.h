/*
 * xtext - the encoding of DSN parameter values in SMTP (RFC 3461 4):
 * printable ASCII from '!' to '~' except '+' and '=' as itself, every
 * other octet as "+" and two upper-case hex digits ("+2B" for '+').
 */
#ifndef MXFWD_XTEXT_H
#define MXFWD_XTEXT_H

#include <stddef.h>

#include "buf.h"

/*
 * Decode s[0..len) into dst[size] (NUL-terminated): the decoded length, or
 * -1 when s is not xtext (a character outside xchar, a '+' without two hex
 * digits) or the result does not fit.  Decoded octets may be anything; the
 * caller checks what it allows.
 */
long xtext_decode(const char *s, size_t len, char *dst, size_t size);

/* Append s[0..len) encoded.  0, or BUF_EFULL. */
int xtext_encode(buf_t *out, const char *s, size_t len);

#endif
