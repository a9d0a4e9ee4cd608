/* Unit tests for mxfwd/config.c: defaults, every key, every kind of bad line. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "default.h"
#include "collect.h"

static config_t *parse_ok(const char *text)
{
    collect_t d = {0};
    config_t *cfg = NULL;
    int rc = config_parse("t.conf", text, strlen(text), collect_message, &d, &cfg);

    cr_assert_eq(rc, 0, "unexpected error: %s", d.n ? d.msg[0] : "?");
    cr_assert_not_null(cfg);
    return cfg;
}

static int parse_bad(const char *text, collect_t *d)
{
    config_t *cfg = (config_t *)1;
    int rc = config_parse("t.conf", text, strlen(text), collect_message, d, &cfg);

    cr_assert_null(cfg);
    cr_assert_eq(rc, d->n);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

Test(config, empty_file_gives_defaults)
{
    config_t *cfg = parse_ok("# nothing but a comment\n\n");

    cr_assert_eq(cfg->nlisten, 1);
    cr_assert_str_eq(cfg->listen[0].text, "127.0.0.1:2525");
    cr_assert_eq(((struct sockaddr_in *)&cfg->listen[0].sa)->sin_port, htons(2525));
    cr_assert_not_null(cfg->hostname);
    cr_assert_str_eq(cfg->srs_domain, cfg->hostname);
    cr_assert(ends_with(cfg->srs_secrets, "/etc/srs.secrets"));
    cr_assert_eq(cfg->srs_secrets[0], '/');
    cr_assert(ends_with(cfg->forward_table, "/etc/forwards"));
    cr_assert(ends_with(cfg->spool_dir, "/var/spool"));
    cr_assert_eq(cfg->spool_sync, CONFIG_SYNC_FILE);
    cr_assert(ends_with(cfg->control_socket, "/var/run/mxfwd.sock"));
    cr_assert_eq(cfg->srs_max_age, 21 * 86400);
    cr_assert_eq(cfg->ndns_servers, 0);
    cr_assert_eq(cfg->nroutes, 0);
    cr_assert_eq(cfg->outbound_port, 25);
    cr_assert_null(cfg->tls_cert);
    cr_assert_eq(cfg->outbound_tls, CONFIG_TLS_OPPORTUNISTIC);
    cr_assert_eq(cfg->spf_action, CONFIG_ACTION_REJECT);
    cr_assert_eq(cfg->dmarc_action, CONFIG_ACTION_REJECT);
    cr_assert_eq(cfg->max_message_size, 26214400);
    cr_assert_eq(cfg->max_recipients, 100);
    cr_assert_eq(cfg->max_connections, 1000);
    cr_assert_eq(cfg->max_connections_per_ip, 50);
    cr_assert_eq(cfg->timeout, 300);
    cr_assert_eq(cfg->max_line_length, 512);
    cr_assert_eq(cfg->max_hops, 50);
    cr_assert_eq(cfg->nretry_schedule, 7);
    cr_assert_eq(cfg->retry_schedule[0], 60);
    cr_assert_eq(cfg->retry_schedule[6], 4 * 3600);
    cr_assert_eq(cfg->max_queue_lifetime, 5 * 86400);
    cr_assert_null(cfg->user);
    cr_assert_eq(cfg->log, CONFIG_LOG_STDERR);
    cr_assert(!cfg->has_metrics);
    /* Filters off; the sender's domain checked (docs/smtp.md). */
    cr_assert_eq(cfg->nmilters, 0);
    cr_assert_eq(cfg->milter_timeout, 30);
    cr_assert_eq(cfg->milter_default_action, CONFIG_MILTER_TEMPFAIL);
    cr_assert(!cfg->milter_body_changes);
    cr_assert_eq(cfg->ndnsbl + cfg->ndnswl, 0);
    cr_assert(cfg->reject_unknown_sender_domain);
    cr_assert(cfg->reject_non_fqdn_sender);
    cr_assert_eq(cfg->client_connection_rate_limit + cfg->client_message_rate_limit +
                     cfg->client_recipient_rate_limit,
                 0, "no rate limits");
    cr_assert_eq(cfg->nrate_limit_exempt, 0);
    config_free(cfg);
}

Test(config, every_key)
{
    config_t *cfg = parse_ok(
        "hostname = MX.Fwd.Example\n"
        "listen = 127.0.0.1:2525\n"
        "listen = [::1]:2525   # repeatable\n"
        "srs_domain = fwd.example\n"
        "srs_secrets = /etc/mxfwd/srs.secrets\n"
        "srs_max_age = 30d\n"
        "forward_table = /etc/mxfwd/forwards\n"
        "spool_dir = /var/spool/mxfwd\n"
        "spool_sync = filesystem\n"
        "control_socket = /run/mxfwd/mxfwd.sock\n"
        "dns_servers = 127.0.0.1:5353, [::1]:53 192.0.2.53\n"
        "route = dest.test 127.0.0.1:2526\n"
        "route = * smarthost.example\n"
        "outbound_port = 2526\n"
        "tls_cert = /etc/ssl/mx.pem\n"
        "tls_key = /etc/ssl/mx.key\n"
        "outbound_tls = required\n"
        "spf_action = tag\n"
        "dmarc_action = off\n"
        "max_message_size = 10M\n"
        "max_recipients = 50\n"
        "max_connections = 500\n"
        "max_connections_per_ip = 5\n"
        "timeout = 5m\n"
        "retry_schedule = 10s 1m 1h\n"
        "max_queue_lifetime = 2d\n"
        "user = root\n"
        "log = syslog\n"
        "metrics_listen = 127.0.0.1:9325\n"
        "max_line_length = 1000\n"
        "max_errors = 3\n"
        "max_hops = 30\n"
        "shutdown_grace = 10s\n"
        "max_deliveries = 20\n"
        "max_deliveries_per_domain = 4\n");

    cr_assert_str_eq(cfg->hostname, "mx.fwd.example");
    cr_assert_eq(cfg->nlisten, 2);
    cr_assert_eq(cfg->listen[1].sa.ss_family, AF_INET6);
    cr_assert_str_eq(cfg->srs_domain, "fwd.example");
    cr_assert_str_eq(cfg->srs_secrets, "/etc/mxfwd/srs.secrets");
    cr_assert_eq(cfg->srs_max_age, 30 * 86400);
    cr_assert_str_eq(cfg->spool_dir, "/var/spool/mxfwd");
    cr_assert_eq(cfg->spool_sync, CONFIG_SYNC_FILESYSTEM);
    cr_assert_eq(cfg->ndns_servers, 3);
    cr_assert_str_eq(cfg->dns_servers[0], "127.0.0.1:5353");
    cr_assert_str_eq(cfg->dns_servers[1], "[::1]:53");
    cr_assert_eq(cfg->nroutes, 2);
    cr_assert_str_eq(cfg->routes[0].domain, "dest.test");
    cr_assert_str_eq(cfg->routes[0].host, "127.0.0.1");
    cr_assert_eq(cfg->routes[0].port, 2526);
    cr_assert_eq(cfg->routes[1].port, 0);
    cr_assert_eq(config_route_for(cfg, "DEST.test"), &cfg->routes[0]);
    cr_assert_eq(config_route_for(cfg, "other.example"), &cfg->routes[1]);
    cr_assert_eq(cfg->outbound_port, 2526);
    cr_assert_eq(cfg->outbound_tls, CONFIG_TLS_REQUIRED);
    cr_assert_eq(cfg->spf_action, CONFIG_ACTION_TAG);
    cr_assert_eq(cfg->dmarc_action, CONFIG_ACTION_OFF);
    cr_assert_eq(cfg->max_message_size, 10 * 1024 * 1024);
    cr_assert_eq(cfg->max_recipients, 50);
    cr_assert_eq(cfg->max_connections_per_ip, 5);
    cr_assert_eq(cfg->timeout, 300);
    cr_assert_eq(cfg->nretry_schedule, 3);
    cr_assert_eq(cfg->retry_schedule[2], 3600);
    cr_assert_eq(cfg->max_queue_lifetime, 2 * 86400);
    cr_assert_str_eq(cfg->user, "root");
    cr_assert_eq(cfg->log, CONFIG_LOG_SYSLOG);
    cr_assert(cfg->has_metrics);
    cr_assert_eq(cfg->max_line_length, 1000);
    cr_assert_eq(cfg->max_errors, 3);
    cr_assert_eq(cfg->max_hops, 30);
    cr_assert_eq(cfg->shutdown_grace, 10);
    cr_assert_eq(cfg->max_deliveries_per_domain, 4);
    config_free(cfg);
}

Test(config, relative_paths_become_absolute)
{
    config_t *cfg = parse_ok("forward_table = etc/aliases\n");
    char cwd[4096], want[4200];

    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    snprintf(want, sizeof(want), "%s/etc/aliases", cwd);
    cr_assert_str_eq(cfg->forward_table, want);
    config_free(cfg);
}

Test(config, every_bad_line_is_reported_with_its_line)
{
    collect_t d = {0};
    int n = parse_bad("hostname = mx.example\n"             /* 1 ok */
                      "colour = blue\n"                     /* 2 unknown key */
                      "listen = 127.0.0.1\n"                /* 3 no port */
                      "listen = localhost:25\n"             /* 4 not an IP */
                      "outbound_port = 70000\n"             /* 5 bad port */
                      "timeout = soon\n"                    /* 6 bad duration */
                      "max_message_size = 25 MB\n"          /* 7 bad size */
                      "spf_action = maybe\n"                /* 8 bad enum */
                      "this line has no equals sign\n"      /* 9 syntax */
                      "hostname = other.example\n"          /* 10 repeated */
                      "route = dest.test\n"                 /* 11 route without host */
                      "route = bad_domain 127.0.0.1:25\n"   /* 12 bad route domain */
                      "dns_servers = ns.example\n"          /* 13 not an IP */
                      "max_recipients = 0\n"                /* 14 out of range */
                      "user = no-such-user-here\n"          /* 15 unknown user */
                      "srs_domain =\n"                      /* 16 missing value */
                      "retry_schedule = 1m never\n"         /* 17 bad list item */
                      "spool_sync = always\n",              /* 18 bad enum */
                      &d);

    cr_assert_eq(n, 17, "got %d errors", n);
    cr_assert(collect_has(&d, "t.conf:2: ", "unknown key 'colour'"));
    cr_assert(collect_has(&d, "t.conf:3: ", "listen"));
    cr_assert(collect_has(&d, "t.conf:4: ", "localhost:25"));
    cr_assert(collect_has(&d, "t.conf:5: ", "port"));
    cr_assert(collect_has(&d, "t.conf:6: ", "duration"));
    cr_assert(collect_has(&d, "t.conf:7: ", "size"));
    cr_assert(collect_has(&d, "t.conf:8: ", "reject, tag or off"));
    cr_assert(collect_has(&d, "t.conf:9: ", "key = value"));
    cr_assert(collect_has(&d, "t.conf:10: ", "already set on line 1"));
    cr_assert(collect_has(&d, "t.conf:11: ", "DOMAIN HOST"));
    cr_assert(collect_has(&d, "t.conf:12: ", "bad_domain"));
    cr_assert(collect_has(&d, "t.conf:13: ", "ns.example"));
    cr_assert(collect_has(&d, "t.conf:14: ", "max_recipients"));
    cr_assert(collect_has(&d, "t.conf:15: ", "no such user"));
    cr_assert(collect_has(&d, "t.conf:16: ", "missing value"));
    cr_assert(collect_has(&d, "t.conf:17: ", "never"));
    cr_assert(collect_has(&d, "t.conf:18: ", "'always' is not one of file or filesystem"));
}

Test(config, cross_key_checks_name_the_line)
{
    collect_t d = {0};

    parse_bad("\n\ntls_cert = /x.pem\nmax_connections = 10\nmax_connections_per_ip = 20\n", &d);
    cr_assert_eq(d.n, 2);
    cr_assert(collect_has(&d, "t.conf:3: ", "tls_key"));
    cr_assert(collect_has(&d, "t.conf:5: ", "larger than max_connections"));
}

Test(config, the_default_per_domain_fits_a_smaller_max_deliveries)
{
    collect_t d = {0};
    config_t *cfg = parse_ok("max_deliveries = 5\n");

    cr_assert_eq(DEFAULT_MAX_DELIVERIES_PER_DOMAIN, 20, "Postfix's destination limit");
    cr_assert_eq(cfg->max_deliveries_per_domain, 5);
    config_free(cfg);
    cfg = parse_ok("max_deliveries = 50\n");
    cr_assert_eq(cfg->max_deliveries_per_domain, 20);
    config_free(cfg);
    /* Given larger, it is an error, on its line. */
    parse_bad("max_deliveries = 5\nmax_deliveries_per_domain = 20\n", &d);
    cr_assert_eq(d.n, 1);
    cr_assert(collect_has(&d, "t.conf:2: ", "larger than max_deliveries"));
}

Test(config, duplicate_listen_and_route)
{
    collect_t d = {0};

    parse_bad("listen = 127.0.0.1:25\nlisten = 127.0.0.1:25\n"
              "route = a.test 127.0.0.1:1\nroute = A.test 127.0.0.1:2\n",
              &d);
    cr_assert_eq(d.n, 2);
    cr_assert(collect_has(&d, "t.conf:2: ", "twice"));
    cr_assert(collect_has(&d, "t.conf:4: ", "already has a route"));
}

Test(config, hostile_bytes)
{
    collect_t d = {0};
    static const char text[] = "hostname = a\0b\nlisten = 127.0.0.1:25\x01\n";

    config_t *cfg = (config_t *)1;
    int rc = config_parse("t.conf", text, sizeof(text) - 1, collect_message, &d, &cfg);
    cr_assert_eq(rc, 2);
    cr_assert(collect_has(&d, "t.conf:1: ", "NUL"));
    cr_assert(collect_has(&d, "t.conf:2: ", "control character"));
}

Test(config, comments_and_crlf)
{
    config_t *cfg = parse_ok("# comment\r\nhostname = mx.example # trailing\r\n"
                             "control_socket = /run/a#b.sock\r\n");

    cr_assert_str_eq(cfg->hostname, "mx.example");
    cr_assert_str_eq(cfg->control_socket, "/run/a#b.sock");
    config_free(cfg);
}

Test(config, missing_file)
{
    collect_t d = {0};
    config_t *cfg = NULL;

    cr_assert_eq(config_load("/nonexistent/mxfwd.conf", collect_message, &d, &cfg), 1);
    cr_assert(collect_has(&d, "/nonexistent/mxfwd.conf: ", "No such file"));
}

Test(config, signing_keys)
{
    config_t *cfg = parse_ok("srs_domain = fwd.test\n");
    collect_t d = {0};

    /* Without a key nothing signs; the rest has its defaults ready. */
    cr_assert_null(cfg->signing_key);
    cr_assert_null(cfg->signing_selector);
    cr_assert_str_eq(cfg->signing_domain, "fwd.test");
    cr_assert(cfg->dkim_sign);
    cr_assert(cfg->arc_seal);
    cr_assert_eq(cfg->from_rewrite, CONFIG_REWRITE_DMARC);
    cr_assert_str_eq(cfg->from_rewrite_address, "noreply@fwd.test");
    config_free(cfg);

    cfg = parse_ok("srs_domain = fwd.test\nsigning_key = /etc/mxfwd/dkim.key\n"
                   "signing_selector = MX2026\nsigning_domain = Sign.Test\ndkim_sign = no\n"
                   "arc_seal = yes\nfrom_rewrite = always\n"
                   "from_rewrite_address = forwarder@sign.test\n");
    cr_assert_str_eq(cfg->signing_key, "/etc/mxfwd/dkim.key");
    cr_assert_str_eq(cfg->signing_selector, "mx2026");
    cr_assert_str_eq(cfg->signing_domain, "sign.test");
    cr_assert_not(cfg->dkim_sign);
    cr_assert(cfg->arc_seal);
    cr_assert_eq(cfg->from_rewrite, CONFIG_REWRITE_ALWAYS);
    cr_assert_str_eq(cfg->from_rewrite_address, "forwarder@sign.test");
    config_free(cfg);

    cfg = parse_ok("signing_domain = sign.test\nfrom_rewrite = off\n");
    cr_assert_str_eq(cfg->from_rewrite_address, "noreply@sign.test");
    cr_assert_eq(cfg->from_rewrite, CONFIG_REWRITE_OFF);
    config_free(cfg);

    parse_bad("signing_key = /k.pem\n\nsigning_selector = bad selector\ndkim_sign = maybe\n"
              "from_rewrite = sometimes\nfrom_rewrite_address = not an address\n",
              &d);
    cr_assert(collect_has(&d, "t.conf:1: ", "signing_selector is not"));
    cr_assert(collect_has(&d, "t.conf:3: ", "not a DKIM selector"));
    cr_assert(collect_has(&d, "t.conf:4: ", "not one of yes or no"));
    cr_assert(collect_has(&d, "t.conf:5: ", "not one of dmarc, off or always"));
    cr_assert(collect_has(&d, "t.conf:6: ", "not a mail address"));
    memset(&d, 0, sizeof(d));
    parse_bad("\nsigning_selector = s1\n", &d);
    cr_assert(collect_has(&d, "t.conf:2: ", "signing_key is not"));
}

Test(config, filter_and_client_check_keys)
{
    collect_t d = {0};
    config_t *cfg = parse_ok("milter = inet:127.0.0.1:11332\n"
                             "milter = unix:/run/opendkim/opendkim.sock\n"
                             "milter = inet:localhost:8891\n"
                             "milter = inet:[::1]:8892\n"
                             "milter_timeout = 10s\n"
                             "milter_default_action = accept\n"
                             "milter_body_changes = yes\n"
                             "dnsbl = Zen.Spamhaus.Org=127.0.0.[2..11]\n"
                             "dnsbl = bl.example\n"
                             "dnswl = list.dnswl.example\n"
                             "reject_unknown_sender_domain = no\n"
                             "reject_non_fqdn_sender = no\n"
                             "client_connection_rate_limit = 60\n"
                             "client_message_rate_limit = 100\n"
                             "client_recipient_rate_limit = 500\n"
                             "rate_limit_exempt = 127.0.0.0/8 [::1]/128\n"
                             "rate_limit_exempt = 192.0.2.0/24\n");

    cr_assert_eq(cfg->nmilters, 4);
    cr_assert_str_eq(cfg->milters[0].text, "inet:127.0.0.1:11332");
    cr_assert_eq(cfg->milters[0].addr.ss_family, AF_INET);
    cr_assert_eq(((struct sockaddr_in *)&cfg->milters[0].addr)->sin_port, htons(11332));
    cr_assert_eq(cfg->milters[1].addr.ss_family, AF_UNIX);
    cr_assert_eq(((struct sockaddr_in *)&cfg->milters[2].addr)->sin_addr.s_addr,
                 htonl(INADDR_LOOPBACK), "localhost is 127.0.0.1");
    cr_assert_eq(cfg->milters[3].addr.ss_family, AF_INET6);
    cr_assert_eq(cfg->milter_timeout, 10);
    cr_assert_eq(cfg->milter_default_action, CONFIG_MILTER_ACCEPT);
    cr_assert(cfg->milter_body_changes);
    cr_assert_eq(cfg->ndnsbl, 2);
    cr_assert_str_eq(cfg->dnsbl[0].zone, "zen.spamhaus.org");
    cr_assert_str_eq(cfg->dnsbl[0].pattern, "127.0.0.[2..11]");
    cr_assert_null(cfg->dnsbl[1].pattern);
    cr_assert_eq(cfg->ndnswl, 1);
    cr_assert_not(cfg->reject_unknown_sender_domain);
    cr_assert_not(cfg->reject_non_fqdn_sender);
    cr_assert_eq(cfg->client_connection_rate_limit, 60);
    cr_assert_eq(cfg->client_message_rate_limit, 100);
    cr_assert_eq(cfg->client_recipient_rate_limit, 500);
    cr_assert_eq(cfg->nrate_limit_exempt, 3);
    cr_assert_eq(cfg->rate_limit_exempt[1].family, AF_INET6);
    config_free(cfg);

    cr_assert_eq(parse_bad("milter = 127.0.0.1:11332\n"
                           "milter = inet:mail.example:11332\n"
                           "milter = unix:relative.sock\n"
                           "milter_default_action = ignore\n"
                           "milter_timeout = 0s\n"
                           "dnsbl = bl.example=127.0.0.[9..2]\n"
                           "dnswl = not a zone\n"
                           "client_message_rate_limit = lots\n"
                           "rate_limit_exempt = 192.0.2.0/40\n",
                           &d),
                 9);
    cr_assert_str_eq(d.msg[0], "t.conf:1: milter: '127.0.0.1:11332' is not inet:ADDRESS:PORT (an "
                               "IP address, or localhost) or unix:PATH");
    cr_assert_str_eq(d.msg[2], "t.conf:3: milter: 'relative.sock' is not an absolute socket path");
    cr_assert_str_eq(d.msg[3],
                     "t.conf:4: milter_default_action: 'ignore' is not one of tempfail, accept "
                     "or reject");
    cr_assert_str_eq(d.msg[5], "t.conf:6: dnsbl: '127.0.0.[9..2]' is not an answer pattern like "
                               "127.0.0.2 or 127.0.0.[2..11]");
    cr_assert_str_eq(d.msg[8], "t.conf:9: rate_limit_exempt: '192.0.2.0/40' is not an address or "
                               "address/bits");
}

/* An editor's byte order mark is skipped, not folded into the first key. */
Test(config, a_byte_order_mark_is_skipped)
{
    config_t *cfg = parse_ok("\xEF\xBB\xBFhostname = mx.example\nsrs_domain = fwd.example\n");

    cr_assert_str_eq(cfg->hostname, "mx.example");
    config_free(cfg);
}
