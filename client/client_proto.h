/*
 * client_proto - the outbound client's protocol syntax: server replies,
 * EHLO keywords, MAIL and RCPT commands, and the dot-stuffing of the
 * message.  Pure functions: no I/O, no allocation beyond the caller's
 * buffers, so unit tests and the fuzzer call exactly what the client runs.
 *
 * Replies (RFC 5321 4.2): client_reply_parse() consumes complete lines from
 * a byte buffer and accumulates one reply, multiline or not, across calls.
 * Lines end in CRLF (a bare LF is accepted, as Postfix does).  The code is
 * the last line's; the enhanced status code (RFC 2034/3463) is taken from
 * the last line that carries one whose class matches the code.  The text
 * kept is every line as received, joined by one space ("250-a 250 b"), with
 * control characters and invalid UTF-8 shown as '?', cut at a character
 * boundary to fit DELIVERY_REPLY_MAX: what the log line and a DSN's
 * Diagnostic-Code show.  A line that is not a reply line (no three-digit
 * code, a code outside 2xx-5xx, a bad separator) is a protocol error, not
 * skipped: with pipelining, guessing which reply answers which command
 * could lose mail.
 *
 * Dot-stuffing (RFC 5321 4.5.2): client_stuff() encodes message bytes fed
 * in any pieces; a '.' at the start of a line is doubled, a LF without CR
 * before it goes out as CRLF (no bare LF on the wire, whatever the spool
 * holds), and client_stuff_end() adds the CRLF a message without a final
 * line end lacks, then ".\r\n".
 */
#ifndef MXFWD_CLIENT_PROTO_H
#define MXFWD_CLIENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "delivery.h"

/* Longest enhanced status code, "5.123.123", and its NUL. */
#define CLIENT_DSN_MAX 10
/* Lines in one reply, then it is a protocol error (an endless "250-"). */
#define CLIENT_REPLY_LINES_MAX 1000

#define CLIENT_REPLY_MORE 0 /* the reply goes on: feed more bytes */
#define CLIENT_REPLY_DONE 1 /* a whole reply was parsed */
/* The client_proto band of error codes (docs/development.md, "Error
 * codes"); the command builders and dot-stuffing return buf's BUF_EFULL. */
#define CLIENT_REPLY_EBASE (-19000)
#define CLIENT_REPLY_EBAD (CLIENT_REPLY_EBASE - 1)  /* a line that is not a reply line */
#define CLIENT_REPLY_ELONG (CLIENT_REPLY_EBASE - 2) /* more than CLIENT_REPLY_LINES_MAX lines */

/* EHLO keywords the client uses (RFC 2920, 1870, 6152, 6531, 3207, 2034). */
#define CLIENT_EXT_PIPELINING 0x01u
#define CLIENT_EXT_SIZE 0x02u
#define CLIENT_EXT_8BITMIME 0x04u
#define CLIENT_EXT_SMTPUTF8 0x08u
#define CLIENT_EXT_STARTTLS 0x10u
#define CLIENT_EXT_ENHANCEDSTATUSCODES 0x20u
#define CLIENT_EXT_DSN 0x40u

typedef struct {
    int code;                 /* 200..599 once done; 0 before */
    char dsn[CLIENT_DSN_MAX]; /* "5.1.1", or "" when the server gave none */
    char text[DELIVERY_REPLY_MAX];
    size_t len; /* strlen(text) */
    unsigned nlines;
    bool ehlo;           /* set before parsing an EHLO reply: */
    unsigned ext;        /* CLIENT_EXT_* seen on lines after the first */
    uint64_t size_limit; /* SIZE's argument; 0: none given */
} client_reply_t;

/* Start a new reply; ehlo: parse the lines after the first as keywords. */
void client_reply_init(client_reply_t *r, bool ehlo);

/*
 * Consume complete lines of p[0..n) into r.  *used is set to the bytes
 * consumed (whole lines only; keep the rest for the next call).
 * CLIENT_REPLY_DONE: r is complete and *used stops right after its last
 * line; CLIENT_REPLY_MORE: every complete line was used, the reply goes
 * on; or a CLIENT_REPLY_E* code.
 */
int client_reply_parse(client_reply_t *r, const char *p, size_t n, size_t *used);

/* The enhanced status code to report for a reply: its own when it has one,
 * else "2.0.0", "4.0.0" or "5.0.0" from the code (RFC 3463). */
const char *client_reply_dsn(const client_reply_t *r);

/* The first word after the code on the reply's first line (the host name
 * in a greeting or an EHLO reply), into dst; "" when none. */
void client_reply_host(const client_reply_t *r, char *dst, size_t size);

/* One EHLO keyword line (text after "250-"/"250 "): its CLIENT_EXT_* bit,
 * and SIZE's limit into *size_limit.  0 for keywords not used. */
unsigned client_ehlo_keyword(const char *line, size_t len, uint64_t *size_limit);

/* MAIL FROM parameters (RFC 1870, 6152, 6531, 3461). */
typedef struct {
    uint64_t size; /* SIZE=; 0: none */
    bool body_8bitmime;
    bool smtputf8;
    unsigned ret;      /* RET= (DELIVERY_RET_*); 0: none */
    const char *envid; /* ENVID=, decoded; NULL or "": none */
} client_mail_params_t;

/* RCPT TO parameters (RFC 3461), sent only to a server that offers DSN. */
typedef struct {
    unsigned notify;   /* NOTIFY= (DELIVERY_NOTIFY_*); 0: none */
    const char *orcpt; /* ORCPT= "type;addr", decoded; NULL or "": none */
} client_rcpt_params_t;

/* "MAIL FROM:<sender> SIZE=n BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x\r\n"
 * ("" is <>); "RCPT TO:<addr> NOTIFY=... ORCPT=rfc822;a+2Bb@c\r\n" (p may
 * be NULL), xtext-encoded.  0 or BUF_EFULL. */
int client_mail_cmd(buf_t *out, const char *sender, const client_mail_params_t *p);
int client_rcpt_cmd(buf_t *out, const char *addr, const client_rcpt_params_t *p);

/* Whether addr can go in a MAIL or RCPT command: a mailbox as util/addr
 * reads it (no CR, LF or angle brackets can hide in one).  "" (the null
 * sender) only when null_ok. */
bool client_addr_ok(const char *addr, bool null_ok);

/* Dot-stuffing state; zero it with client_stuff_init() per message. */
typedef struct {
    bool bol; /* the next byte starts a line */
    bool cr;  /* the last byte was a CR */
} client_stuff_t;

void client_stuff_init(client_stuff_t *st);
/* Room to reserve in out for n input bytes: stuffing at most doubles them. */
#define CLIENT_STUFF_ROOM(n) (2 * (n) + 8)
/* Append in[0..n) to out, stuffed.  0 or BUF_EFULL (nothing appended). */
int client_stuff(client_stuff_t *st, const char *in, size_t n, buf_t *out);
/* Append the end of the message: CRLF if it did not end a line, ".\r\n". */
int client_stuff_end(client_stuff_t *st, buf_t *out);

#endif
