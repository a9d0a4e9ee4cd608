/*
 * session_milter_msg.c - the message as the filters see it and change it
 * (docs/milter.md): its header fields (once the header section is whole),
 * EOH, the body in chunks of 64 KiB at most, as it arrives, with the
 * client held back while a filter lags; the end of the message and the
 * changes asked before the word on it, applied at the commit: header
 * fields (milter_edit.h), the envelope, a hold, a body replaced when
 * milter_body_changes allows it.
 */
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

/* The header section kept for the filters and their changes, as the
 * signer keeps it (SIGN_HEADER_MAX). */
#define SESSION_MILTER_HEADER_MAX (256 * 1024)
/* Bytes queued for a filter beyond which the client waits. */
#define SESSION_MILTER_BACKLOG (1024 * 1024)

/* Whether f hears the rest of the message. */
static bool session_milter_msg_hears(const session_milter_one_t *f)
{
    return f->m != NULL && !f->done_conn && !f->done_msg;
}

static void session_milter_msg_send(session_t *s, int cmd, const void *data, size_t len)
{
    session_milters_t *sm = s->milters;
    const char *nv[] = {"i", s->writer != NULL ? spool_writer_id(s->writer) : ""};

    for (size_t i = 0; i < sm->n; i++)
        if (session_milter_msg_hears(&sm->f[i]))
            milter_step(sm->f[i].m, cmd, data, len, nv, cmd == MILTER_C_EOH ? 1 : 0, false);
}

static void session_milter_msg_chunk(session_t *s)
{
    session_milters_t *sm = s->milters;

    if (buf_used(&sm->chunk) == 0)
        return;
    session_milter_msg_send(s, MILTER_C_BODY, buf_ptr(&sm->chunk), buf_used(&sm->chunk));
    buf_reset(&sm->chunk);
}

static void session_milter_msg_body(session_t *s, const char *p, size_t n)
{
    session_milters_t *sm = s->milters;

    while (n > 0) {
        size_t take = buf_room(&sm->chunk) < n ? buf_room(&sm->chunk) : n;

        buf_append(&sm->chunk, p, take);
        p += take;
        n -= take;
        if (buf_room(&sm->chunk) == 0)
            session_milter_msg_chunk(s);
    }
}

/* The header section is whole (or as long as it is kept): its fields,
 * EOH, then what came after it as body. */
static void session_milter_msg_head(session_t *s, size_t fields)
{
    session_milters_t *sm = s->milters;
    buf_t name, value, data;

    sm->head_done = true;
    milter_edit_init(&sm->edit, buf_used(&sm->head) > 0 ? buf_ptr(&sm->head) : "", fields);
    /* A line that is no field ends the section: the body starts there. */
    if (sm->edit.section_len < fields)
        sm->body_from = sm->edit.section_len;
    buf_init(&name, SIZE_MAX);
    buf_init(&value, SIZE_MAX);
    buf_init(&data, SIZE_MAX);
    for (size_t k = 0; k < sm->n; k++) {
        session_milter_one_t *f = &sm->f[k];
        bool leadspc = f->m != NULL && (milter_protocol(f->m) & MILTER_P_HDR_LEADSPC);

        if (!session_milter_msg_hears(f))
            continue;
        for (size_t i = 0; i < sm->edit.n; i++) {
            milter_edit_name_value(&sm->edit.f[i], leadspc, &name, &value);
            buf_reset(&data);
            buf_append(&data, buf_ptr(&name), buf_used(&name));
            buf_append(&data, buf_ptr(&value), buf_used(&value));
            milter_step(f->m, MILTER_C_HEADER, buf_ptr(&data), buf_used(&data), NULL, 0, false);
        }
    }
    buf_free(&name);
    buf_free(&value);
    buf_free(&data);
    session_milter_msg_send(s, MILTER_C_EOH, NULL, 0);
    if (buf_used(&sm->head) > sm->body_from)
        session_milter_msg_body(s, buf_ptr(&sm->head) + sm->body_from,
                                buf_used(&sm->head) - sm->body_from);
}

/* Whether some filter still hears the message. */
static bool session_milter_msg_heard(const session_milters_t *sm)
{
    for (size_t i = 0; i < sm->n; i++)
        if (session_milter_msg_hears(&sm->f[i]))
            return true;
    return false;
}

/* A filter that lags holds the client back (docs/milter.md). */
static void session_milter_msg_backlog(session_t *s)
{
    session_milters_t *sm = s->milters;

    for (size_t i = 0; i < sm->n; i++) {
        session_milter_one_t *f = &sm->f[i];

        if (f->m == NULL || milter_backlog(f->m) <= SESSION_MILTER_BACKLOG)
            continue;
        milter_want_drain(f->m);
        if (!sm->paused) {
            log_debug("%s: milter %s lags (%zu bytes queued): the client waits", s->peer,
                      f->conf->name, milter_backlog(f->m));
            sm->paused = true;
            session__wait(s);
        }
    }
}

void session__milter_drained(session_t *s)
{
    session_milters_t *sm = s->milters;

    if (sm == NULL || !sm->paused)
        return;
    for (size_t i = 0; i < sm->n; i++)
        if (sm->f[i].m != NULL && milter_backlog(sm->f[i].m) > SESSION_MILTER_BACKLOG)
            return;
    sm->paused = false;
    session__resume(s);
}

void session__milter_feed(session_t *s, const char *p, size_t n)
{
    session_milters_t *sm = s->milters;
    size_t before;
    const char *end;

    if (sm == NULL || !session_milter_msg_heard(sm))
        return;
    if (sm->head_done) {
        session_milter_msg_body(s, p, n);
        session_milter_msg_backlog(s);
        return;
    }
    if (buf_used(&sm->head) == 0 && sm->head.max == 0)
        buf_init(&sm->head, SESSION_MILTER_HEADER_MAX);
    before = buf_used(&sm->head);
    if (buf_append(&sm->head, p, n) < 0) {
        /* Longer than is kept: the fields so far, the rest as body. */
        size_t keep = buf_room(&sm->head);
        buf_append(&sm->head, p, keep);
        sm->head_long = true;
        sm->body_from = buf_used(&sm->head);
        session_milter_msg_head(s, buf_used(&sm->head));
        session_milter_msg_body(s, p + keep, n - keep);
        session_milter_msg_backlog(s);
        return;
    }
    /* The empty line, looked for where it may have begun. */
    if (buf_used(&sm->head) >= 2 && memcmp(buf_ptr(&sm->head), "\r\n", 2) == 0) {
        sm->body_from = 2;
        session_milter_msg_head(s, 0);
    } else if ((end = memmem(buf_ptr(&sm->head) + (before > 3 ? before - 3 : 0),
                             buf_used(&sm->head) - (before > 3 ? before - 3 : 0), "\r\n\r\n",
                             4)) != NULL) {
        size_t fields = (size_t)(end - buf_ptr(&sm->head)) + 2;
        sm->body_from = fields + 2;
        session_milter_msg_head(s, fields);
    }
    session_milter_msg_backlog(s);
}

bool session__milter_eom(session_t *s)
{
    session_milters_t *sm = s->milters;
    const char *nv[] = {"i", s->writer != NULL ? spool_writer_id(s->writer) : ""};

    if (sm == NULL)
        return false;
    /* The end's wait holds the client from here. */
    sm->paused = false;
    if (!sm->head_done && session_milter_msg_heard(sm)) {
        /* A message without a body: all of it is header section. */
        sm->body_from = buf_used(&sm->head);
        session_milter_msg_head(s, buf_used(&sm->head));
    }
    session_milter_msg_chunk(s);
    return session__milter_step(s, MILTER_C_BODYEOB, NULL, 0, nv, 1,
                                session__checks_milters_done);
}

/* ---- the changes ---- */

void session__milter_change(session_milter_one_t *f, const milter_reply_t *r)
{
    session_t *s = f->s;
    session_milters_t *sm = s->milters;
    session_milter_mod_t *mod;

    switch (r->type) {
    case MILTER_R_QUARANTINE:
        free(f->quarantine);
        f->quarantine = xstrdup(r->text);
        return;
    case MILTER_R_REPLBODY:
        if (!s->smtpd->opts.milter_body_changes) {
            if (!sm->body_refused)
                log_warning("%s: milter %s: body replacement refused "
                            "(milter_body_changes = no); the body goes as it came",
                            s->writer != NULL ? spool_writer_id(s->writer) : s->peer,
                            f->conf->name);
            sm->body_refused = true;
            return;
        }
        if (buf_used(&sm->body) == 0 && sm->body.max == 0)
            buf_init(&sm->body, s->smtpd->opts.max_message_size);
        if (buf_append(&sm->body, r->body, r->body_len) < 0)
            sm->body_refused = true;
        sm->body_by = f->conf->name;
        return;
    case MILTER_R_ADDHEADER:
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER:
        if (!milter_proto_header_name_ok(r->name)) {
            log_warning("%s: milter %s: a header field name that is none: %.64s", s->peer,
                        f->conf->name, r->name);
            return;
        }
        break;
    }
    f->mods = xrealloc(f->mods, (f->nmods + 1) * sizeof(*f->mods));
    mod = &f->mods[f->nmods++];
    mod->type = r->type;
    mod->index = r->index;
    /* Whether the value brings its own leading space (docs/milter.md). */
    mod->leadspc = f->m != NULL && (milter_protocol(f->m) & MILTER_P_HDR_LEADSPC);
    mod->a = xstrdup(r->name != NULL ? r->name : r->addr != NULL ? r->addr : "");
    mod->b = xstrdup(r->value != NULL ? r->value : r->args != NULL ? r->args : "");
}

/* An address a filter gave, "<a@b>" or "a@b", into out: false when it is
 * none ("" is <>). */
static bool session_milter_msg_addr(const char *in, char *out, size_t size)
{
    size_t n = strlen(in);
    addr_t a;

    if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
        in++;
        n -= 2;
    }
    if (n >= size)
        return false;
    memcpy(out, in, n);
    out[n] = '\0';
    return n == 0 || addr_parse(out, n, &a) == 0;
}

/* A new envelope sender: the forwarding sender made again from it. */
static void session_milter_msg_sender(session_t *s, const char *who, const char *addr)
{
    char srs[SRS_ADDR_SIZE] = "";
    const char *id = spool_writer_id(s->writer);

    if (addr[0] != '\0' &&
        srs_forward(s->smtpd->srs, addr, strlen(addr), smtpd__now(s->smtpd), srs, sizeof(srs)) <
            0) {
        log_warning("%s: milter %s: sender <%s> cannot be rewritten with SRS: not changed", id,
                    who, addr);
        return;
    }
    log_info("%s: milter %s: sender changed from <%s> to <%s>", id, who, txn_sender(s->txn), addr);
    txn_set_sender(s->txn, addr);
    txn_set_forward_sender(s->txn, srs);
}

/* A recipient added: the forward table's destinations for it, or the
 * address itself (the filter is trusted, as Postfix trusts its milters). */
static void session_milter_msg_add_rcpt(session_t *s, const char *who, const char *addr)
{
    table_dests_t dests;
    const char *self = addr;

    log_info("%s: milter %s: recipient <%s> added", spool_writer_id(s->writer), who, addr);
    /* A table action (REJECT, DISCARD) is for senders; the filter's
     * recipient is delivered as it asked. */
    if (table_lookup(s->table, addr, strlen(addr), &dests) == TABLE_FOUND &&
        dests.action == TABLE_FORWARD)
        txn_add_rcpt(s->txn, addr, strlen(addr), NULL, dests.addr, dests.n);
    else
        txn_add_rcpt(s->txn, addr, strlen(addr), NULL, &self, 1);
}

/* The envelope changes of f, and its header changes to the edit. */
static void session_milter_msg_apply(session_t *s, session_milter_one_t *f)
{
    session_milters_t *sm = s->milters;
    char addr[ADDR_MAX + 1];

    for (size_t i = 0; i < f->nmods; i++) {
        const session_milter_mod_t *m = &f->mods[i];

        switch (m->type) {
        case MILTER_R_ADDHEADER:
        case MILTER_R_INSHEADER:
        case MILTER_R_CHGHEADER:
            /* A header section not kept whole takes only fields on top. */
            if (sm->head_long && !(m->type == MILTER_R_INSHEADER && m->index == 0)) {
                log_warning("%s: milter %s: header change not made: the header section is "
                            "longer than is kept",
                            spool_writer_id(s->writer), f->conf->name);
            } else if (m->type == MILTER_R_ADDHEADER) {
                milter_edit_add(&sm->edit, m->a, m->b, m->leadspc);
            } else if (m->type == MILTER_R_INSHEADER) {
                milter_edit_insert(&sm->edit, m->index, m->a, m->b, m->leadspc);
            } else {
                milter_edit_change(&sm->edit, m->index, m->a, m->b, m->leadspc);
            }
            break;
        case MILTER_R_CHGFROM:
            if (session_milter_msg_addr(m->a, addr, sizeof(addr)))
                session_milter_msg_sender(s, f->conf->name, addr);
            break;
        case MILTER_R_ADDRCPT:
        case MILTER_R_ADDRCPT_PAR:
            if (session_milter_msg_addr(m->a, addr, sizeof(addr)) && addr[0] != '\0')
                session_milter_msg_add_rcpt(s, f->conf->name, addr);
            break;
        case MILTER_R_DELRCPT:
            if (session_milter_msg_addr(m->a, addr, sizeof(addr)) &&
                txn_remove_rcpt(s->txn, addr) > 0)
                log_info("%s: milter %s: recipient <%s> removed", spool_writer_id(s->writer),
                         f->conf->name, addr);
            break;
        }
    }
    if (f->quarantine != NULL) {
        s->held = true;
        log_info("%s: hold: milter %s: %s; from=<%s>", spool_writer_id(s->writer), f->conf->name,
                 f->quarantine, txn_sender(s->txn));
    }
}

/* The body a filter wrote in place of the message's: a new writer holds
 * the message's header section, then it, as CRLF lines (docs/milter.md). */
static void session_milter_msg_new_body(session_t *s)
{
    session_milters_t *sm = s->milters;
    spool_writer_t *w;
    const char *p = buf_used(&sm->body) > 0 ? buf_ptr(&sm->body) : "";
    size_t n = buf_used(&sm->body), from = sm->body_from, start = 0;

    if (sm->head_long || spool_writer_open(s->smtpd->spool, &w) < 0) {
        log_warning("%s: milter %s: body replacement not made", spool_writer_id(s->writer),
                    sm->body_by);
        return;
    }
    log_info("%s: milter %s: body replaced; now %s", spool_writer_id(s->writer), sm->body_by,
             spool_writer_id(w));
    spool_writer_abort(s->writer);
    s->writer = w;
    sign_msg_free(s->sign);
    s->sign = s->smtpd->signer != NULL ? sign_msg_new(s->smtpd->signer) : NULL;
    /* The header section, and the empty line after it. */
    if (from > buf_used(&sm->head))
        from = buf_used(&sm->head);
    spool_writer_write(w, buf_ptr(&sm->head), from);
    if (s->sign != NULL)
        sign_msg_feed(s->sign, buf_ptr(&sm->head), from);
    if (from == sm->edit.section_len) {
        spool_writer_write(w, "\r\n", 2);
        if (s->sign != NULL)
            sign_msg_feed(s->sign, "\r\n", 2);
    }
    for (size_t i = 0; i <= n; i++) {
        /* Bare LF becomes CRLF, bare CR goes: nothing leaves that a
         * receiver could read as another end of data. */
        bool end = i == n, lf = !end && p[i] == '\n', cr = !end && p[i] == '\r';
        if (!end && !lf && !cr)
            continue;
        spool_writer_write(w, p + start, i - start);
        if (s->sign != NULL)
            sign_msg_feed(s->sign, p + start, i - start);
        if (lf || (end && i > 0 && p[i - 1] != '\n')) {
            spool_writer_write(w, "\r\n", 2);
            if (s->sign != NULL)
                sign_msg_feed(s->sign, "\r\n", 2);
        }
        start = i + 1;
    }
}

int session__milter_changes(session_t *s, buf_t *top, buf_t *section, uint64_t *skip)
{
    session_milters_t *sm = s->milters;

    *skip = 0;
    if (sm == NULL)
        return 0;
    if (sm->body_by != NULL && !sm->body_refused)
        session_milter_msg_new_body(s);
    for (size_t i = 0; i < sm->n; i++)
        session_milter_msg_apply(s, &sm->f[i]);
    if (sm->edit.changed && milter_edit_split(&sm->edit, top, section))
        *skip = sm->edit.section_len;
    return txn_ndests(s->txn) > 0 ? 0 : -1;
}

void session__milter_end_txn(session_t *s)
{
    session_milters_t *sm = s->milters;

    if (sm == NULL)
        return;
    for (size_t i = 0; i < sm->n; i++) {
        session_milter_one_t *f = &sm->f[i];

        /* A filter that has not seen the message's end forgets it. */
        if (f->m != NULL && f->in_msg && !f->eom_done)
            milter_abort(f->m);
        f->in_msg = f->done_msg = f->eom_done = false;
        for (size_t k = 0; k < f->nmods; k++) {
            free(f->mods[k].a);
            free(f->mods[k].b);
        }
        free(f->mods);
        f->mods = NULL;
        f->nmods = 0;
        free(f->quarantine);
        f->quarantine = NULL;
    }
    milter_edit_free(&sm->edit);
    buf_free(&sm->head);
    buf_free(&sm->chunk);
    buf_free(&sm->body);
    memset(&sm->head, 0, sizeof(sm->head));
    memset(&sm->body, 0, sizeof(sm->body));
    buf_init(&sm->chunk, MILTER_CHUNK_MAX);
    sm->head_done = sm->head_long = sm->discard = sm->body_refused = sm->paused = false;
    sm->body_from = 0;
    sm->body_by = NULL;
    s->held = false;
}
