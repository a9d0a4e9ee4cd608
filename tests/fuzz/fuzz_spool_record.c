/*
 * libFuzzer harness for the spool's record parser (spool_record.h): any
 * bytes as a message image (a journal record's, or a file's), as the
 * trailer of a message file the loader reads, and as the records of a
 * journal segment.  Beyond "no crash, no sanitizer report" it checks the
 * promises: a refusal is SPOOL_EPARTIAL or SPOOL_ECORRUPT and leaves no
 * message; a parsed message's body lies inside the input and it has a
 * queue id and recipients; its envelope and recipient state, encoded
 * again, parse to the same message; the valid part of a trailer (what the
 * loader keeps of a file) parses again to itself; and a journal record
 * sealed around an image opens to that image.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool_record.h"
#include "xalloc.h"

#define FUZZ_PATH "/var/spool/mxfwd/journal/0000000000000001"
#define FUZZ_ID "18C3F2A9B47D1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_status(int rc, const spool_msg_t *m)
{
    if (rc != 0 && (m != NULL || (rc != SPOOL_EPARTIAL && rc != SPOOL_ECORRUPT)))
        abort();
}

static void fuzz_check_msg(const spool_msg_t *m, uint64_t base, size_t size)
{
    uint64_t id;

    if (m->body_offset != base + SPOOL__BODY_OFFSET ||
        m->body_length > size - SPOOL__BODY_OFFSET || strlen(m->id) != SPOOL_ID_LEN ||
        !spool_record_hex(m->id, SPOOL_ID_LEN, &id) || m->nrcpts == 0 || m->client == NULL ||
        m->helo == NULL || m->sender == NULL || m->srs_sender == NULL || m->prepend == NULL ||
        m->prepend_len > SPOOL_PREPEND_MAX)
        abort();
    for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i].addr[0] == '\0' || m->rcpts[i].orig == NULL ||
            m->rcpts[i].reply == NULL || m->rcpts[i].relay == NULL ||
            m->rcpts[i].state > SPOOL_RCPT_HELD)
            abort();
}

static bool fuzz_same_rcpts(const spool_msg_t *a, const spool_msg_t *b)
{
    if (a->nrcpts != b->nrcpts)
        return false;
    for (size_t i = 0; i < a->nrcpts; i++) {
        const spool_rcpt_t *x = &a->rcpts[i], *y = &b->rcpts[i];

        if (strcmp(x->addr, y->addr) != 0 || strcmp(x->orig, y->orig) != 0 ||
            x->state != y->state || x->attempts != y->attempts ||
            x->next_attempt != y->next_attempt || x->remote_reply != y->remote_reply ||
            strcmp(x->reply, y->reply) != 0 || strcmp(x->relay, y->relay) != 0)
            return false;
    }
    return true;
}

/* m's envelope and state written again with the encoder the writer uses,
 * then parsed: the same message. */
static void fuzz_round_trip(const spool_msg_t *m, const uint8_t *body)
{
    spool_env_rcpt_t *r = xcalloc(m->nrcpts, sizeof(*r));
    spool_update_t *u = xcalloc(m->nrcpts, sizeof(*u));
    spool_envelope_t env = {
        .arrival_us = m->arrival_us,
        .client = m->client,
        .helo = m->helo,
        .sender = m->sender,
        .srs_sender = m->srs_sender,
        .flags = m->flags,
        .prepend = m->prepend,
        .prepend_len = m->prepend_len,
        .rcpts = r,
        .nrcpts = m->nrcpts,
    };
    unsigned char len[8];
    spool_msg_t *back = NULL;
    buf_t b;

    for (size_t i = 0; i < m->nrcpts; i++) {
        r[i].addr = m->rcpts[i].addr;
        r[i].orig = m->rcpts[i].orig;
        u[i] = (spool_update_t){i,
                                m->rcpts[i].state,
                                m->rcpts[i].attempts,
                                m->rcpts[i].next_attempt,
                                m->rcpts[i].reply,
                                m->rcpts[i].relay,
                                m->rcpts[i].remote_reply};
    }
    buf_init(&b, SIZE_MAX);
    spool_record_put_header(&b, 0);
    spool_record_put_be64(len, m->body_length);
    memcpy(b.data + b.off + SPOOL__MAGIC_LEN + 1, len, sizeof(len));
    if (buf_append(&b, body, (size_t)m->body_length) != 0 ||
        spool_record_encode_trailer(&b, m->id, m->arrival_us, &env) != 0 ||
        spool_record_check_updates(m, u, m->nrcpts) != 0)
        abort();
    spool_record_encode_update(&b, u, m->nrcpts);
    if (spool_record_parse_image(FUZZ_PATH, 0, (const unsigned char *)buf_ptr(&b), buf_used(&b),
                                 &back) != 0)
        abort();
    if (strcmp(back->id, m->id) != 0 || back->arrival_us != m->arrival_us ||
        strcmp(back->client, m->client) != 0 || strcmp(back->helo, m->helo) != 0 ||
        strcmp(back->sender, m->sender) != 0 || strcmp(back->srs_sender, m->srs_sender) != 0 ||
        back->flags != m->flags || back->prepend_len != m->prepend_len ||
        memcmp(back->prepend, m->prepend, m->prepend_len) != 0 ||
        back->body_length != m->body_length || !fuzz_same_rcpts(back, m))
        abort();
    spool_msg_free(back);
    buf_free(&b);
    free(r);
    free(u);
}

/* A journal record sealed around the image opens to it. */
static void fuzz_seal(const uint8_t *data, size_t size)
{
    unsigned char *rec;
    size_t len = 0;
    int state = 0;

    if (size > UINT32_MAX)
        return;
    rec = xmalloc(SPOOL__JREC_HDR + size);
    memcpy(rec + SPOOL__JREC_HDR, data, size);
    spool_record_jrec_seal(rec, (uint32_t)size);
    if (spool_record_jrec_parse(rec, SPOOL__JREC_HDR + size, &state, &len) != 0 ||
        state != SPOOL__J_QUEUED || len != size)
        abort();
    free(rec);
}

/* The bytes after the body as a message file's, named id, as the start-up
 * scan loads it; whole (rc 0) whenever the image parsed with that id. */
static void fuzz_trailer(const uint8_t *data, size_t size, const char *id, bool image_ok)
{
    const unsigned char *t;
    uint64_t body_len = 0;
    size_t n, valid = 0, again = 0;
    spool_msg_t *m, *m2;
    int rc;

    rc = spool_record_parse_head(data, size, &body_len);
    fuzz_check_status(rc, NULL);
    if (rc != 0) {
        if (image_ok)
            abort();
        return;
    }
    t = data + SPOOL__BODY_OFFSET + body_len;
    n = size - SPOOL__BODY_OFFSET - (size_t)body_len;
    m = spool_record_msg_alloc(xstrdup(FUZZ_PATH), id, SPOOL__BODY_OFFSET);
    m->body_length = body_len;
    rc = spool_record_parse_trailer(m, t, n, &valid);
    if (valid > n || (rc != 0 && rc != SPOOL_EPARTIAL && rc != SPOOL_ECORRUPT) ||
        (image_ok && rc != 0))
        abort();
    if (rc == 0) {
        fuzz_check_msg(m, 0, size);
        /* What the loader cuts the file to loads the same. */
        m2 = spool_record_msg_alloc(xstrdup(FUZZ_PATH), id, SPOOL__BODY_OFFSET);
        m2->body_length = body_len;
        if (spool_record_parse_trailer(m2, t, valid, &again) != 0 || again != valid ||
            !fuzz_same_rcpts(m, m2))
            abort();
        spool_msg_free(m2);
    }
    spool_msg_free(m);
}

/* The bytes as a journal segment (its magic optional): records up to the
 * first torn one, each image parsed where it lies. */
static void fuzz_segment(const uint8_t *data, size_t size)
{
    size_t pos = 0;

    if (size >= SPOOL__JMAGIC_LEN && memcmp(data, SPOOL__JMAGIC, SPOOL__JMAGIC_LEN) == 0)
        pos = SPOOL__JMAGIC_LEN;
    while (pos < size) {
        spool_msg_t *m = NULL;
        size_t len = 0;
        int state = 0, rc = spool_record_jrec_parse(data + pos, size - pos, &state, &len);

        if (rc != 0) {
            fuzz_check_status(rc, NULL);
            break;
        }
        if (len > size - pos - SPOOL__JREC_HDR ||
            (state != SPOOL__J_QUEUED && state != SPOOL__J_REMOVED && state != SPOOL__J_MOVED &&
             state != SPOOL__J_FAILED))
            abort();
        pos += SPOOL__JREC_HDR;
        rc = spool_record_parse_image(FUZZ_PATH, pos, data + pos, len, &m);
        fuzz_check_status(rc, m);
        if (rc == 0)
            fuzz_check_msg(m, pos, len);
        spool_msg_free(m);
        pos += len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spool_msg_t *m = (spool_msg_t *)1;
    int rc = spool_record_parse_image(FUZZ_PATH, 0, data, size, &m);

    fuzz_check_status(rc, m);
    if (rc == 0) {
        fuzz_check_msg(m, 0, size);
        fuzz_round_trip(m, data + SPOOL__BODY_OFFSET);
        fuzz_seal(data, size);
    }
    fuzz_trailer(data, size, rc == 0 ? m->id : FUZZ_ID, rc == 0);
    fuzz_segment(data, size);
    spool_msg_free(rc == 0 ? m : NULL);
    return 0;
}
