/*
 * dnsbl.c - client addresses in DNS block and allow lists (RFC 5782;
 * docs/smtp.md, "DNS lists").
 */
#include "dnsbl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* The longest reason kept from a list's TXT record. */
#define DNSBL_REASON_MAX 200

int dnsbl_query_name(const struct sockaddr *sa, const char *zone, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;
    int n;

    if (sa->sa_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = snprintf(out, size, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    if (sa->sa_family != AF_INET6)
        return -1;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (size < 64 + strlen(zone) + 1)
        return -1;
    for (int i = 15; i >= 0; i--) {
        out[used++] = hex[a[i] & 0xf];
        out[used++] = '.';
        out[used++] = hex[a[i] >> 4];
        out[used++] = '.';
    }
    memcpy(out + used, zone, strlen(zone) + 1);
    return 0;
}

/* ---- the check ---- */

typedef struct {
    struct dnsbl_req *req;
    const dnsbl_list_t *list;
    bool allow;
    dns_req_t *dns; /* while out */
    bool matched;
    char name[DNS_NAME_MAX + 1];
    char answer[INET_ADDRSTRLEN];
} dnsbl_lookup_t;

struct dnsbl_req {
    dns_resolver_t *resolver;
    dnsbl_lookup_t *l;
    size_t n, pending;
    dnsbl_failure_t *failures;
    size_t nfailures;
    dnsbl_lookup_t *listed; /* its TXT is being fetched */
    dns_req_t *txt;
    dnsbl_cb cb;
    void *arg;
};

static void dnsbl_free(dnsbl_req_t *req)
{
    free(req->l);
    free(req->failures);
    free(req);
}

static void dnsbl_finish(dnsbl_req_t *req, dnsbl_lookup_t *hit, const char *reason)
{
    dnsbl_result_t res = {
        .status = hit == NULL ? DNSBL_CLEAN : hit->allow ? DNSBL_ALLOWED : DNSBL_LISTED,
        .zone = hit != NULL ? hit->list->zone : NULL,
        .reason = reason,
        .failures = req->failures,
        .nfailures = req->nfailures,
    };

    if (hit != NULL)
        memcpy(res.answer, hit->answer, sizeof(res.answer));
    req->cb(req->arg, &res);
    dnsbl_free(req);
}

static void dnsbl_txt_cb(void *arg, int status, const dns_result_t *res)
{
    dnsbl_req_t *req = arg;
    char reason[DNSBL_REASON_MAX + 1];
    size_t n = 0;

    req->txt = NULL;
    if (status == 0 && res->n > 0) {
        /* The text goes into a reply line: nothing that could end it. */
        for (size_t i = 0; i < res->u.txt[0].len && n < DNSBL_REASON_MAX; i++) {
            unsigned char c = (unsigned char)res->u.txt[0].text[i];
            reason[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    reason[n] = '\0';
    dnsbl_finish(req, req->listed, n > 0 ? reason : NULL);
}

/* Every lookup is in: an allow listing wins, then the first block list. */
static void dnsbl_decide(dnsbl_req_t *req)
{
    dnsbl_lookup_t *hit = NULL;

    for (size_t i = 0; i < req->n && hit == NULL; i++)
        if (req->l[i].allow && req->l[i].matched)
            hit = &req->l[i];
    for (size_t i = 0; i < req->n && hit == NULL; i++)
        if (!req->l[i].allow && req->l[i].matched)
            hit = &req->l[i];
    if (hit == NULL || hit->allow) {
        dnsbl_finish(req, hit, NULL);
        return;
    }
    req->listed = hit;
    if (dns_lookup(req->resolver, DNS_T_TXT, hit->name, dnsbl_txt_cb, req, &req->txt) < 0)
        dnsbl_finish(req, hit, NULL);
}

static void dnsbl_failed(dnsbl_req_t *req, const dnsbl_list_t *list, int err)
{
    req->failures = xrealloc(req->failures, (req->nfailures + 1) * sizeof(*req->failures));
    req->failures[req->nfailures].zone = list->zone;
    req->failures[req->nfailures].error = err;
    req->nfailures++;
}

static void dnsbl_a_cb(void *arg, int status, const dns_result_t *res)
{
    dnsbl_lookup_t *l = arg;
    dnsbl_req_t *req = l->req;

    l->dns = NULL;
    if (status == 0) {
        for (size_t i = 0; i < res->n && !l->matched; i++) {
            if (res->u.addr[i].family != AF_INET ||
                !dnsbl_pattern_match(l->list->pattern, &res->u.addr[i].in.v4))
                continue;
            l->matched = true;
            inet_ntop(AF_INET, &res->u.addr[i].in.v4, l->answer, sizeof(l->answer));
        }
    } else if (!dns_is_permanent(status)) {
        dnsbl_failed(req, l->list, status);
    }
    if (--req->pending == 0)
        dnsbl_decide(req);
}

int dnsbl_check(dns_resolver_t *r, const struct sockaddr *sa, const dnsbl_list_t *bl, size_t nbl,
                const dnsbl_list_t *wl, size_t nwl, dnsbl_cb cb, void *arg, dnsbl_req_t **out)
{
    dnsbl_req_t *req = xcalloc(1, sizeof(*req));

    req->resolver = r;
    req->cb = cb;
    req->arg = arg;
    req->l = xcalloc(nbl + nwl + 1, sizeof(*req->l));
    for (size_t i = 0; i < nwl + nbl; i++) {
        dnsbl_lookup_t *l = &req->l[req->n];
        int rc;

        l->req = req;
        l->allow = i < nwl;
        l->list = i < nwl ? &wl[i] : &bl[i - nwl];
        if (dnsbl_query_name(sa, l->list->zone, l->name, sizeof(l->name)) < 0)
            continue;
        /* Counted first: the answer never comes from inside the call. */
        req->n++;
        req->pending++;
        if ((rc = dns_lookup(r, DNS_T_A, l->name, dnsbl_a_cb, l, &l->dns)) < 0) {
            dnsbl_failed(req, l->list, rc);
            req->pending--;
        }
    }
    if (req->pending == 0) {
        dnsbl_free(req);
        return -1;
    }
    if (out != NULL)
        *out = req;
    return 0;
}

void dnsbl_cancel(dnsbl_req_t *req)
{
    if (req == NULL)
        return;
    for (size_t i = 0; i < req->n; i++)
        if (req->l[i].dns != NULL)
            dns_cancel(req->l[i].dns);
    if (req->txt != NULL)
        dns_cancel(req->txt);
    dnsbl_free(req);
}
