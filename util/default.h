/*
 * default - every limit and default of mxfwd in one place.
 *
 * Each value here is what applies when the configuration does not say
 * otherwise; the config keys that override them are named alongside.
 * Sizes in bytes, durations in seconds.
 */
#ifndef MXFWD_DEFAULT_H
#define MXFWD_DEFAULT_H

/* Files and sockets, relative to the working directory in a source tree. */
#define DEFAULT_CONFIG_FILE "etc/mxfwd.conf"
#define DEFAULT_SRS_SECRETS "etc/srs.secrets"           /* srs_secrets */
#define DEFAULT_FORWARD_TABLE "etc/forwards"            /* forward_table */
#define DEFAULT_SPOOL_DIR "var/spool"                   /* spool_dir */
#define DEFAULT_CONTROL_SOCKET "var/run/mxfwd.sock"     /* control_socket */
#define DEFAULT_LISTEN "127.0.0.1:2525"                 /* listen */

/* SRS */
#define DEFAULT_SRS_MAX_AGE (21 * 86400)  /* srs_max_age */
#define DEFAULT_SRS_SECRET_MIN 16         /* shortest secret accepted */
#define DEFAULT_SRS_SECRET_MAX 1000       /* longest secret accepted */

/* The envelope store of long senders (srs/srs_store.h, docs/srs.md) */
#define DEFAULT_ENVELOPE_STORE "envelopes"        /* envelope_store: beside spool_dir */
#define DEFAULT_ENVELOPE_STORE_SIZE (1ULL << 30)  /* envelope_store_size: the file's limit */
/* An entry lives srs_max_age and this margin after it was written... */
#define DEFAULT_ENVELOPE_STORE_MARGIN (2 * 86400)
/* ...and is written again once it has less than srs_max_age + a day left
 * (docs/srs.md), so a busy sender costs one write a day. */
#define DEFAULT_ENVELOPE_STORE_REFRESH 86400
#define DEFAULT_ENVELOPE_STORE_SWEEP 300   /* seconds between sweeps of expired entries */
#define DEFAULT_ENVELOPE_STORE_BATCH 1000  /* entries one pool job of a sweep looks at */
#define DEFAULT_REDIS_TIMEOUT_MS 5000      /* a Redis reply, at most; then reconnect */
#define DEFAULT_REDIS_BACKOFF_MIN_MS 100   /* first wait before reconnecting... */
#define DEFAULT_REDIS_BACKOFF_MAX_MS 10000 /* ...doubling up to this */
#define DEFAULT_REDIS_POLL_MS 10000        /* DBSIZE and INFO for the metrics */

/* SMTP, inbound */
#define DEFAULT_MAX_MESSAGE_SIZE 26214400 /* max_message_size */
#define DEFAULT_MAX_RECIPIENTS 100        /* max_recipients */
#define DEFAULT_MAX_CONNECTIONS 1000      /* max_connections */
#define DEFAULT_MAX_CONNECTIONS_PER_IP 50 /* max_connections_per_ip, as Postfix's anvil */
#define DEFAULT_TIMEOUT 300               /* timeout: idle time per command */
#define DEFAULT_LINE_MAX 512              /* max_line_length: RFC 5321 4.5.3.1.4-5 */
#define DEFAULT_MAX_ERRORS 10             /* max_errors: per session, then 421 */
#define DEFAULT_MAX_HOPS 50               /* max_hops: Received: headers, then 554 5.4.6 */
#define DEFAULT_SHUTDOWN_GRACE 30         /* shutdown_grace: transactions finish on SIGTERM */

/* Filters and client checks (docs/milter.md, docs/smtp.md) */
#define DEFAULT_MILTER_TIMEOUT 30 /* milter_timeout: connect, each reply */

/* Delivery */
#define DEFAULT_OUTBOUND_PORT 25               /* outbound_port */
#define DEFAULT_RETRY_SCHEDULE "1m 5m 15m 30m 1h 2h 4h" /* retry_schedule */
#define DEFAULT_MAX_QUEUE_LIFETIME (5 * 86400) /* max_queue_lifetime */
#define DEFAULT_DELAY_WARNING_TIME (4 * 3600)  /* delay_warning_time */
#define DEFAULT_MAX_DELIVERIES 100             /* max_deliveries: at once, in all */
#define DEFAULT_MAX_DELIVERIES_PER_DOMAIN 20   /* max_deliveries_per_domain, as Postfix's
                                                * default_destination_concurrency_limit */
/* Bodies of fresh messages kept in memory for their first delivery
 * attempt, in all (bytes); beyond it they are read from the spool. */
#define DEFAULT_QUEUE_BODY_MEMORY (32 << 20)
/* Delivery jobs the queue hands the outbound client at once, in all and
 * per destination domain: twice max_deliveries and
 * max_deliveries_per_domain (the daemon derives them from those keys). */
#define DEFAULT_QUEUE_JOBS (2 * DEFAULT_MAX_DELIVERIES)
#define DEFAULT_QUEUE_JOBS_PER_DOMAIN (2 * DEFAULT_MAX_DELIVERIES_PER_DOMAIN)

/* SMTP, outbound (client/): RFC 5321 4.5.3.2 timeouts at the default
 * `timeout`; every one of them scales with `timeout` / DEFAULT_TIMEOUT. */
#define DEFAULT_SMTP_CONNECT_TIMEOUT 30   /* TCP connect (as Postfix) */
#define DEFAULT_SMTP_GREETING_TIMEOUT 300 /* initial 220 */
#define DEFAULT_SMTP_HELO_TIMEOUT 300     /* EHLO, HELO, STARTTLS */
#define DEFAULT_SMTP_TLS_TIMEOUT 300      /* the TLS handshake */
#define DEFAULT_SMTP_MAIL_TIMEOUT 300     /* MAIL FROM */
#define DEFAULT_SMTP_RCPT_TIMEOUT 300     /* RCPT TO */
#define DEFAULT_SMTP_DATA_TIMEOUT 120     /* DATA initiation */
#define DEFAULT_SMTP_BLOCK_TIMEOUT 180    /* each block of the message sent */
#define DEFAULT_SMTP_DOT_TIMEOUT 600      /* reply to the final dot */
#define DEFAULT_SMTP_RSET_TIMEOUT 20      /* RSET probing a cached connection */
#define DEFAULT_SMTP_QUIT_TIMEOUT 20      /* reply to QUIT before closing anyway */
/* Connection cache (not scaled). */
#define DEFAULT_SMTP_CACHE_IDLE 2     /* an idle connection is kept this long (s) */
#define DEFAULT_SMTP_REUSE_TIME 300   /* a connection is reused for at most (s) */
#define DEFAULT_SMTP_REUSE_COUNT 100  /* transactions on one connection */
#define DEFAULT_MX_SESSION_LIMIT 2    /* SMTP sessions per delivery attempt */

/* DNS (dns/): resolver, cache and MX routing */
#define DEFAULT_DNS_TIMEOUT_MS 2000           /* first try; c-ares doubles it each round */
#define DEFAULT_DNS_TRIES 3                   /* rounds over the servers */
#define DEFAULT_DNS_CACHE_ENTRIES 4096        /* answers kept, negative ones included */
#define DEFAULT_DNS_CACHE_BYTES (4 << 20)     /* memory those answers may hold */
#define DEFAULT_DNS_MAX_TTL 3600              /* longest a positive answer is kept (s) */
#define DEFAULT_DNS_MAX_NEG_TTL 900           /* longest NXDOMAIN/NODATA is kept (RFC 2308) */
#define DEFAULT_MX_HOST_LIMIT 10              /* MX hosts resolved per domain, best first */
#define DEFAULT_MX_ADDRESS_LIMIT 20           /* next-hop addresses per domain */
#define DEFAULT_RDNS_NAMES 4                  /* PTR names of a client checked for a match */
/* The greeting waits this long at most for the client's name (ms); a
 * lookup still out then goes on, and its answer serves what is written
 * later (docs/smtp.md). */
#define DEFAULT_RDNS_GREETING_WAIT_MS 1000

/* Sender checks (auth/auth.c) */
#define DEFAULT_AUTH_HEADER_MAX (256 * 1024) /* header bytes kept for DKIM; beyond: permerror */
#define DEFAULT_DKIM_MAX_SIGNATURES 10        /* DKIM signatures evaluated per message */
#define DEFAULT_SPF_TIMEOUT 20                /* one whole SPF evaluation (RFC 7208 4.6.4) */
#define DEFAULT_AUTH_TIMEOUT 30               /* end of data to a verdict, at most */

/* libuv's thread pool (UV_THREADPOOL_SIZE, unless the environment sets
 * it): the spool's two lanes of passes, the outbound client's file reads
 * and reloads share it.  SPF runs on the loop (auth/spf.h) and needs none. */
#define DEFAULT_THREADPOOL_SIZE 10

/* Forward table */
#define DEFAULT_ALIAS_DEPTH 10      /* nested alias expansion */
#define DEFAULT_RELOAD_INTERVAL 2   /* seconds between change checks */

#endif
