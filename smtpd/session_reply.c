/*
 * session_reply.c - the session's replies and what goes with them: the
 * reply text (smtpd/reply.c has the words), the "NOQUEUE: reject" log
 * lines and their counters, and the error count.
 */
#include "session_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "str.h"

/* ---- replies ------------------------------------------------------------- */

static void session_reply_out_room(session_t *s)
{
    if (buf_used(&s->out) > SESSION_OUT_FLUSH)
        session__flush(s);
}

void session__replyf(session_t *s, int code, const char *esc, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    session_reply_out_room(s);
    /* 421 names the host, as RFC 5321 4.2 shows it. */
    if (code == 421)
        proto_replyf(&s->out, code, esc, "%s %s", s->smtpd->opts.hostname, text);
    else
        proto_reply(&s->out, code, esc, text);
}

void session__reply_given(session_t *s, const session_reply_t *r)
{
    session__replyf(s, r->code, r->esc[0] != '\0' ? r->esc : NULL, "%s", r->text);
}

const char *session__reply_line(const session_reply_t *r, char *dst, size_t size)
{
    char *nl;

    snprintf(dst, size, "%d%s%s %s", r->code, r->esc[0] != '\0' ? " " : "", r->esc, r->text);
    while ((nl = strchr(dst, '\n')) != NULL)
        *nl = ' ';
    return dst;
}

void session__reply(session_t *s, reply_id_t id)
{
    const reply_t *r = reply_get(id);

    session__replyf(s, r->code, r->esc, "%s", r->text);
}

void session__reply_addr(session_t *s, reply_id_t id, const char *addr, size_t len)
{
    const reply_t *r = reply_get(id);

    session__replyf(s, r->code, r->esc, "<%.*s>: %s", (int)len, addr, r->text);
}

const char *session__proto(const session_t *s)
{
    return s->esmtp ? "ESMTP" : "SMTP";
}

void session__log_reject_reply(session_t *s, const char *what, reply_id_t id, const char *reply)
{
    smtpd__count_rejected(s->smtpd, id);
    log_info("NOQUEUE: reject: %s from %s: %s; from=<%s> proto=%s helo=<%s> session=%s", what,
             s->peer, reply, s->txn != NULL ? txn_sender(s->txn) : "", session__proto(s),
             s->helo != NULL ? s->helo : "", s->sid);
}

void session__log_reject(session_t *s, const char *what, reply_id_t id, const char *addr,
                         size_t addr_len)
{
    session__log_reject_text(s, what, id, NULL, addr, addr_len);
}

void session__log_reject_text(session_t *s, const char *what, reply_id_t id,
                              const reply_t *words, const char *addr, size_t addr_len)
{
    const reply_t *r = words != NULL ? words : reply_get(id);
    bool mail = strcmp(what, "MAIL") == 0;
    int n = (int)(addr_len > ADDR_INPUT_MAX ? ADDR_INPUT_MAX : addr_len);
    char shown[ADDR_INPUT_MAX + 8] = "", to[ADDR_INPUT_MAX + 8] = "", from[ADDR_INPUT_MAX + 1] = "";

    smtpd__count_rejected(s->smtpd, id);
    if (addr != NULL)
        snprintf(shown, sizeof(shown), "<%.*s>: ", n, addr);
    if (addr != NULL && !mail)
        snprintf(to, sizeof(to), " to=<%.*s>", n, addr);
    if (mail && addr != NULL)
        snprintf(from, sizeof(from), "%.*s", n, addr);
    else if (s->txn != NULL)
        str_lcpy(from, txn_sender(s->txn), sizeof(from));
    /* Postfix's wording, so that log tools read it. */
    log_info("NOQUEUE: reject: %s from %s: %d %s %s%s; from=<%s>%s proto=%s helo=<%s> session=%s",
             what, s->peer, r->code, r->esc, shown, r->text, from, to, session__proto(s),
             s->helo != NULL ? s->helo : "", s->sid);
}

void session__error(session_t *s)
{
    if (++s->errors < s->smtpd->opts.max_errors)
        return;
    log_info("too many errors after %s from %s session=%s", proto_verb_name(s->last), s->peer,
             s->sid);
    session__reply(s, REPLY_TOO_MANY_ERRORS);
    session__close(s);
}

bool session__idle(const session_t *s)
{
    return s->txn == NULL && !s->waiting && (s->state == SESSION_INIT || s->state == SESSION_HELO);
}
