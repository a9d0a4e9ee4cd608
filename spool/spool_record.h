/*
 * spool_record - the spool's on-disk formats as bytes in memory: a message
 * image (a message file up to END, state updates after it) and the commit
 * journal's record framing.  Nothing here does I/O, so unit tests and
 * fuzzers call it directly; it uses only util/.  Outside spool/ (which
 * includes it through spool_int.h) only tests and fuzzers include it.
 * The spool_msg_t functions of spool.h (spool_msg_free() and the like)
 * are in this library too (spool_msg.c), since a parser has to free what
 * it made.
 *
 * Ownership: a spool_msg_t made or parsed here is the caller's, freed with
 * spool_msg_free(); strings passed in are copied unless a parameter says
 * it is taken over.  Errors: SPOOL_EPARTIAL, SPOOL_ECORRUPT, SPOOL_EINVAL.
 *
 * Message image (docs/spool.md has the full description):
 *
 *     "MXFSPL01"                 magic and format version
 *     B <len> <message bytes>    the body record, first, so its bytes are
 *                                one contiguous range at SPOOL__BODY_OFFSET
 *     I T C H S W F P R...       envelope records, written at commit
 *     E                          END: the message is whole
 *     U...                       recipient state updates, appended later
 *
 * A record is a type byte, an 8-byte big-endian payload length, then the
 * payload.  Integers in payloads are big-endian; strings inside a payload
 * carry a 4-byte length.
 *
 * The commit journal (journal/ in the spool directory) holds small
 * messages instead of a file each: segments named by a 16-digit hex
 * sequence number, each
 *
 *     "MXFJNL01"                 magic and format version
 *     <type> <crc> <len> <image> records, appended by the commit lane
 *
 * where image is exactly a message file as above up to END, len its
 * 4-byte big-endian length and crc (4 bytes) the CRC-32C of len and
 * image.  The
 * type byte is the record's state, rewritten in place: M (queued), D
 * (removed), F (moved to a file of its own), X (a commit that failed).
 */
#ifndef MXFWD_SPOOL_RECORD_H
#define MXFWD_SPOOL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "spool.h"

#define SPOOL__MAGIC "MXFSPL01"
#define SPOOL__MAGIC_LEN 8
#define SPOOL__REC_HDR 9
#define SPOOL__BODY_OFFSET (SPOOL__MAGIC_LEN + SPOOL__REC_HDR)
/* Bytes after the body that a loader accepts (envelope and updates). */
#define SPOOL__TRAILER_MAX (64u * 1024 * 1024)

enum {
    SPOOL__REC_BODY = 'B',
    SPOOL__REC_ID = 'I',
    SPOOL__REC_TIME = 'T',
    SPOOL__REC_CLIENT = 'C',
    SPOOL__REC_HELO = 'H',
    SPOOL__REC_SENDER = 'S',
    SPOOL__REC_SRS = 'W',
    SPOOL__REC_FLAGS = 'F',
    SPOOL__REC_PREPEND = 'P',
    SPOOL__REC_SKIP = 'K',
    SPOOL__REC_RCPT = 'R',
    SPOOL__REC_DSN = 'N',      /* RET= and ENVID= of MAIL (RFC 3461) */
    SPOOL__REC_RCPT_DSN = 'O', /* NOTIFY= and ORCPT= of a recipient's RCPT */
    SPOOL__REC_END = 'E',
    SPOOL__REC_UPDATE = 'U',
};

/* A journal segment's header, and the header of each of its records. */
#define SPOOL__JMAGIC "MXFJNL01"
#define SPOOL__JMAGIC_LEN 8
#define SPOOL__JREC_HDR 9

/* A journal record's state byte. */
enum {
    SPOOL__J_QUEUED = 'M',
    SPOOL__J_REMOVED = 'D',
    SPOOL__J_MOVED = 'F',
    SPOOL__J_FAILED = 'X',
};

/* ---- Numbers and names ---- */

/* Big-endian u64 into 8 bytes (for patching the body length). */
void spool_record_put_be64(unsigned char *p, uint64_t v);
/* n upper-case hex digits at s (queue ids, segment numbers): true and *out,
 * or false for anything else (a NUL included). */
bool spool_record_hex(const char *s, int n, uint64_t *out);
/* v as n upper-case hex digits and a NUL into out[n + 1]. */
void spool_record_format_hex(uint64_t v, int n, char *out);
/* CRC-32C (Castagnoli) of p[0..n), as the update and journal records
 * carry it.  Thread-safe.  The processor's instruction where it has one;
 * _portable is the table-driven way every machine has (for the tests: the
 * two agree). */
uint32_t spool_record_crc32c(const void *p, size_t n);
uint32_t spool_record_crc32c_portable(const void *p, size_t n);

/* ---- Encoding ---- */

/* The body record's header, with the length still to be patched. */
void spool_record_put_header(buf_t *b, uint64_t body_len);
/* Envelope records and END.  SPOOL_EINVAL for a bad envelope. */
int spool_record_encode_trailer(buf_t *b, const char *id, int64_t arrival_us,
                                const spool_envelope_t *env);
/* SPOOL_EINVAL unless u[0..n) are valid changes for msg's recipients. */
int spool_record_check_updates(const spool_msg_t *msg, const spool_update_t *u, size_t n);
/* A U record of checked updates, with its CRC. */
void spool_record_encode_update(buf_t *b, const spool_update_t *u, size_t n);
/* Fill in the header of the journal record at rec whose len-byte image
 * already follows it (at rec + SPOOL__JREC_HDR): type M, the CRC, len. */
void spool_record_jrec_seal(unsigned char *rec, uint32_t len);

/* ---- Messages in memory ---- */

/* An empty message: id (may be ""), path (taken over), the body at
 * body_offset; the rest zero, for a parser to fill in. */
spool_msg_t *spool_record_msg_alloc(char *path, const char *id, uint64_t body_offset);
/* The message an envelope describes (all pending), its file at path
 * (taken over). */
spool_msg_t *spool_record_msg_new(char *path, const char *id, int64_t arrival_us, uint64_t body_len,
                                  const spool_envelope_t *env);
/* Apply checked updates to the in-memory message. */
void spool_record_apply(spool_msg_t *msg, const spool_update_t *u, size_t n);

/* ---- Decoding ---- */

/*
 * The fixed head of a message image of size bytes, head its first
 * min(size, SPOOL__BODY_OFFSET) bytes: 0 and the body's length,
 * SPOOL_EPARTIAL (the body runs past the end) or SPOOL_ECORRUPT (not
 * ours).
 */
int spool_record_parse_head(const unsigned char *head, uint64_t size, uint64_t *body_len);
/*
 * The records after the body, t[0..n), into m: the envelope up to END (a
 * trailer that ends first is partial), then updates, stopping at the
 * first torn one.  0, SPOOL_EPARTIAL or SPOOL_ECORRUPT; *valid is how many
 * bytes of t are whole records (what a loader keeps of the file).  An I
 * record must equal m->id, or when that is "" be a queue id, which it
 * becomes.  m keeps what was parsed on an error too (free it).
 */
int spool_record_parse_trailer(spool_msg_t *m, const unsigned char *t, size_t n, size_t *valid);
/*
 * Parse a message image (a file's bytes up to END, updates allowed after)
 * from memory: 0 and *out, SPOOL_EPARTIAL or SPOOL_ECORRUPT.  path is
 * where the bytes live, base the image's offset in it.
 */
int spool_record_parse_image(const char *path, uint64_t base, const unsigned char *p, size_t n,
                             spool_msg_t **out);
/*
 * The journal record at p, n bytes to the end of its segment: 0 with its
 * state byte and its image's length (the image follows the header), or
 * SPOOL_EPARTIAL when it is cut short and SPOOL_ECORRUPT when its CRC
 * fails or its state is none of SPOOL__J_*: a torn record either way.
 */
int spool_record_jrec_parse(const unsigned char *p, size_t n, int *state, size_t *len);
/*
 * Whether the journal record at p (n bytes to the end of its segment) is
 * whole, whatever its state byte (which the CRC does not cover): 0 and
 * its image's length, SPOOL_EPARTIAL (cut short) or SPOOL_ECORRUPT (the
 * CRC fails).
 */
int spool_record_jrec_frame(const unsigned char *p, size_t n, size_t *len);
/* Whether a state byte is one of SPOOL__J_*. */
bool spool_record_jstate_known(int state);

#endif
