/*
 * doctor - mxfwd doctor: the forwarder's own DNS, as the world sees it
 * through dns_servers (docs/admin-guide.md, "Signing and the DNS to
 * publish").  One line per item: ok, problem (with the record to publish
 * where one would fix it) or skipped; exit 1 when there was a problem.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_dns.h"
#include "dkimkey.h"
#include "dkimsig.h"
#include "reply.h"
#include "str.h"

#define DOCTOR_ADDRS_MAX 8   /* hostname's addresses checked */
#define DOCTOR_LINE_MAX 8192 /* a line, a DKIM record included */

typedef enum { DOCTOR_OK, DOCTOR_PROBLEM, DOCTOR_SKIPPED } doctor_mark_t;

typedef struct {
    const config_t *cfg;
    const table_t *table;
    cli_dns_t *dns;
    unsigned problems;
    dns_addr_t addr[DOCTOR_ADDRS_MAX]; /* hostname's */
    size_t naddr;
    buf_t zone; /* the record doctor_zone() formatted last */
} doctor_t;

static void doctor_say(doctor_t *dr, doctor_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void doctor_say(doctor_t *dr, doctor_mark_t mark, const char *fmt, ...)
{
    static const char *const words[] = {"ok", "problem", "skipped"};
    va_list ap;

    if (mark == DOCTOR_PROBLEM)
        dr->problems++;
    printf("%-8s ", words[mark]);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* The zone-file line publishing value at name, valid until the next call. */
static const char *doctor_zone(doctor_t *dr, const char *name, const char *value)
{
    buf_reset(&dr->zone);
    if (cli_dns_zone_txt(name, value, &dr->zone) < 0 || buf_append(&dr->zone, "", 1) < 0)
        return "(a record too long to show)";
    return buf_ptr(&dr->zone);
}

/* ---- MX ---- */

/* domain's MX records name hostname: senders (or, for srs_domain,
 * bounces) reach this host. */
static void doctor_mx(doctor_t *dr, const char *domain, const char *why)
{
    const char *host = dr->cfg->hostname;
    cli_dns_answer_t ans;
    char hosts[1024] = "";
    bool found = false;

    cli_dns_lookup(dr->dns, DNS_T_MX, domain, &ans);
    for (size_t i = 0; i < ans.n; i++) {
        size_t used = strlen(hosts);
        found = found || str_eq_ci(ans.mx[i].host, host);
        str_fmt(hosts + used, sizeof(hosts) - used, "%s%s", i > 0 ? ", " : "",
                ans.mx[i].host[0] != '\0' ? ans.mx[i].host : ". (null MX: no mail)");
    }
    if (found)
        doctor_say(dr, DOCTOR_OK, "MX %s -> %s%s", domain, hosts, why);
    else if (ans.status == DNS_ENODATA && str_eq_ci(domain, host))
        doctor_say(dr, DOCTOR_OK, "MX %s: none: mail goes to its own address (RFC 5321 5.1)",
                   domain);
    else if (ans.status == 0)
        doctor_say(dr, DOCTOR_PROBLEM, "MX %s -> %s, not %s%s: publish %s. MX 10 %s.", domain,
                   hosts, host, why, domain, host);
    else if (dns_is_permanent(ans.status))
        doctor_say(dr, DOCTOR_PROBLEM, "MX %s: no MX record (%s)%s: publish %s. MX 10 %s.", domain,
                   dns_strerror(ans.status), why, domain, host);
    else
        doctor_say(dr, DOCTOR_PROBLEM, "MX %s: %s%s", domain, dns_strerror(ans.status), why);
    cli_dns_answer_free(&ans);
}

/* ---- hostname: addresses, PTR, SPF ---- */

static void doctor_addresses(doctor_t *dr)
{
    const char *host = dr->cfg->hostname;
    cli_dns_answer_t ans[2];
    char list[DOCTOR_ADDRS_MAX * (INET6_ADDRSTRLEN + 2)] = "", ip[INET6_ADDRSTRLEN];
    int temp = 0;

    cli_dns_start(dr->dns, DNS_T_A, host, &ans[0]);
    cli_dns_start(dr->dns, DNS_T_AAAA, host, &ans[1]);
    cli_dns_wait(dr->dns);
    for (size_t k = 0; k < 2; k++) {
        if (ans[k].status != 0 && !dns_is_permanent(ans[k].status) && temp == 0)
            temp = ans[k].status;
        for (size_t i = 0; i < ans[k].n && dr->naddr < DOCTOR_ADDRS_MAX; i++) {
            size_t used = strlen(list);
            dr->addr[dr->naddr++] = ans[k].addr[i];
            str_fmt(list + used, sizeof(list) - used, "%s%s", used > 0 ? ", " : "",
                    cli_dns_addr_str(&ans[k].addr[i], ip, sizeof(ip)));
        }
        cli_dns_answer_free(&ans[k]);
    }
    if (temp != 0)
        doctor_say(dr, DOCTOR_PROBLEM, "A/AAAA %s: %s", host, dns_strerror(temp));
    else if (dr->naddr == 0)
        doctor_say(dr, DOCTOR_PROBLEM,
                   "A/AAAA %s: no address: publish %s. A (and AAAA) with this host's addresses",
                   host, host);
    else
        doctor_say(dr, DOCTOR_OK, "A/AAAA %s -> %s", host, list);
}

/* One address's PTR names hostname, and hostname has that address
 * (forward-confirmed, as receivers check it: dns/rdns.h). */
static void doctor_ptr(doctor_t *dr, const dns_addr_t *addr, const cli_dns_rdns_t *r)
{
    const char *host = dr->cfg->hostname;
    char ip[INET6_ADDRSTRLEN], name[80];

    cli_dns_ptr_name(addr, name, sizeof(name));
    cli_dns_addr_str(addr, ip, sizeof(ip));
    if (r->status == RDNS_OK && str_eq_ci(r->name, host))
        doctor_say(dr, DOCTOR_OK, "PTR %s -> %s", ip, host);
    else if (r->status == RDNS_OK)
        doctor_say(dr, DOCTOR_PROBLEM, "PTR %s -> %s (hostname %s): publish %s. PTR %s.", ip,
                   r->name, host, name, host);
    else if (r->status == RDNS_TEMPFAIL)
        doctor_say(dr, DOCTOR_PROBLEM, "PTR %s: %s", ip, dns_strerror(r->error));
    else if (r->unverified[0] != '\0')
        doctor_say(dr, DOCTOR_PROBLEM,
                   "PTR %s -> %s, which does not resolve back to %s (hostname %s): publish %s. "
                   "PTR %s.",
                   ip, r->unverified, ip, host, name, host);
    else
        doctor_say(dr, DOCTOR_PROBLEM, "PTR %s: none (hostname %s): publish %s. PTR %s.", ip, host,
                   name, host);
}

/* The SPF record a receiver would publish for domain: every address. */
static const char *doctor_spf_record(doctor_t *dr, const char *domain)
{
    char value[DOCTOR_ADDRS_MAX * (INET6_ADDRSTRLEN + 8) + 16] = "v=spf1", ip[INET6_ADDRSTRLEN];

    for (size_t i = 0; i < dr->naddr; i++) {
        size_t used = strlen(value);
        str_fmt(value + used, sizeof(value) - used, " ip%c:%s",
                dr->addr[i].family == AF_INET ? '4' : '6',
                cli_dns_addr_str(&dr->addr[i], ip, sizeof(ip)));
    }
    str_fmt(value + strlen(value), sizeof(value) - strlen(value), " -all");
    return doctor_zone(dr, domain, value);
}

/* An SPF result for one of hostname's addresses: pass is ok. */
static void doctor_spf(doctor_t *dr, const dns_addr_t *addr, const spf_result_t *res,
                       const char *what)
{
    char ip[INET6_ADDRSTRLEN];
    const char *status = spf_status_name(res->status), *d = res->domain;

    cli_dns_addr_str(addr, ip, sizeof(ip));
    switch (res->status) {
    case SPF_PASS:
        doctor_say(dr, DOCTOR_OK, "SPF %s allows %s (%s)", d, ip, what);
        break;
    case SPF_NONE:
        doctor_say(dr, DOCTOR_PROBLEM, "SPF %s: no SPF record (%s): publish %s", d, what,
                   res->helo ? doctor_zone(dr, d, "v=spf1 a -all") : doctor_spf_record(dr, d));
        break;
    case SPF_FAIL:
    case SPF_SOFTFAIL:
    case SPF_NEUTRAL:
        doctor_say(dr, DOCTOR_PROBLEM, "SPF %s: %s for %s (%s): add ip%c:%s to %s's SPF record", d,
                   status, ip, what, addr->family == AF_INET ? '4' : '6', ip, d);
        break;
    case SPF_TEMPERROR:
    case SPF_PERMERROR:
        doctor_say(dr, DOCTOR_PROBLEM, "SPF %s: %s for %s (%s): %s", d, status, ip, what,
                   res->problem);
        break;
    }
}

/* Each address: its PTR, then srs_domain's SPF for it (the envelope
 * sender of every forwarded message), then the HELO name's (mxfwd's own
 * bounces, from <>) when hostname is not srs_domain. */
static void doctor_host(doctor_t *dr)
{
    const config_t *cfg = dr->cfg;
    cli_dns_rdns_t ptr[DOCTOR_ADDRS_MAX];
    spf_result_t srs[DOCTOR_ADDRS_MAX], helo[DOCTOR_ADDRS_MAX];
    bool own_helo = !str_eq_ci(cfg->hostname, cfg->srs_domain);
    char sender[ADDR_MAX + 16];

    doctor_addresses(dr);
    if (dr->naddr == 0) {
        doctor_say(dr, DOCTOR_SKIPPED, "PTR, SPF %s: %s has no address to check", cfg->srs_domain,
                   cfg->hostname);
        return;
    }
    str_fmt(sender, sizeof(sender), "postmaster@%s", cfg->srs_domain);
    for (size_t i = 0; i < dr->naddr; i++) {
        cli_dns_start_rdns(dr->dns, &dr->addr[i], &ptr[i]);
        cli_dns_start_spf(dr->dns, &dr->addr[i], cfg->hostname, sender, &srs[i]);
        if (own_helo)
            cli_dns_start_spf(dr->dns, &dr->addr[i], cfg->hostname, "", &helo[i]);
    }
    cli_dns_wait(dr->dns);
    for (size_t i = 0; i < dr->naddr; i++)
        doctor_ptr(dr, &dr->addr[i], &ptr[i]);
    for (size_t i = 0; i < dr->naddr; i++)
        doctor_spf(dr, &dr->addr[i], &srs[i], "srs_domain: the envelope sender of forwarded mail");
    for (size_t i = 0; own_helo && i < dr->naddr; i++)
        doctor_spf(dr, &dr->addr[i], &helo[i], "HELO name: mxfwd's own bounces come from <>");
}

/* ---- DKIM and DMARC for signing ---- */

/* The one TXT record at the key's name is the key's public half. */
static void doctor_dkim(doctor_t *dr, const dkimkey_private_t *key)
{
    const config_t *cfg = dr->cfg;
    char name[DNS_NAME_MAX * 2], why_buf[DKIMKEY_WHY_MAX];
    const char *why = NULL, *publish;
    cli_dns_answer_t ans;
    buf_t rec;
    dkimkey_t pub;

    buf_init(&rec, DOCTOR_LINE_MAX);
    str_fmt(name, sizeof(name), "%s._domainkey.%s", cfg->signing_selector, cfg->signing_domain);
    if (dkimkey_record(key, &rec) < 0 || buf_append(&rec, "", 1) < 0) {
        doctor_say(dr, DOCTOR_PROBLEM, "DKIM %s: %s", cfg->signing_key,
                   dkimkey_strerror(DKIMKEY_ECRYPTO));
        buf_free(&rec);
        return;
    }
    cli_dns_lookup(dr->dns, DNS_T_TXT, name, &ans);
    publish = doctor_zone(dr, name, buf_ptr(&rec));
    if (ans.status != 0 && !dns_is_permanent(ans.status)) {
        doctor_say(dr, DOCTOR_PROBLEM, "DKIM %s: %s", name, dns_strerror(ans.status));
    } else if (ans.status != 0) {
        doctor_say(dr, DOCTOR_PROBLEM, "DKIM %s: no record: publish %s", name, publish);
    } else if (ans.n > 1) {
        doctor_say(dr, DOCTOR_PROBLEM,
                   "DKIM %s: %zu TXT records, receivers take any one: publish "
                   "only %s",
                   name, ans.n, publish);
    } else if (dkimsig_key_parse(ans.txt[0].text, ans.txt[0].len, &pub, &why) < 0) {
        doctor_say(dr, DOCTOR_PROBLEM, "DKIM %s: not a key record (%s): publish %s", name, why,
                   publish);
    } else if (!dkimkey_matches(&pub, key, &why)) {
        doctor_say(dr, DOCTOR_PROBLEM, "DKIM %s: not the key of %s (%s): publish %s", name,
                   cfg->signing_key, why, publish);
    } else {
        str_fmt(why_buf, sizeof(why_buf), "%s %u bits",
                dkimkey_type(key) == DKIM_KEY_RSA ? "RSA" : "Ed25519", dkimkey_bits(key));
        doctor_say(dr, DOCTOR_OK, "DKIM %s: the key of %s (%s)", name, cfg->signing_key, why_buf);
    }
    cli_dns_answer_free(&ans);
    buf_free(&rec);
}

/* signing_domain has a DMARC record (its own or its organizational
 * domain's): receivers check it for the From of rewritten messages. */
static void doctor_dmarc(doctor_t *dr)
{
    const char *domain = dr->cfg->signing_domain;
    char value[DMARC_DOMAIN_MAX + 64], name[DMARC_DOMAIN_MAX + 8];
    cli_dns_dmarc_t dm;

    cli_dns_dmarc(dr->dns, domain, &dm);
    str_fmt(name, sizeof(name), "_dmarc.%s", domain);
    str_fmt(value, sizeof(value), "v=DMARC1; p=none; rua=mailto:postmaster@%s", domain);
    switch (dm.lookup) {
    case DMARC_LOOKUP_FOUND:
        doctor_say(dr, DOCTOR_OK, "DMARC %s: %s%s\"%s\"", domain, dm.at_org ? dm.name : "",
                   dm.at_org ? " applies: " : "", dm.text);
        break;
    case DMARC_LOOKUP_NONE:
        doctor_say(dr, DOCTOR_PROBLEM,
                   "DMARC %s: no record: publish %s (p=none asks receivers for nothing; rua= is "
                   "where their reports go, your choice)",
                   domain, doctor_zone(dr, name, value));
        break;
    case DMARC_LOOKUP_INVALID:
        doctor_say(dr, DOCTOR_PROBLEM, "DMARC %s: %s: %s: publish %s", domain, dm.name, dm.why,
                   doctor_zone(dr, name, value));
        break;
    case DMARC_LOOKUP_TEMPFAIL:
        doctor_say(dr, DOCTOR_PROBLEM, "DMARC %s: %s: %s", domain, dm.name, dns_strerror(dm.error));
        break;
    }
    cli_dns_dmarc_free(&dm);
}

static void doctor_signing(doctor_t *dr)
{
    const config_t *cfg = dr->cfg;
    dkimkey_private_t *key = NULL;
    char why[DKIMKEY_WHY_MAX];

    if (cfg->signing_key == NULL) {
        doctor_say(dr, DOCTOR_SKIPPED, "DKIM: " CLI_SIGNING_OFF);
        doctor_say(dr, DOCTOR_SKIPPED, "DMARC %s: signing is off (mxfwd check-config notes it)",
                   cfg->signing_domain);
        return;
    }
    if (dkimkey_load(cfg->signing_key, &key, why, sizeof(why)) < 0)
        doctor_say(dr, DOCTOR_PROBLEM, "DKIM %s: %s", cfg->signing_key, why);
    else
        doctor_dkim(dr, key);
    dkimkey_free(key);
    doctor_dmarc(dr);
}

/* ---- postmaster ---- */

/* postmaster@domain reaches someone (RFC 5321 4.5.1). */
static void doctor_postmaster(doctor_t *dr, const char *domain)
{
    char addr[ADDR_MAX + 16], reply[600], dests[1024] = "";
    table_dests_t d;
    table_result_t result;

    str_fmt(addr, sizeof(addr), "postmaster@%s", domain);
    result = cli_table_lookup(dr->cfg, dr->table, addr, strlen(addr), &d);
    if (result != TABLE_FOUND) {
        doctor_say(dr, DOCTOR_PROBLEM, "%s: refused (%s): add %s to %s (RFC 5321 4.5.1)", addr,
                   reply_for_lookup(result, addr, reply, sizeof(reply)), addr,
                   dr->cfg->forward_table);
        return;
    }
    for (size_t i = 0; i < d.n; i++) {
        size_t used = strlen(dests);
        str_fmt(dests + used, sizeof(dests) - used, "%s%s", i > 0 ? ", " : "", d.addr[i]);
    }
    doctor_say(dr, DOCTOR_OK, "%s -> %s", addr, dests);
}

/* ---- the command ---- */

static void doctor_run(doctor_t *dr)
{
    const config_t *cfg = dr->cfg;
    const char *domain;
    bool srs_listed = str_eq_ci(cfg->srs_domain, cfg->hostname);
    size_t pos = 0;

    while (table_next_domain(dr->table, &pos, &domain)) {
        doctor_mx(dr, domain, "");
        srs_listed = srs_listed || str_eq_ci(domain, cfg->srs_domain);
    }
    /* A domain of its own needs its MX for bounces; hostname's own
     * address is MX enough (RFC 5321 5.1). */
    if (!srs_listed)
        doctor_mx(dr, cfg->srs_domain, " (srs_domain: bounces to SRS addresses)");
    doctor_host(dr);
    doctor_signing(dr);

    pos = 0;
    while (table_next_domain(dr->table, &pos, &domain))
        doctor_postmaster(dr, domain);
    if (!table_has_domain(dr->table, cfg->hostname, strlen(cfg->hostname)))
        doctor_postmaster(dr, cfg->hostname);
    if (!table_has_domain(dr->table, cfg->srs_domain, strlen(cfg->srs_domain)) &&
        !str_eq_ci(cfg->srs_domain, cfg->hostname))
        doctor_postmaster(dr, cfg->srs_domain);
}

int cli_doctor(const cli_args_t *args)
{
    config_t *cfg = NULL;
    table_t *table = NULL;
    doctor_t dr = {0};
    int rc = CLI_FAIL;

    buf_init(&dr.zone, DOCTOR_LINE_MAX);
    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        goto done;
    if (table_load(cfg->forward_table, cli_print_error, NULL, &table) > 0)
        goto done;
    dr.cfg = cfg;
    dr.table = table;
    if (cli_dns_open(cfg, &dr.dns) != CLI_OK)
        goto done;
    doctor_run(&dr);
    rc = dr.problems > 0 ? CLI_FAIL : CLI_OK;
done:
    cli_dns_close(dr.dns);
    buf_free(&dr.zone);
    table_unref(table);
    config_free(cfg);
    return rc;
}
