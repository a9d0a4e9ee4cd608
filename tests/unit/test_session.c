/* Unit tests for the inbound session (smtpd/session*.c) without a daemon:
 * an smtpd_t on a libuv loop, a real spool in a temporary directory, the
 * sender checks on a resolver that asks a real dnsmasq (every name
 * NXDOMAIN), and one end of a socketpair given to smtpd_open().  The test
 * holds the other end and plays the client: each script is a table of
 * {bytes sent -> replies expected}, run in a fresh session. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dnsmasq.h"
#include "smtpd.h"
#include "spool_uv.h"
#include "testdir.h"
#include "tls.h"

/* The clock the sessions see: 2026-12-07 00:00:00 UTC. */
#define RIG_NOW ((time_t)1796601600)
#define RIG_SECRET "session-test-secret"

static test_dnsmasq_t dns = TEST_DNSMASQ_INIT;

static void start_dns(void)
{
    /* Every name NXDOMAIN but those the policy tests ask for: the client
     * (192.0.2.1) listed in bl.test, a sender domain that exists. */
    const char *const records[] = {"--local=/#/",
                                   "--host-record=1.2.0.192.bl.test,127.0.0.2",
                                   "--txt-record=1.2.0.192.bl.test,listed for the unit test",
                                   "--mx-host=exists.test,mx.exists.test,10",
                                   NULL};

    cr_assert_eq(test_dnsmasq_start(&dns, records), 0, "dnsmasq did not start");
}

static void stop_dns(void)
{
    test_dnsmasq_stop(&dns);
}

TestSuite(session, .init = start_dns, .fini = stop_dns, .timeout = 60);

/* ---- the rig: a server with everything a session needs ---------------------- */

typedef struct {
    uv_loop_t loop;
    dns_resolver_t *resolver;
    auth_ctx_t *auth;
    spool_t *spool;
    srs_t *srs;
    smtpd_t *smtpd;
    stats_t *stats;
    char dir[256];
    char cert[300], key[300];
    uint64_t clock_ms; /* the rate limits' clock */
    /* What the hooks saw. */
    spool_msg_t *accepted[8];
    size_t naccepted;
    bool drained;
} rig_t;

static void rig_accepted(void *arg, spool_msg_t *msg)
{
    rig_t *r = arg;

    cr_assert_lt(r->naccepted, 8);
    r->accepted[r->naccepted++] = msg;
}

static time_t rig_now(void *arg)
{
    (void)arg;
    return RIG_NOW;
}

static void rig_drained(void *arg)
{
    ((rig_t *)arg)->drained = true;
}

static uint64_t rig_clock_ms(void *arg)
{
    return ((rig_t *)arg)->clock_ms;
}

/* Set by a test before rig_open(): changes to the server's options. */
static void (*rig_tweak)(smtpd_options_t *o, void *arg);
static void *rig_tweak_arg;

static const char rig_table[] = "alice@alias.test  alice@dest.test\n"
                                "bob@alias.test    bob@dest.test\n"
                                "carol@alias.test  carol@dest.test\n"
                                "dave@alias.test   dave@dest.test\n";

/* A self-signed certificate for STARTTLS, made with the openssl command. */
static void rig_make_certificate(rig_t *r)
{
    char cmd[1024];

    snprintf(r->cert, sizeof(r->cert), "%s/cert.pem", r->dir);
    snprintf(r->key, sizeof(r->key), "%s/key.pem", r->dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=mx.test -keyout %s -out %s >/dev/null 2>&1",
             r->key, r->cert);
    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");
}

static void rig_open(rig_t *r, bool tls)
{
    const char *servers[] = {dns.server};
    const char *secrets[] = {RIG_SECRET};
    dns_options_t dopt = {.servers = servers, .nservers = 1};
    spool_options_t sopt;
    auth_config_t acfg = {
        .hostname = "mx.test",
        .spf_action = AUTH_ACTION_REJECT,
        .dmarc_action = AUTH_ACTION_REJECT,
    };
    smtpd_options_t opts = {
        .hostname = "mx.test",
        .srs_domain = "fwd.test",
        .max_message_size = 2048,
        .max_recipients = 3,
        .max_connections = 10,
        .max_connections_per_ip = 10,
        .timeout = 30,
        .max_line_length = 512,
        .max_errors = 4,
        .max_hops = 3,
        .shutdown_grace = 1,
    };
    smtpd_hooks_t hooks = {.accepted = rig_accepted,
                           .now = rig_now,
                           .clock_ms = rig_clock_ms,
                           .drained = rig_drained,
                           .arg = r};
    table_t *table = NULL;
    char err[512];

    memset(r, 0, sizeof(*r));
    cr_assert_eq(uv_loop_init(&r->loop), 0);
    cr_assert_eq(test_dir_make("mxfwd-session", r->dir, sizeof(r->dir)), 0);
    cr_assert_eq(dns_resolver_new(&r->loop, &dopt, &r->resolver), 0);
    acfg.loop = &r->loop;
    acfg.resolver = r->resolver;
    auth_txt_resolver(r->resolver, &acfg.txt);
    cr_assert_eq(auth_ctx_new(&acfg, &r->auth), 0);
    sopt = (spool_options_t){.exec = spool_uv_executor(&r->loop)};
    cr_assert_eq(spool_open(r->dir, &sopt, &r->spool), 0);
    cr_assert_eq(srs_new("fwd.test", 21, secrets, 1, &r->srs), 0);
    cr_assert_eq(table_parse("forwards", rig_table, strlen(rig_table), NULL, NULL, &table), 0);

    r->stats = opts.stats = stats_new();
    opts.resolver = r->resolver;
    opts.auth = r->auth;
    if (rig_tweak != NULL)
        rig_tweak(&opts, rig_tweak_arg);
    rig_tweak = NULL;
    r->smtpd = smtpd_new(&r->loop, &opts, &hooks);
    smtpd_set_spool(r->smtpd, r->spool);
    smtpd_set_table(r->smtpd, table);
    /* The server owns the rewriter; the rig keeps a pointer to sign SRS
     * addresses of its own. */
    smtpd_set_srs(r->smtpd, r->srs);
    if (tls) {
        SSL_CTX *ctx;

        rig_make_certificate(r);
        ctx = tls_server_ctx(r->cert, r->key, err, sizeof(err));
        cr_assert_not_null(ctx, "%s", err);
        smtpd_set_tls(r->smtpd, ctx);
    }
}

static void rig_close(rig_t *r)
{
    smtpd_stop(r->smtpd);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    cr_assert(r->drained, "a session is left after its client closed");
    smtpd_close(r->smtpd);
    auth_ctx_release(r->auth);
    dns_resolver_close(r->resolver, NULL, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < r->naccepted; i++)
        spool_msg_free(r->accepted[i]);
    cr_assert_eq(spool_close(r->spool), 0);
    cr_assert_eq(uv_loop_close(&r->loop), 0, "handles left on the loop");
    stats_free(r->stats);
    test_dir_remove(r->dir);
}

/* ---- the client's end of the socketpair -------------------------------------- */

typedef struct {
    int fd;
    SSL_CTX *ctx; /* after STARTTLS */
    tls_t *tls;
    buf_t in; /* replies read, not yet matched */
    bool eof;
} peer_t;

static void peer_connect(rig_t *r, peer_t *p)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4444)};
    int fds[2];

    memset(p, 0, sizeof(*p));
    buf_init(&p->in, 1 << 20);
    inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    cr_assert_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    p->fd = fds[1];
    smtpd_open(r->smtpd, fds[0], (const struct sockaddr *)&sin);
}

/* Run the loop a little and read what the session wrote. */
static void peer_pump(rig_t *r, peer_t *p)
{
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    char b[16384];
    ssize_t n;

    uv_run(&r->loop, UV_RUN_NOWAIT);
    if (p->eof || poll(&pfd, 1, 5) <= 0)
        return;
    while ((n = read(p->fd, b, sizeof(b))) > 0) {
        if (p->tls == NULL) {
            cr_assert_eq(buf_append(&p->in, b, (size_t)n), 0);
            continue;
        }
        tls_feed(p->tls, b, (size_t)n);
        while (tls_read(p->tls, &p->in) == TLS_OK)
            ;
    }
    if (n == 0)
        p->eof = true;
}

static void peer_write(rig_t *r, peer_t *p, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(p->fd, data, n);
        if (w < 0) {
            cr_assert(errno == EAGAIN, "write: %s", strerror(errno));
            peer_pump(r, p);
            continue;
        }
        data += w;
        n -= (size_t)w;
    }
}

/* Ciphertext the client's TLS has for the session. */
static void peer_flush_tls(rig_t *r, peer_t *p)
{
    buf_t wire;

    buf_init(&wire, 1 << 20);
    while (tls_has_output(p->tls)) {
        cr_assert_geq(tls_drain(p->tls, &wire), 0);
        peer_write(r, p, buf_ptr(&wire), buf_used(&wire));
        buf_reset(&wire);
    }
    buf_free(&wire);
}

static void peer_send(rig_t *r, peer_t *p, const char *data)
{
    if (p->tls == NULL) {
        peer_write(r, p, data, strlen(data));
        return;
    }
    cr_assert_eq(tls_write(p->tls, data, strlen(data)), TLS_OK);
    peer_flush_tls(r, p);
}

/* After "220 2.0.0 Ready to start TLS": the client's handshake. */
static void peer_start_tls(rig_t *r, peer_t *p)
{
    char err[256];

    p->ctx = tls_client_ctx(false, err, sizeof(err));
    cr_assert_not_null(p->ctx, "%s", err);
    p->tls = tls_new(p->ctx, false, "mx.test");
    cr_assert_not_null(p->tls);
    tls_connect(p->tls);
    for (int i = 0; i < 1000 && !tls_established(p->tls); i++) {
        peer_flush_tls(r, p);
        peer_pump(r, p);
    }
    cr_assert(tls_established(p->tls), "no TLS handshake");
    peer_flush_tls(r, p);
}

static void peer_close(rig_t *r, peer_t *p)
{
    close(p->fd);
    tls_free(p->tls);
    if (p->ctx != NULL)
        SSL_CTX_free(p->ctx);
    buf_free(&p->in);
    /* The session sees the end of its input and goes. */
    for (int i = 0; i < 400 && smtpd_sessions(r->smtpd) > 0; i++)
        peer_pump(r, p);
}

/* The number of whole replies (final lines, "DDD ") in text. */
static size_t replies_in(const char *text, size_t len)
{
    size_t n = 0, i = 0;

    while (i < len) {
        const char *eol = memmem(text + i, len - i, "\r\n", 2);
        if (eol == NULL)
            break;
        if (eol - (text + i) >= 4 && text[i + 3] == ' ')
            n++;
        i = (size_t)(eol - text) + 2;
    }
    return n;
}

/* Whether line matches pattern, where '*' stands for any run of bytes. */
static bool line_matches(const char *pat, size_t plen, const char *s, size_t slen)
{
    if (plen == 0)
        return slen == 0;
    if (pat[0] == '*') {
        for (size_t k = 0; k <= slen; k++)
            if (line_matches(pat + 1, plen - 1, s + k, slen - k))
                return true;
        return false;
    }
    return slen > 0 && pat[0] == s[0] && line_matches(pat + 1, plen - 1, s + 1, slen - 1);
}

/* Wait for the replies expect lists (lines joined by "\r\n", '*' a
 * wildcard) and match them; "<closed>" at the end: then the session
 * closes the connection. */
static void peer_expect(rig_t *r, peer_t *p, const char *expect, const char *what)
{
    const char *closed = strstr(expect, "<closed>");
    size_t elen = closed != NULL ? (size_t)(closed - expect) : strlen(expect);
    size_t want = replies_in(expect, elen), got_len = 0;
    const char *e = expect, *g;

    for (int i = 0; i < 1000 && replies_in(buf_ptr(&p->in), buf_used(&p->in)) < want && !p->eof;
         i++)
        peer_pump(r, p);
    g = buf_ptr(&p->in);
    for (size_t k = 0; k < want;) {
        const char *eeol = memmem(e, elen - (size_t)(e - expect), "\r\n", 2);
        const char *geol = memmem(g, buf_used(&p->in) - (size_t)(g - buf_ptr(&p->in)), "\r\n", 2);
        cr_assert_not_null(geol, "%s: expected %s, got %.*s", what, expect, (int)buf_used(&p->in),
                           buf_ptr(&p->in));
        cr_assert(line_matches(e, (size_t)(eeol - e), g, (size_t)(geol - g)),
                  "%s: expected %.*s, got %.*s", what, (int)(eeol - e), e, (int)(geol - g), g);
        if (geol - g >= 4 && g[3] == ' ')
            k++;
        e = eeol + 2;
        g = geol + 2;
    }
    got_len = (size_t)(g - buf_ptr(&p->in));
    buf_consume(&p->in, got_len);
    if (closed != NULL) {
        for (int i = 0; i < 1000 && !p->eof; i++)
            peer_pump(r, p);
        cr_assert(p->eof, "%s: the session did not close", what);
    }
    cr_assert_eq(buf_used(&p->in), 0, "%s: more than expected: %.*s", what, (int)buf_used(&p->in),
                 buf_ptr(&p->in));
}

/* ---- scripts ----------------------------------------------------------------- */

#define GREETING "220 mx.test ESMTP mxfwd\r\n"
#define EHLO_REPLY                                                                                 \
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 2048\r\n250-8BITMIME\r\n"                           \
    "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250 CHUNKING\r\n"
#define MESSAGE "From: <a@origin.test>\r\nSubject: hi\r\n\r\nHello.\r\n"

typedef struct {
    const char *send;   /* NULL: nothing, only wait for the expected replies */
    const char *expect; /* the replies, "\r\n" after each line */
} step_t;

typedef struct {
    const char *name;
    step_t steps[12];
} script_t;

static const script_t scripts[] = {
    {"ehlo lists the extensions, QUIT closes",
     {{NULL, GREETING},
      {"EHLO client.test\r\n", EHLO_REPLY},
      {"QUIT\r\n", "221 2.0.0 Bye\r\n<closed>"}}},
    {"HELO greets without extensions",
     {{NULL, GREETING}, {"HELO client.test\r\n", "250 mx.test\r\n"}}},
    {"MAIL before HELO",
     {{NULL, GREETING},
      {"MAIL FROM:<a@origin.test>\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n"}}},
    {"RCPT and DATA need MAIL",
     {{NULL, GREETING},
      {"EHLO c.test\r\n", EHLO_REPLY},
      {"RCPT TO:<alice@alias.test>\r\n", "503 5.5.1 Error: need MAIL command\r\n"},
      {"DATA\r\n", "503 5.5.1 Error: need MAIL command\r\n"}}},
    {"nested MAIL, and DATA before RCPT",
     {{NULL, GREETING},
      {"EHLO c.test\r\n", EHLO_REPLY},
      {"MAIL FROM:<a@origin.test>\r\n", "250 2.1.0 Ok\r\n"},
      {"MAIL FROM:<b@origin.test>\r\n", "503 5.5.1 Error: nested MAIL command\r\n"},
      {"DATA\r\n", "503 5.5.1 Error: need RCPT command\r\n"}}},
    {"every recipient refused: DATA is 554",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<zed@alias.test>\r\n"
       "RCPT TO:<x@elsewhere.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n"
                  "550 5.1.1 <zed@alias.test>: Recipient address rejected: User unknown\r\n"
                  "554 5.7.1 <x@elsewhere.test>: Relay access denied\r\n"
                  "554 5.5.1 No valid recipients\r\n"}}},
    {"RSET ends the transaction",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRSET\r\nRCPT TO:<alice@alias.test>\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n"}}},
    {"a pipelined transaction, answered in order",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"},
      {MESSAGE ".\r\nNOOP\r\n", "250 2.0.0 Ok: queued as *\r\n250 2.0.0 Ok\r\n"}}},
    {"BDAT in two chunks",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@alias.test>\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"},
      {"BDAT 23\r\nFrom: <a@origin.test>\r\n", "250 2.0.0 Ok: 23 octets\r\n"},
      {"BDAT 23 LAST\r\nSubject: hi\r\n\r\nHello.\r\n", "250 2.0.0 Ok: queued as *\r\n"}}},
    {"BDAT sequence errors keep the session in step",
     {{NULL, GREETING},
      {"EHLO c.test\r\nBDAT 5\r\nhelloNOOP\r\n",
       EHLO_REPLY "503 5.5.1 Error: bad sequence of commands\r\n250 2.0.0 Ok\r\n"},
      {"MAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@alias.test>\r\nBDAT 3\r\nabc",
       "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 3 octets\r\n"},
      {"DATA\r\n", "503 5.5.1 Error: DATA after BDAT\r\n"},
      {"MAIL FROM:<b@origin.test>\r\n", "503 5.5.1 Error: BDAT transaction in progress\r\n"},
      {"RSET\r\n", "250 2.0.0 Ok\r\n"}}},
    {"BDAT needs EHLO",
     {{NULL, GREETING},
      {"HELO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@alias.test>\r\nBDAT 2 "
       "LAST\r\nabNOOP\r\n",
       "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n503 5.5.1 Error: BDAT needs EHLO\r\n"
       "250 2.0.0 Ok\r\n"}}},
    {"a line too long is refused and the session goes on",
     {{NULL, GREETING},
      {"NOOP "
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "\r\nNOOP\r\n",
       "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"}}},
    {"a bare LF ends no command",
     {{NULL, GREETING},
      {"NOOP\nNOOP\r\n",
       "500 5.5.2 Command line must end with CRLF, without bare CR or LF\r\n250 2.0.0 Ok\r\n"}}},
    {"too many errors: 421 and the session closes",
     {{NULL, GREETING},
      {"FOO\r\nBAR\r\nBAZ\r\nQUX\r\nNOOP\r\n",
       "500 5.5.2 Command unrecognized\r\n500 5.5.2 Command unrecognized\r\n"
       "500 5.5.2 Command unrecognized\r\n500 5.5.2 Command unrecognized\r\n"
       "421 4.7.0 mx.test Error: too many errors, closing connection\r\n<closed>"}}},
    {"too many recipients",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\n"
       "RCPT TO:<bob@alias.test>\r\nRCPT TO:<carol@alias.test>\r\nRCPT TO:<dave@alias.test>\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                  "452 4.5.3 <dave@alias.test>: Too many recipients\r\n"}}},
    {"a declared size over the limit",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test> SIZE=4096\r\n",
       EHLO_REPLY "552 5.3.4 Message size exceeds fixed limit\r\n"}}},
    {"a message over the limit is refused at its end",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"},
      {MESSAGE "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               "0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n"
               ".\r\n",
       "552 5.3.4 Message size exceeds fixed limit\r\n"}}},
    {"a bare LF in the message",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"},
      {"Subject: x\r\n\r\nbare\nline\r\n.\r\n",
       "554 5.5.2 Message refused: bare CR or LF in message (RFC 5321 2.3.8)\r\n"}}},
    {"too many hops",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"},
      {"Received: a\r\nReceived: b\r\nReceived: c\r\nReceived: d\r\n" MESSAGE ".\r\n",
       "554 5.4.6 Too many hops: mail forwarding loop\r\n"}}},
    {"Received: with white space before the colon counts as a hop",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"},
      {"Received :a\r\nReceived\t: b\r\nReceived: c\r\nreceived : d\r\n" MESSAGE ".\r\n",
       "554 5.4.6 Too many hops: mail forwarding loop\r\n"}}},
    {"a From below a line that is no header field is no author",
     {{NULL, GREETING},
      {"EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n",
       EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"},
      /* The client's ".." is an unstuffed "." line: the header section
       * ends there for a receiver, and its From with it. */
      {"..\r\n" MESSAGE ".\r\n",
       "550 5.7.1 Message has no From: header; RFC 5322 requires one\r\n"}}},
    {"STARTTLS without a certificate",
     {{NULL, GREETING},
      {"EHLO c.test\r\nSTARTTLS\r\n", EHLO_REPLY "502 5.5.1 Command not implemented\r\n"}}},
    {"an HTTP request ends the session",
     {{NULL, GREETING},
      {"GET / HTTP/1.0\r\n",
       "421 4.7.0 mx.test Error: this is an SMTP server, closing connection\r\n<closed>"}}},
    {"VRFY discloses nothing; AUTH is not offered",
     {{NULL, GREETING},
      {"VRFY alice\r\nAUTH PLAIN\r\n",
       "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"
       "502 5.5.1 Command not implemented\r\n"}}},
};

static void run_script(rig_t *r, const script_t *sc)
{
    peer_t p;

    peer_connect(r, &p);
    for (size_t i = 0; i < sizeof(sc->steps) / sizeof(sc->steps[0]); i++) {
        const step_t *st = &sc->steps[i];
        char what[256];

        if (st->send == NULL && st->expect == NULL)
            break;
        snprintf(what, sizeof(what), "%s, step %zu", sc->name, i + 1);
        if (st->send != NULL)
            peer_send(r, &p, st->send);
        peer_expect(r, &p, st->expect, what);
    }
    peer_close(r, &p);
}

Test(session, the_state_machine_answers_each_script)
{
    rig_t r;

    rig_open(&r, false);
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
        run_script(&r, &scripts[i]);
    /* Two scripts deliver a message. */
    cr_assert_eq(r.naccepted, 2);
    rig_close(&r);
}

/* A session over TLS forgets what came before (RFC 3207 4.2). */
Test(session, starttls_starts_the_session_afresh)
{
    rig_t r;
    peer_t p;

    rig_open(&r, true);
    peer_connect(&r, &p);
    peer_expect(&r, &p, GREETING, "greeting");
    peer_send(&r, &p, "EHLO c.test\r\n");
    peer_expect(&r, &p,
                "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 2048\r\n250-8BITMIME\r\n"
                "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
                "EHLO offers STARTTLS");
    /* A command pipelined behind STARTTLS was sent in the clear: dropped
     * (CVE-2011-0411), never answered. */
    peer_send(&r, &p, "STARTTLS\r\nMAIL FROM:<a@origin.test>\r\n");
    peer_expect(&r, &p, "220 2.0.0 Ready to start TLS\r\n", "STARTTLS");
    peer_start_tls(&r, &p);
    peer_send(&r, &p, "MAIL FROM:<a@origin.test>\r\n");
    peer_expect(&r, &p, "503 5.5.1 Error: send HELO/EHLO first\r\n", "greeting forgotten");
    peer_send(&r, &p, "EHLO c.test\r\nSTARTTLS\r\n");
    peer_expect(&r, &p, EHLO_REPLY "503 5.5.1 TLS already active\r\n", "no second STARTTLS");
    peer_send(&r, &p, "MAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n");
    peer_expect(&r, &p, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
                "transaction over TLS");
    peer_send(&r, &p, MESSAGE ".\r\n");
    peer_expect(&r, &p, "250 2.0.0 Ok: queued as *\r\n", "message over TLS");
    peer_close(&r, &p);
    cr_assert_eq(r.naccepted, 1);
    cr_assert(strstr(r.accepted[0]->prepend, "with ESMTPS id ") != NULL, "%s",
              r.accepted[0]->prepend);

    /* STARTTLS inside a transaction is out of sequence. */
    peer_connect(&r, &p);
    peer_expect(&r, &p, GREETING, "greeting");
    peer_send(&r, &p, "EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nSTARTTLS\r\n");
    peer_expect(&r, &p,
                "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 2048\r\n250-8BITMIME\r\n"
                "250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n250 STARTTLS\r\n"
                "250 2.1.0 Ok\r\n503 5.5.1 Error: STARTTLS in a mail transaction\r\n",
                "STARTTLS in a transaction");
    peer_close(&r, &p);
    rig_close(&r);
}

/* What the accepted hook gets: the message as the spool made it durable,
 * its SRS sender and Received: stamped by the clock hook. */
Test(session, an_accepted_message_reaches_the_hook)
{
    char srs[SRS_ADDR_SIZE], id[SPOOL_ID_SIZE + 64];
    const spool_msg_t *m;
    rig_t r;
    peer_t p;

    rig_open(&r, false);
    cr_assert_eq(srs_forward(r.srs, "a@origin.test", 13, RIG_NOW, srs, sizeof(srs)), 0);
    peer_connect(&r, &p);
    peer_expect(&r, &p, GREETING, "greeting");
    peer_send(&r, &p,
              "HELO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\n"
              "RCPT TO:<bob@alias.test>\r\nDATA\r\n");
    peer_expect(&r, &p,
                "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                "354 End data with <CR><LF>.<CR><LF>\r\n",
                "transaction");
    peer_send(&r, &p, MESSAGE ".\r\n");
    peer_expect(&r, &p, "250 2.0.0 Ok: queued as *\r\n", "message");
    peer_close(&r, &p);

    cr_assert_eq(r.naccepted, 1);
    m = r.accepted[0];
    cr_assert_str_eq(m->sender, "a@origin.test");
    cr_assert_str_eq(m->srs_sender, srs);
    cr_assert_eq(m->nrcpts, 2);
    cr_assert_str_eq(m->client, "unknown[192.0.2.1]");
    cr_assert_str_eq(m->helo, "c.test");
    /* No "for": two recipients. */
    snprintf(id, sizeof(id), "with SMTP id %s; Mon, 7 Dec 2026 00:00:00 +0000\r\n", m->id);
    cr_assert(strstr(m->prepend, id) != NULL, "%s", m->prepend);
    cr_assert(strncmp(m->prepend, "Authentication-Results: mx.test;", 32) == 0, "%s", m->prepend);
    rig_close(&r);
}

/* Bounces to SRS addresses, checked against the clock hook's time. */
Test(session, srs_addresses_take_only_bounces)
{
    char fresh[SRS_ADDR_SIZE], old[SRS_ADDR_SIZE];
    char cmd[2 * SRS_ADDR_SIZE + 256], want[3 * SRS_ADDR_SIZE];
    rig_t r;
    peer_t p;

    rig_open(&r, false);
    cr_assert_eq(srs_forward(r.srs, "a@origin.test", 13, RIG_NOW, fresh, sizeof(fresh)), 0);
    cr_assert_eq(srs_forward(r.srs, "a@origin.test", 13, RIG_NOW - 40 * 86400, old, sizeof(old)),
                 0);
    peer_connect(&r, &p);
    peer_expect(&r, &p, GREETING, "greeting");
    snprintf(cmd, sizeof(cmd), "EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n",
             fresh, old);
    peer_send(&r, &p, cmd);
    snprintf(want, sizeof(want),
             EHLO_REPLY "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                        "550 5.7.1 <%s>: Recipient address rejected: SRS address expired\r\n",
             old);
    peer_expect(&r, &p, want, "a bounce");
    snprintf(cmd, sizeof(cmd), "RSET\r\nMAIL FROM:<b@origin.test>\r\nRCPT TO:<%s>\r\n", fresh);
    peer_send(&r, &p, cmd);
    snprintf(want, sizeof(want),
             "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n550 5.7.1 <%s>: Recipient address rejected: SRS "
             "addresses accept only bounces (null sender)\r\n",
             fresh);
    peer_expect(&r, &p, want, "not a bounce");
    peer_close(&r, &p);
    rig_close(&r);
}

/* ---- filters and client checks (docs/milter.md, docs/smtp.md) ---------------- */

/* A milter on a Unix socket, served by a thread of the test: it records the
 * commands it gets and answers each with what the test's script says
 * (reply packets into out; none: continue). */
typedef struct tmilter tmilter_t;
typedef void (*tmilter_script_fn)(tmilter_t *m, char cmd, const char *data, size_t n, buf_t *out);

struct tmilter {
    char dir[256], path[300];
    int fd;
    pthread_t thread;
    tmilter_script_fn script;
    pthread_mutex_t lock;
    char seen[256]; /* command bytes, in order */
    size_t nseen;
};

static void tmilter_packet(buf_t *out, char cmd, const void *data, size_t n)
{
    unsigned char len[4] = {(unsigned char)((n + 1) >> 24), (unsigned char)((n + 1) >> 16),
                            (unsigned char)((n + 1) >> 8), (unsigned char)(n + 1)};

    buf_append(out, len, 4);
    buf_append(out, &cmd, 1);
    buf_append(out, data, n);
}

static bool tmilter_read(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void tmilter_serve(tmilter_t *m, int c)
{
    static const char optneg[] = {0, 0, 0, 6, 0, 0, 1, (char)0xff, 0, 0, 0, 0};
    unsigned char len[4];
    char data[70000];
    buf_t out;

    buf_init(&out, 1 << 20);
    while (tmilter_read(c, len, 4)) {
        size_t n = (size_t)len[0] << 24 | (size_t)len[1] << 16 | (size_t)len[2] << 8 | len[3];

        if (n == 0 || n > sizeof(data) || !tmilter_read(c, data, n))
            break;
        pthread_mutex_lock(&m->lock);
        if (m->nseen < sizeof(m->seen) - 1 && data[0] != 'D' && data[0] != 'O')
            m->seen[m->nseen++] = data[0];
        pthread_mutex_unlock(&m->lock);
        buf_reset(&out);
        if (data[0] == 'O')
            tmilter_packet(&out, 'O', optneg, sizeof(optneg));
        else if (data[0] == 'Q')
            break;
        else if (data[0] != 'D' && data[0] != 'A' && m->script != NULL)
            m->script(m, data[0], data + 1, n - 1, &out);
        if (data[0] != 'D' && data[0] != 'A' && data[0] != 'O' && buf_used(&out) == 0)
            tmilter_packet(&out, 'c', NULL, 0);
        if (write(c, buf_ptr(&out), buf_used(&out)) != (ssize_t)buf_used(&out))
            break;
    }
    buf_free(&out);
    close(c);
}

static void *tmilter_main(void *arg)
{
    tmilter_t *m = arg;
    int c;

    while ((c = accept(m->fd, NULL, NULL)) >= 0)
        tmilter_serve(m, c);
    return NULL;
}

static void tmilter_start(tmilter_t *m, tmilter_script_fn script)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    memset(m, 0, sizeof(*m));
    m->script = script;
    pthread_mutex_init(&m->lock, NULL);
    cr_assert_eq(test_dir_make("mxfwd-milter", m->dir, sizeof(m->dir)), 0);
    snprintf(m->path, sizeof(m->path), "%s/milter.sock", m->dir);
    cr_assert_lt(strlen(m->path), sizeof(sun.sun_path));
    memcpy(sun.sun_path, m->path, strlen(m->path) + 1);
    m->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert_eq(bind(m->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(listen(m->fd, 8), 0);
    cr_assert_eq(pthread_create(&m->thread, NULL, tmilter_main, m), 0);
}

static void tmilter_stop(tmilter_t *m)
{
    shutdown(m->fd, SHUT_RDWR);
    close(m->fd);
    pthread_join(m->thread, NULL);
    test_dir_remove(m->dir);
}

static void tmilter_seen(tmilter_t *m, char *dst, size_t size)
{
    pthread_mutex_lock(&m->lock);
    snprintf(dst, size, "%.*s", (int)m->nseen, m->seen);
    pthread_mutex_unlock(&m->lock);
}

/* The filter the rig's server uses, at path. */
static smtpd_milter_t rig_milter;

static void rig_with_milter(smtpd_options_t *o, void *arg)
{
    const char *path = arg;
    struct sockaddr_un *sun = (struct sockaddr_un *)&rig_milter.addr;

    memset(&rig_milter, 0, sizeof(rig_milter));
    rig_milter.name = "unix:test";
    sun->sun_family = AF_UNIX;
    cr_assert_lt(strlen(path), sizeof(sun->sun_path));
    memcpy(sun->sun_path, path, strlen(path) + 1);
    o->milters = &rig_milter;
    o->nmilters = 1;
    o->milter_timeout = 5;
}

/* A rig whose options tweak changes (with arg), and a client greeted by
 * it. */
static void rig_greeted(rig_t *r, peer_t *p, void (*tweak)(smtpd_options_t *, void *),
                        void *arg)
{
    rig_tweak = tweak;
    rig_tweak_arg = arg;
    rig_open(r, false);
    peer_connect(r, p);
    peer_expect(r, p, GREETING, "greeting");
}

/* Refuses bob, adds a field at the end of the message. */
static void script_bob_and_a_field(tmilter_t *m, char cmd, const char *data, size_t n, buf_t *out)
{
    (void)m;
    if (cmd == 'R' && n > 4 && strncmp(data, "<bob", 4) == 0)
        tmilter_packet(out, 'r', NULL, 0);
    if (cmd == 'E') {
        tmilter_packet(out, 'h', "X-Milter\0yes\0", 13);
        tmilter_packet(out, 'c', NULL, 0);
    }
}

Test(session, a_milters_words_apply_in_the_session)
{
    tmilter_t m;
    rig_t r;
    peer_t p;
    char seen[256];
    const spool_msg_t *msg;

    tmilter_start(&m, script_bob_and_a_field);
    rig_greeted(&r, &p, rig_with_milter, m.path);
    peer_send(&r, &p,
              "EHLO c.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<bob@alias.test>\r\n"
              "RCPT TO:<alice@alias.test>\r\nDATA\r\n");
    peer_expect(&r, &p,
                EHLO_REPLY "250 2.1.0 Ok\r\n550 5.7.1 Command rejected\r\n250 2.1.5 Ok\r\n"
                           "354 End data with <CR><LF>.<CR><LF>\r\n",
                "a recipient refused by the filter");
    peer_send(&r, &p, MESSAGE ".\r\n");
    peer_expect(&r, &p, "250 2.0.0 Ok: queued as *\r\n", "the message");
    peer_close(&r, &p);
    cr_assert_eq(r.naccepted, 1);
    msg = r.accepted[0];
    cr_assert_eq(msg->nrcpts, 1);
    cr_assert_str_eq(msg->rcpts[0].addr, "alice@dest.test");
    /* A field added at the end: the section is rewritten on top, the
     * message's own skipped (docs/spool.md, "K"). */
    cr_assert_eq(msg->body_skip, strlen("From: <a@origin.test>\r\nSubject: hi\r\n"));
    cr_assert(strstr(msg->prepend, "\r\nFrom: <a@origin.test>\r\nSubject: hi\r\nX-Milter: yes\r\n") !=
                  NULL,
              "%s", msg->prepend);
    rig_close(&r);
    tmilter_seen(&m, seen, sizeof(seen));
    /* Every step, the ABORT that ends the refused transaction's filter
     * part not needed: the message reached its end. */
    cr_assert_str_eq(seen, "CHMRRTLLNBEQ");
    tmilter_stop(&m);
}

Test(session, an_unreachable_milter_defers_every_command)
{
    rig_t r;
    peer_t p;

    rig_greeted(&r, &p, rig_with_milter, "/nonexistent/milter.sock");
    peer_send(&r, &p, "EHLO c.test\r\nNOOP\r\nQUIT\r\n");
    peer_expect(&r, &p,
                "451 4.7.1 Service unavailable - try again later\r\n"
                "451 4.7.1 Service unavailable - try again later\r\n221 2.0.0 Bye\r\n<closed>",
                "the default action, tempfail");
    peer_close(&r, &p);
    rig_close(&r);
}

static void rig_with_policy(smtpd_options_t *o, void *arg)
{
    static const dnsbl_list_t bl[] = {{"bl.test", NULL}};

    (void)arg;
    o->reject_unknown_sender_domain = true;
    o->reject_non_fqdn_sender = true;
    o->recipient_rate_limit = 2;
    if (arg != NULL) {
        o->dnsbl = bl;
        o->ndnsbl = 1;
    }
}

Test(session, the_senders_domain_and_the_rate_limits)
{
    rig_t r;
    peer_t p;

    rig_greeted(&r, &p, rig_with_policy, NULL);
    peer_send(&r, &p,
              "EHLO c.test\r\nMAIL FROM:<a@nowhere.test>\r\nMAIL FROM:<root@vm>\r\n"
              "MAIL FROM:<a@exists.test>\r\nRCPT TO:<alice@alias.test>\r\nRCPT TO:<bob@alias.test>\r\n"
              "RCPT TO:<carol@alias.test>\r\n");
    peer_expect(&r, &p,
                EHLO_REPLY "550 5.1.8 <a@nowhere.test>: Sender address rejected: Domain not found\r\n"
                           "504 5.5.2 <root@vm>: Sender address rejected: need fully-qualified "
                           "address\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                           "450 4.7.1 <carol@alias.test>: Error: too many recipients from "
                           "192.0.2.1\r\n",
                "sender domains, then the recipient rate");
    /* The window is a minute of the injected clock. */
    r.clock_ms += 60 * 1000;
    peer_send(&r, &p, "RCPT TO:<carol@alias.test>\r\nRSET\r\nMAIL FROM:<>\r\n");
    peer_expect(&r, &p, "250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n", "a new minute");
    peer_close(&r, &p);
    rig_close(&r);
}

Test(session, a_listed_client_hears_the_list_at_its_first_command)
{
    rig_t r;
    peer_t p;

    rig_greeted(&r, &p, rig_with_policy, "dnsbl");
    peer_send(&r, &p, "HELO c.test\r\nQUIT\r\n");
    peer_expect(&r, &p,
                "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.test; listed "
                "for the unit test\r\n221 2.0.0 Bye\r\n<closed>",
                "the listing, then QUIT");
    peer_close(&r, &p);
    cr_assert_eq(stats_get(r.stats, "rejected", "dnsbl"), 1);
    rig_close(&r);
}
