/*
 * data - the reader of a message's bytes after DATA (RFC 5321 4.1.1.4,
 * 4.5.2) or in BDAT chunks (RFC 3030).
 *
 * Only CR LF "." CR LF ends DATA.  A bare CR or bare LF anywhere marks the
 * message as bad: it is refused after its end (554 5.5.2), because relays
 * that read "\n.\n", "\n.\r\n", "\r.\r\n" or "\r\n.\n" as the end of data
 * let a sender smuggle a second message past them (CVE-2023-51764 and
 * kin).  Finding the end does not depend on the bytes being good, so the
 * session stays in step with the client whatever it sends.
 *
 * The reader unstuffs in place: data_feed() writes the message bytes over
 * its input, never ahead of the byte being read, so the caller streams them
 * on without a copy.  It also counts the message's size and its Received:
 * headers (the hop count), and stops producing bytes once the message is
 * bad or over its size limit, as nothing of it will be kept.
 *
 * Pure and allocation-free; a data_reader_t is a small value.
 */
#ifndef MXFWD_DATA_H
#define MXFWD_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    DATA_DOT, /* after DATA: dot-stuffed, ends with CRLF.CRLF */
    DATA_RAW, /* BDAT chunks: taken as they are, the caller knows the end */
} data_mode_t;

typedef struct {
    data_mode_t mode;
    int state;
    bool bare;       /* a bare CR or LF was seen */
    bool too_big;    /* more than max_size bytes */
    bool in_headers; /* still in the header section */
    bool hdr_cr;     /* header section: a line so far is just CR */
    int hdr_match;   /* header section: bytes of "received" matched, -1 none */
    uint64_t size;   /* message bytes so far (unstuffed) */
    uint64_t max_size;
    unsigned received; /* Received: header fields in the header section */
} data_reader_t;

void data_init(data_reader_t *d, data_mode_t mode, uint64_t max_size);

/*
 * Read p[0..len).  Returns the bytes consumed; the message bytes they held
 * are now p[0..*out_len).  In DATA_DOT mode, *done tells that the final
 * dot was consumed: bytes after it are the next commands.  In DATA_RAW
 * mode every byte is consumed and *done stays false.  Once the message is
 * bad or too big, *out_len is 0.
 */
size_t data_feed(data_reader_t *d, char *p, size_t len, size_t *out_len, bool *done);

/* At the end of the last BDAT chunk: a CR left hanging is bare. */
void data_finish(data_reader_t *d);

/* Whether the message may be kept: no bare CR/LF, not too big. */
static inline bool data_ok(const data_reader_t *d)
{
    return !d->bare && !d->too_big;
}

#endif
