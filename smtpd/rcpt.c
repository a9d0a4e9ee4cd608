#include "rcpt.h"

#include <string.h>

#include "str.h"

static void rcpt_refuse(rcpt_route_t *out, reply_id_t reason)
{
    out->kind = RCPT_REFUSE;
    out->reason = reason;
    out->words = *reply_get(reason);
}

/* postmaster@ hostname or srs_domain (any case). */
static bool rcpt_is_postmaster(const rcpt_ctx_t *ctx, const addr_t *a)
{
    return !a->quoted && str_eq_ci_n(a->local, a->local_len, "postmaster") &&
           (str_eq_ci_n(a->domain, a->domain_len, ctx->hostname) ||
            str_eq_ci_n(a->domain, a->domain_len, ctx->srs_domain));
}

void rcpt_route(const rcpt_ctx_t *ctx, const char *raw, size_t len, const addr_t *a,
                bool bare_postmaster, const char *sender, rcpt_route_t *out)
{
    addr_t postmaster;
    table_result_t result;
    bool in_srs_domain;
    int rc;

    memset(out, 0, sizeof(*out));
    in_srs_domain = !bare_postmaster && str_eq_ci_n(a->domain, a->domain_len, ctx->srs_domain);
    if (in_srs_domain) {
        rc = srs_reverse(ctx->srs, raw, len, (time_t)ctx->now, out->orig, sizeof(out->orig), NULL);
        /* Only bounces may use an SRS address, so that a leaked one is no
         * open relay; and nobody else learns whether its signature holds. */
        if (rc != SRS_ENOTSRS && sender != NULL && sender[0] != '\0') {
            rcpt_refuse(out, REPLY_SRS_NOT_BOUNCE);
            return;
        }
        if (rc != SRS_ENOTSRS && rc < 0) {
            rcpt_refuse(out, reply_for_srs_reverse_err(rc));
            return;
        }
        if (rc == 0 || rc == SRS_KEYED) {
            out->kind = rc == 0 ? RCPT_BOUNCE : RCPT_KEYED;
            return;
        }
        /* Not SRS at all: the table may know it (postmaster@). */
    }
    /* RFC 5321 4.5.1: <postmaster> without a domain must work; it is the
     * postmaster of this host, as the forward table says. */
    if (bare_postmaster) {
        postmaster = (addr_t){
            .local = "postmaster",
            .local_len = strlen("postmaster"),
            .domain = ctx->hostname,
            .domain_len = strlen(ctx->hostname),
        };
        a = &postmaster;
    }
    result = table_lookup_addr(ctx->table, a, &out->dests);
    /* srs_domain is ours even when the table does not list it. */
    if (result == TABLE_RELAY_DENIED && in_srs_domain)
        result = TABLE_UNKNOWN_USER;
    if (result != TABLE_FOUND && rcpt_is_postmaster(ctx, a)) {
        if (ctx->postmaster != NULL) {
            out->kind = RCPT_FORWARD;
            out->dests.n = 1;
            out->dests.addr = &ctx->postmaster;
        } else {
            out->kind = RCPT_HOLD;
        }
        return;
    }
    if (result != TABLE_FOUND) {
        rcpt_refuse(out, reply_for_table(result));
        return;
    }
    out->from_table = true;
    switch (out->dests.action) {
    case TABLE_FORWARD:
        out->kind = RCPT_FORWARD;
        break;
    case TABLE_DISCARD:
        out->kind = RCPT_DISCARD;
        break;
    case TABLE_REJECT:
        /* The table's words, under the table's code (docs/forward-table.md). */
        rcpt_refuse(out, REPLY_TABLE_REJECT);
        out->words.esc = out->dests.esc;
        out->words.text = out->dests.text;
        break;
    }
}
