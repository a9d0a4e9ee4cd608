#include "txn.h"

#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "str.h"
#include "xalloc.h"

struct txn {
    char *sender;
    char *forward_sender; /* NULL: same as sender */
    char *store_key;      /* NULL: the sender needs no envelope store */
    bool smtputf8;
    bool body_8bit;
    bool rcpt_tried;
    proto_ret_t ret; /* DSN parameters of MAIL (RFC 3461) */
    char *envid;

    char **rcpts; /* accepted RCPT addresses, as given */
    char **orcpts; /* their ORCPT=, "" when none */
    size_t cap_orcpts;
    size_t nrcpts, cap_rcpts;

    txn_dest_t *dests;
    size_t ndests, cap_dests;
    htab_t *seen; /* lowercased destination -> non-NULL */
};

txn_t *txn_new(const char *sender, size_t len, const proto_mail_t *mail)
{
    txn_t *t = xcalloc(1, sizeof(*t));

    t->sender = xstrndup(sender, len);
    t->smtputf8 = mail->smtputf8;
    t->body_8bit = mail->body == PROTO_BODY_8BITMIME;
    t->ret = mail->ret;
    t->envid = xstrdup(mail->envid);
    return t;
}

void txn_free(txn_t *t)
{
    if (t == NULL)
        return;
    free(t->sender);
    free(t->forward_sender);
    free(t->store_key);
    for (size_t i = 0; i < t->nrcpts; i++) {
        free(t->rcpts[i]);
        free(t->orcpts[i]);
    }
    free(t->rcpts);
    free(t->orcpts);
    free(t->envid);
    for (size_t i = 0; i < t->ndests; i++)
        free(t->dests[i].addr);
    free(t->dests);
    htab_free(t->seen, NULL);
    free(t);
}

const char *txn_sender(const txn_t *t)
{
    return t->sender;
}

bool txn_smtputf8(const txn_t *t)
{
    return t->smtputf8;
}

bool txn_8bitmime(const txn_t *t)
{
    return t->body_8bit;
}

proto_ret_t txn_ret(const txn_t *t)
{
    return t->ret;
}

const char *txn_envid(const txn_t *t)
{
    return t->envid;
}

void txn_set_sender(txn_t *t, const char *sender)
{
    free(t->sender);
    t->sender = xstrdup(sender);
    free(t->forward_sender);
    t->forward_sender = NULL;
    /* A key for the old sender is no key for this one. */
    free(t->store_key);
    t->store_key = NULL;
}

void txn_set_forward_sender(txn_t *t, const char *sender)
{
    free(t->forward_sender);
    t->forward_sender = xstrdup(sender);
}

const char *txn_forward_sender(const txn_t *t)
{
    return t->forward_sender != NULL ? t->forward_sender : t->sender;
}

void txn_set_store_key(txn_t *t, const char *key)
{
    free(t->store_key);
    t->store_key = xstrdup(key);
}

const char *txn_store_key(const txn_t *t)
{
    return t->store_key;
}

void txn_note_rcpt_tried(txn_t *t)
{
    t->rcpt_tried = true;
}

bool txn_rcpt_tried(const txn_t *t)
{
    return t->rcpt_tried;
}

void txn_add_rcpt(txn_t *t, const char *rcpt, size_t len, const proto_rcpt_dsn_t *dsn,
                  const char *const *dests, size_t n)
{
    char *orig = xstrndup(rcpt, len);
    const char *orcpt;

    t->rcpts = xgrow(t->rcpts, &t->cap_rcpts, t->nrcpts + 1, sizeof(*t->rcpts));
    t->orcpts = xgrow(t->orcpts, &t->cap_orcpts, t->nrcpts + 1, sizeof(*t->orcpts));
    t->orcpts[t->nrcpts] = xstrdup(dsn != NULL ? dsn->orcpt : "");
    orcpt = t->orcpts[t->nrcpts];
    t->rcpts[t->nrcpts++] = orig;
    if (t->seen == NULL)
        t->seen = htab_new(n > 8 ? n : 8);
    for (size_t i = 0; i < n; i++) {
        size_t dlen = strlen(dests[i]);
        char key[ADDR_INPUT_MAX + 1];
        char *addr;

        /* Destinations are mailboxes: the table's of at most ADDR_MAX
         * octets, a long sender a bounce goes back to of at most
         * ADDR_INPUT_MAX (the session took it from MAIL FROM). */
        if (dlen > ADDR_INPUT_MAX)
            continue;
        memcpy(key, dests[i], dlen);
        str_lower_n(key, dlen);
        if (htab_get(t->seen, key, dlen) != NULL)
            continue;
        addr = xstrndup(dests[i], dlen);
        htab_put(t->seen, key, dlen, addr);
        t->dests = xgrow(t->dests, &t->cap_dests, t->ndests + 1, sizeof(*t->dests));
        t->dests[t->ndests].addr = addr;
        t->dests[t->ndests].orig = orig;
        t->dests[t->ndests].notify = dsn != NULL ? dsn->notify : 0;
        t->dests[t->ndests].orcpt = orcpt;
        t->ndests++;
    }
}

size_t txn_remove_rcpt(txn_t *t, const char *addr)
{
    size_t kept = 0, n = t->ndests;

    for (size_t i = 0; i < n; i++) {
        txn_dest_t *d = &t->dests[i];
        char key[ADDR_INPUT_MAX + 1];
        size_t dlen = strlen(d->addr);

        if (!str_eq_ci(d->addr, addr) && !str_eq_ci(d->orig, addr)) {
            t->dests[kept++] = *d;
            continue;
        }
        memcpy(key, d->addr, dlen);
        str_lower_n(key, dlen);
        htab_remove(t->seen, key, dlen);
        free(d->addr);
    }
    t->ndests = kept;
    return n - kept;
}

size_t txn_nrcpts(const txn_t *t)
{
    return t->nrcpts;
}

const char *txn_single_rcpt(const txn_t *t)
{
    return t->nrcpts == 1 ? t->rcpts[0] : NULL;
}

size_t txn_ndests(const txn_t *t)
{
    return t->ndests;
}

const txn_dest_t *txn_dest(const txn_t *t, size_t i)
{
    return i < t->ndests ? &t->dests[i] : NULL;
}
