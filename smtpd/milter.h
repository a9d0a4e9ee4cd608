/*
 * milter - one connection to a mail filter (docs/milter.md), on the loop.
 *
 * A milter_t connects (TCP or a Unix socket, non-blocking), negotiates
 * protocol version 6, and then takes steps: a command with the macros
 * that go with it.  Steps are sent in order, one awaiting its reply at a
 * time; a step the filter asked to skip is not sent, and one it answers
 * with no reply (SMFIP_NR_*) is done once written.  Every wait (the
 * connection, the negotiation, each reply) is bounded by the timeout; a
 * progress reply restarts it.
 *
 * Events reach the owner through one callback, never from inside a call
 * the owner made (the connection works from the loop only):
 *   MILTER_EV_REPLY   a reply packet to the awaited step: the final one
 *                     (final set), or a change requested before it at the
 *                     end of a message
 *   MILTER_EV_DONE    a step marked notify is done without a reply
 *   MILTER_EV_DRAINED what was queued fell under milter_backlog()'s low
 *                     mark, after milter_want_drain()
 *   MILTER_EV_FAILED  the connection failed (status: MILTER_E* or a libuv
 *                     error); nothing follows, the connection closes
 *
 * The owner frees it with milter_close() (QUIT, then close); no callback
 * comes after that call.  The reply passed to a callback is valid only
 * during the call.
 */
#ifndef MXFWD_MILTER_H
#define MXFWD_MILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "milter_proto.h"

typedef struct milter milter_t;

typedef enum {
    MILTER_EV_REPLY,
    MILTER_EV_DONE,
    MILTER_EV_DRAINED,
    MILTER_EV_FAILED,
} milter_event_t;

typedef struct {
    milter_event_t ev;
    int status;                  /* FAILED: why */
    const milter_reply_t *reply; /* REPLY */
    int cmd;                     /* REPLY, DONE: the step's command */
    bool final;                  /* REPLY: the step's answer, not a change before it */
    bool notify;                 /* REPLY, DONE: the step was marked notify */
} milter_event_info_t;

typedef void (*milter_cb)(void *arg, milter_t *m, const milter_event_info_t *e);

/* Connect to the filter at sa (AF_INET, AF_INET6 or AF_UNIX) and offer
 * our version, every action and every step to skip.  Never fails at
 * once: trouble comes as MILTER_EV_FAILED. */
milter_t *milter_open(uv_loop_t *loop, const struct sockaddr *sa, uint64_t timeout_ms,
                      milter_cb cb, void *arg);

/*
 * Queue a step: the macros nv[0..2n) (name, value pairs; none when n is
 * 0) for cmd, then cmd's packet, data[0..len).  notify: the owner waits
 * for it (MILTER_EV_DONE when it gets no reply).  0, or MILTER_ECLOSED
 * when the connection has failed (no event for this step).
 */
int milter_step(milter_t *m, int cmd, const void *data, size_t len, const char *const *nv,
                size_t n, bool notify);

/* Drop the steps of the message not sent yet (the filter has had its say
 * on it); abort: and send ABORT, so that the filter forgets the message
 * and the connection serves the next one. */
void milter_drop(milter_t *m);
void milter_abort(milter_t *m);

/* Bytes queued and not yet written; once they fall under the low mark
 * after milter_want_drain(), MILTER_EV_DRAINED comes (once). */
size_t milter_backlog(const milter_t *m);
void milter_want_drain(milter_t *m);

/* Whether the negotiation is done; and then whether a step of cmd gets a
 * word from the filter (neither skipped nor left unanswered): when it
 * does not, the owner need not wait for it. */
bool milter_ready(const milter_t *m);
bool milter_answers(const milter_t *m, int cmd);

/* What the filter negotiated (valid once a step has been answered or
 * done): the actions it may take, the steps it skips or leaves
 * unanswered. */
uint32_t milter_actions(const milter_t *m);
uint32_t milter_protocol(const milter_t *m);

/* Send QUIT (when possible) and close; frees m later, on the loop. */
void milter_close(milter_t *m);

#endif
