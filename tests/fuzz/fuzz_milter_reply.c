/*
 * libFuzzer harness for the milter reply parser (smtpd/milter_proto.h) and
 * what mxfwd makes of a filter's changes (smtpd/milter_edit.h): the input
 * is a stream of packets as a filter would send them, framed and decoded
 * one after the other until the stream is used up or malformed.  Besides
 * the sanitizers' checks: framing never claims more than it was given;
 * every string a decoded reply points to is NUL-terminated inside its
 * packet; a reply code that parses has a code of 4xx or 5xx, an enhanced
 * code of its class and a text without control characters but line
 * breaks; and a header section edited with the packet's name and value
 * still reads as header fields only, every one of them, so no value from
 * a filter can start a field of its own or end the section.
 *
 * Run with scripts/fuzz SECONDS milter_reply; seeds in corpus/milter_reply/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_edit.h"
#include "milter_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_head[] = "From: A <a@origin.test>\r\nSubject: hello\r\n"
                                "Received: one\r\n\tfolded\r\n";

static void fuzz_in_packet(const char *s, const char *p, size_t n)
{
    if (s == NULL)
        return;
    if (s < p || s >= p + n || memchr(s, '\0', (size_t)(p + n - s)) == NULL)
        abort();
}

static void fuzz_reply_text(const char *text)
{
    char esc[16], out[256];
    int code;

    if (milter_proto_reply_text(text, &code, esc, out, sizeof(out)) < 0)
        return;
    if (code < 400 || code > 599 || strlen(out) >= sizeof(out))
        abort();
    if (esc[0] != '\0' && (esc[0] != '0' + code / 100 || esc[1] != '.'))
        abort();
    for (const char *c = out; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 && *c != '\n')
            abort();
}

/* The edit's output, read back: fields only, each with its CRLF. */
static void fuzz_edit(const milter_reply_t *r)
{
    milter_edit_t e, back;
    buf_t top, section, all;

    if (r->name == NULL || !milter_proto_header_name_ok(r->name))
        return;
    milter_edit_init(&e, fuzz_head, sizeof(fuzz_head) - 1);
    if (r->type == MILTER_R_ADDHEADER)
        milter_edit_add(&e, r->name, r->value, r->index & 1);
    else if (r->type == MILTER_R_INSHEADER)
        milter_edit_insert(&e, r->index, r->name, r->value, false);
    else
        milter_edit_change(&e, r->index, r->name, r->value, false);
    buf_init(&top, SIZE_MAX);
    buf_init(&section, SIZE_MAX);
    buf_init(&all, SIZE_MAX);
    milter_edit_split(&e, &top, &section);
    buf_append(&all, buf_used(&top) > 0 ? buf_ptr(&top) : "", buf_used(&top));
    buf_append(&all, buf_used(&section) > 0 ? buf_ptr(&section) : "", buf_used(&section));
    milter_edit_init(&back, buf_used(&all) > 0 ? buf_ptr(&all) : "", buf_used(&all));
    if (back.section_len != buf_used(&all))
        abort();
    for (size_t i = 0; i < buf_used(&all); i++) {
        char c = buf_ptr(&all)[i];
        if ((c == '\r' && (i + 1 == buf_used(&all) || buf_ptr(&all)[i + 1] != '\n')) ||
            (c == '\n' && (i == 0 || buf_ptr(&all)[i - 1] != '\r')))
            abort();
    }
    milter_edit_free(&back);
    milter_edit_free(&e);
    buf_free(&top);
    buf_free(&section);
    buf_free(&all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t n = size, len;

    while (n > 0) {
        milter_reply_t r;
        milter_frame_t f = milter_proto_frame(p, n, MILTER_PACKET_MAX, &len);

        if (f != MILTER_FRAME_OK)
            break;
        if (len > n - 4 || len > MILTER_PACKET_MAX)
            abort();
        if (milter_proto_decode(p + 4, len, &r) == 0) {
            const char *pk = p + 4;
            fuzz_in_packet(r.text, pk, len);
            fuzz_in_packet(r.name, pk, len);
            fuzz_in_packet(r.value, pk, len);
            fuzz_in_packet(r.addr, pk, len);
            fuzz_in_packet(r.args, pk, len);
            for (int i = 0; i < MILTER_STAGES; i++)
                fuzz_in_packet(r.symlist[i], pk, len);
            if (r.body != NULL && (r.body < pk || r.body + r.body_len > pk + len))
                abort();
            if (r.text != NULL)
                fuzz_reply_text(r.text);
            if (r.value != NULL)
                fuzz_edit(&r);
        }
        p += 4 + len;
        n -= 4 + len;
    }
    return 0;
}
