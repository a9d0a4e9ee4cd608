/*
 * Unit tests for the queue manager: delivery, retries, DSNs and restarts
 * (the admin's commands, held messages and concurrency are in
 * test_queue_admin.c).  The fixture (queue_fixture.h):
 * a real spool in a temporary directory on a real libuv loop, a scripted
 * delivery implementation (no network), and an injected clock and random
 * source, so retries and expiry run without waiting.  What is checked is
 * what an admin would see: the jobs handed to delivery, the DSNs that come
 * out, the log lines, the files in the spool, and what a restart over the
 * same spool does.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_fixture.h"
#include "testdir.h"
#include "xalloc.h"

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Delivery, grouping, removal ---- */

Test(queue, delivers_each_domain_with_the_srs_sender_and_removes_the_message)
{
    static const spool_env_rcpt_t r[] = {
        {"alice@example.com", "alice@alias.test"},
        {"bob@example.org", "team@alias.test"},
    };
    const char *id = submit("someone@origin.test", r, 2);
    char idc[SPOOL_ID_SIZE], line[512];
    const char *log;

    snprintf(idc, sizeof(idc), "%s", id);
    cr_assert_eq(fake.nrec, 2);
    for (size_t i = 0; i < 2; i++) {
        const fake_record_t *rec = &fake.rec[i];
        cr_assert_str_eq(rec->queue_id, idc);
        cr_assert_str_eq(rec->sender, "SRS0=HhHh=TT=someone@origin.test@fwd.test");
        cr_assert_eq(rec->nrcpts, 1);
        /* The bytes: mxfwd's headers, then the message as received. */
        cr_assert_eq(rec->len, prepend_size - 1 + body_size - 1);
        cr_assert(memcmp(rec->bytes, prepend, prepend_size - 1) == 0);
        cr_assert_str_eq(rec->bytes + prepend_size - 1, body);
    }
    cr_assert_str_eq(fake.rec[0].domain, "example.com");
    cr_assert_str_eq(fake.rec[0].orig[0], "alice@alias.test");
    cr_assert_str_eq(fake.rec[1].domain, "example.org");
    /* Every recipient final: the file is gone. */
    cr_assert_str_eq(listing(), "");
    log = log_text();
    snprintf(line, sizeof(line),
             "%s: to=<alice@example.com>, orig_to=<alice@alias.test>, "
             "relay=mx.fake.test[192.0.2.25]:25, delay=0.00, delays=0/0.00/0.00/0.00, dsn=2.0.0, "
             "status=sent (250 2.0.0 Ok: queued as FAKE), tls=none",
             idc);
    cr_assert(strstr(log, line) != NULL, "%s", log);
    snprintf(line, sizeof(line), "%s: removed", idc);
    cr_assert(strstr(log, line) != NULL, "%s", log);
    cr_assert_eq(stats_get(stats, "delivered", NULL), 2);
    stats_refresh(stats);
    cr_assert_eq(stats_get(stats, "queue_messages", NULL), 0);
    cr_assert_eq(stats_get(stats, "queue_recipients", NULL), 0);
}

Test(queue, a_message_done_at_once_costs_no_state_record)
{
    static const spool_env_rcpt_t r[] = {{"a@x.test", NULL}, {"b@x.test", NULL}};
    spool_stats_t st;

    submit("someone@origin.test", r, 2);
    cr_assert_str_eq(listing(), "");
    spool_get_stats(spool, &st);
    /* Its removal is the record: nothing is appended before it. */
    cr_assert_eq(st.updates, 0);
    cr_assert_eq(st.removes, 1);
}

Test(queue, groups_recipients_by_domain_whatever_its_case)
{
    static const spool_env_rcpt_t r[] = {
        {"a@x.test", NULL},
        {"c@y.test", NULL},
        {"B@X.Test", NULL},
        {"d@y.test", NULL},
        {"e@z.test", NULL},
    };

    submit("someone@origin.test", r, 5);
    cr_assert_eq(fake.nrec, 3, "one job per domain");
    cr_assert_str_eq(fake.rec[0].domain, "x.test");
    cr_assert_eq(fake.rec[0].nrcpts, 2);
    cr_assert_str_eq(fake.rec[0].rcpt[0], "a@x.test");
    cr_assert_str_eq(fake.rec[0].rcpt[1], "B@X.Test");
    cr_assert_str_eq(fake.rec[1].domain, "y.test");
    cr_assert_eq(fake.rec[1].nrcpts, 2);
    cr_assert_str_eq(fake.rec[2].domain, "z.test");
    cr_assert_eq(fake.rec[2].nrcpts, 1);
    cr_assert_str_eq(listing(), "");
}

/* ---- Retries ---- */

Test(queue, deferred_recipients_follow_the_retry_schedule)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", "alice@alias.test"}};
    char idc[SPOOL_ID_SIZE];
    rcpt_view_t v;

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 try again later", "4.3.0");
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 1));
    cr_assert_eq(jobs_to("b@slow.test"), 1);
    v = view("b@slow.test");
    cr_assert_str_eq(v.state, "deferred");
    cr_assert_eq(v.attempts, 1);
    cr_assert_eq(v.next, T0 + 60 * S, "first step: 60 s");
    cr_assert_str_eq(v.reply, "451 4.3.0 try again later");
    cr_assert(strstr(log_text(), "status=deferred (451 4.3.0 try again later)") != NULL);

    advance(59);
    cr_assert_eq(jobs_to("b@slow.test"), 1, "not before its time");
    advance(1);
    cr_assert_eq(jobs_to("b@slow.test"), 2);
    cr_assert_eq(view("b@slow.test").next, T0 + 60 * S + 300 * S, "second step: 300 s");
    advance(299);
    cr_assert_eq(jobs_to("b@slow.test"), 2);
    advance(1);
    cr_assert_eq(jobs_to("b@slow.test"), 3);
    /* The last step repeats. */
    cr_assert_eq(view("b@slow.test").next, T0 + 660 * S);
    cr_assert_eq(view("b@slow.test").attempts, 3);
    /* Then it gets through. */
    fake_clear_rules(&fake);
    advance(300);
    cr_assert_eq(jobs_to("b@slow.test"), 4);
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(stats_get(stats, "deferred", NULL), 3);
    cr_assert_eq(stats_get(stats, "delivered", NULL), 1);
}

Test(queue, a_first_attempt_sends_from_memory_and_a_retry_from_the_file)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.3.0 try again later", "4.3.0");
    submit("someone@origin.test", r, 1);
    cr_assert_eq(jobs_to("b@slow.test"), 1);
    cr_assert(last_job_to("b@slow.test")->from_memory, "just committed: no file read");
    advance(60);
    cr_assert_eq(jobs_to("b@slow.test"), 2);
    cr_assert(!last_job_to("b@slow.test")->from_memory, "the memory went with the first attempt");
    cr_assert_str_eq(last_job_to("b@slow.test")->bytes, fake.rec[0].bytes);
}

Test(queue, bodies_in_memory_stay_within_their_budget)
{
    static const spool_env_rcpt_t r[] = {{"b@held.test", NULL}};
    size_t base;
    long long before;
    char jdir[sizeof(sdir) + 16];

    /* What a body in memory holds: its journal record, as the journal
     * grows by it. */
    snprintf(jdir, sizeof(jdir), "%s/journal", sdir);
    submit("someone@origin.test", r, 1);
    before = test_dir_bytes(jdir);
    submit("someone@origin.test", r, 1);
    settle();
    /* Room for one: the second message waits for the file. */
    close_all();
    body_memory = (size_t)(test_dir_bytes(jdir) - before);
    cr_assert_gt(body_memory, body_size);
    open_all();
    base = fake.nrec;
    fake.hold = true;
    submit("someone@origin.test", r, 1);
    submit("someone@origin.test", r, 1);
    cr_assert_eq(fake.nrec, base + 2);
    cr_assert(fake.rec[base].from_memory);
    cr_assert(!fake.rec[base + 1].from_memory);
    fake_release(&fake);
    settle();
    /* The first attempt is over: its room is free again. */
    fake.hold = false;
    submit("someone@origin.test", r, 1);
    cr_assert(fake.rec[base + 2].from_memory);
}

Test(queue, retry_delays_have_jitter)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", NULL}};

    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "421 4.4.2 busy", NULL);
    rnd = 2000; /* the top of the range: +10% */
    submit("someone@origin.test", r, 1);
    cr_assert_eq(view("b@slow.test").next, T0 + 66 * S);
    rnd = 0; /* the bottom: -10% */
    now_us = T0 + 66 * S;
    queue_tick(q);
    settle();
    cr_assert_eq(view("b@slow.test").next, T0 + 66 * S + 270 * S);
}

Test(queue, a_message_past_its_lifetime_bounces_with_a_dsn)
{
    static const spool_env_rcpt_t r[] = {{"b@slow.test", "alice@alias.test"}};
    const fake_record_t *dsn;

    close_all();
    lifetime = 100;
    open_all();
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.2.0 mailbox busy", "4.2.0");
    submit("someone@origin.test", r, 1);
    advance(60);
    cr_assert_eq(jobs_to("b@slow.test"), 2);
    /* The next step (300 s) would pass the lifetime: the last attempt is
     * made when it ends. */
    cr_assert_eq(view("b@slow.test").next, T0 + 100 * S);
    advance(39);
    cr_assert_eq(jobs_to("b@slow.test"), 2);
    advance(1);
    cr_assert_eq(jobs_to("b@slow.test"), 3);
    cr_assert(strstr(log_text(), "status=bounced (expired after 100s in the queue; the last "
                                 "attempt: 451 4.2.0 mailbox busy)") != NULL,
              "%s", log_text());
    dsn = last_job_to("someone@origin.test");
    cr_assert_not_null(dsn, "a DSN to the original sender");
    cr_assert_str_eq(dsn->sender, "");
    cr_assert(strstr(dsn->bytes, "Status: 4.2.0\r\n") != NULL);
    cr_assert(strstr(dsn->bytes, "not delivered within 100 seconds") != NULL);
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(stats_get(stats, "bounced", NULL), 1);
}

/* ---- DSNs ---- */

/* A parsed DSN: top-level headers and the three parts. */
typedef struct {
    char *text;
    char *headers;      /* top-level header section */
    char *part[3];      /* each part: its headers, a blank line, its body */
    size_t nparts;
} mime_t;

static char *dupn(const char *p, size_t n)
{
    char *s = xmalloc(n + 1);

    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static mime_t parse_dsn(const char *bytes)
{
    mime_t m = {0};
    const char *sep = strstr(bytes, "\r\n\r\n"), *b, *end;
    char boundary[200], delim[210];
    size_t blen;

    cr_assert_not_null(sep);
    m.headers = dupn(bytes, (size_t)(sep - bytes) + 2);
    b = strstr(m.headers, "boundary=\"");
    cr_assert_not_null(b, "%s", m.headers);
    b += strlen("boundary=\"");
    blen = (size_t)(strchr(b, '"') - b);
    snprintf(boundary, sizeof(boundary), "%.*s", (int)blen, b);
    snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    b = strstr(sep, delim);
    while (b != NULL && m.nparts < 3) {
        const char *start = b + strlen(delim);
        if (strncmp(start, "--", 2) == 0)
            break;
        start += 2; /* CRLF after the delimiter */
        end = strstr(start, delim);
        cr_assert_not_null(end);
        m.part[m.nparts++] = dupn(start, (size_t)(end - start));
        b = end;
    }
    cr_assert_not_null(b);
    cr_assert(strncmp(b + strlen(delim), "--\r\n", 4) == 0, "the closing delimiter");
    return m;
}

static void mime_free(mime_t *m)
{
    free(m->headers);
    for (size_t i = 0; i < m->nparts; i++)
        free(m->part[i]);
}

/* The value of field name in a block of header-like lines, or NULL. */
static char *field(const char *block, const char *name)
{
    static char value[1024];
    char key[128];
    const char *p;

    snprintf(key, sizeof(key), "\n%s: ", name);
    p = strstr(block, key);
    if (p == NULL) {
        snprintf(key, sizeof(key), "%s: ", name);
        if (strncmp(block, key, strlen(key)) != 0)
            return NULL;
        p = block;
    }
    p += strlen(key);
    snprintf(value, sizeof(value), "%.*s", (int)strcspn(p, "\r\n"), p);
    return value;
}

Test(queue, a_bounce_sends_one_rfc3464_dsn_to_the_original_sender)
{
    static const spool_env_rcpt_t r[] = {
        {"b@y.test", "alice@alias.test"},
        {"c@y.test", "team@alias.test"},
        {"d@z.test", "team@alias.test"},
    };
    const fake_record_t *dsn;
    char idc[SPOOL_ID_SIZE], want[256];
    const char *status, *rcpt1, *rcpt2;
    mime_t m;

    fake_rule(&fake, "b@y.test", DELIVERY_PERMFAIL, "550 5.1.1 <b@y.test>: no such user", "5.1.1");
    fake_rule(&fake, "d@z.test", DELIVERY_PERMFAIL, "Host or domain name not found", "5.4.4");
    fake.rules[1].remote = false;
    fake.rules[1].relay = "none";
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 3));

    /* Two domains, two jobs; one DSN for both bounces. */
    cr_assert_eq(jobs_to("someone@origin.test"), 1, "exactly one DSN");
    dsn = last_job_to("someone@origin.test");
    cr_assert_str_eq(dsn->sender, "", "from <>");
    cr_assert_eq(dsn->nrcpts, 1);
    cr_assert_str_eq(dsn->orig[0], "", "no alias for the DSN's recipient");
    snprintf(want, sizeof(want), "%s: sender non-delivery notification: %s", idc, dsn->queue_id);
    cr_assert(strstr(log_text(), want) != NULL, "%s", log_text());

    m = parse_dsn(dsn->bytes);
    cr_assert_str_eq(field(m.headers, "From"), "Mail Delivery System <MAILER-DAEMON@fwd.test>");
    cr_assert_str_eq(field(m.headers, "To"), "<someone@origin.test>");
    cr_assert_str_eq(field(m.headers, "Auto-Submitted"), "auto-replied");
    cr_assert_str_eq(field(m.headers, "MIME-Version"), "1.0");
    cr_assert_str_eq(field(m.headers, "Date"), "Fri, 27 Nov 2026 17:20:00 +0000");
    cr_assert(strstr(m.headers, "Content-Type: multipart/report; report-type=delivery-status;") !=
              NULL);
    cr_assert_eq(m.nparts, 3);

    /* 1: for people. */
    cr_assert_str_eq(field(m.part[0], "Content-Type"), "text/plain; charset=us-ascii");
    cr_assert(strstr(m.part[0], "<b@y.test> (forwarded for <alice@alias.test>):\r\n"
                                "    host mx.fake.test[192.0.2.25]:25 said: 550 5.1.1 <b@y.test>: "
                                "no such user\r\n") != NULL,
              "%s", m.part[0]);
    cr_assert(strstr(m.part[0], "c@y.test") == NULL, "only the failed recipients");

    /* 2: the delivery report, field by field. */
    cr_assert_str_eq(field(m.part[1], "Content-Type"), "message/delivery-status");
    status = strstr(m.part[1], "\r\n\r\n") + 4;
    cr_assert_str_eq(field(status, "Reporting-MTA"), "dns; fwd.test");
    cr_assert_str_eq(field(status, "X-mxfwd-Queue-ID"), idc);
    cr_assert_str_eq(field(status, "Arrival-Date"), "Fri, 27 Nov 2026 17:20:00 +0000");
    rcpt1 = strstr(status, "\r\n\r\nFinal-Recipient: rfc822; b@y.test\r\n");
    cr_assert_not_null(rcpt1, "%s", status);
    rcpt1 += 4;
    rcpt2 = strstr(rcpt1, "\r\n\r\n");
    cr_assert_not_null(rcpt2);
    rcpt2 += 4;
    cr_assert_str_eq(field(rcpt1, "Original-Recipient"), "rfc822;alice@alias.test");
    cr_assert_str_eq(field(rcpt1, "Action"), "failed");
    cr_assert_str_eq(field(rcpt1, "Status"), "5.1.1");
    cr_assert_str_eq(field(rcpt1, "Remote-MTA"), "dns; mx.fake.test");
    cr_assert_str_eq(field(rcpt1, "Diagnostic-Code"), "smtp; 550 5.1.1 <b@y.test>: no such user");
    cr_assert_str_eq(field(rcpt1, "Last-Attempt-Date"), "Fri, 27 Nov 2026 17:20:00 +0000");
    /* The second block: mxfwd's own reason, no remote host. */
    cr_assert_str_eq(field(rcpt2, "Final-Recipient"), "rfc822; d@z.test");
    cr_assert_str_eq(field(rcpt2, "Original-Recipient"), "rfc822;team@alias.test");
    cr_assert_str_eq(field(rcpt2, "Status"), "5.4.4");
    cr_assert_null(field(rcpt2, "Remote-MTA"));
    cr_assert_str_eq(field(rcpt2, "Diagnostic-Code"), "X-mxfwd; Host or domain name not found");
    cr_assert_null(strstr(status, "c@y.test"));

    /* 3: the original headers, not the body. */
    cr_assert_str_eq(field(m.part[2], "Content-Type"), "text/rfc822-headers");
    cr_assert(strstr(m.part[2], prepend) != NULL);
    cr_assert(strstr(m.part[2], "Subject: hello\r\nMessage-ID: <m1@origin.test>\r\n") != NULL);
    cr_assert_null(strstr(m.part[2], "Body line one"));
    mime_free(&m);

    /* The DSN went out and everything is final. */
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(stats_get(stats, "bounced", NULL), 2);
    cr_assert_eq(stats_get(stats, "dsn", NULL), 1);
}

Test(queue, no_dsn_for_a_message_from_the_null_sender)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", "SRS0=x=y=origin.test=u@fwd.test"}};

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    submit("", r, 1);
    cr_assert_eq(fake.nrec, 1, "the message, and no DSN");
    cr_assert_str_eq(fake.rec[0].sender, "");
    cr_assert(strstr(log_text(), "status=bounced (550 5.1.1 no such user)") != NULL);
    cr_assert_null(strstr(log_text(), "non-delivery notification"));
    cr_assert_str_eq(listing(), "");
    cr_assert_eq(stats_get(stats, "dsn", NULL), 0);
}

Test(queue, a_dsn_that_bounces_gets_no_dsn)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", NULL}};

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    fake_rule(&fake, "@origin.test", DELIVERY_PERMFAIL, "550 5.7.1 no thanks", "5.7.1");
    submit("someone@origin.test", r, 1);
    cr_assert_eq(fake.nrec, 2, "the message and its DSN, nothing about the DSN");
    cr_assert_eq(stats_get(stats, "dsn", NULL), 1);
    cr_assert_str_eq(listing(), "");
}

Test(queue, partial_results_are_each_recorded_and_survive_a_restart)
{
    static const spool_env_rcpt_t r[] = {
        {"ok@a.test", "alice@alias.test"},
        {"later@b.test", "team@alias.test"},
        {"never@c.test", "team@alias.test"},
    };
    char idc[SPOOL_ID_SIZE];

    fake_rule(&fake, "@b.test", DELIVERY_TEMPFAIL, "450 4.2.1 later", "4.2.1");
    fake_rule(&fake, "@c.test", DELIVERY_PERMFAIL, "554 5.7.1 refused", "5.7.1");
    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 3));
    cr_assert_eq(jobs_to("someone@origin.test"), 1);
    cr_assert_str_eq(view("ok@a.test").state, "sent");
    cr_assert_str_eq(view("later@b.test").state, "deferred");
    cr_assert_str_eq(view("never@c.test").state, "bounced");
    /* The message stays for its deferred recipient. */
    cr_assert(strstr(listing(), idc) != NULL);

    /* A new process over the same spool sees the same states, and tries
     * only the deferred recipient, at its time. */
    restart();
    cr_assert_eq(fake.nrec, 0, "nothing is due at once");
    cr_assert_str_eq(view("ok@a.test").state, "sent");
    cr_assert_str_eq(view("never@c.test").state, "bounced");
    cr_assert_str_eq(view("later@b.test").state, "deferred");
    cr_assert_eq(view("later@b.test").next, T0 + 60 * S);
    cr_assert_str_eq(view("later@b.test").reply, "450 4.2.1 later");
    fake_clear_rules(&fake);
    advance(60);
    cr_assert_eq(fake.nrec, 1);
    cr_assert_eq(fake.rec[0].nrcpts, 1);
    cr_assert_str_eq(fake.rec[0].rcpt[0], "later@b.test");
    cr_assert_str_eq(listing(), "");
}

Test(queue, a_restart_does_not_resend_to_recipients_already_sent)
{
    static const spool_env_rcpt_t r[] = {
        {"one@a.test", NULL},
        {"two@a.test", NULL},
    };

    fake_rule(&fake, "two@a.test", DELIVERY_TEMPFAIL, "451 4.3.0 later", NULL);
    submit("someone@origin.test", r, 2);
    cr_assert_eq(fake.nrec, 1);
    cr_assert_eq(fake.rec[0].nrcpts, 2, "one transaction for the domain");
    restart();
    fake_clear_rules(&fake);
    advance(60);
    cr_assert_eq(fake.nrec, 1);
    cr_assert_eq(fake.rec[0].nrcpts, 1);
    cr_assert_str_eq(fake.rec[0].rcpt[0], "two@a.test");
}

Test(queue, pending_messages_are_delivered_after_a_restart)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", NULL}};

    /* Committed, then the process stops before any delivery. */
    fake.hold = true;
    submit("someone@origin.test", r, 1);
    cr_assert_eq(fake.nrec, 1);
    close_all(); /* the held job ends with a temporary failure, not recorded */
    cr_assert_neq(listing()[0], '\0');
    open_all();
    settle();
    cr_assert_eq(fake.nrec, 1, "tried at once on start");
    cr_assert_str_eq(listing(), "");
}

Test(queue, a_dsn_is_committed_before_the_bounce_is_recorded)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", NULL}};

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    /* The disk is full when the DSN is written. */
    fake.hold = true;
    submit("someone@origin.test", r, 1);
    atomic_store(&fail_writes, true);
    fake_release(&fake);
    settle();
    cr_assert(strstr(log_text(), "cannot queue a non-delivery notification") != NULL);
    cr_assert_eq(jobs_to("someone@origin.test"), 0);
    /* Not bounced: it waits for the next attempt. */
    cr_assert_str_eq(view("b@y.test").state, "pending");
    cr_assert_eq(view("b@y.test").next, T0 + 60 * S);
    /* Nothing was recorded either: a restart tries it again at once. */
    atomic_store(&fail_writes, false);
    restart();
    cr_assert_eq(fake.nrec, 2, "tried again on start, and its DSN");
    cr_assert_eq(jobs_to("someone@origin.test"), 1, "and this time the DSN goes");
    cr_assert_str_eq(listing(), "");
}

/* ---- DSN parameters (RFC 3461) ---- */

Test(queue, dsn_parameters_reach_the_delivery_and_notify_never_silences_the_bounce)
{
    static const spool_env_rcpt_t r[] = {
        {"b@y.test", "alice@alias.test", SPOOL_NOTIFY_NEVER, NULL},
        {"c@y.test", "team@alias.test", SPOOL_NOTIFY_SUCCESS, "rfc822;team@alias.test"},
    };
    const fake_record_t *job;

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    next_ret = SPOOL_RET_HDRS;
    next_envid = "QQ314159";
    submit("someone@origin.test", r, 2);
    job = &fake.rec[0];
    cr_assert_eq(job->ret, SPOOL_RET_HDRS);
    cr_assert_str_eq(job->envid, "QQ314159");
    cr_assert_eq(job->notify[0], SPOOL_NOTIFY_NEVER);
    cr_assert_eq(job->notify[1], SPOOL_NOTIFY_SUCCESS);
    cr_assert_str_eq(job->orcpt[1], "rfc822;team@alias.test");
    /* Neither asked to hear of a failure: bounced, recorded, no DSN. */
    cr_assert_eq(jobs_to("someone@origin.test"), 0);
    cr_assert_str_eq(listing(), "");
    cr_assert_null(strstr(log_text(), "notification"), "%s", log_text());
}

Test(queue, the_bounce_reports_only_those_that_asked_with_envid_and_orcpt)
{
    static const spool_env_rcpt_t r[] = {
        {"b@y.test", "alice@alias.test", SPOOL_NOTIFY_FAILURE, "rfc822;Alice@Alias.test"},
        {"c@y.test", "team@alias.test", SPOOL_NOTIFY_NEVER, NULL},
    };
    const fake_record_t *dsn;
    mime_t m;

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    next_envid = "QQ314159";
    submit("someone@origin.test", r, 2);
    cr_assert_eq(jobs_to("someone@origin.test"), 1);
    dsn = last_job_to("someone@origin.test");
    m = parse_dsn(dsn->bytes);
    cr_assert_str_eq(field(m.part[1], "Original-Envelope-Id"), "QQ314159");
    cr_assert_str_eq(field(m.part[1], "Original-Recipient"), "rfc822;Alice@Alias.test");
    cr_assert_null(strstr(dsn->bytes, "c@y.test"), "c asked for no notice");
    mime_free(&m);
}

Test(queue, notify_success_gets_a_relayed_notice_unless_the_next_hop_takes_it)
{
    static const spool_env_rcpt_t r[] = {
        {"b@y.test", "alice@alias.test", SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE, NULL},
        {"c@y.test", "team@alias.test", 0, NULL},
    };
    const fake_record_t *dsn;
    char idc[SPOOL_ID_SIZE], want[128];
    mime_t m;

    snprintf(idc, sizeof(idc), "%s", submit("someone@origin.test", r, 2));
    cr_assert_eq(jobs_to("someone@origin.test"), 1, "one notice, for b only");
    dsn = last_job_to("someone@origin.test");
    cr_assert_str_eq(dsn->sender, "");
    m = parse_dsn(dsn->bytes);
    cr_assert_str_eq(field(m.headers, "Subject"), "Successful Mail Delivery Report");
    cr_assert_str_eq(field(m.part[1], "Final-Recipient"), "rfc822; b@y.test");
    cr_assert_str_eq(field(m.part[1], "Action"), "relayed");
    cr_assert_str_eq(field(m.part[1], "Status"), "2.0.0");
    cr_assert_null(strstr(m.part[1], "c@y.test"));
    snprintf(want, sizeof(want), "%s: sender delivery status notification: %s", idc,
             dsn->queue_id);
    cr_assert(strstr(log_text(), want) != NULL, "%s", log_text());
    mime_free(&m);

    /* A next hop that took NOTIFY= reports itself: nothing from mxfwd. */
    fake.dsn_hop = true;
    submit("other@origin.test", r, 2);
    cr_assert_eq(jobs_to("other@origin.test"), 0);
}

Test(queue, notify_delay_gets_one_delayed_notice_after_delay_warning_time)
{
    static const spool_env_rcpt_t r[] = {
        {"b@slow.test", "alice@alias.test", SPOOL_NOTIFY_DELAY | SPOOL_NOTIFY_FAILURE, NULL},
        {"c@slow.test", "team@alias.test", 0, NULL},
    };
    const fake_record_t *dsn;
    mime_t m;

    delay_warning = 600;
    restart();
    fake_rule(&fake, "@slow.test", DELIVERY_TEMPFAIL, "451 4.2.0 mailbox busy", "4.2.0");
    submit("someone@origin.test", r, 2);
    cr_assert_eq(jobs_to("someone@origin.test"), 0, "not before delay_warning_time");
    advance(60);
    cr_assert_eq(jobs_to("someone@origin.test"), 0);
    advance(600);
    cr_assert_eq(jobs_to("someone@origin.test"), 1, "b's notice, once");
    dsn = last_job_to("someone@origin.test");
    m = parse_dsn(dsn->bytes);
    cr_assert_str_eq(field(m.headers, "Subject"), "Delayed Mail (still being retried)");
    cr_assert_str_eq(field(m.part[1], "Action"), "delayed");
    cr_assert_str_eq(field(m.part[1], "Status"), "4.2.0");
    cr_assert_not_null(field(m.part[1], "Will-Retry-Until"));
    cr_assert_null(strstr(m.part[1], "c@slow.test"), "c asked for nothing of the kind");
    mime_free(&m);
    advance(3600);
    cr_assert_eq(jobs_to("someone@origin.test"), 1, "and only once");
}

Test(queue, hidden_destinations_report_the_alias_and_keep_the_mailbox_out)
{
    static const spool_env_rcpt_t r[] = {{"private.box@y.test", "alice@alias.test"}};
    const fake_record_t *dsn;
    mime_t m;

    hide_destinations = true;
    restart();
    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL,
              "550 5.1.1 <Private.Box@y.test>: mailbox private.box@y.test unknown", "5.1.1");
    submit("someone@origin.test", r, 1);
    dsn = last_job_to("someone@origin.test");
    cr_assert_not_null(dsn);
    m = parse_dsn(dsn->bytes);
    cr_assert_str_eq(field(m.part[1], "Final-Recipient"), "rfc822; alice@alias.test");
    cr_assert_str_eq(field(m.part[1], "Diagnostic-Code"),
                     "smtp; 550 5.1.1 <alice@alias.test>: mailbox alice@alias.test unknown");
    cr_assert(strstr(m.part[0], "<alice@alias.test>):") != NULL, "%s", m.part[0]);
    /* Nowhere in the notice, in any case. */
    cr_assert_null(strcasestr(dsn->bytes, "private.box"), "%s", dsn->bytes);
    mime_free(&m);
}

Test(queue, ret_full_returns_the_whole_message)
{
    static const spool_env_rcpt_t r[] = {{"b@y.test", "alice@alias.test"}};
    const fake_record_t *dsn;
    mime_t m;

    fake_rule(&fake, "@y.test", DELIVERY_PERMFAIL, "550 5.1.1 no such user", "5.1.1");
    next_ret = SPOOL_RET_FULL;
    submit("someone@origin.test", r, 1);
    dsn = last_job_to("someone@origin.test");
    m = parse_dsn(dsn->bytes);
    cr_assert_str_eq(field(m.part[2], "Content-Type"), "message/rfc822");
    cr_assert(strstr(m.part[2], "Body line one.\r\n") != NULL, "%s", m.part[2]);
    cr_assert(strstr(m.part[0], "your message is attached") != NULL);
    mime_free(&m);
}
