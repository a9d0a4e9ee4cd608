/*
 * Unit tests for the spool's record format (spool_record.h), called
 * directly, without a spool or a disk: an envelope, body and state updates
 * encoded and parsed back, journal records sealed and opened, and damaged
 * or cut images refused as partial or corrupt, never taken for a message.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool_message.h"
#include "spool_record.h"

#define ID "18C3F2A9B47D1"
#define BODY "Subject: hello\r\n\r\nbody line\r\n"

/* A whole image into b (reset first): header, body, envelope and END;
 * its length up to END. */
static size_t record_image(buf_t *b, const spool_envelope_t *env)
{
    unsigned char len[8];
    size_t at;

    buf_reset(b);
    spool_record_put_header(b, 0);
    at = buf_used(b) - 8;
    cr_assert_eq(buf_append(b, BODY, strlen(BODY)), 0);
    spool_record_put_be64(len, strlen(BODY));
    memcpy(b->data + b->off + at, len, sizeof(len));
    cr_assert_eq(spool_record_encode_trailer(b, ID, env->arrival_us, env), 0);
    return buf_used(b);
}

/* Each test's envelope, and the image record_image() made of it. */
static spool_envelope_t env;
static buf_t image;
static size_t image_end;

static void record_setup(void)
{
    env = envelope(3);
    buf_init(&image, SIZE_MAX);
    image_end = record_image(&image, &env);
}

static void record_teardown(void)
{
    buf_free(&image);
}

TestSuite(spool_record, .init = record_setup, .fini = record_teardown);

/* Whether the image's trailer has a record of type. */
static bool record_has(const buf_t *b, int type)
{
    const unsigned char *p = (const unsigned char *)buf_ptr(b);
    size_t at = SPOOL__BODY_OFFSET + strlen(BODY);

    while (at + SPOOL__REC_HDR <= buf_used(b) && p[at] != type) {
        uint64_t len = 0;

        for (int i = 1; i <= 8; i++)
            len = len << 8 | p[at + (size_t)i];
        at += SPOOL__REC_HDR + (size_t)len;
    }
    return at + SPOOL__REC_HDR <= buf_used(b);
}

static int record_parse(const buf_t *b, size_t n, spool_msg_t **out)
{
    return spool_record_parse_image("/spool/journal/0000000000000001", 100,
                                    (const unsigned char *)buf_ptr(b), n, out);
}

/* The processor's instruction, where this machine has it, and the
 * portable tables agree at every length and alignment. */
Test(spool_record, crc32c_the_fast_way_and_the_portable_way_agree)
{
    size_t big = 300 * 1024;
    unsigned char *p = malloc(big + 8);

    for (size_t i = 0; i < big + 8; i++)
        p[i] = (unsigned char)(i * 131 + (i >> 9));
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 300; n++)
            cr_assert_eq(spool_record_crc32c(p + off, n), spool_record_crc32c_portable(p + off, n),
                         "offset %zu, length %zu", off, n);
    cr_assert_eq(spool_record_crc32c(p + 3, big), spool_record_crc32c_portable(p + 3, big));
    free(p);
}

Test(spool_record, crc32c_is_castagnoli_at_every_length)
{
    unsigned char p[100], v[4][32];

    /* The examples of RFC 3720, B.4 (its bytes are the CRC's, lowest
     * first), and CRC-32C's check value. */
    for (int i = 0; i < 32; i++) {
        v[0][i] = 0;
        v[1][i] = 0xff;
        v[2][i] = (unsigned char)i;
        v[3][i] = (unsigned char)(31 - i);
    }
    cr_assert_eq(spool_record_crc32c(v[0], 32), 0x8a9136aau);
    cr_assert_eq(spool_record_crc32c(v[1], 32), 0x62a8ab43u);
    cr_assert_eq(spool_record_crc32c(v[2], 32), 0x46dd794eu);
    cr_assert_eq(spool_record_crc32c(v[3], 32), 0x113fdb5cu);
    cr_assert_eq(spool_record_crc32c("123456789", 9), 0xe3069283u);
    cr_assert_eq(spool_record_crc32c("", 0), 0);
    /* Against a bit at a time, across the eight-byte rounds. */
    for (size_t i = 0; i < sizeof(p); i++)
        p[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(p); n++) {
        uint32_t crc = 0xffffffffu;

        for (size_t i = 0; i < n; i++) {
            crc ^= p[i];
            for (int k = 0; k < 8; k++)
                crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        }
        cr_assert_eq(spool_record_crc32c(p, n), ~crc, "length %zu", n);
    }
}

Test(spool_record, hex_names_are_upper_case_digits_only)
{
    char out[SPOOL_ID_SIZE];
    uint64_t v = 0;

    cr_assert(spool_record_hex(ID, SPOOL_ID_LEN, &v));
    cr_assert_eq(v, UINT64_C(0x18C3F2A9B47D1));
    spool_record_format_hex(v, SPOOL_ID_LEN, out);
    cr_assert_str_eq(out, ID);
    spool_record_format_hex(7, 4, out);
    cr_assert_str_eq(out, "0007");
    cr_assert_not(spool_record_hex("18c3f2a9b47d1", SPOOL_ID_LEN, &v), "lower case");
    cr_assert_not(spool_record_hex("18C3F2A9B47D\0", SPOOL_ID_LEN, &v), "a NUL");
    cr_assert_not(spool_record_hex("18C3F2A9B47DG", SPOOL_ID_LEN, &v));
}

Test(spool_record, an_encoded_image_parses_back_with_its_updates)
{
    const spool_update_t u[] = {
        {1, SPOOL_RCPT_DEFERRED, 2, 1795000300, "451 4.7.1 later", "mx.example.org[192.0.2.2]:25",
         true},
        {0, SPOOL_RCPT_SENT, 1, 0, "250 ok", NULL, false},
    };
    spool_msg_t *m = NULL;

    spool_record_encode_update(&image, u, 1);
    spool_record_encode_update(&image, u + 1, 1);
    cr_assert_eq(record_parse(&image, buf_used(&image), &m), 0);
    cr_assert_str_eq(m->id, ID, "the image names the message");
    cr_assert_str_eq(m->path, "/spool/journal/0000000000000001");
    cr_assert_eq(m->body_offset, 100 + SPOOL__BODY_OFFSET);
    cr_assert_eq(m->body_length, strlen(BODY));
    cr_assert(memcmp(buf_ptr(&image) + SPOOL__BODY_OFFSET, BODY, strlen(BODY)) == 0);
    assert_envelope(m, &env);
    assert_rcpt(&m->rcpts[0], SPOOL_RCPT_SENT, 1, 0, "250 ok", "", false);
    assert_rcpt(&m->rcpts[1], SPOOL_RCPT_DEFERRED, 2, 1795000300, u[0].reply, u[0].relay, true);
    spool_msg_free(m);

    /* Up to END alone: all pending. */
    cr_assert_eq(record_parse(&image, image_end, &m), 0);
    assert_rcpt(&m->rcpts[0], SPOOL_RCPT_PENDING, 0, 0, "", "", false);
    assert_rcpt(&m->rcpts[1], SPOOL_RCPT_PENDING, 0, 0, "", "", false);
    spool_msg_free(m);
}

Test(spool_record, a_message_made_from_an_envelope_matches_its_parsed_image)
{
    spool_msg_t *made =
        spool_record_msg_new(strdup("/spool/" ID), ID, env.arrival_us, strlen(BODY), &env);
    spool_msg_t *parsed = NULL;

    cr_assert_eq(record_parse(&image, buf_used(&image), &parsed), 0);
    assert_envelope(made, &env);
    assert_envelope(parsed, &env);
    cr_assert_str_eq(made->id, parsed->id);
    cr_assert_str_eq(made->path, "/spool/" ID);
    cr_assert_eq(made->body_offset, SPOOL__BODY_OFFSET);
    cr_assert_eq(made->body_length, parsed->body_length);
    cr_assert_eq(spool_msg_size(made), sizeof(prepend) - 1 + strlen(BODY));
    cr_assert_not(spool_msg_done(made));
    spool_msg_free(made);
    spool_msg_free(parsed);

    /* No client, HELO or prepended headers (a DSN): empty either way. */
    env.client = env.helo = env.prepend = NULL;
    env.prepend_len = 0;
    made = spool_record_msg_new(strdup("/spool/" ID), ID, 0, 0, &env);
    record_image(&image, &env);
    cr_assert_eq(record_parse(&image, buf_used(&image), &parsed), 0);
    for (int i = 0; i < 2; i++) {
        const spool_msg_t *m = i == 0 ? made : parsed;

        cr_assert_str_eq(m->client, "");
        cr_assert_str_eq(m->helo, "");
        cr_assert_eq(m->prepend_len, 0);
        cr_assert_not_null(m->prepend);
    }
    spool_msg_free(made);
    spool_msg_free(parsed);
}

Test(spool_record, dsn_parameters_are_kept_only_when_given)
{
    spool_env_rcpt_t r[3];
    spool_msg_t *parsed = NULL;

    /* Without them: no N or O record, and empty values. */
    cr_assert_not(record_has(&image, SPOOL__REC_DSN));
    cr_assert_not(record_has(&image, SPOOL__REC_RCPT_DSN));
    cr_assert_eq(record_parse(&image, buf_used(&image), &parsed), 0);
    cr_assert_eq(parsed->ret, 0);
    cr_assert_str_eq(parsed->envid, "");
    cr_assert_eq(parsed->rcpts[0].notify, 0);
    cr_assert_str_eq(parsed->rcpts[0].orcpt, "");
    spool_msg_free(parsed);

    memcpy(r, env.rcpts, sizeof(r));
    r[1].notify = SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE;
    r[1].orcpt = "rfc822;alice@alias.test";
    r[2].notify = SPOOL_NOTIFY_NEVER;
    env.rcpts = r;
    env.ret = SPOOL_RET_HDRS;
    env.envid = "QQ314159";
    record_image(&image, &env);
    cr_assert(record_has(&image, SPOOL__REC_DSN));
    cr_assert(record_has(&image, SPOOL__REC_RCPT_DSN));
    cr_assert_eq(record_parse(&image, buf_used(&image), &parsed), 0);
    cr_assert_eq(parsed->ret, SPOOL_RET_HDRS);
    cr_assert_str_eq(parsed->envid, "QQ314159");
    cr_assert_eq(parsed->rcpts[0].notify, 0);
    cr_assert_str_eq(parsed->rcpts[0].orcpt, "");
    cr_assert_eq(parsed->rcpts[1].notify, SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE);
    cr_assert_str_eq(parsed->rcpts[1].orcpt, "rfc822;alice@alias.test");
    cr_assert_eq(parsed->rcpts[2].notify, SPOOL_NOTIFY_NEVER);
    spool_msg_free(parsed);
    /* Out of range: refused before anything is written. */
    env.ret = 3;
    buf_reset(&image);
    cr_assert_eq(spool_record_encode_trailer(&image, ID, 0, &env), SPOOL_EINVAL);
}

Test(spool_record, a_bad_envelope_or_update_is_refused)
{
    const spool_env_rcpt_t empty[] = {{"", NULL}};
    char *long_str = malloc(SPOOL_STR_MAX + 2);
    spool_msg_t *m = NULL;
    spool_update_t u = {0, SPOOL_RCPT_SENT, 1, 0, NULL, NULL, false};
    buf_t out;

    buf_init(&out, SIZE_MAX);
    memset(long_str, 'a', SPOOL_STR_MAX + 1);
    long_str[SPOOL_STR_MAX + 1] = '\0';
    env.nrcpts = 0;
    cr_assert_eq(spool_record_encode_trailer(&out, ID, 0, &env), SPOOL_EINVAL, "no recipient");
    env = envelope(3);
    env.sender = NULL;
    cr_assert_eq(spool_record_encode_trailer(&out, ID, 0, &env), SPOOL_EINVAL);
    env = envelope(3);
    env.helo = long_str;
    cr_assert_eq(spool_record_encode_trailer(&out, ID, 0, &env), SPOOL_EINVAL, "too long");
    env = envelope(3);
    env.rcpts = empty;
    env.nrcpts = 1;
    cr_assert_eq(spool_record_encode_trailer(&out, ID, 0, &env), SPOOL_EINVAL, "empty address");
    env = envelope(3);
    env.prepend_len = SPOOL_PREPEND_MAX + 1;
    cr_assert_eq(spool_record_encode_trailer(&out, ID, 0, &env), SPOOL_EINVAL);
    cr_assert_eq(buf_used(&out), 0, "nothing written for a refused envelope");

    cr_assert_eq(record_parse(&image, buf_used(&image), &m), 0);
    cr_assert_eq(spool_record_check_updates(m, &u, 1), 0);
    cr_assert_eq(spool_record_check_updates(m, &u, 0), SPOOL_EINVAL);
    cr_assert_eq(spool_record_check_updates(m, &u, 4), SPOOL_EINVAL, "more than recipients");
    u.index = 3;
    cr_assert_eq(spool_record_check_updates(m, &u, 1), SPOOL_EINVAL);
    u.index = 0;
    /* A state past the known ones (held, 4, is the last). */
    u.state = (spool_rcpt_state_t)(SPOOL_RCPT_HELD + 1);
    cr_assert_eq(spool_record_check_updates(m, &u, 1), SPOOL_EINVAL);
    u.state = SPOOL_RCPT_SENT;
    u.reply = long_str;
    cr_assert_eq(spool_record_check_updates(m, &u, 1), SPOOL_EINVAL);
    spool_msg_free(m);
    buf_free(&out);
    free(long_str);
}

Test(spool_record, an_image_cut_before_its_end_is_partial)
{
    spool_msg_t *m = (spool_msg_t *)1;

    for (size_t n = 0; n < image_end; n++) {
        cr_assert_eq(record_parse(&image, n, &m), SPOOL_EPARTIAL, "cut at %zu of %zu", n,
                     image_end);
        cr_assert_null(m);
    }
}

/* The offset of the first record of type in the image's trailer. */
static size_t record_find(const buf_t *b, int type)
{
    const unsigned char *p = (const unsigned char *)buf_ptr(b);
    size_t at = SPOOL__BODY_OFFSET + strlen(BODY);

    while (at < buf_used(b) && p[at] != type) {
        uint64_t len = 0;

        for (int i = 1; i <= 8; i++)
            len = len << 8 | p[at + (size_t)i];
        at += SPOOL__REC_HDR + (size_t)len;
    }
    cr_assert_lt(at, buf_used(b), "no record %c", type);
    return at;
}

Test(spool_record, a_damaged_image_is_corrupt)
{
    spool_msg_t *m = (spool_msg_t *)1;
    size_t at;
    struct {
        const char *what;
        int type;   /* the record to damage, or 0: the head */
        size_t off; /* from the record's type byte */
        char byte;
    } cases[] = {
        {"bad magic", 0, 7, '2'},
        {"no body record first", 0, 8, 'X'},
        {"an unknown record type", 'C', 0, 'Z'},
        {"an id that is not hex", 'I', SPOOL__REC_HDR + 3, 'g'},
        {"a NUL in a string", 'S', SPOOL__REC_HDR + 2, '\0'},
        {"a recipient's length past its record", 'R', SPOOL__REC_HDR, 9},
        {"a required record missing", 'W', 0, 'H'},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        record_image(&image, &env);
        at = cases[i].type == 0 ? 0 : record_find(&image, cases[i].type);
        image.data[image.off + at + cases[i].off] = cases[i].byte;
        cr_assert_eq(record_parse(&image, buf_used(&image), &m), SPOOL_ECORRUPT, "%s",
                     cases[i].what);
        cr_assert_null(m);
    }
    /* A body longer than the image: cut short, not corrupt. */
    record_image(&image, &env);
    image.data[image.off + SPOOL__MAGIC_LEN + 1] = 1;
    cr_assert_eq(record_parse(&image, buf_used(&image), &m), SPOOL_EPARTIAL);
}

Test(spool_record, a_torn_update_ends_the_valid_part_of_a_file)
{
    const spool_update_t u = {0, SPOOL_RCPT_SENT, 1, 0, "250 ok", "", true};
    const unsigned char *t;
    spool_msg_t *m;
    size_t whole, valid = 0, body_end = SPOOL__BODY_OFFSET + strlen(BODY);
    uint64_t body_len = 0;

    spool_record_encode_update(&image, &u, 1);
    whole = buf_used(&image);
    spool_record_encode_update(&image, &u, 1);
    image.data[image.off + buf_used(&image) - 1] ^= 1; /* its CRC fails */
    t = (const unsigned char *)buf_ptr(&image);

    cr_assert_eq(spool_record_parse_head(t, buf_used(&image), &body_len), 0);
    cr_assert_eq(body_len, strlen(BODY));
    m = spool_record_msg_alloc(strdup("/spool/" ID), ID, SPOOL__BODY_OFFSET);
    cr_assert_eq(spool_record_parse_trailer(m, t + body_end, buf_used(&image) - body_end, &valid),
                 0);
    cr_assert_eq(valid, whole - body_end, "the first update is whole, the second is not");
    cr_assert_eq(m->rcpts[0].state, SPOOL_RCPT_SENT);
    spool_msg_free(m);

    /* Cut inside the first update: only the envelope is valid. */
    m = spool_record_msg_alloc(strdup("/spool/" ID), ID, SPOOL__BODY_OFFSET);
    cr_assert_eq(spool_record_parse_trailer(m, t + body_end, whole - 1 - body_end, &valid), 0);
    cr_assert_eq(valid, image_end - body_end);
    cr_assert_eq(m->rcpts[0].state, SPOOL_RCPT_PENDING);
    spool_msg_free(m);

    /* A file whose I record names another message is not that message. */
    m = spool_record_msg_alloc(strdup("/spool/18C3F2A9B47D2"), "18C3F2A9B47D2", SPOOL__BODY_OFFSET);
    cr_assert_eq(spool_record_parse_trailer(m, t + body_end, image_end - body_end, &valid),
                 SPOOL_ECORRUPT);
    spool_msg_free(m);

    cr_assert_eq(spool_record_parse_head(t, SPOOL__BODY_OFFSET - 1, &body_len), SPOOL_EPARTIAL);
    cr_assert_eq(spool_record_parse_head(t, body_end - 1, &body_len), SPOOL_EPARTIAL);
}

Test(spool_record, a_sealed_journal_record_opens_and_a_damaged_one_does_not)
{
    unsigned char *rec;
    spool_msg_t *m = NULL;
    size_t ilen = image_end, len = 0;
    int state = 0;

    rec = calloc(1, SPOOL__JREC_HDR + ilen + 1);
    memcpy(rec + SPOOL__JREC_HDR, buf_ptr(&image), ilen);
    spool_record_jrec_seal(rec, (uint32_t)ilen);
    cr_assert_eq(rec[0], SPOOL__J_QUEUED);
    cr_assert_eq(spool_record_jrec_parse(rec, SPOOL__JREC_HDR + ilen, &state, &len), 0);
    cr_assert_eq(state, SPOOL__J_QUEUED);
    cr_assert_eq(len, ilen);
    cr_assert_eq(spool_record_parse_image("seg", 8, rec + SPOOL__JREC_HDR, len, &m), 0);
    cr_assert_str_eq(m->id, ID);
    cr_assert_eq(m->body_offset, 8 + SPOOL__BODY_OFFSET);
    spool_msg_free(m);
    /* More bytes after it (the next record) change nothing. */
    cr_assert_eq(spool_record_jrec_parse(rec, SPOOL__JREC_HDR + ilen + 1, &state, &len), 0);

    /* The state byte is rewritten in place: it is outside the CRC. */
    for (const char *s = "DFX"; *s; s++) {
        rec[0] = (unsigned char)*s;
        cr_assert_eq(spool_record_jrec_parse(rec, SPOOL__JREC_HDR + ilen, &state, &len), 0);
        cr_assert_eq(state, *s);
    }
    rec[0] = 'Q';
    cr_assert_eq(spool_record_jrec_parse(rec, SPOOL__JREC_HDR + ilen, &state, &len), SPOOL_ECORRUPT,
                 "an unknown state");
    len = 0;
    cr_assert_eq(spool_record_jrec_frame(rec, SPOOL__JREC_HDR + ilen, &len), 0,
                 "whole all the same: its CRC holds");
    cr_assert_eq(len, ilen);
    cr_assert_not(spool_record_jstate_known('Q'));
    rec[0] = SPOOL__J_QUEUED;

    for (size_t n = 0; n < SPOOL__JREC_HDR + ilen; n++)
        cr_assert_eq(spool_record_jrec_parse(rec, n, &state, &len), SPOOL_EPARTIAL, "cut at %zu",
                     n);
    for (size_t i = 1; i < SPOOL__JREC_HDR + ilen; i++) {
        rec[i] ^= 0x20;
        cr_assert_neq(spool_record_jrec_parse(rec, SPOOL__JREC_HDR + ilen, &state, &len), 0,
                      "byte %zu flipped", i);
        cr_assert_neq(spool_record_jrec_frame(rec, SPOOL__JREC_HDR + ilen, &len), 0,
                      "byte %zu flipped", i);
        rec[i] ^= 0x20;
    }
    free(rec);
}

/* A message held at arrival (a filter's quarantine): its recipients start
 * held, in memory and as parsed, until a state record releases them. */
Test(spool_record, a_message_held_at_arrival_starts_held)
{
    const spool_update_t release = {0, SPOOL_RCPT_PENDING, 0, 0, NULL, NULL, false};
    spool_msg_t *made, *parsed = NULL;

    env.flags |= SPOOL_F_HELD;
    record_image(&image, &env);
    made = spool_record_msg_new(strdup("/spool/" ID), ID, 0, strlen(BODY), &env);
    cr_assert_eq(record_parse(&image, buf_used(&image), &parsed), 0);
    for (size_t i = 0; i < made->nrcpts; i++) {
        cr_assert_eq(made->rcpts[i].state, SPOOL_RCPT_HELD);
        cr_assert_eq(parsed->rcpts[i].state, SPOOL_RCPT_HELD);
    }
    cr_assert_not(spool_msg_done(parsed), "held is not final");
    spool_msg_free(parsed);
    spool_record_encode_update(&image, &release, 1);
    cr_assert_eq(record_parse(&image, buf_used(&image), &parsed), 0);
    cr_assert_eq(parsed->rcpts[0].state, SPOOL_RCPT_PENDING, "released");
    cr_assert_eq(parsed->rcpts[1].state, SPOOL_RCPT_HELD);
    spool_msg_free(parsed);
    spool_msg_free(made);
}
