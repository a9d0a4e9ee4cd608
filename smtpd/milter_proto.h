/*
 * milter_proto - the Sendmail milter protocol, version 6 (what Postfix
 * speaks to rspamd, OpenDKIM, ClamAV...), as bytes: packets the MTA sends
 * and the filter's replies (docs/milter.md has the protocol as mxfwd uses
 * it).
 *
 * A packet is a 4-byte big-endian length, then that many bytes: a command
 * (or reply) byte and its data.  Everything here is pure: encoders append
 * to a buf_t, decoders read a packet in memory and point into it, so unit
 * tests and the fuzzer call them directly.  Errors are MILTER_E* codes of
 * the milter band (milter_proto_strerror()).
 */
#ifndef MXFWD_MILTER_PROTO_H
#define MXFWD_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The milter band of error codes (docs/development.md, "Error codes"). */
#define MILTER_EBASE (-26000)
#define MILTER_EPROTO (MILTER_EBASE - 1)     /* a malformed packet, or one out of place */
#define MILTER_ETOOBIG (MILTER_EBASE - 2)    /* a packet over MILTER_PACKET_MAX */
#define MILTER_ETIMEOUT (MILTER_EBASE - 3)   /* no reply within milter_timeout */
#define MILTER_ECLOSED (MILTER_EBASE - 4)    /* the filter closed the connection */
#define MILTER_ENEGOTIATE (MILTER_EBASE - 5) /* version or steps we cannot agree on */
#define MILTER_ECONNECT (MILTER_EBASE - 6)   /* the filter cannot be reached */

/* The protocol version we speak, and the largest packet we take (a body
 * replacement chunk, a long header from the filter). */
#define MILTER_VERSION 6
#define MILTER_PACKET_MAX (1024 * 1024)
/* Body chunks sent to the filter are at most this long. */
#define MILTER_CHUNK_MAX 65535

/* Commands, MTA to filter. */
enum {
    MILTER_C_ABORT = 'A',
    MILTER_C_BODY = 'B',
    MILTER_C_CONNECT = 'C',
    MILTER_C_MACRO = 'D',
    MILTER_C_BODYEOB = 'E',
    MILTER_C_HELO = 'H',
    MILTER_C_HEADER = 'L',
    MILTER_C_MAIL = 'M',
    MILTER_C_EOH = 'N',
    MILTER_C_OPTNEG = 'O',
    MILTER_C_QUIT = 'Q',
    MILTER_C_RCPT = 'R',
    MILTER_C_DATA = 'T',
};

/* Replies, filter to MTA. */
enum {
    MILTER_R_ADDRCPT = '+',
    MILTER_R_DELRCPT = '-',
    MILTER_R_ADDRCPT_PAR = '2',
    MILTER_R_ACCEPT = 'a',
    MILTER_R_REPLBODY = 'b',
    MILTER_R_CONTINUE = 'c',
    MILTER_R_DISCARD = 'd',
    MILTER_R_CHGFROM = 'e',
    MILTER_R_CONN_FAIL = 'f',
    MILTER_R_ADDHEADER = 'h',
    MILTER_R_INSHEADER = 'i',
    MILTER_R_CHGHEADER = 'm',
    MILTER_R_OPTNEG = 'O',
    MILTER_R_PROGRESS = 'p',
    MILTER_R_QUARANTINE = 'q',
    MILTER_R_REJECT = 'r',
    MILTER_R_SKIP = 's',
    MILTER_R_TEMPFAIL = 't',
    MILTER_R_REPLYCODE = 'y',
};

/* Actions a filter may take at the end of a message (SMFIF_*). */
#define MILTER_ACT_ADDHDRS 0x001u
#define MILTER_ACT_CHGBODY 0x002u
#define MILTER_ACT_ADDRCPT 0x004u
#define MILTER_ACT_DELRCPT 0x008u
#define MILTER_ACT_CHGHDRS 0x010u
#define MILTER_ACT_QUARANTINE 0x020u
#define MILTER_ACT_CHGFROM 0x040u
#define MILTER_ACT_ADDRCPT_PAR 0x080u
#define MILTER_ACT_SETSYMLIST 0x100u
#define MILTER_ACT_ALL 0x1ffu

/* Protocol steps a filter may skip, or answer with no reply (SMFIP_*). */
#define MILTER_P_NOCONNECT 0x000001u
#define MILTER_P_NOHELO 0x000002u
#define MILTER_P_NOMAIL 0x000004u
#define MILTER_P_NORCPT 0x000008u
#define MILTER_P_NOBODY 0x000010u
#define MILTER_P_NOHDRS 0x000020u
#define MILTER_P_NOEOH 0x000040u
#define MILTER_P_NR_HDR 0x000080u
#define MILTER_P_NOUNKNOWN 0x000100u
#define MILTER_P_NODATA 0x000200u
#define MILTER_P_SKIP 0x000400u
#define MILTER_P_RCPT_REJ 0x000800u
#define MILTER_P_NR_CONN 0x001000u
#define MILTER_P_NR_HELO 0x002000u
#define MILTER_P_NR_MAIL 0x004000u
#define MILTER_P_NR_RCPT 0x008000u
#define MILTER_P_NR_DATA 0x010000u
#define MILTER_P_NR_UNKN 0x020000u
#define MILTER_P_NR_EOH 0x040000u
#define MILTER_P_NR_BODY 0x080000u
#define MILTER_P_HDR_LEADSPC 0x100000u
/* What mxfwd offers: every step may be skipped or left unanswered, and
 * header values may keep their leading space; never rejected recipients
 * (RCPT_REJ) nor larger chunks (MDS_*). */
#define MILTER_P_OFFERED 0x1ff7ffu

/* Macro stages of a SETSYMLIST request, in the negotiation reply. */
#define MILTER_STAGES 7

/* ---- packets ---- */

typedef enum {
    MILTER_FRAME_PARTIAL, /* read more */
    MILTER_FRAME_OK,      /* a whole packet: *len bytes of payload after 4 of length */
    MILTER_FRAME_BAD,     /* an empty packet, or one over max: the stream is lost */
} milter_frame_t;

/* The packet at the start of p[0..n), of at most max bytes. */
milter_frame_t milter_proto_frame(const char *p, size_t n, size_t max, size_t *len);

/* ---- encoding (MTA to filter) ---- */

/* One packet: cmd and data[0..n). */
void milter_proto_put(buf_t *b, int cmd, const void *data, size_t n);
/* OPTNEG: our version, the actions and steps we offer. */
void milter_proto_optneg(buf_t *b, uint32_t version, uint32_t actions, uint32_t protocol);
/* A packet of NUL-terminated strings: HELO, MAIL and RCPT (the address
 * in angle brackets, then ESMTP arguments), HEADER (name, value). */
void milter_proto_strings(buf_t *b, int cmd, const char *const *s, size_t n);
/* MACRO for the command stage: name, value pairs (2n strings). */
void milter_proto_macros(buf_t *b, int stage, const char *const *nv, size_t n);
/* CONNECT: the client's name, its family ('4', '6', 'L' or 'U'), port
 * and address text ("" and ignored for 'U'). */
void milter_proto_connect(buf_t *b, const char *host, int family, uint16_t port,
                          const char *addr);

/* ---- decoding (filter to MTA) ---- */

typedef struct {
    int type; /* MILTER_R_* */
    /* OPTNEG */
    uint32_t version, actions, protocol;
    /* SETSYMLIST in the OPTNEG reply: the macro names asked for per
     * stage, space-separated, NULL when not given */
    const char *symlist[MILTER_STAGES];
    /* REPLYCODE, QUARANTINE: the text */
    const char *text;
    /* headers: the index (INSHEADER: position; CHGHEADER: occurrence,
     * 1-based), name and value (CHGHEADER: "" deletes) */
    uint32_t index;
    const char *name, *value;
    /* ADDRCPT*, DELRCPT, CHGFROM: the address, and ESMTP arguments or NULL */
    const char *addr, *args;
    /* REPLBODY */
    const char *body;
    size_t body_len;
} milter_reply_t;

/*
 * The reply in p[0..n), the payload of one packet (its type byte first).
 * Strings are NUL-terminated inside p, which must outlive r.  0, or
 * MILTER_EPROTO for an unknown type or data that does not fit it.
 */
int milter_proto_decode(const char *p, size_t n, milter_reply_t *r);

/*
 * A REPLYCODE text, "554 5.7.1 text" or several lines ("554-5.7.1 one\r\n
 * 554 5.7.1 two"): its code (400 to 599), its enhanced status code
 * (RFC 3463, "" when none; class matching the code's) into esc[16], and
 * the lines' texts joined by '\n' into text[size] (control characters
 * replaced).  0, or MILTER_EPROTO when it is no such reply.
 */
int milter_proto_reply_text(const char *s, int *code, char esc[16], char *text, size_t size);

/* A header field name as RFC 5322 2.2 allows it: printable ASCII but
 * the colon, at least one, at most 256. */
bool milter_proto_header_name_ok(const char *name);

/* "reject", "continue", ... for the log; "unknown" for other bytes. */
const char *milter_proto_reply_name(int type);

const char *milter_proto_strerror(int err);

#endif
