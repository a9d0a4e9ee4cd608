/* Unit tests for auth/authres.c and auth/auth.c: the decision table, the
 * Authentication-Results header and the log fragment from one result; then
 * whole messages through the orchestrator on a libuv loop, SPF against a
 * real dnsmasq, DKIM keys and DMARC records from a scripted TXT resolver
 * (answers delayed, held, or failing on purpose). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "arc.h"
#include "auth.h"
#include "authres.h"
#include "dkimsign.h"
#include "dnsmasq.h"
#include "signing.h"
#include "xalloc.h"

/* ---- the decision, the header and the log from hand-made results ---- */

static authres_t base(void)
{
    authres_t r;

    memset(&r, 0, sizeof(r));
    r.spf_done = true;
    r.spf.status = SPF_PASS;
    strcpy(r.spf.domain, "example.com");
    r.dkim_done = true;
    r.dmarc_done = true;
    r.ndmarc = 1;
    strcpy(r.dmarc[0].domain, "example.com");
    r.dmarc[0].status = DMARC_PASS;
    r.dmarc[0].has_policy = true;
    r.dmarc[0].policy = r.dmarc[0].applied = DMARC_P_REJECT;
    r.dmarc[0].spf_aligned = true;
    return r;
}

static void spf_fail(authres_t *r)
{
    r->spf.status = SPF_FAIL;
    strcpy(r->spf.explanation, "example.com does not authorize 192.0.2.1 to send its mail");
    r->dmarc[0].spf_aligned = false;
}

Test(authres, decision_table)
{
    authres_t r;

    r = base();
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT);
    cr_assert_str_eq(r.decision.reply, "");

    /* SPF fail, nothing else vouching: 550 5.7.23 with the explanation. */
    r = base();
    spf_fail(&r);
    r.dmarc[0].status = DMARC_NONE;
    r.dmarc[0].has_policy = false;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_REJECT);
    cr_assert_str_eq(r.decision.reply,
                     "550 5.7.23 SPF fail: example.com does not authorize 192.0.2.1 to send its mail");
    authres_decide(&r, AUTH_ACTION_TAG, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT, "spf_action=tag");
    authres_decide(&r, AUTH_ACTION_OFF, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT, "spf_action=off");

    /* SPF fail, but DMARC passes through an aligned DKIM signature. */
    r = base();
    spf_fail(&r);
    r.dmarc[0].dkim_aligned = true;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT);

    /* SPF fail and the aligned signature's key could not be fetched. */
    r.dmarc[0].dkim_aligned = false;
    r.dmarc[0].dkim_unknown = true;
    r.dmarc[0].status = DMARC_TEMPERROR;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_DEFER);
    cr_assert(strncmp(r.decision.reply, "451 4.4.3 ", 10) == 0, "%s", r.decision.reply);

    /* DMARC fail with p=reject, enforced. */
    r = base();
    spf_fail(&r);
    r.spf.status = SPF_SOFTFAIL;
    r.dmarc[0].status = DMARC_FAIL;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_REJECT);
    cr_assert_str_eq(r.decision.why, "dmarc");
    cr_assert_str_eq(r.decision.reply,
                     "550 5.7.1 example.com publishes DMARC p=reject and this message has neither "
                     "an aligned SPF pass nor a valid aligned DKIM signature");
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_TAG);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT, "dmarc_action=tag");
    cr_assert(r.decision.quarantine);
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_OFF);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT, "dmarc_action=off");
    cr_assert(!r.decision.quarantine);

    /* pct lowered reject to quarantine: accept and record. */
    r.dmarc[0].applied = DMARC_P_QUARANTINE;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT);
    cr_assert(r.decision.quarantine);

    /* Temporary errors that matter defer; ones that do not, do not. */
    r = base();
    r.spf.status = SPF_TEMPERROR;
    r.dmarc[0].spf_aligned = false;
    r.dmarc[0].status = DMARC_TEMPERROR;
    r.dmarc[0].has_policy = false;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_DEFER);
    cr_assert_str_eq(r.decision.reply,
                     "451 4.4.3 Temporary DNS error checking SPF for example.com; try again later");
    authres_decide(&r, AUTH_ACTION_TAG, AUTH_ACTION_REJECT);
    cr_assert_str_eq(r.decision.reply,
                     "451 4.4.3 Temporary DNS error checking DMARC for example.com; try again later");
    r.dmarc[0].has_policy = true;
    r.dmarc[0].policy = DMARC_P_NONE;
    authres_decide(&r, AUTH_ACTION_TAG, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT, "p=none cannot reject: no need to wait");

    /* No usable From, enforced. */
    r = base();
    r.from_missing = AUTHRES_FROM_ABSENT;
    r.dmarc[0].status = DMARC_PERMERROR;
    r.dmarc[0].reason = "no From header field";
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_eq(r.decision.verdict, AUTHRES_REJECT);
    cr_assert_str_eq(r.decision.reply,
                     "550 5.7.1 Message has no From: header; RFC 5322 requires one");
    r.from_missing = AUTHRES_FROM_UNUSABLE;
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT);
    cr_assert_str_eq(r.decision.reply, "550 5.7.1 Message has no usable address in its From: "
                                       "header; RFC 5322 requires one");
    authres_decide(&r, AUTH_ACTION_REJECT, AUTH_ACTION_TAG);
    cr_assert_eq(r.decision.verdict, AUTHRES_ACCEPT);
}

Test(authres, header_and_log)
{
    authres_t r = base();
    buf_t b;
    char log[128];
    const char *want = "Authentication-Results: mx.alias.test;\r\n"
                       "\tspf=pass smtp.mailfrom=example.com;\r\n"
                       "\tdkim=pass header.d=example.com header.i=@example.com header.s=sel\r\n"
                       "\t  header.a=rsa-sha256 header.b=AbCdEfGh;\r\n"
                       "\tdkim=fail (body hash did not verify; l=10 of 20 body octets signed)\r\n"
                       "\t  header.d=esp.test header.s=s1 header.a=ed25519-sha256\r\n"
                       "\t  header.b=\"/x+y=\\\"z\";\r\n"
                       "\tdmarc=pass (p=reject dis=none) header.from=example.com\r\n";

    r.ndkim = 2;
    r.dkim[0].status = DKIM_PASS;
    strcpy(r.dkim[0].domain, "example.com");
    strcpy(r.dkim[0].auid, "@example.com");
    strcpy(r.dkim[0].selector, "sel");
    strcpy(r.dkim[0].b_prefix, "AbCdEfGh");
    r.dkim[0].has_alg = true;
    r.dkim[1].status = DKIM_FAIL;
    r.dkim[1].reason = "body hash did not verify";
    strcpy(r.dkim[1].domain, "esp.test");
    strcpy(r.dkim[1].selector, "s1");
    strcpy(r.dkim[1].b_prefix, "/x+y=\"z");
    r.dkim[1].has_alg = true;
    r.dkim[1].alg = DKIM_ED25519_SHA256;
    r.dkim[1].has_length = true;
    r.dkim[1].length = 10;
    r.dkim[1].body_len = 20;
    buf_init(&b, 4096);
    cr_assert_eq(authres_header(&r, "mx.alias.test", &b), 0);
    cr_assert_eq(buf_used(&b), strlen(want), "%.*s", (int)buf_used(&b), buf_ptr(&b));
    cr_assert(memcmp(buf_ptr(&b), want, strlen(want)) == 0, "%.*s", (int)buf_used(&b),
              buf_ptr(&b));
    cr_assert_eq(authres_log(&r, log, sizeof(log)), 0);
    cr_assert_str_eq(log, "spf=pass, dkim=pass, dmarc=pass");

    /* Comments escape what would end them; nothing run means "none". */
    buf_reset(&b);
    r = base();
    r.spf.status = SPF_PERMERROR;
    strcpy(r.spf.problem, "unknown mechanism (near \"foo:bar\") \\ here");
    r.dkim_done = r.dmarc_done = false;
    cr_assert_eq(authres_header(&r, "mx", &b), 0);
    cr_assert(memmem(buf_ptr(&b), buf_used(&b),
                     "spf=permerror (unknown mechanism \\(near \"foo:bar\"\\) \\\\ here)", 60) != NULL,
              "%.*s", (int)buf_used(&b), buf_ptr(&b));
    cr_assert_eq(authres_log(&r, log, sizeof(log)), 0);
    cr_assert_str_eq(log, "spf=permerror, dkim=off, dmarc=off");
    buf_reset(&b);
    memset(&r, 0, sizeof(r));
    cr_assert_eq(authres_header(&r, "mx", &b), 0);
    cr_assert_eq(buf_used(&b), strlen("Authentication-Results: mx; none\r\n"));
    buf_free(&b);
}

/* ---- a scripted TXT resolver on the loop ---- */

typedef struct {
    const char *name;
    txt_status_t status;
    const char *recs[3];
    bool hold; /* answer only when released */
} answer_t;

typedef struct pending pending_t;

typedef struct {
    uv_loop_t *loop;
    const answer_t *answers;
    size_t nanswers;
    char asked[32][300];
    size_t nasked;
    pending_t *held;
} scripted_t;

struct pending {
    uv_timer_t timer;
    scripted_t *s;
    const answer_t *a;
    txt_done_fn done;
    void *arg;
    pending_t *next;
};

static void pending_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deliver(uv_timer_t *t)
{
    pending_t *p = t->data;
    txt_record_t recs[3];
    size_t n = 0;

    if (p->a == NULL) {
        p->done(p->arg, TXT_NONE, NULL, 0);
    } else {
        for (; n < 3 && p->a->recs[n]; n++) {
            recs[n].data = p->a->recs[n];
            recs[n].len = strlen(p->a->recs[n]);
        }
        p->done(p->arg, p->a->status, recs, n);
    }
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static int scripted_lookup(void *impl, const char *name, txt_done_fn done, void *arg)
{
    scripted_t *s = impl;
    pending_t *p = xcalloc(1, sizeof(*p));

    if (s->nasked < 32)
        snprintf(s->asked[s->nasked++], sizeof(s->asked[0]), "%s", name);
    for (size_t i = 0; i < s->nanswers; i++)
        if (strcasecmp(s->answers[i].name, name) == 0)
            p->a = &s->answers[i];
    p->s = s;
    p->done = done;
    p->arg = arg;
    uv_timer_init(s->loop, &p->timer);
    p->timer.data = p;
    if (p->a && p->a->hold) {
        p->next = s->held;
        s->held = p;
    } else {
        uv_timer_start(&p->timer, deliver, 1, 0); /* a little later, as DNS would */
    }
    return 0;
}

static void release_held(scripted_t *s)
{
    for (pending_t *p = s->held; p; p = p->next)
        uv_timer_start(&p->timer, deliver, 0, 0);
    s->held = NULL;
}

static bool asked(const scripted_t *s, const char *name)
{
    for (size_t i = 0; i < s->nasked; i++)
        if (strcmp(s->asked[i], name) == 0)
            return true;
    return false;
}

static const txt_ops_t scripted_ops = {.lookup = scripted_lookup};

/* ---- whole messages ---- */

static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

#define KEY_NAME "brisbane._domainkey.football.example.com"
#define ED_KEY "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define DMARC_NAME "_dmarc.football.example.com"

static test_dnsmasq_t dns = TEST_DNSMASQ_INIT;

static void start_dns(void)
{
    static const char *records[] = {
        "--local=/#/", /* every other name: NXDOMAIN */
        "--txt-record=football.example.com,v=spf1 ip4:192.0.2.10 -all",
        "--txt-record=esp.test,v=spf1 ip4:192.0.2.20 -all",
        NULL,
    };

    cr_assert_eq(test_dnsmasq_start(&dns, records), 0, "dnsmasq did not start");
}

static void stop_dns(void)
{
    test_dnsmasq_stop(&dns);
}

TestSuite(auth, .init = start_dns, .fini = stop_dns, .timeout = 60);

typedef struct {
    int calls;
    authres_t res;
    char header[2048];
    char log[128];
} outcome_t;

static void on_done(auth_msg_t *m, const authres_t *r, void *arg)
{
    outcome_t *o = arg;
    buf_t b;

    o->calls++;
    o->res = *r;
    buf_init(&b, sizeof(o->header) - 1);
    authres_header(r, "mx.alias.test", &b);
    memcpy(o->header, buf_ptr(&b), buf_used(&b));
    o->header[buf_used(&b)] = '\0';
    buf_free(&b);
    authres_log(r, o->log, sizeof(o->log));
    auth_msg_free(m);
}

typedef struct {
    uv_loop_t loop;
    dns_resolver_t *resolver; /* SPF's, to the dnsmasq */
    scripted_t txt;
    auth_ctx_t *ctx;
} rig_t;

static unsigned samples; /* draws made through sample_zero() */

static unsigned sample_zero(void *arg)
{
    (void)arg;
    samples++;
    return 0;
}

static void rig_init(rig_t *r, const answer_t *answers, size_t n, auth_action_t spf,
                     auth_action_t dmarc, unsigned check_timeout_ms)
{
    const char *servers[] = {dns.server};
    dns_options_t dopt = {.servers = servers, .nservers = 1, .timeout_ms = 500, .tries = 1};
    auth_config_t cfg = {
        .hostname = "mx.alias.test",
        .spf_action = spf,
        .dmarc_action = dmarc,
        .spf_timeout_ms = 5000,
        .check_timeout_ms = check_timeout_ms,
        .sample = sample_zero,
    };

    memset(r, 0, sizeof(*r));
    cr_assert_eq(uv_loop_init(&r->loop), 0);
    cr_assert_eq(dns_resolver_new(&r->loop, &dopt, &r->resolver), 0);
    cfg.resolver = r->resolver;
    r->txt.loop = &r->loop;
    r->txt.answers = answers;
    r->txt.nanswers = n;
    cfg.loop = &r->loop;
    cfg.txt.ops = &scripted_ops;
    cfg.txt.impl = &r->txt;
    cr_assert_eq(auth_ctx_new(&cfg, &r->ctx), 0);
}

static void rig_close(rig_t *r)
{
    auth_ctx_release(r->ctx);
    release_held(&r->txt);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    dns_resolver_close(r->resolver, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&r->loop), 0, "handles left on the loop");
}

static struct sockaddr_storage ip(const char *text)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof(ss));
    a->sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, text, &a->sin_addr), 1);
    return ss;
}

/* Run one message through: MAIL FROM, DATA in chunks of `step`, end. */
static outcome_t run(rig_t *r, const char *client, const char *sender, const char *msg,
                     size_t step)
{
    struct sockaddr_storage ss = ip(client);
    auth_msg_t *m;
    outcome_t o;
    size_t len = strlen(msg);

    memset(&o, 0, sizeof(o));
    cr_assert_eq(auth_msg_new(r->ctx, (struct sockaddr *)&ss, "client.test", &m), 0);
    cr_assert_eq(auth_msg_mail_from(m, sender), 0);
    for (size_t i = 0; i < len; i += step)
        auth_msg_feed(m, msg + i, len - i < step ? len - i : step);
    cr_assert_eq(auth_msg_end(m, on_done, &o), 0);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.calls, 1);
    return o;
}

static char *tampered(void)
{
    char *msg = xstrdup(rfc8463_msg);

    strstr(msg, "hungry")[0] = 'H';
    return msg;
}

Test(auth, spf_fail_is_forgiven_when_dmarc_passes_through_aligned_dkim)
{
    static const answer_t answers[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}},
    };
    rig_t r;
    outcome_t o;

    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", rfc8463_msg, 1);
    cr_assert_eq(o.res.spf.status, SPF_FAIL);
    cr_assert_eq(o.res.dkim[0].status, DKIM_PASS);
    cr_assert_eq(o.res.dmarc[0].status, DMARC_PASS);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_ACCEPT, "%s", o.res.decision.reply);
    cr_assert_str_eq(o.log, "spf=fail, dkim=pass, dmarc=pass");
    cr_assert(strstr(o.header, "Authentication-Results: mx.alias.test;\r\n\tspf=fail") == o.header,
              "%s", o.header);
    cr_assert(strstr(o.header, "dmarc=pass (p=reject dis=none) header.from=football.example.com"),
              "%s", o.header);
    cr_assert(strstr(o.header, ";\r\n\tarc=none;\r\n\tdmarc="), "no chain: %s", o.header);
    rig_close(&r);
}

/* msg with an ARC set of sealer.test on top (i=1, cv=none), sealed by
 * mxfwd's own sealer. */
static char *arc_sealed(const signing_key_t *key, const char *msg)
{
    canon_field_t f[SIGNING_FIELDS_MAX];
    size_t body, n = signing_fields(msg, strlen(msg), f, &body);
    dkimsign_t signer = {.key = key->key, .domain = "sealer.test", .selector = "arc",
                         .time = (uint64_t)time(NULL)};
    static const char aar[] = "sealer.test; spf=pass smtp.mailfrom=football.example.com";
    unsigned char bh[32];
    dkimsign_body_t b;
    buf_t out;
    char *sealed;

    cr_assert_eq(dkimsign_body_init(&b), 0);
    dkimsign_body_feed(&b, msg, strlen(msg));
    cr_assert_eq(dkimsign_body_final(&b, bh), 0);
    buf_init(&out, 65536);
    cr_assert_eq(arc_seal(&signer, f, n, bh, aar, sizeof(aar) - 1, DKIM_CV_NONE, 0, &out), 0);
    sealed = xmalloc(buf_used(&out) + strlen(msg) + 1);
    memcpy(sealed, buf_ptr(&out), buf_used(&out));
    strcpy(sealed + buf_used(&out), msg);
    buf_free(&out);
    return sealed;
}

Test(auth, an_arc_chain_is_validated_beside_dkim_and_reported)
{
    signing_dir_t dir;
    signing_key_t key;
    char *sealed;
    rig_t r;
    outcome_t o;

    signing_dir_init(&dir);
    signing_key(&dir, "ed25519", "arc", "sealer.test", &key);
    sealed = arc_sealed(&key, rfc8463_msg);
    {
        answer_t answers[] = {
            {KEY_NAME, TXT_OK, {ED_KEY}},
            {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}},
            {"arc._domainkey.sealer.test", TXT_OK, {key.record}},
        };

        rig_init(&r, answers, 3, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
        o = run(&r, "192.0.2.10", "joe@football.example.com", sealed, 1);
        cr_assert(o.res.arc_done && o.res.arc.present);
        cr_assert_eq(o.res.arc.cv, DKIM_CV_PASS, "%s", o.res.arc.reason);
        cr_assert_eq(o.res.arc.instances, 1);
        cr_assert_str_eq(o.res.arc.domain, "sealer.test");
        cr_assert_str_eq(o.log, "spf=pass, dkim=pass, dmarc=pass, arc=pass");
        cr_assert(strstr(o.header, ";\r\n\tarc=pass (i=1 d=sealer.test);\r\n\tdmarc=pass"),
                  "%s", o.header);
        cr_assert(asked(&r.txt, "arc._domainkey.sealer.test"));

        /* Tampered: the chain fails, the verdict does not change. */
        strstr(sealed, "hungry")[0] = 'H';
        o = run(&r, "192.0.2.10", "joe@football.example.com", sealed, 7);
        cr_assert_eq(o.res.arc.cv, DKIM_CV_FAIL);
        cr_assert_str_eq(o.log, "spf=pass, dkim=fail, dmarc=pass, arc=fail");
        cr_assert(strstr(o.header, "\tarc=fail\r\n\t  (i=1 d=sealer.test; ARC-Message-Signature "
                                   "body hash did not verify);"),
                  "%s", o.header);
        strstr(sealed, "Hungry")[0] = 'h';
        rig_close(&r);
    }
    {
        answer_t answers[] = {
            {KEY_NAME, TXT_OK, {ED_KEY}},
            {"arc._domainkey.sealer.test", TXT_TEMPFAIL, {NULL}},
        };

        rig_init(&r, answers, 2, AUTH_ACTION_TAG, AUTH_ACTION_TAG, 10000);
        o = run(&r, "192.0.2.10", "joe@football.example.com", sealed, 4096);
        cr_assert_eq(o.res.arc.cv, DKIM_CV_FAIL);
        cr_assert(o.res.arc.temporary);
        cr_assert_str_eq(o.res.arc.reason, "key lookup failed");
        cr_assert_eq(o.res.decision.verdict, AUTHRES_ACCEPT);
        rig_close(&r);
    }
    free(sealed);
    dkimkey_free(key.key);
    signing_dir_free(&dir);
}

Test(auth, dmarc_reject_and_spf_reject)
{
    static const answer_t answers[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}},
    };
    char *msg = tampered();
    rig_t r;
    outcome_t o;

    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", msg, 4096);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_REJECT);
    cr_assert_str_eq(o.res.decision.reply,
                     "550 5.7.1 football.example.com publishes DMARC p=reject and this message "
                     "has neither an aligned SPF pass nor a valid aligned DKIM signature");
    cr_assert_str_eq(o.log, "spf=fail, dkim=fail, dmarc=fail");
    rig_close(&r);

    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_TAG, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", msg, 7);
    cr_assert_str_eq(o.res.decision.reply, "550 5.7.23 SPF fail: football.example.com does not "
                                           "authorize 192.0.2.99 to send its mail");
    rig_close(&r);

    rig_init(&r, answers, 2, AUTH_ACTION_TAG, AUTH_ACTION_TAG, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", msg, 7);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_ACCEPT);
    cr_assert(o.res.decision.quarantine);
    rig_close(&r);
    free(msg);
}

Test(auth, pct_is_sampled_only_where_it_can_matter)
{
    static const answer_t full[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}},
    };
    static const answer_t half[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject; pct=50"}},
    };
    char *msg = tampered();
    rig_t r;
    outcome_t o;

    /* pct=100 (the default): no draw, the policy applies. */
    samples = 0;
    rig_init(&r, full, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", msg, 4096);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_REJECT);
    cr_assert_eq(samples, 0);
    rig_close(&r);
    /* pct=50: one draw; 0 is within the 50%, so the policy applies. */
    rig_init(&r, half, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", msg, 4096);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_REJECT);
    cr_assert_eq(samples, 1);
    rig_close(&r);
    free(msg);
}

Test(auth, policy_at_the_organizational_domain)
{
    static const answer_t answers[] = {
        {"_dmarc.example.com", TXT_OK, {"v=DMARC1; p=reject; sp=quarantine"}},
    };
    static const char msg[] = "From: a@mail.example.com\r\nSubject: x\r\n\r\nbody\r\n";
    rig_t r;
    outcome_t o;

    rig_init(&r, answers, 1, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.20", "bounce@esp.test", msg, 3);
    cr_assert(asked(&r.txt, "_dmarc.mail.example.com"));
    cr_assert(asked(&r.txt, "_dmarc.example.com"));
    cr_assert_eq(o.res.spf.status, SPF_PASS, "but not aligned");
    cr_assert_eq(o.res.dmarc[0].status, DMARC_FAIL);
    cr_assert_eq(o.res.dmarc[0].policy, DMARC_P_QUARANTINE, "sp= for the subdomain");
    cr_assert_eq(o.res.decision.verdict, AUTHRES_ACCEPT);
    cr_assert(o.res.decision.quarantine);
    cr_assert_str_eq(o.log, "spf=pass, dkim=none, dmarc=fail");
    rig_close(&r);
}

Test(auth, dns_trouble_defers)
{
    static const answer_t dmarc_down[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_TEMPFAIL, {NULL}},
    };
    static const answer_t key_down[] = {
        {KEY_NAME, TXT_TEMPFAIL, {NULL}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}},
    };
    char *msg = tampered();
    rig_t r;
    outcome_t o;

    /* SPF passes unaligned, DKIM fails, the policy cannot be read. */
    rig_init(&r, dmarc_down, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.20", "bounce@esp.test", msg, 100);
    cr_assert_eq(o.res.dmarc[0].status, DMARC_TEMPERROR);
    cr_assert_str_eq(o.res.decision.reply, "451 4.4.3 Temporary DNS error checking DMARC for "
                                           "football.example.com; try again later");
    rig_close(&r);

    /* SPF fails, the aligned signature's key cannot be fetched: it might
     * have rescued the message, so no 550. */
    rig_init(&r, key_down, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.99", "joe@football.example.com", rfc8463_msg, 100);
    cr_assert_eq(o.res.dkim[0].status, DKIM_TEMPERROR);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_DEFER, "%s", o.res.decision.reply);
    cr_assert(strncmp(o.res.decision.reply, "451 4.4.3", 9) == 0);
    rig_close(&r);
    free(msg);
}

Test(auth, no_from_header)
{
    static const char msg[] = "Subject: no author\r\n\r\nbody\r\n";
    rig_t r;
    outcome_t o;

    rig_init(&r, NULL, 0, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.20", "bounce@esp.test", msg, 1);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_REJECT);
    cr_assert_str_eq(o.res.decision.reply,
                     "550 5.7.1 Message has no From: header; RFC 5322 requires one");
    cr_assert_str_eq(o.log, "spf=pass, dkim=none, dmarc=permerror");
    rig_close(&r);
}

/* The header section ends, as a receiver's RFC 5322 parser reads it, at
 * the first line that is neither a field nor a continuation: a From
 * below it is no author to them, and none here. */
Test(auth, a_from_after_a_line_that_is_no_field_is_no_author)
{
    static const char *const msgs[] = {
        ".\r\nFrom: joe@football.example.com\r\nSubject: x\r\n\r\nbody\r\n",
        "Subject: x\r\nnot a field\r\nFrom: joe@football.example.com\r\n\r\nbody\r\n",
        "Subject: x\r\nBad Name: y\r\nFrom: joe@football.example.com\r\n\r\nbody\r\n",
    };
    rig_t r;
    outcome_t o;

    rig_init(&r, NULL, 0, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        for (size_t step = 1; step <= 7; step += 6) {
            o = run(&r, "192.0.2.20", "bounce@esp.test", msgs[i], step);
            cr_assert_eq(o.res.decision.verdict, AUTHRES_REJECT, "message %zu", i);
            cr_assert_str_eq(o.res.decision.reply,
                             "550 5.7.1 Message has no From: header; RFC 5322 requires one");
        }
    }
    /* Folded fields and white space before the colon are fields. */
    o = run(&r, "192.0.2.20", "bounce@esp.test",
            "Subject: x\r\n  folded\r\nFrom : Joe\r\n <joe@esp.test>\r\n\r\nbody\r\n", 3);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_ACCEPT, "%s", o.res.decision.reply);
    rig_close(&r);
}

Test(auth, from_without_an_address)
{
    static const char msg[] = "From: undisclosed-recipients:;\r\nSubject: x\r\n\r\nbody\r\n";
    rig_t r;
    outcome_t o;

    rig_init(&r, NULL, 0, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.20", "bounce@esp.test", msg, 1);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_REJECT);
    cr_assert_str_eq(o.res.decision.reply, "550 5.7.1 Message has no usable address in its From: "
                                           "header; RFC 5322 requires one");
    rig_close(&r);
}

Test(auth, lookups_start_while_the_message_streams)
{
    static const answer_t answers[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=none"}},
    };
    const char *body = strstr(rfc8463_msg, "\r\n\r\n") + 4;
    struct sockaddr_storage ss = ip("192.0.2.10");
    auth_msg_t *m;
    outcome_t o;
    rig_t r;

    memset(&o, 0, sizeof(o));
    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    cr_assert_eq(auth_msg_new(r.ctx, (struct sockaddr *)&ss, "client.test", &m), 0);
    cr_assert_eq(auth_msg_mail_from(m, "joe@football.example.com"), 0);
    auth_msg_feed(m, rfc8463_msg, (size_t)(body - rfc8463_msg));
    /* The header section is in, the body is not: both lookups are out. */
    cr_assert(asked(&r.txt, KEY_NAME));
    cr_assert(asked(&r.txt, DMARC_NAME));
    uv_run(&r.loop, UV_RUN_NOWAIT);
    auth_msg_feed(m, body, strlen(body));
    cr_assert_eq(auth_msg_end(m, on_done, &o), 0);
    cr_assert_eq(o.calls, 0, "never called back from inside auth_msg_end()");
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.calls, 1);
    cr_assert_str_eq(o.log, "spf=pass, dkim=pass, dmarc=pass");
    rig_close(&r);
}

Test(auth, a_silent_resolver_times_out_as_temperror)
{
    static const answer_t answers[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}, true},
    };
    char *msg = tampered();
    rig_t r;
    outcome_t o;

    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 200);
    o = run(&r, "192.0.2.20", "bounce@esp.test", msg, 64);
    cr_assert_eq(o.res.dmarc[0].status, DMARC_TEMPERROR);
    cr_assert_eq(o.res.decision.verdict, AUTHRES_DEFER);
    rig_close(&r); /* the held answer arrives after the verdict; nothing leaks */
    free(msg);
}

Test(auth, cancel_with_work_in_flight)
{
    static const answer_t answers[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}, true},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}, true},
    };
    struct sockaddr_storage ss = ip("192.0.2.10");
    rig_t r;

    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    for (int i = 0; i < 20; i++) {
        auth_msg_t *m;

        cr_assert_eq(auth_msg_new(r.ctx, (struct sockaddr *)&ss, "client.test", &m), 0);
        cr_assert_eq(auth_msg_mail_from(m, "joe@football.example.com"), 0);
        auth_msg_feed(m, rfc8463_msg, strlen(rfc8463_msg) / 2);
        if (i % 2 == 0)
            cr_assert_eq(auth_msg_end(m, on_done, NULL), 0); /* on_done would crash on NULL */
        auth_msg_cancel(m);
    }
    rig_close(&r); /* held answers finish, SPF checks were dropped; every message is freed */
}

Test(auth, bad_configuration)
{
    auth_config_t cfg = {0};
    auth_ctx_t *ctx = NULL;
    uv_loop_t loop;

    cr_assert_eq(auth_ctx_new(&cfg, &ctx), AUTH_EINVAL);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cfg.loop = &loop;
    cfg.txt.ops = &scripted_ops;
    /* SPF is wanted (its action is not off) and has no resolver. */
    cr_assert_eq(auth_ctx_new(&cfg, &ctx), AUTH_ESPF);
    cr_assert_null(ctx);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- the same, with every answer from DNS: the loop's resolver ---- */

static void resolver_closed(void *arg)
{
    *(int *)arg = 1;
}

Test(auth, through_the_real_resolver)
{
    static const char *records[] = {
        "--local=/#/",
        "--txt-record=mail.test,v=spf1 ip4:192.0.2.30 -all",
        "--txt-record=football.example.com,v=spf1 ip4:192.0.2.10 -all",
        "--txt-record=" KEY_NAME "," ED_KEY,
        "--txt-record=" DMARC_NAME ",v=DMARC1; p=reject",
        NULL,
    };
    test_dnsmasq_t real = TEST_DNSMASQ_INIT;
    const char *servers[1];
    dns_options_t dopt = {.nservers = 1, .timeout_ms = 500, .tries = 1};
    dns_resolver_t *res = NULL;
    auth_config_t cfg = {.hostname = "mx.alias.test",
                         .spf_action = AUTH_ACTION_REJECT, .dmarc_action = AUTH_ACTION_REJECT,
                         .sample = sample_zero};
    char *msg = tampered();
    rig_t r;
    outcome_t o;
    int closed = 0;

    cr_assert_eq(test_dnsmasq_start(&real, records), 0, "dnsmasq did not start");
    servers[0] = real.server;
    dopt.servers = servers;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(uv_loop_init(&r.loop), 0);
    cr_assert_eq(dns_resolver_new(&r.loop, &dopt, &res), 0);
    cfg.loop = &r.loop;
    cfg.resolver = res;
    auth_txt_resolver(res, &cfg.txt);
    cr_assert_eq(auth_ctx_new(&cfg, &r.ctx), 0);

    /* SPF fails (a forwarder in between), the signature vouches: accepted. */
    o = run(&r, "192.0.2.99", "joe@football.example.com", rfc8463_msg, 512);
    cr_assert_str_eq(o.log, "spf=fail, dkim=pass, dmarc=pass");
    cr_assert_eq(o.res.decision.verdict, AUTHRES_ACCEPT);
    /* Changed on the way: DMARC p=reject is enforced. */
    o = run(&r, "192.0.2.30", "joe@mail.test", msg, 512);
    cr_assert_str_eq(o.log, "spf=pass, dkim=fail, dmarc=fail");
    cr_assert(strncmp(o.res.decision.reply, "550 5.7.1 football.example.com publishes", 40) == 0,
              "%s", o.res.decision.reply);

    auth_ctx_release(r.ctx);
    dns_resolver_close(res, resolver_closed, &closed);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert(closed);
    cr_assert_eq(uv_loop_close(&r.loop), 0);
    test_dnsmasq_stop(&real);
    free(msg);
}

Test(auth, names_too_long_for_dns_are_not_asked)
{
    char domain[260], msg[400], dmarc[280];
    size_t n = 0;
    rig_t r;
    outcome_t o;

    /* A 250-octet From domain: valid, but "_dmarc." makes it 257. */
    while (n < 240) {
        memset(domain + n, 'a', 59);
        n += 59;
        domain[n++] = '.';
    }
    memcpy(domain + n, "example.com", 12);
    snprintf(msg, sizeof(msg), "From: x@%s\r\n\r\nbody\r\n", domain);
    snprintf(dmarc, sizeof(dmarc), "_dmarc.%s", domain);
    rig_init(&r, NULL, 0, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    o = run(&r, "192.0.2.20", "bounce@esp.test", msg, 64);
    cr_assert(!asked(&r.txt, dmarc));
    cr_assert(asked(&r.txt, "_dmarc.example.com"), "the organizational domain still is");
    cr_assert_eq(o.res.dmarc[0].status, DMARC_NONE);
    rig_close(&r);
}

Test(auth, many_messages_check_spf_side_by_side)
{
    static const answer_t answers[] = {
        {KEY_NAME, TXT_OK, {ED_KEY}},
        {DMARC_NAME, TXT_OK, {"v=DMARC1; p=reject"}},
    };
    struct sockaddr_storage pass = ip("192.0.2.10"), fail = ip("192.0.2.99");
    outcome_t o[12];
    rig_t r;

    rig_init(&r, answers, 2, AUTH_ACTION_REJECT, AUTH_ACTION_REJECT, 10000);
    memset(o, 0, sizeof(o));
    for (int i = 0; i < 12; i++) {
        auth_msg_t *m;

        cr_assert_eq(auth_msg_new(r.ctx, (struct sockaddr *)(i % 2 ? &fail : &pass),
                                  "client.test", &m),
                     0);
        cr_assert_eq(auth_msg_mail_from(m, "joe@football.example.com"), 0);
        auth_msg_feed(m, rfc8463_msg, strlen(rfc8463_msg));
        cr_assert_eq(auth_msg_end(m, on_done, &o[i]), 0);
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(o[i].calls, 1, "message %d", i);
        cr_assert_eq(o[i].res.spf.status, i % 2 ? SPF_FAIL : SPF_PASS, "message %d", i);
        cr_assert_eq(o[i].res.decision.verdict, AUTHRES_ACCEPT, "message %d", i);
    }
    rig_close(&r);
}
