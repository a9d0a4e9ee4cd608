/*
 * explain - mxfwd explain SENDER-DOMAIN: what happens to that domain's
 * mail when mxfwd forwards it, with this configuration.  Its SPF record,
 * the DMARC policy that applies to it (RFC 7489 6.6.3: its own record,
 * else its organizational domain's, sp= for a subdomain), whether its mail
 * needs DKIM to survive forwarding, and which of mxfwd's actions apply and
 * why (docs/admin-guide.md, "Signing and the DNS to publish").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cli.h"
#include "cli_dns.h"
#include "str.h"

#define EXPLAIN_WIDTH 78 /* columns of a wrapped line */
#define EXPLAIN_LABEL 10 /* the label's column, and the text's indent */

/* One paragraph: the label, then the text wrapped at EXPLAIN_WIDTH with
 * its lines indented to the text's column. */
static void explain_say(const char *label, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void explain_say(const char *label, const char *fmt, ...)
{
    char text[4096];
    const char *p = text;
    size_t col = EXPLAIN_LABEL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printf("%-*s", EXPLAIN_LABEL, label);
    while (*p != '\0') {
        size_t word = strcspn(p, " ");

        if (col > EXPLAIN_LABEL && col + 1 + word > EXPLAIN_WIDTH) {
            printf("\n%*s", EXPLAIN_LABEL, "");
            col = EXPLAIN_LABEL;
        } else if (col > EXPLAIN_LABEL) {
            putchar(' ');
            col++;
        }
        printf("%.*s", (int)word, p);
        col += word;
        p += word;
        p += strspn(p, " ");
    }
    putchar('\n');
}

/* The domain's SPF record: printed; 0, or a DNS_E* code that makes the
 * domain unusable (it does not exist) or its answer unknown. */
static int explain_spf(cli_dns_t *dns, const char *domain)
{
    cli_dns_answer_t ans;
    const dns_txt_t *record = NULL;
    char *shown;
    size_t n = 0;
    int rc = 0;

    cli_dns_lookup(dns, DNS_T_TXT, domain, &ans);
    for (size_t i = 0; i < ans.n; i++) {
        if (spf_is_record(ans.txt[i].text, ans.txt[i].len)) {
            record = &ans.txt[i];
            n++;
        }
    }
    if (ans.status == DNS_ENXDOMAIN) {
        explain_say("SPF", "none: %s does not exist (%s)", domain, dns_strerror(ans.status));
        rc = ans.status;
    } else if (ans.status != 0 && !dns_is_permanent(ans.status)) {
        explain_say("SPF", "%s: %s", domain, dns_strerror(ans.status));
        rc = ans.status;
    } else if (n > 1) {
        explain_say("SPF", "%zu SPF records: permerror, receivers treat its SPF as broken", n);
    } else if (n == 1) {
        shown = cli_dns_printable(record->text, record->len);
        explain_say("SPF", "\"%s\"", shown);
        free(shown);
    } else {
        explain_say("SPF", "none");
    }
    cli_dns_answer_free(&ans);
    return rc;
}

/* What a policy asks of receivers, for mail from domain failing DMARC. */
static const char *explain_meaning(dmarc_policy_t p, const char *domain)
{
    static char text[DMARC_DOMAIN_MAX + 100];

    if (p == DMARC_P_REJECT)
        str_fmt(text, sizeof(text), "receivers are asked to refuse mail from %s that fails DMARC",
                domain);
    else if (p == DMARC_P_QUARANTINE)
        str_fmt(text, sizeof(text),
                "receivers are asked to treat mail from %s that fails DMARC "
                "as suspicious (the spam folder)",
                domain);
    else
        str_fmt(text, sizeof(text),
                "receivers are asked for nothing when mail from %s fails "
                "DMARC",
                domain);
    return text;
}

/* The DMARC record and the policy that applies to domain.  0, or the DNS
 * error that kept it from being known. */
static int explain_dmarc(const char *domain, const cli_dns_dmarc_t *dm)
{
    const dmarc_record_t *r = &dm->rec;
    const char *p = dmarc_policy_name(dm->applied);
    char from[DMARC_DOMAIN_MAX + 64];

    switch (dm->lookup) {
    case DMARC_LOOKUP_TEMPFAIL:
        explain_say("DMARC", "%s: %s", dm->name, dns_strerror(dm->error));
        return dm->error;
    case DMARC_LOOKUP_INVALID:
        explain_say("DMARC", "%s: unusable (%s): a permerror, which applies no policy", dm->name,
                    dm->why);
        explain_say("policy", "none: %s", explain_meaning(DMARC_P_NONE, domain));
        return 0;
    case DMARC_LOOKUP_NONE:
        if (strcmp(dm->org, domain) != 0)
            explain_say("DMARC",
                        "none: no record at _dmarc.%s, nor at %s (its organizational "
                        "domain's)",
                        domain, dm->name);
        else
            explain_say("DMARC", "none: no record at %s", dm->name);
        explain_say("policy", "none: %s", explain_meaning(DMARC_P_NONE, domain));
        return 0;
    case DMARC_LOOKUP_FOUND:
        break;
    }
    if (dm->at_org)
        explain_say("DMARC",
                    "none at _dmarc.%s; %s's applies (its organizational domain): %s: "
                    "\"%s\"",
                    domain, dm->org, dm->name, dm->text);
    else
        explain_say("DMARC", "%s: \"%s\"", dm->name, dm->text);
    if (dm->at_org && r->has_sp)
        str_fmt(from, sizeof(from), "sp= of %s, for its subdomains", dm->org);
    else if (dm->at_org)
        str_fmt(from, sizeof(from), "p= of %s, which has no sp= for its subdomains", dm->org);
    else
        str_fmt(from, sizeof(from), "p=");
    explain_say("policy", "%s (%s): %s", p, from, explain_meaning(dm->applied, domain));
    if (r->pct < 100 && dm->applied != DMARC_P_NONE)
        explain_say("",
                    "pct=%u: receivers apply it to %u%% of the mail failing DMARC, the next "
                    "less strict policy to the rest",
                    r->pct, r->pct);
    return 0;
}

/* Refused at mxfwd, per dmarc_action (docs/sender-checks.md). */
static void explain_inbound(const config_t *cfg, const char *domain, dmarc_policy_t policy)
{
    if (cfg->dmarc_action == CONFIG_ACTION_OFF)
        explain_say("refused", "never for DMARC: mxfwd does not check it (dmarc_action = off)");
    else if (policy == DMARC_P_REJECT && cfg->dmarc_action == CONFIG_ACTION_REJECT)
        explain_say("refused",
                    "a message from %s that fails DMARC at mxfwd (no aligned SPF pass "
                    "and no valid aligned DKIM signature) gets 550 5.7.1 and is never forwarded "
                    "(dmarc_action = enforce, policy reject)",
                    domain);
    else if (policy == DMARC_P_REJECT)
        explain_say("refused", "never for DMARC (dmarc_action = tag): a message failing it is "
                               "marked dmarc=fail in Authentication-Results and forwarded");
    else if (policy == DMARC_P_QUARANTINE)
        explain_say("refused",
                    "never for DMARC: a message failing it is accepted and marked "
                    "dmarc=fail in Authentication-Results (dmarc_action refuses only under "
                    "p=reject; a forwarder has no junk folder)");
    else
        explain_say("refused", "never for DMARC: %s asks for nothing", domain);
}

/* The signature, the seal and the From rewrite of the forwarded copy. */
static void explain_signing(const config_t *cfg, const char *domain, dmarc_policy_t policy)
{
    bool strict = policy != DMARC_P_NONE;
    const char *p = dmarc_policy_name(policy);
    char lost[300] = "";

    if (strict)
        str_fmt(lost, sizeof(lost),
                ": a message from %s without a valid aligned DKIM signature "
                "then fails DMARC at the receiver, which %s asks to %s it",
                domain, domain, p);
    if (cfg->signing_key == NULL) {
        explain_say("signing", CLI_SIGNING_OFF);
        explain_say("From", "never rewritten (signing is off)%s", lost);
        return;
    }
    if (cfg->dkim_sign)
        explain_say("signed",
                    "every forwarded message gets mxfwd's DKIM signature for %s "
                    "(s=%s; dkim_sign = yes)",
                    cfg->signing_domain, cfg->signing_selector);
    else
        explain_say("signed", "no: mxfwd adds no DKIM signature of its own (dkim_sign = no)");
    if (cfg->arc_seal)
        explain_say("sealed",
                    "with ARC, always (arc_seal = yes): every forwarded message, as a "
                    "courtesy to receivers, which may trust this forwarder's record of the "
                    "message's authentication when it fails DMARC after forwarding");
    else
        explain_say("sealed", "no (arc_seal = no)");
    switch (cfg->from_rewrite) {
    case CONFIG_REWRITE_ALWAYS:
        explain_say("From",
                    "always rewritten to %s (from_rewrite = always), whatever %s "
                    "publishes",
                    cfg->from_rewrite_address, domain);
        break;
    case CONFIG_REWRITE_OFF:
        explain_say("From", "never rewritten (from_rewrite = off)%s", lost);
        break;
    case CONFIG_REWRITE_DMARC:
        if (strict)
            explain_say("From",
                        "rewritten to %s (from_rewrite = dmarc, policy %s) only for a message "
                        "with no valid DKIM signature aligned with %s, so that it passes DMARC "
                        "under %s; explain cannot know in advance whether a message has one: a "
                        "message that does is forwarded with its From untouched",
                        cfg->from_rewrite_address, p, domain, cfg->signing_domain);
        else
            explain_say("From",
                        "untouched: %s asks for nothing (from_rewrite = dmarc rewrites "
                        "only under p=quarantine or p=reject)",
                        domain);
        break;
    }
}

/* The actions above in a few words. */
static void explain_summary(const config_t *cfg, dmarc_policy_t policy)
{
    bool signing = cfg->signing_key != NULL, strict = policy != DMARC_P_NONE;
    char acts[200] = "";
    size_t n;

    if (signing && cfg->dkim_sign)
        str_fmt(acts, sizeof(acts), ", DKIM-signed");
    if (signing && cfg->arc_seal)
        str_fmt(acts + strlen(acts), sizeof(acts) - strlen(acts), ", sealed with ARC");
    if (signing && cfg->from_rewrite == CONFIG_REWRITE_ALWAYS)
        str_fmt(acts + strlen(acts), sizeof(acts) - strlen(acts), ", From rewritten");
    if (signing && cfg->from_rewrite == CONFIG_REWRITE_DMARC && strict)
        str_fmt(acts + strlen(acts), sizeof(acts) - strlen(acts),
                ", From rewritten unless DKIM-signed in alignment");
    n = strlen(acts);
    explain_say("in short", "%s%s%s",
                policy == DMARC_P_REJECT && cfg->dmarc_action == CONFIG_ACTION_REJECT
                    ? "refused if it fails DMARC at mxfwd; otherwise "
                    : "",
                n > 0 ? "forwarded" : "forwarded untouched", acts);
}

int cli_explain(const cli_args_t *args)
{
    config_t *cfg = NULL;
    cli_dns_t *dns = NULL;
    cli_dns_dmarc_t dm = {0};
    const char *arg = args->argv[0], *at = strrchr(arg, '@');
    char domain[DNS_NAME_MAX + 1];
    dmarc_policy_t policy;
    int rc = CLI_FAIL;

    if (at != NULL)
        arg = at + 1; /* an address: its domain */
    if (addr_dns_name(arg, strlen(arg), domain, sizeof(domain)) < 0 ||
        strchr(domain, '.') == NULL) {
        fprintf(stderr, "mxfwd: '%s' is not a mail domain\n", args->argv[0]);
        return CLI_FAIL;
    }
    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        return CLI_FAIL;
    if (cli_dns_open(cfg, &dns) != CLI_OK)
        goto done;

    printf("%s (organizational domain %s)\n", domain, dmarc_org_domain(domain));
    if (explain_spf(dns, domain) != 0)
        goto done;
    cli_dns_dmarc(dns, domain, &dm);
    if (explain_dmarc(domain, &dm) != 0)
        goto done;
    policy = dm.lookup == DMARC_LOOKUP_FOUND ? dm.applied : DMARC_P_NONE;
    if (policy != DMARC_P_NONE)
        explain_say("DKIM",
                    "needed: forwarded, its mail passes DMARC only with a valid DKIM "
                    "signature aligned with %s, as SPF no longer aligns once mxfwd rewrites the "
                    "envelope sender to SRS0=...@%s",
                    domain, cfg->srs_domain);
    else
        explain_say("DKIM",
                    "not needed to be delivered: %s asks receivers for nothing when "
                    "its forwarded mail fails DMARC",
                    domain);

    printf("\nForwarded by mxfwd with %s:\n", cfg->path);
    explain_inbound(cfg, domain, policy);
    explain_signing(cfg, domain, policy);
    explain_summary(cfg, policy);
    rc = CLI_OK;
done:
    cli_dns_dmarc_free(&dm);
    cli_dns_close(dns);
    config_free(cfg);
    return rc;
}
