/*
 * canon - DKIM canonicalization, "simple" and "relaxed" (RFC 6376 3.4).
 *
 * Header fields are canonicalized one at a time from their raw bytes
 * ("Name: value" with any folding, without the final CRLF).  Bodies are
 * canonicalized as a stream: canon_body_update() takes the bytes as they
 * arrive, in chunks cut anywhere (inside a CRLF or a run of white space
 * too), and passes the canonical bytes to an output callback.  Trailing
 * empty lines cannot be told from inner ones until more text or the end
 * arrives, so the stream holds back a count of CRLFs, never the bytes.
 *
 * Only CRLF ends a line; a bare CR or LF is an ordinary byte (the SMTP
 * session refuses such messages anyway, RFC 5321 2.3.8).  Nothing here
 * allocates except through the caller's buf_t.
 */
#ifndef MXFWD_CANON_H
#define MXFWD_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum { CANON_SIMPLE, CANON_RELAXED } canon_t;

/* One raw header field, "Name: value" with any folding, without its final
 * CRLF; a header section is an array of them, top to bottom. */
typedef struct {
    const char *ptr;
    size_t len;
} canon_field_t;

/* Names one selection may list (DKIM's h= with oversigning). */
#define CANON_SELECT_MAX 64

/*
 * Append the canonical form of one header field to out, followed by CRLF
 * when crlf is set (every field but the DKIM-Signature being verified,
 * RFC 6376 3.7).  0, or BUF_EFULL when out's cap was reached.
 */
int canon_header(canon_t type, const char *field, size_t len, bool crlf, buf_t *out);

/*
 * The header fields a signature's list of names selects (RFC 6376 5.4.2):
 * for each name in turn the bottom-most field of that name not selected
 * yet, canonicalized with its CRLF; a name with no field left selects
 * nothing (an oversigned name).  Names compare without regard to case.
 * 0, BUF_EFULL, or -1 for more than CANON_SELECT_MAX names.
 */
int canon_select(canon_t type, const canon_field_t *fields, size_t nfields,
                 const char *const *names, size_t nnames, buf_t *out);

/* The length of a field's name: what comes before the colon, white space
 * before it left out; 0 for a line without a colon. */
size_t canon_name_len(const char *field, size_t len);

/* Whether the line at line[0..len) starts a header field: a name of
 * printable ASCII but ':' (RFC 5322 ftext), white space allowed before the
 * colon (obs-optional).  A receiver's parser ends the header section at a
 * line that is neither this nor a continuation. */
bool canon_is_field_start(const char *line, size_t len);

/* A signature's own field with b='s value, the bytes [b_start, b_end),
 * left out (RFC 6376 3.7), canonicalized without a CRLF.  0 or BUF_EFULL. */
int canon_header_blank(canon_t type, const char *field, size_t len, size_t b_start, size_t b_end,
                       buf_t *out);

typedef void (*canon_out_fn)(void *arg, const char *p, size_t n);

typedef struct {
    canon_t type;
    canon_out_fn out;
    void *arg;
    uint64_t crlf_owed; /* line ends held back: trailing empty lines vanish */
    bool wsp_owed;      /* relaxed: white space held back, one SP if more text follows */
    bool cr;            /* the last byte was a CR that may start a CRLF */
    bool any;           /* some text was written: the body is not empty */
} canon_body_t;

void canon_body_init(canon_body_t *c, canon_t type, canon_out_fn out, void *arg);
void canon_body_update(canon_body_t *c, const char *p, size_t n);
/* The end of the body: writes the final CRLF (or, for an empty body, CRLF
 * with simple and nothing with relaxed, per the RFC's errata 3192). */
void canon_body_final(canon_body_t *c);

#endif
