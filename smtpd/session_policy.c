/*
 * session_policy.c - what the session checks of the client and the sender
 * before any filter (docs/smtp.md): the DNS block and allow lists at
 * connect, whose refusal answers the first command after the greeting;
 * the rate limits per client address; the sender's domain at MAIL
 * (reject_non_fqdn_sender, reject_unknown_sender_domain).
 */
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

/* ---- connect checks ---- */

static void session_policy_listed(void *arg, const dnsbl_result_t *res)
{
    session_t *s = arg;

    s->dnsbl = NULL;
    for (size_t i = 0; i < res->nfailures; i++)
        log_warning("%s: DNS list %s could not be asked: %s (not blocking) session=%s", s->peer,
                    res->failures[i].zone, dns_strerror(res->failures[i].error), s->sid);
    if (res->status == DNSBL_ALLOWED) {
        log_info("%s: listed by the allow list %s (%s): block lists not applied session=%s",
                 s->peer, res->zone, res->answer, s->sid);
    } else if (res->status == DNSBL_LISTED && s->refusal == NULL) {
        s->refusal = xcalloc(1, sizeof(*s->refusal));
        *s->refusal = (session_reply_t){.code = 554, .esc = "5.7.1"};
        snprintf(s->refusal->text, sizeof(s->refusal->text),
                 "Service unavailable; client [%s] blocked using %s%s%s", s->peer_ip, res->zone,
                 res->reason != NULL ? "; " : "", res->reason != NULL ? res->reason : "");
        s->refusal_id = REPLY_DNSBL;
    }
    session__conn_check_done(s);
}

void session__policy_connect(session_t *s)
{
    const smtpd_options_t *o = &s->smtpd->opts;

    if (o->ndnsbl == 0)
        return;
    if (dnsbl_check(o->resolver, &s->peer_sa.sa, o->dnsbl, o->ndnsbl, o->dnswl, o->ndnswl,
                    session_policy_listed, s, &s->dnsbl) < 0) {
        log_warning("%s: the DNS lists could not be asked (not blocking) session=%s", s->peer,
                    s->sid);
        return;
    }
    s->conn_pending++;
}

void session__conn_check_done(session_t *s)
{
    if (--s->conn_pending > 0 || !s->conn_hold)
        return;
    s->conn_hold = false;
    session__resume(s);
}

bool session__conn_hold(session_t *s)
{
    if (s->conn_pending == 0)
        return false;
    s->conn_hold = true;
    session__wait(s);
    return true;
}

bool session__conn_refused(session_t *s, proto_verb_t verb)
{
    char line[600];

    if (s->refusal == NULL || verb == PROTO_QUIT)
        return false;
    if (!s->refusal_logged) {
        s->refusal_logged = true;
        session__log_reject_reply(s, proto_verb_name(verb), s->refusal_id,
                                  session__reply_line(s->refusal, line, sizeof(line)));
    }
    session__reply_given(s, s->refusal);
    if (s->refusal_close)
        session__close(s);
    else
        session__error(s);
    return true;
}

/* ---- rate limits ---- */

bool session__rate_refused(session_t *s, anvil_kind_t kind, const char *what, const char *addr,
                           size_t len)
{
    static const reply_id_t refusals[ANVIL_NKINDS] = {
        [ANVIL_CONNECTIONS] = REPLY_RATE_CONNECTIONS,
        [ANVIL_MESSAGES] = REPLY_RATE_MESSAGES,
        [ANVIL_RECIPIENTS] = REPLY_RATE_RECIPIENTS,
    };
    const smtpd_options_t *o = &s->smtpd->opts;
    unsigned limit = kind == ANVIL_CONNECTIONS ? o->connection_rate_limit
                     : kind == ANVIL_MESSAGES  ? o->message_rate_limit
                                               : o->recipient_rate_limit;
    const reply_t *r = reply_get(refusals[kind]);
    session_reply_t reply = {.code = r->code};
    char line[600];

    if (limit == 0 || s->smtpd->anvil == NULL ||
        cidr_match_any(o->rate_limit_exempt, o->nrate_limit_exempt, &s->peer_sa.sa) ||
        anvil_count(s->smtpd->anvil, s->peer_ip, kind, smtpd__clock_ms(s->smtpd)) <= limit)
        return false;
    str_lcpy(reply.esc, r->esc, sizeof(reply.esc));
    snprintf(reply.text, sizeof(reply.text), "%s%.*s%s%s %s", addr != NULL ? "<" : "",
             addr != NULL ? (int)len : 0, addr != NULL ? addr : "", addr != NULL ? ">: " : "",
             r->text, s->peer_ip);
    session__reply_given(s, &reply);
    if (kind == ANVIL_CONNECTIONS) {
        smtpd__count_rejected(s->smtpd, refusals[kind]);
        log_info("refused connection from %s: %s %s session=%s", s->peer, r->text, s->peer_ip,
                 s->sid);
    } else {
        session__log_reject_reply(s, what, refusals[kind],
                                  session__reply_line(&reply, line, sizeof(line)));
    }
    return true;
}

/* ---- the sender's domain ---- */

/* A refusal of the sender: the reply, its log line, and the transaction
 * goes (it was made before the checks' answer). */
static void session_policy_refuse_sender(session_t *s, reply_id_t id)
{
    const char *sender = s->txn != NULL ? txn_sender(s->txn) : "";
    char *copy = xstrdup(sender);

    txn_free(s->txn);
    s->txn = NULL;
    session__reply_addr(s, id, copy, strlen(copy));
    session__log_reject(s, "MAIL", id, copy, strlen(copy));
    free(copy);
}

/* NXDOMAIN or a null MX (RFC 7505) refuse; a temporary failure defers;
 * anything else (MX records, a name with other records) exists. */
static void session_policy_domain_cb(void *arg, int status, const dns_result_t *res)
{
    session_t *s = arg;
    reply_id_t id = REPLY_OK;

    s->sender_dns = NULL;
    if (status == DNS_ENXDOMAIN)
        id = REPLY_SENDER_UNKNOWN_DOMAIN;
    else if (status == 0 && res->n == 1 && res->u.mx[0].host[0] == '\0')
        id = REPLY_SENDER_NULL_MX;
    else if (status < 0 && !dns_is_permanent(status))
        id = REPLY_SENDER_DOMAIN_TEMP;
    if (id != REPLY_OK) {
        session_policy_refuse_sender(s, id);
        s->cont = NULL;
    }
    session__step_done(s);
}

int session__sender_check(session_t *s, const proto_path_t *path, session_cont_fn cont)
{
    const smtpd_options_t *o = &s->smtpd->opts;
    const addr_t *a = &path->parsed;
    char domain[ADDR_DOMAIN_MAX + 1];

    /* <> is a bounce's: nothing to check. */
    if (path->addr_len == 0 || a->literal)
        return 0;
    if (o->reject_non_fqdn_sender && memchr(a->domain, '.', a->domain_len) == NULL) {
        session_policy_refuse_sender(s, REPLY_SENDER_NOT_FQDN);
        return -1;
    }
    if (!o->reject_unknown_sender_domain || a->domain_len >= sizeof(domain))
        return 0;
    memcpy(domain, a->domain, a->domain_len);
    domain[a->domain_len] = '\0';
    /* A name the resolver cannot ask (not ASCII, say) is not refused. */
    if (dns_lookup(o->resolver, DNS_T_MX, domain, session_policy_domain_cb, s, &s->sender_dns) < 0)
        return 0;
    session__step_wait(s, cont);
    return 1;
}

void session__policy_abandon(session_t *s)
{
    if (s->sender_dns != NULL) {
        dns_cancel(s->sender_dns);
        s->sender_dns = NULL;
    }
}

void session__policy_free(session_t *s)
{
    session__policy_abandon(s);
    dnsbl_cancel(s->dnsbl);
    s->dnsbl = NULL;
    free(s->refusal);
    s->refusal = NULL;
}
