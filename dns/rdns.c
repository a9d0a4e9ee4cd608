#include "rdns.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "default.h"
#include "str.h"
#include "xalloc.h"

struct rdns_req {
    dns_resolver_t *r;
    rdns_cb cb;
    void *arg;
    dns_addr_t addr;    /* the client's, IPv4-mapped ones as IPv4 */
    dns_req_t *pending; /* the lookup out now */
    char names[DEFAULT_RDNS_NAMES][DNS_NAME_MAX + 1];
    size_t nnames;
    size_t next; /* the name whose addresses are asked for */
    int error;   /* the first temporary error met */
};

static void rdns_forward(rdns_req_t *q);

static void rdns_finish(rdns_req_t *q, rdns_status_t status, const char *name)
{
    rdns_result_t res = {
        .status = status,
        .name = status == RDNS_OK ? name : NULL,
        .unverified = status != RDNS_OK && q->nnames > 0 ? q->names[0] : NULL,
        .error = status == RDNS_TEMPFAIL ? q->error : 0,
    };

    q->cb(q->arg, &res);
    free(q);
}

static bool rdns_same(const dns_addr_t *a, const dns_addr_t *b)
{
    if (a->family != b->family)
        return false;
    if (a->family == AF_INET)
        return a->in.v4.s_addr == b->in.v4.s_addr;
    return memcmp(&a->in.v6, &b->in.v6, sizeof(a->in.v6)) == 0;
}

/* Whether name is an address literal: never a host name that confirms. */
static bool rdns_is_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static void rdns_forward_cb(void *arg, int status, const dns_result_t *res)
{
    rdns_req_t *q = arg;
    const char *name = q->names[q->next];

    q->pending = NULL;
    if (status == 0) {
        for (size_t i = 0; i < res->n; i++) {
            if (rdns_same(&res->u.addr[i], &q->addr)) {
                rdns_finish(q, RDNS_OK, name);
                return;
            }
        }
    } else if (!dns_is_permanent(status) && q->error == 0) {
        q->error = status;
    }
    q->next++;
    rdns_forward(q);
}

/* Ask for the addresses of the next PTR name; report when none is left. */
static void rdns_forward(rdns_req_t *q)
{
    dns_type_t type = q->addr.family == AF_INET ? DNS_T_A : DNS_T_AAAA;

    for (; q->next < q->nnames; q->next++) {
        if (rdns_is_literal(q->names[q->next]))
            continue;
        /* A name DNS cannot carry is not this client's name: next one. */
        if (dns_lookup(q->r, type, q->names[q->next], rdns_forward_cb, q, &q->pending) == 0)
            return;
    }
    rdns_finish(q, q->error != 0 ? RDNS_TEMPFAIL : RDNS_NONE, NULL);
}

static void rdns_ptr_cb(void *arg, int status, const dns_result_t *res)
{
    rdns_req_t *q = arg;

    q->pending = NULL;
    if (status != 0) {
        q->error = dns_is_permanent(status) ? 0 : status;
        rdns_finish(q, q->error != 0 ? RDNS_TEMPFAIL : RDNS_NONE, NULL);
        return;
    }
    for (size_t i = 0; i < res->n && q->nnames < DEFAULT_RDNS_NAMES; i++)
        if (str_lcpy(q->names[q->nnames], res->u.ptr[i], sizeof(q->names[0])) >= 0)
            q->nnames++;
    rdns_forward(q);
}

int rdns_lookup(dns_resolver_t *r, const struct sockaddr *sa, rdns_cb cb, void *arg,
                rdns_req_t **req)
{
    rdns_req_t *q;
    int rc;

    *req = NULL;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return DNS_EINVAL;
    q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    if (sa->sa_family == AF_INET) {
        q->addr.family = AF_INET;
        q->addr.in.v4 = ((const struct sockaddr_in *)sa)->sin_addr;
    } else {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            q->addr.family = AF_INET;
            memcpy(&q->addr.in.v4, &a6->s6_addr[12], sizeof(q->addr.in.v4));
        } else {
            q->addr.family = AF_INET6;
            q->addr.in.v6 = *a6;
        }
    }
    rc = dns_ptr_lookup(r, sa, rdns_ptr_cb, q, &q->pending);
    if (rc < 0) {
        free(q);
        return rc;
    }
    *req = q;
    return 0;
}

void rdns_cancel(rdns_req_t *req)
{
    if (req == NULL)
        return;
    dns_cancel(req->pending);
    free(req);
}
