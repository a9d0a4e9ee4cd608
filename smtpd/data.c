#include "data.h"

#include <string.h>

#include "str.h"

/* Where the reader is in the byte stream.  "Line start" means after CRLF
 * only: a bare LF or CR never starts a line, so no dot after one can end
 * the data. */
enum {
    DATA_S_BOL,   /* at the start of a line */
    DATA_S_MID,   /* inside a line */
    DATA_S_CR,    /* after a CR inside a line */
    DATA_S_DOT,   /* after a '.' at the start of a line (DATA_DOT) */
    DATA_S_DOTCR, /* after "." CR at the start of a line */
    DATA_S_END,   /* the final dot's LF was read */
};

static const char data_received[] = "received";
#define DATA_RECEIVED_LEN (sizeof(data_received) - 1)

void data_init(data_reader_t *d, data_mode_t mode, uint64_t max_size)
{
    memset(d, 0, sizeof(*d));
    d->mode = mode;
    d->state = DATA_S_BOL;
    d->in_headers = true;
    d->max_size = max_size;
}

/* Follow the header section through the message bytes: count the
 * Received: fields (white space before the colon too, RFC 5322
 * obs-optional, as tolerant parsers read it), notice the empty line that
 * ends the section.  Only called while every line so far ended in CRLF. */
static void data_header_byte(data_reader_t *d, char c)
{
    if (c == '\n') {
        if (d->hdr_cr)
            d->in_headers = false;
        d->hdr_cr = false;
        d->hdr_match = 0;
        return;
    }
    if (d->hdr_match == 0 && c == '\r') {
        d->hdr_cr = true;
        d->hdr_match = -1;
        return;
    }
    if (d->hdr_match < 0)
        return;
    if ((size_t)d->hdr_match == DATA_RECEIVED_LEN) {
        /* The name is read: white space, then the colon. */
        if (c == ':') {
            d->received++;
            d->hdr_match = -1;
        } else if (c != ' ' && c != '\t') {
            d->hdr_match = -1;
        }
        return;
    }
    if (str_lower_c(c) != data_received[d->hdr_match])
        d->hdr_match = -1;
    else
        d->hdr_match++;
}

size_t data_feed(data_reader_t *d, char *p, size_t len, size_t *out_len, bool *done)
{
    size_t r = 0, w = 0;

#define DATA_BARE() (d->bare = true)
#define DATA_EMIT(ch)                                                                              \
    do {                                                                                           \
        if (data_ok(d)) {                                                                          \
            p[w++] = (ch);                                                                         \
            if (d->in_headers)                                                                     \
                data_header_byte(d, (ch));                                                         \
            if (++d->size > d->max_size)                                                           \
                d->too_big = true;                                                                 \
        }                                                                                          \
    } while (0)

    *done = false;
    while (r < len && d->state != DATA_S_END) {
        char c;

        /* The common case: the middle of a line, where nothing happens
         * until the next CR or LF. */
        if (d->state == DATA_S_MID && !(d->in_headers && d->hdr_match >= 0)) {
            /* memchr is vectorized: the line's end, then a CR before it. */
            const char *nl = memchr(p + r, '\n', len - r);
            size_t end = nl != NULL ? (size_t)(nl - p) : len;
            const char *cr = memchr(p + r, '\r', end - r);
            size_t k = cr != NULL ? (size_t)(cr - p) : end;

            if (k > r) {
                if (data_ok(d)) {
                    if (w != r)
                        memmove(p + w, p + r, k - r);
                    w += k - r;
                    d->size += k - r;
                    if (d->size > d->max_size)
                        d->too_big = true;
                }
                r = k;
                continue;
            }
        }

        c = p[r++];
        switch (d->state) {
        case DATA_S_BOL:
            if (c == '.' && d->mode == DATA_DOT) {
                d->state = DATA_S_DOT;
                break;
            }
            /* fall through */
        case DATA_S_MID:
            if (c == '\n')
                DATA_BARE();
            DATA_EMIT(c);
            d->state = c == '\r' ? DATA_S_CR : DATA_S_MID;
            break;
        case DATA_S_CR:
            if (c != '\n')
                DATA_BARE();
            DATA_EMIT(c);
            d->state = c == '\n' ? DATA_S_BOL : c == '\r' ? DATA_S_CR : DATA_S_MID;
            break;
        case DATA_S_DOT:
            /* A dot starting a longer line was added by the client
             * (dot-stuffing) and is dropped. */
            if (c == '\r') {
                d->state = DATA_S_DOTCR;
                break;
            }
            if (c == '\n')
                DATA_BARE();
            DATA_EMIT(c);
            d->state = DATA_S_MID;
            break;
        case DATA_S_DOTCR:
            if (c == '\n') {
                d->state = DATA_S_END;
                break;
            }
            /* "." CR and then not LF: that CR was bare. */
            DATA_BARE();
            d->state = c == '\r' ? DATA_S_CR : DATA_S_MID;
            break;
        }
    }
#undef DATA_EMIT
#undef DATA_BARE

    *done = d->state == DATA_S_END;
    *out_len = data_ok(d) ? w : 0;
    return r;
}

void data_finish(data_reader_t *d)
{
    if (d->state == DATA_S_CR)
        d->bare = true;
}
