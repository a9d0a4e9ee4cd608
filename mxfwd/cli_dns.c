#include "cli_dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "default.h"
#include "dns_msg.h"
#include "str.h"
#include "txt.h"
#include "xalloc.h"

struct cli_dns {
    uv_loop_t loop;
    dns_resolver_t *resolver;
    spf_ctx_t *spf;
    size_t pending; /* lookups and checks started and not answered */
};

/* What a callback fills in. */
typedef struct {
    cli_dns_t *d;
    void *out;
} cli_dns_req_t;

static cli_dns_req_t *cli_dns_req(cli_dns_t *d, void *out)
{
    cli_dns_req_t *q = xmalloc(sizeof(*q));

    q->d = d;
    q->out = out;
    d->pending++;
    return q;
}

static void cli_dns_req_done(cli_dns_req_t *q)
{
    q->d->pending--;
    free(q);
}

int cli_dns_open(const config_t *cfg, cli_dns_t **out)
{
    dns_options_t dopts = {
        .servers = (const char *const *)cfg->dns_servers,
        .nservers = cfg->ndns_servers,
    };
    spf_options_t sopts = {.total_timeout_ms = DEFAULT_SPF_TIMEOUT * 1000,
                           .hostname = cfg->hostname};
    cli_dns_t *d = xcalloc(1, sizeof(*d));
    int rc;

    *out = NULL;
    if (uv_loop_init(&d->loop) != 0) {
        free(d);
        fprintf(stderr, "mxfwd: cannot make an event loop\n");
        return CLI_FAIL;
    }
    if ((rc = dns_resolver_new(&d->loop, &dopts, &d->resolver)) < 0) {
        fprintf(stderr, "mxfwd: cannot start the DNS resolver (dns_servers): %s\n",
                dns_strerror(rc));
        cli_dns_close(d);
        return CLI_FAIL;
    }
    sopts.resolver = d->resolver;
    if ((rc = spf_ctx_new(&sopts, &d->spf)) < 0) {
        fprintf(stderr, "mxfwd: cannot set up SPF: %s\n", spf_strerror(rc));
        cli_dns_close(d);
        return CLI_FAIL;
    }
    *out = d;
    return CLI_OK;
}

void cli_dns_close(cli_dns_t *d)
{
    if (d == NULL)
        return;
    if (d->spf != NULL)
        spf_ctx_free(d->spf);
    if (d->resolver != NULL)
        dns_resolver_close(d->resolver, NULL, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) != 0)
        abort(); /* a handle outlived its owner */
    free(d);
}

void cli_dns_wait(cli_dns_t *d)
{
    while (d->pending > 0) {
        /* Something pending keeps a handle of the resolver active; a loop
         * with nothing left to run would wait here for ever. */
        if (uv_run(&d->loop, UV_RUN_ONCE) == 0 && d->pending > 0)
            abort();
    }
}

/* ---- lookups ---- */

static void cli_dns_copy(cli_dns_answer_t *ans, const dns_result_t *res)
{
    ans->n = res->n;
    switch (res->type) {
    case DNS_T_MX:
        ans->mx = xcalloc(res->n + 1, sizeof(*ans->mx));
        for (size_t i = 0; i < res->n; i++) {
            ans->mx[i].pref = res->u.mx[i].pref;
            ans->mx[i].host = xstrdup(res->u.mx[i].host);
        }
        break;
    case DNS_T_A:
    case DNS_T_AAAA:
        ans->addr = xcalloc(res->n + 1, sizeof(*ans->addr));
        memcpy(ans->addr, res->u.addr, res->n * sizeof(*ans->addr));
        break;
    case DNS_T_TXT:
        ans->txt = xcalloc(res->n + 1, sizeof(*ans->txt));
        for (size_t i = 0; i < res->n; i++) {
            ans->txt[i].text = xmalloc(res->u.txt[i].len + 1);
            memcpy(ans->txt[i].text, res->u.txt[i].text, res->u.txt[i].len + 1);
            ans->txt[i].len = res->u.txt[i].len;
        }
        break;
    case DNS_T_PTR:
        ans->n = 0; /* names come through cli_dns_start_rdns() */
        break;
    }
}

static void cli_dns_on_answer(void *arg, int status, const dns_result_t *res)
{
    cli_dns_req_t *q = arg;
    cli_dns_answer_t *ans = q->out;

    ans->status = status;
    if (status == 0)
        cli_dns_copy(ans, res);
    cli_dns_req_done(q);
}

void cli_dns_start(cli_dns_t *d, dns_type_t type, const char *name, cli_dns_answer_t *ans)
{
    cli_dns_req_t *q = cli_dns_req(d, ans);
    int rc;

    *ans = (cli_dns_answer_t){.type = type};
    rc = dns_lookup(d->resolver, type, name, cli_dns_on_answer, q, NULL);
    if (rc < 0) {
        ans->status = rc;
        cli_dns_req_done(q);
    }
}

void cli_dns_lookup(cli_dns_t *d, dns_type_t type, const char *name, cli_dns_answer_t *ans)
{
    cli_dns_start(d, type, name, ans);
    cli_dns_wait(d);
}

void cli_dns_answer_free(cli_dns_answer_t *ans)
{
    for (size_t i = 0; ans->mx != NULL && i < ans->n; i++)
        free(ans->mx[i].host);
    for (size_t i = 0; ans->txt != NULL && i < ans->n; i++)
        free(ans->txt[i].text);
    free(ans->mx);
    free(ans->addr);
    free(ans->txt);
    *ans = (cli_dns_answer_t){.type = ans->type};
}

/* ---- names of addresses, and SPF ---- */

static void cli_dns_sockaddr(const dns_addr_t *addr, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (addr->family == AF_INET) {
        sin->sin_family = AF_INET;
        sin->sin_addr = addr->in.v4;
    } else {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = addr->in.v6;
    }
}

static void cli_dns_on_rdns(void *arg, const rdns_result_t *res)
{
    cli_dns_req_t *q = arg;
    cli_dns_rdns_t *out = q->out;

    out->status = res->status;
    out->error = res->error;
    str_lcpy(out->name, res->name != NULL ? res->name : "", sizeof(out->name));
    str_lcpy(out->unverified, res->unverified != NULL ? res->unverified : "",
             sizeof(out->unverified));
    cli_dns_req_done(q);
}

void cli_dns_start_rdns(cli_dns_t *d, const dns_addr_t *addr, cli_dns_rdns_t *out)
{
    struct sockaddr_storage ss;
    cli_dns_req_t *q = cli_dns_req(d, out);
    rdns_req_t *req;
    int rc;

    *out = (cli_dns_rdns_t){.status = RDNS_TEMPFAIL};
    cli_dns_sockaddr(addr, &ss);
    rc = rdns_lookup(d->resolver, (const struct sockaddr *)&ss, cli_dns_on_rdns, q, &req);
    if (rc < 0) {
        out->error = rc;
        cli_dns_req_done(q);
    }
}

static void cli_dns_on_spf(void *arg, const spf_result_t *res)
{
    cli_dns_req_t *q = arg;

    memcpy(q->out, res, sizeof(*res));
    cli_dns_req_done(q);
}

void cli_dns_start_spf(cli_dns_t *d, const dns_addr_t *addr, const char *helo, const char *sender,
                       spf_result_t *out)
{
    struct sockaddr_storage ss;
    cli_dns_req_t *q = cli_dns_req(d, out);
    spf_req_t *req;

    cli_dns_sockaddr(addr, &ss);
    if (spf_check_start(d->spf, (const struct sockaddr *)&ss, helo, sender, cli_dns_on_spf, q, out,
                        &req) == SPF_DONE)
        cli_dns_req_done(q);
}

/* ---- DMARC ---- */

/* One _dmarc lookup, read as RFC 7489 6.6.3 steps 2 to 5 read it. */
static void cli_dns_dmarc_at(cli_dns_t *d, const char *domain, cli_dns_dmarc_t *out)
{
    cli_dns_answer_t ans;
    txt_record_t recs[16];
    size_t n = 0;
    txt_status_t status = TXT_NONE;

    free(out->text);
    out->text = NULL;
    out->error = 0;
    if (str_fmt(out->name, sizeof(out->name), "_dmarc.%s", domain) < 0) {
        out->lookup = DMARC_LOOKUP_NONE; /* too long a name to hold a record */
        return;
    }
    cli_dns_lookup(d, DNS_T_TXT, out->name, &ans);
    if (ans.status == 0) {
        for (; n < ans.n && n < sizeof(recs) / sizeof(recs[0]); n++)
            recs[n] = (txt_record_t){ans.txt[n].text, ans.txt[n].len};
        status = n > 0 ? TXT_OK : TXT_NONE;
    } else if (!dns_is_permanent(ans.status)) {
        status = TXT_TEMPFAIL;
        out->error = ans.status;
    }
    out->lookup = dmarc_select(status, recs, n, &out->rec, &out->why);
    if (out->lookup == DMARC_LOOKUP_FOUND) {
        /* The one record that parsed as DMARC: show that one. */
        for (size_t i = 0; i < n && out->text == NULL; i++) {
            dmarc_record_t rec;
            const char *why;
            if (dmarc_record_parse(recs[i].data, recs[i].len, &rec, &why) == 0)
                out->text = cli_dns_printable(recs[i].data, recs[i].len);
        }
    }
    cli_dns_answer_free(&ans);
}

void cli_dns_dmarc(cli_dns_t *d, const char *domain, cli_dns_dmarc_t *out)
{
    *out = (cli_dns_dmarc_t){.lookup = DMARC_LOOKUP_NONE};
    str_lcpy(out->org, dmarc_org_domain(domain), sizeof(out->org));
    cli_dns_dmarc_at(d, domain, out);
    if (out->lookup == DMARC_LOOKUP_NONE && strcmp(out->org, domain) != 0) {
        cli_dns_dmarc_at(d, out->org, out);
        out->at_org = out->lookup == DMARC_LOOKUP_FOUND;
    }
    if (out->lookup == DMARC_LOOKUP_FOUND)
        out->applied = out->at_org && out->rec.has_sp ? out->rec.sp : out->rec.p;
}

void cli_dns_dmarc_free(cli_dns_dmarc_t *dm)
{
    free(dm->text);
    dm->text = NULL;
}

/* ---- presentation ---- */

char *cli_dns_printable(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);

    for (size_t i = 0; i < len; i++)
        out[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
    out[len] = '\0';
    return out;
}

const char *cli_dns_addr_str(const dns_addr_t *addr, char *dst, size_t size)
{
    if (inet_ntop(addr->family, &addr->in, dst, (socklen_t)size) == NULL)
        str_lcpy(dst, "?", size);
    return dst;
}

const char *cli_dns_ptr_name(const dns_addr_t *addr, char *dst, size_t size)
{
    struct sockaddr_storage ss;

    cli_dns_sockaddr(addr, &ss);
    if (dns_msg_ptr_name((const struct sockaddr *)&ss, dst, size) < 0)
        str_lcpy(dst, "?", size);
    return dst;
}

int cli_dns_zone_txt(const char *name, const char *value, buf_t *out)
{
    size_t len = strlen(value), i = 0;
    int rc = buf_printf(out, "%s. TXT", name);

    do {
        size_t n = len - i < 255 ? len - i : 255;

        if (rc == 0)
            rc = buf_puts(out, " \"");
        for (size_t k = 0; rc == 0 && k < n; k++) {
            char c = value[i + k];
            rc = c == '"' || c == '\\' ? buf_printf(out, "\\%c", c) : buf_append(out, &c, 1);
        }
        if (rc == 0)
            rc = buf_puts(out, "\"");
        i += n;
    } while (rc == 0 && i < len);
    return rc;
}
