/*
 * spool_msg.c - the spool_msg_t functions of spool.h, in the record
 * library beside the parser that makes the messages (spool_record.h).
 */
#include "spool_record.h"

#include <stdlib.h>

void spool_msg_free(spool_msg_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nrcpts; i++) {
        free(m->rcpts[i].addr);
        free(m->rcpts[i].orig);
        free(m->rcpts[i].reply);
        free(m->rcpts[i].relay);
        free(m->rcpts[i].orcpt);
    }
    free(m->rcpts);
    free(m->envid);
    free(m->client);
    free(m->helo);
    free(m->sender);
    free(m->srs_sender);
    free(m->prepend);
    free(m->path);
    free(m->body_mem != NULL ? m->body_mem : m->body);
    free(m);
}

void spool_msg_drop_body(spool_msg_t *m)
{
    free(m->body_mem != NULL ? m->body_mem : m->body);
    m->body = NULL;
    m->body_mem = NULL;
}

uint64_t spool_msg_size(const spool_msg_t *m)
{
    return m->prepend_len + m->body_length - m->body_skip;
}

bool spool_msg_done(const spool_msg_t *m)
{
    for (size_t i = 0; i < m->nrcpts; i++)
        if (!spool_rcpt_final(m->rcpts[i].state))
            return false;
    return true;
}
