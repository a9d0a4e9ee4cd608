/*
 * session_data.c - a message's bytes, from DATA or the first BDAT to the
 * reply after its end: the DATA reader, the limits that are only known at
 * the end (bare CR/LF, size, hops), and queueing.
 */
#include "session_int.h"

#include <stdio.h>
#include <time.h>

#include "log.h"

int session__data_begin(session_t *s, data_mode_t mode)
{
    data_init(&s->data, mode, s->srv->cfg->max_message_size);
    if (mode == DATA_DOT) {
        session__reply(s, REPLY_DATA_GO);
        s->state = SESSION_DATA;
    } else {
        s->state = SESSION_CHUNKING;
    }
    return 0;
}

void session__data_abort(session_t *s)
{
    (void)s;
}

/* The message is whole: refuse it for what could only be seen at its end,
 * or queue it. */
static void session_data_end(session_t *s, const char *what)
{
    const config_t *cfg = s->srv->cfg;
    reply_id_t refusal = REPLY_OK;

    if (s->data.bare)
        refusal = REPLY_BARE_EOL;
    else if (s->data.too_big)
        refusal = REPLY_TOO_BIG;
    else if (s->data.received > cfg->max_hops)
        refusal = REPLY_HOPS;
    if (refusal == REPLY_OK)
        refusal = REPLY_SPOOL_FAILED;
    session__log_reject(s, what, refusal, NULL, 0);
    session__reply(s, refusal);
    session__end_txn(s);
    if (refusal == REPLY_BARE_EOL)
        session__error(s);
}

/* A BDAT chunk has been read. */
static void session_bdat_end(session_t *s)
{
    if (s->bdat_discard) {
        s->state = s->bdat_return;
        return;
    }
    if (s->bdat_last) {
        data_finish(&s->data);
        s->state = SESSION_CHUNKING;
        session_data_end(s, "BDAT");
        return;
    }
    s->state = SESSION_CHUNKING;
    session__replyf(s, 250, "2.0.0", "Ok: %llu octets", (unsigned long long)s->data.size);
}

size_t session__data_input(session_t *s, char *p, size_t n)
{
    size_t used, out;
    bool done;

    if (s->state == SESSION_DATA) {
        used = data_feed(&s->data, p, n, &out, &done);
        if (done) {
            s->state = SESSION_RCPT;
            session_data_end(s, "DATA");
        }
        return used;
    }
    used = n < s->bdat_left ? n : (size_t)s->bdat_left;
    if (!s->bdat_discard)
        data_feed(&s->data, p, used, &out, &done);
    s->bdat_left -= used;
    if (s->bdat_left == 0)
        session_bdat_end(s);
    return used;
}
