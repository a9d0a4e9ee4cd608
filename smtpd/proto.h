/*
 * proto - SMTP syntax as the inbound server speaks it (RFC 5321, 1870,
 * 2920, 3207, 6152, 6531): command lines, verbs, MAIL/RCPT paths with
 * their ESMTP parameters, replies and the Received: header.
 *
 * Everything here is pure: no I/O, no allocation, no clock (the time is an
 * argument), so unit tests and fuzzers call it directly.  Results point
 * into the caller's input, which must outlive them.  Errors are the
 * negative PROTO_E* codes; proto_strerror() gives the reply text.
 */
#ifndef MXFWD_PROTO_H
#define MXFWD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "buf.h"

/* ---- command lines ------------------------------------------------------ */

typedef enum {
    PROTO_LINE_PARTIAL, /* no LF yet, and under the length limit: read more */
    PROTO_LINE_OK,      /* a line ended by CRLF, no other CR or LF in it */
    PROTO_LINE_BARE,    /* a line ended by a bare LF, or holding a bare CR */
    PROTO_LINE_LONG,    /* over the limit; consumed up to where it was seen */
} proto_line_status_t;

typedef struct {
    const char *text; /* the line without its terminator */
    size_t len;
    size_t consumed; /* bytes to drop from the input, terminator included */
} proto_line_t;

/*
 * Find the next command line in p[0..len).  A line ends at LF; max is the
 * longest line allowed, CRLF included (RFC 5321 4.5.3.1.4).  On
 * PROTO_LINE_LONG without an LF in sight, consumed covers everything seen:
 * the caller then discards input up to the next LF (proto_skip_line()) so
 * that the rest of the long line is not read as commands.
 */
proto_line_status_t proto_next_line(const char *p, size_t len, size_t max, proto_line_t *out);

/* While discarding a long line: bytes of p[0..len) to drop, and *done when
 * they included the LF that ends it. */
size_t proto_skip_line(const char *p, size_t len, bool *done);

/* ---- verbs ---------------------------------------------------------------- */

typedef enum {
    PROTO_UNKNOWN = 0,
    PROTO_EHLO,
    PROTO_HELO,
    PROTO_MAIL,
    PROTO_RCPT,
    PROTO_DATA,
    PROTO_BDAT,
    PROTO_RSET,
    PROTO_NOOP,
    PROTO_QUIT,
    PROTO_HELP,
    PROTO_VRFY,
    PROTO_EXPN,
    PROTO_STARTTLS,
    PROTO_AUTH,
    PROTO_ETRN,
    PROTO_TURN,
    PROTO_HTTP, /* GET, POST, HEAD, PUT, CONNECT, OPTIONS: not a mail client */
    PROTO_NVERBS
} proto_verb_t;

typedef struct {
    proto_verb_t verb;
    const char *arg; /* after the verb and its spaces; trailing spaces cut */
    size_t arg_len;
} proto_cmd_t;

/* Split a command line into its verb (case-insensitive) and argument. */
void proto_parse_command(const char *line, size_t len, proto_cmd_t *out);
/* "EHLO", ... for logs; "unknown" for PROTO_UNKNOWN. */
const char *proto_verb_name(proto_verb_t verb);

/* ---- MAIL and RCPT --------------------------------------------------------- */

/* The proto band of error codes (docs/development.md, "Error codes"); the
 * reply and header writers return buf's BUF_EFULL. */
#define PROTO_EBASE (-20000)
#define PROTO_ESYNTAX (PROTO_EBASE - 1)   /* 501 5.5.4: not "FROM:<path>" / "TO:<path>" */
#define PROTO_EADDR (PROTO_EBASE - 2)     /* 501 5.5.4: the address is not a mailbox */
#define PROTO_EPARAM (PROTO_EBASE - 3)    /* 555 5.5.4: parameter not supported */
#define PROTO_EVALUE (PROTO_EBASE - 4)    /* 501 5.5.4: bad parameter value, or repeated */
#define PROTO_ENULLRCPT (PROTO_EBASE - 5) /* 501 5.5.4: RCPT TO:<> */

typedef enum { PROTO_BODY_NONE, PROTO_BODY_7BIT, PROTO_BODY_8BITMIME } proto_body_t;

typedef struct {
    const char *addr; /* inside the brackets, source route removed; may be empty */
    size_t addr_len;
    addr_t parsed;     /* when addr_len > 0 */
    bool source_route; /* "<@a,@b:user@c>" */
    bool postmaster;   /* RCPT TO:<postmaster>, without a domain (RFC 5321 4.5.1) */
} proto_path_t;

/* DSN parameters (RFC 3461 4): RET= on MAIL. */
typedef enum { PROTO_RET_NONE, PROTO_RET_FULL, PROTO_RET_HDRS } proto_ret_t;
/* Longest ENVID and ORCPT, decoded from xtext (RFC 3461 4.4, 4.2). */
#define PROTO_ENVID_MAX 100
#define PROTO_ORCPT_MAX 500
/* NOTIFY= on RCPT; none of them: not given. */
#define PROTO_NOTIFY_NEVER 0x1u
#define PROTO_NOTIFY_SUCCESS 0x2u
#define PROTO_NOTIFY_FAILURE 0x4u
#define PROTO_NOTIFY_DELAY 0x8u

typedef struct {
    proto_path_t path;
    bool has_size;
    uint64_t size; /* SIZE=, RFC 1870 */
    proto_body_t body;
    bool smtputf8; /* RFC 6531 */
    proto_ret_t ret;                   /* RET= */
    char envid[PROTO_ENVID_MAX + 1];   /* ENVID=, decoded (printable ASCII); "" none */
} proto_mail_t;

typedef struct {
    unsigned notify;                   /* PROTO_NOTIFY_* of NOTIFY=; 0 none */
    char orcpt[PROTO_ORCPT_MAX + 1];   /* ORCPT=, "rfc822;a@b" decoded; "" none */
} proto_rcpt_dsn_t;

/* "FROM:<addr> [params]".  The null path "<>" gives addr_len 0. */
int proto_parse_mail(const char *arg, size_t len, proto_mail_t *out);
/* "TO:<addr> [params]": NOTIFY= and ORCPT= into *dsn. */
int proto_parse_rcpt(const char *arg, size_t len, proto_path_t *out, proto_rcpt_dsn_t *dsn);

/* NOTIFY bits as the parameter writes them: "SUCCESS,FAILURE", "NEVER". */
void proto_notify_str(unsigned notify, char *dst, size_t size);
/* The words of a reply for a PROTO_E* code, e.g. "Bad address syntax". */
const char *proto_strerror(int err);

/* Whether a HELO/EHLO argument is acceptable: one word of printable ASCII,
 * at most 255 octets.  Anything goes into Received: headers, so nothing
 * else is let in. */
bool proto_helo_valid(const char *arg, size_t len);

/* ---- replies --------------------------------------------------------------- */

/*
 * Append a reply to out.  text may hold several lines separated by '\n';
 * each is sent as "CODE-ESC line" but the last "CODE ESC line" (RFC 5321
 * 4.2.1); esc may be NULL.  Control characters in text are replaced, so a
 * reply can never end early or smuggle a second one.  0, or BUF_EFULL.
 */
int proto_reply(buf_t *out, int code, const char *esc, const char *text);
int proto_replyf(buf_t *out, int code, const char *esc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

typedef struct {
    const char *helo;       /* what the client said, NULL if nothing */
    const char *client_ptr; /* host name of the client, "unknown" when none */
    const char *client_ip;
    const char *hostname; /* ours */
    const char *protocol; /* "ESMTPS" ... (proto_with()) */
    const char *queue_id;
    const char *tls_version; /* NULL without TLS */
    const char *tls_cipher;
    int tls_bits;
    const char *rcpt; /* the recipient when there is exactly one, else NULL */
    time_t now;
} proto_received_t;

/* The "with" word of Received: (RFC 3848, RFC 6531). */
const char *proto_with(bool esmtp, bool tls, bool smtputf8);
/* Append a Received: header, folded, ending in CRLF.  0 or BUF_EFULL. */
int proto_received(buf_t *out, const proto_received_t *r);

#endif
