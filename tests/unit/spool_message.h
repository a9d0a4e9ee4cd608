/*
 * spool_message - an envelope to commit and Criterion assertions on the
 * spool_msg_t it becomes, for the spool's unit tests (those of the record
 * format included, which link nothing but spool_record_lib): header-only.
 */
#ifndef MXFWD_TEST_SPOOL_MESSAGE_H
#define MXFWD_TEST_SPOOL_MESSAGE_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "spool.h"

/* The headers every envelope() prepends. */
static const char prepend[] =
    "Received: from mx.origin.test (mx.origin.test [192.0.2.7])\r\n"
    "\tby fwd.test (mxfwd) with ESMTPS id 0\r\n"
    "Authentication-Results: fwd.test; spf=pass smtp.mailfrom=origin.test\r\n";

static const spool_env_rcpt_t rcpts3[] = {
    {"alice@example.com", "alice@alias.test"},
    {"bob@example.org", "team@alias.test"},
    {"carol@example.net", NULL},
};

/* An envelope with the first nrcpts of three recipients. */
static inline spool_envelope_t envelope(size_t nrcpts)
{
    spool_envelope_t env = {
        .arrival_us = 1795000000123456,
        .client = "mx.origin.test[192.0.2.7]",
        .helo = "mx.origin.test",
        .sender = "someone@origin.test",
        .srs_sender = "SRS0=AbCd=XY=origin.test=someone@fwd.test",
        .flags = SPOOL_F_8BITMIME,
        .prepend = prepend,
        .prepend_len = sizeof(prepend) - 1,
        .rcpts = rcpts3,
        .nrcpts = nrcpts,
    };
    return env;
}

/* m carries env's envelope (a NULL orig as ""). */
static inline void assert_envelope(const spool_msg_t *m, const spool_envelope_t *env)
{
    cr_assert_eq(m->arrival_us, env->arrival_us);
    cr_assert_str_eq(m->client, env->client);
    cr_assert_str_eq(m->helo, env->helo);
    cr_assert_str_eq(m->sender, env->sender);
    cr_assert_str_eq(m->srs_sender, env->srs_sender);
    cr_assert_eq(m->flags, env->flags);
    cr_assert_eq(m->prepend_len, env->prepend_len);
    cr_assert(memcmp(m->prepend, env->prepend, env->prepend_len) == 0);
    cr_assert_eq(m->nrcpts, env->nrcpts);
    for (size_t i = 0; i < env->nrcpts; i++) {
        cr_assert_str_eq(m->rcpts[i].addr, env->rcpts[i].addr);
        cr_assert_str_eq(m->rcpts[i].orig, env->rcpts[i].orig ? env->rcpts[i].orig : "");
    }
}

static inline void assert_rcpt(const spool_rcpt_t *r, spool_rcpt_state_t state, uint32_t attempts,
                               int64_t next, const char *reply, const char *relay, bool remote)
{
    cr_assert_eq(r->state, state, "%s", r->addr);
    cr_assert_eq(r->attempts, attempts);
    cr_assert_eq(r->next_attempt, next);
    cr_assert_str_eq(r->reply, reply);
    cr_assert_str_eq(r->relay, relay);
    cr_assert_eq(r->remote_reply, remote);
}

#endif
