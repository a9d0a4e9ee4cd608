#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "mxfwd_build.h"
#include "control.h"
#include "default.h"
#include "dns.h"
#include "file.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "options.h"
#include "parse.h"
#include "placeholder.h"
#include "queue.h"
#include "reload.h"
#include "resolve.h"
#include "server_store.h"
#include "smtpd.h"
#include "srs_secrets.h"
#include "str.h"
#include "xalloc.h"

/* The pool must hold the sync jobs of the spool's two passes at once
 * (docs/spool.md), with room for the client's file reads and reloads. */
_Static_assert(DEFAULT_THREADPOOL_SIZE >= 2 * SPOOL_SYNC_JOBS + 2,
               "libuv's thread pool is too small for the spool");

/* Descriptors beyond the sessions' and the deliveries': listeners, the
 * control socket's and metrics' clients, the resolver's sockets, journal
 * segments, the loop's own. */
#define SERVER_SPARE_FDS 128

typedef struct {
    uv_loop_t *loop;
    config_t *cfg;
    spool_t *spool;
    /* The daemon's one resolver, on dns_servers: client names, DKIM keys
     * and DMARC policies (through auth), MX lookups (the outbound client).
     * Everything that borrows it is gone before it is closed. */
    dns_resolver_t *resolver;
    /* The sender checks for the config snapshot: one context as long as
     * the snapshot lives (messages in flight hold their own reference). */
    auth_ctx_t *auth;
    smtpd_t *smtpd;     /* the inbound server */
    queue_t *queue;     /* owns the outbound client */
    control_t *control; /* the control socket */
    metrics_t *metrics; /* metrics_listen; NULL without */
    reload_t *reload;
    sign_ctx_t *signer; /* signing_key's signer, for DSNs; NULL without */
    srs_store_t *store; /* the envelope store of long senders; NULL: none */

    uv_signal_t sig_term, sig_int, sig_hup;
    /* Memory handed back to the system after removals (server_trim()). */
    uv_timer_t trim;
    uv_prepare_t log_flush; /* the loop thread's log lines out before it waits */
    uint64_t trimmed_at; /* the spool's removals at the last trim */
    bool stopping;     /* SIGTERM seen */
    stats_t *registry; /* every counter of the daemon: `mxfwd stats`, metrics */
} server_t;

static void server_report(void *ctx, const char *message)
{
    (void)ctx;
    log_error("%s", message);
}

/* Tell the service manager (notify.h): state, or RELOADING=1 when it is
 * NULL.  The log lines before it are written first, so that whoever hears
 * of the new state finds them.  A failure is worth one warning, not one
 * per reload. */
static void server_notify(const char *state)
{
    static bool warned;
    int rc;

    log_batch_flush();
    rc = state != NULL ? notify_send(state) : notify_reloading();
    if (rc < 0 && !warned) {
        log_warning("cannot notify the service manager at NOTIFY_SOCKET: %s", strerror(-rc));
        warned = true;
    }
}

/* A reload that SIGHUP asked for is done: the service manager hears that
 * the daemon is ready again. */
static void server_reloaded(void *arg)
{
    server_t *srv = arg;

    if (!srv->stopping)
        server_notify("READY=1\nSTATUS=reloaded on SIGHUP; accepting mail");
}

/* ---- the seams ------------------------------------------------------------------ */

/* A message the inbound server made durable: the queue's from here on. */
static void server_accepted(void *arg, spool_msg_t *msg)
{
    server_t *srv = arg;

    queue_add(srv->queue, msg);
}

static void server_set_table(void *arg, table_t *table)
{
    smtpd_set_table(((server_t *)arg)->smtpd, table);
}

static void server_set_srs(void *arg, srs_t *srs)
{
    smtpd_set_srs(((server_t *)arg)->smtpd, srs);
}

/* `mxfwd resolve` asks the daemon: the table it has loaded decides. */
static void server_resolve(void *arg, const char *addr, buf_t *out)
{
    server_t *srv = arg;
    rcpt_ctx_t ctx;

    smtpd_rcpt_ctx(srv->smtpd, &ctx);
    resolve_json(&ctx, srv->cfg->forward_table, addr, out);
}

static void server_set_tls(void *arg, SSL_CTX *ctx)
{
    smtpd_set_tls(((server_t *)arg)->smtpd, ctx);
}

static void server_set_signer(void *arg, sign_ctx_t *signer)
{
    server_t *srv = arg;

    sign_ctx_unref(srv->signer);
    srv->signer = signer != NULL ? sign_ctx_ref(signer) : NULL;
    smtpd_set_signer(srv->smtpd, signer);
}

/* A DSN's signature, made on the pool with the signer of the moment. */
typedef struct {
    uv_work_t req; /* first: the request is the job */
    sign_ctx_t *signer;
    char *msg;
    size_t len;
    time_t now;
    buf_t fields;
    int rc;
    queue_signed_fn done;
    void *arg;
} server_dsn_t;

static void server_dsn_work(uv_work_t *req)
{
    server_dsn_t *d = (server_dsn_t *)req;

    d->rc = sign_message(d->signer, d->msg, d->len, d->now, &d->fields);
}

static void server_dsn_signed(uv_work_t *req, int status)
{
    server_dsn_t *d = (server_dsn_t *)req;

    (void)status; /* never cancelled */
    if (d->rc != 0)
        log_warning("a non-delivery notification goes unsigned: %s", sign_strerror(d->rc));
    d->done(d->arg, d->rc == 0 ? buf_ptr(&d->fields) : NULL, d->rc == 0 ? buf_used(&d->fields) : 0);
    sign_ctx_unref(d->signer);
    buf_free(&d->fields);
    free(d->msg);
    free(d);
}

/* The queue's DSN signer (queue.h): nothing to do without a key. */
static int server_sign_dsn(void *impl, const char *msg, size_t len, queue_signed_fn done, void *arg)
{
    server_t *srv = impl;
    server_dsn_t *d;

    if (srv->signer == NULL)
        return -1;
    d = xcalloc(1, sizeof(*d));
    d->signer = sign_ctx_ref(srv->signer);
    d->msg = xmemdup(msg, len);
    d->len = len;
    d->now = time(NULL);
    buf_init(&d->fields, SIZE_MAX);
    d->done = done;
    d->arg = arg;
    uv_queue_work(srv->loop, &d->req, server_dsn_work, server_dsn_signed);
    return 0;
}

static void server_drained(void *arg);

/* The inbound server, on the daemon's resolver and sender checks. */
static void server_open_smtpd(server_t *srv)
{
    const config_t *cfg = srv->cfg;
    smtpd_options_t opts;
    options_smtpd_t storage;
    smtpd_hooks_t hooks = {
        .accepted = server_accepted,
        .drained = server_drained,
        .arg = srv,
    };

    options_smtpd(cfg, &opts, &storage);
    opts.stats = srv->registry;
    opts.resolver = srv->resolver;
    opts.auth = srv->auth;
    srv->smtpd = smtpd_new(srv->loop, &opts, &hooks);
    options_smtpd_free(&storage);
}

static void server_listen(server_t *srv)
{
    const config_t *cfg = srv->cfg;

    for (size_t i = 0; i < cfg->nlisten; i++) {
        int r = smtpd_listen(srv->smtpd, (const struct sockaddr *)&cfg->listen[i].sa);
        if (r < 0)
            log_fatal("cannot listen on %s: %s", cfg->listen[i].text, uv_strerror(r));
    }
}

/* ---- start-up ------------------------------------------------------------------- */

/*
 * The descriptors the configuration may need at once: a session's socket,
 * one for each of its milters and, for a message too big for the commit
 * journal, its spool file; a delivery's socket and spool file, and as
 * many idle cached connections as deliveries; and the spare ones
 * (docs/admin-guide.md, "Open files").
 */
static rlim_t server_fds_needed(const config_t *cfg)
{
    return (2 + (rlim_t)cfg->nmilters) * (rlim_t)cfg->max_connections +
           3 * (rlim_t)cfg->max_deliveries + SERVER_SPARE_FDS;
}

/* The soft limit raised to what the configuration needs, the hard one
 * too where the process may (root); a warning only when it stays below. */
static void server_raise_fd_limit(const config_t *cfg)
{
    rlim_t want = server_fds_needed(cfg);
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    if (rl.rlim_max < want) {
        struct rlimit raised = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < want)
        log_warning("open files limited to %llu by the hard limit, below the %llu that "
                    "max_connections = %u and max_deliveries = %u may need: raise the hard "
                    "limit (LimitNOFILE= in the systemd unit), or lower them",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)want,
                    cfg->max_connections, cfg->max_deliveries);
}

/* The directory of a file path, into dst. */
static void server_dirname(const char *path, char *dst, size_t size)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        str_lcpy(dst, ".", size);
    else if (slash == path)
        str_lcpy(dst, "/", size);
    else
        snprintf(dst, size, "%.*s", (int)(slash - path), path);
}

static void server_make_dir(const char *dir, const struct passwd *pw)
{
    int r = file_mkdirs(dir, 0700);

    if (r < 0)
        log_fatal("cannot create %s: %s", dir, strerror(-r));
    /* After the privilege drop the daemon must still own its state. */
    if (pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) < 0)
        log_fatal("cannot give %s to %s: %s", dir, pw->pw_name, strerror(errno));
}

static const struct passwd *server_user(const config_t *cfg)
{
    const struct passwd *pw;

    if (cfg->user == NULL)
        return NULL;
    if (geteuid() != 0) {
        log_warning("user = %s: not started as root, so not changing user", cfg->user);
        return NULL;
    }
    if ((pw = getpwnam(cfg->user)) == NULL)
        log_fatal("user = %s: no such user", cfg->user);
    return pw;
}

/* After the drop: every file a reload reads must be readable by the user
 * that runs, or the first reload would fail (a root-owned 0600 secrets
 * file, say): said now, and the start refused. */
static void server_check_readable(const config_t *cfg, const struct passwd *pw)
{
    const char *files[] = {cfg->forward_table, cfg->srs_secrets, cfg->tls_cert, cfg->tls_key,
                           cfg->signing_key};

    if (pw == NULL)
        return;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        int fd;

        if (files[i] == NULL)
            continue;
        if ((fd = open(files[i], O_RDONLY | O_CLOEXEC)) < 0)
            log_fatal("%s: cannot be read by user %s (%s): reloads would fail; give it to that "
                      "user or let it read the file",
                      files[i], pw->pw_name, strerror(errno));
        close(fd);
    }
}

static void server_drop_privileges(const struct passwd *pw)
{
    if (pw == NULL)
        return;
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        log_fatal("cannot change to user %s: %s", pw->pw_name, strerror(errno));
    /* The drop must be for good. */
    if (pw->pw_uid != 0 && setuid(0) == 0)
        log_fatal("cannot change to user %s: root privileges are still there", pw->pw_name);
    log_info("running as user %s", pw->pw_name);
}

/* ---- DNS and the sender checks ------------------------------------------------ */

/* The resolver the whole daemon shares (server->resolver), made before
 * anything listens so that a resolver that cannot start stops the start. */
static void server_open_resolver(server_t *srv)
{
    const config_t *cfg = srv->cfg;
    dns_options_t opts = {
        .servers = (const char *const *)cfg->dns_servers,
        .nservers = cfg->ndns_servers,
    };
    int rc = dns_resolver_new(srv->loop, &opts, &srv->resolver);

    if (rc < 0)
        log_fatal("cannot start the DNS resolver (dns_servers): %s", dns_strerror(rc));
}

/* The sender checks of the config snapshot: SPF, DKIM keys and DMARC
 * policies, all through the loop's resolver. */
static void server_open_auth(server_t *srv)
{
    auth_config_t ac;
    int rc;

    options_auth(srv->cfg, &ac);
    ac.loop = srv->loop;
    ac.resolver = srv->resolver;
    auth_txt_resolver(srv->resolver, &ac.txt);
    if ((rc = auth_ctx_new(&ac, &srv->auth)) < 0)
        log_fatal("cannot set up the sender checks: %s", auth_strerror(rc));
}

/* Once the last session is gone.  The context goes first: messages still
 * finishing (an SPF check or a TXT lookup out) hold their own
 * reference.  Closing the resolver then ends those lookups, which frees
 * those messages and with them the context; the resolver itself is freed
 * once its handles are closed, all before the loop ends. */
static void server_close_dns(server_t *srv)
{
    stats_detach(srv->registry, srv->resolver); /* the counters keep their last values */
    auth_ctx_release(srv->auth);
    srv->auth = NULL;
    if (srv->resolver != NULL)
        dns_resolver_close(srv->resolver, NULL, NULL);
    srv->resolver = NULL;
}

/* ---- stopping ------------------------------------------------------------------- */

static void server_close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void server_queue_closed(void *arg)
{
    server_t *srv = arg;

    /* The client was the resolver's last user besides the sender checks. */
    srv->queue = NULL;
    server_close_dns(srv);
}

static void server_control_closed(void *arg)
{
    server_t *srv = arg;

    srv->control = NULL;
    /* Deliveries still running end as temporary failures, not recorded:
     * they are tried again at the next start. */
    queue_shutdown(srv->queue, server_queue_closed, srv);
}

/* Stopping, and no session is left (every message they accepted is in the
 * queue): close the server's handles and the inbound server, then the
 * control socket, the queue with the outbound client, then the sender
 * checks and the resolver, which ends the loop. */
static void server_drained(void *arg)
{
    server_t *srv = arg;

    server_close_handle((uv_handle_t *)&srv->sig_term);
    server_close_handle((uv_handle_t *)&srv->sig_int);
    server_close_handle((uv_handle_t *)&srv->sig_hup);
    server_close_handle((uv_handle_t *)&srv->trim);
    reload_stop(srv->reload);
    srv->reload = NULL;
    smtpd_close(srv->smtpd);
    srv->smtpd = NULL;
    metrics_close(srv->metrics, NULL, NULL);
    srv->metrics = NULL;
    control_close(srv->control, server_control_closed, srv);
}

static void server_stop(server_t *srv, int signum)
{
    if (srv->stopping) {
        /* A second signal: no more waiting. */
        smtpd_force(srv->smtpd);
        return;
    }
    srv->stopping = true;
    server_notify("STOPPING=1\nSTATUS=stopping");
    log_info("stopping on %s: %u sessions open, shutdown_grace %llus", strsignal(signum),
             smtpd_sessions(srv->smtpd), (unsigned long long)srv->cfg->shutdown_grace);
    smtpd_stop(srv->smtpd);
}

static void server_signal_cb(uv_signal_t *h, int signum)
{
    server_t *srv = h->data;

    if (signum == SIGHUP) {
        if (srv->stopping)
            return;
        /* READY=1 follows once the files are reloaded (server_reloaded). */
        server_notify(NULL);
        reload_all(srv->reload);
        return;
    }
    server_stop(srv, signum);
}

static void server_signals(server_t *srv)
{
    uv_signal_t *handles[] = {&srv->sig_term, &srv->sig_int, &srv->sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};

    /* A write to a closed connection, or past a file size limit, is an
     * error return (EPIPE, EFBIG: a 451 for that message), not a death. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(srv->loop, handles[i]);
        handles[i]->data = srv;
        uv_signal_start(handles[i], server_signal_cb, signums[i]);
    }
}

/* ---- memory --------------------------------------------------------------------- */

/*
 * A queue that drained leaves its messages' memory free but held by the
 * allocator, spread between what is still in use: glibc gives back only
 * the top of a heap by itself.  Every SERVER_TRIM_INTERVAL_MS, once
 * SERVER_TRIM_REMOVALS messages have left the spool since the last time,
 * malloc_trim() returns every free page to the system (docs/queue.md,
 * Memory).  A few milliseconds for a heap of hundreds of megabytes.
 */
#define SERVER_TRIM_INTERVAL_MS 5000
#define SERVER_TRIM_REMOVALS 1000

static void server_trim(uv_timer_t *t)
{
    server_t *srv = t->data;
    spool_stats_t st;

    if (srv->spool == NULL)
        return;
    spool_get_stats(srv->spool, &st);
    if (st.removes - srv->trimmed_at < SERVER_TRIM_REMOVALS)
        return;
    srv->trimmed_at = st.removes;
    malloc_trim(0);
}

static void server_start_trim(server_t *srv)
{
    uv_timer_init(srv->loop, &srv->trim);
    srv->trim.data = srv;
    uv_timer_start(&srv->trim, server_trim, SERVER_TRIM_INTERVAL_MS, SERVER_TRIM_INTERVAL_MS);
    uv_unref((uv_handle_t *)&srv->trim);
}

/* ---- the spool ------------------------------------------------------------------ */

/* spool_sync = filesystem trusts syncfs(2) to report a failed write-back,
 * which Linux does from 5.17 on (data only from 5.8; metadata and journal
 * errors were dropped before 5.17); say so on an older kernel. */
static void server_check_syncfs(const config_t *cfg)
{
    struct utsname u;
    unsigned major, minor;

    if (cfg->spool_sync != CONFIG_SYNC_FILESYSTEM || uname(&u) != 0 ||
        parse_kernel_release(u.release, &major, &minor) != 0)
        return;
    if (major < 5 || (major == 5 && minor < 17))
        log_warning("spool_sync = filesystem: Linux %s does not report every write error "
                    "through syncfs(2) (5.17 and later do); spool_sync = file is safer here",
                    u.release);
}

/*
 * Open and recover the spool and start what delivers it: the outbound
 * client (on the daemon's resolver), the queue manager over the spool (every message found
 * is scheduled) and the control socket.  After the privilege drop, so that
 * the spool's files and the socket belong to the user that runs.
 */
static void server_open_queue(server_t *srv)
{
    const config_t *cfg = srv->cfg;
    spool_options_t sopts = {
        .sync =
            cfg->spool_sync == CONFIG_SYNC_FILESYSTEM ? SPOOL_SYNC_FILESYSTEM : SPOOL_SYNC_FILES,
    };
    queue_options_t qopts = {
        .loop = srv->loop,
        .stats = srv->registry,
        .hostname = cfg->hostname,
        .retry_schedule = cfg->retry_schedule,
        .nretry_schedule = cfg->nretry_schedule,
        .max_queue_lifetime = cfg->max_queue_lifetime,
        .postmaster = cfg->postmaster,
        .delay_warning_time = cfg->delay_warning_time,
        .hide_destinations = cfg->dsn_hide_destinations,
        .signer = {server_sign_dsn, srv},
        /* A next job waiting at the client for each of its slots
         * (docs/queue.md, Concurrency). */
        .max_jobs = 2 * cfg->max_deliveries,
        .max_jobs_per_domain = 2 * cfg->max_deliveries_per_domain,
    };
    client_options_t copts;
    options_client_t cstore;
    client_t *client;
    char err[256];
    size_t queued = 0;
    int rc, serr = 0;

    server_check_syncfs(cfg);
    /* Before the spool, whose commits sync it (docs/srs.md). */
    srv->store = server_store_open(srv->loop, cfg, srv->registry);
    server_store_spool_options(srv->loop, srv->store, &sopts);
    if ((rc = spool_open(cfg->spool_dir, &sopts, &srv->spool)) < 0)
        log_fatal("%s: cannot open the spool: %s", cfg->spool_dir, spool_strerror(rc));
    options_client(cfg, srv->registry, &copts, &cstore);
    rc = client_new(srv->loop, srv->resolver, &copts, &client, err, sizeof(err));
    options_client_free(&cstore);
    if (rc < 0)
        log_fatal("cannot start the outbound client: %s", err);
    qopts.spool = srv->spool;
    qopts.delivery = client_delivery(client);
    if ((rc = queue_new(&qopts, &srv->queue)) < 0)
        log_fatal("cannot start the queue: %s", queue_strerror(rc));
    if (queue_load(srv->queue, &queued, &serr) < 0)
        log_fatal("%s: cannot read the spool: %s", cfg->spool_dir, spool_strerror(serr));
    if (queued > 0)
        log_info("spool %s: %zu messages queued", spool_dir(srv->spool), queued);
    server_store_restore(srv->store, srv->queue);
    if ((rc = control_open(srv->loop, cfg->control_socket, srv->queue, srv->registry,
                           &srv->control)) < 0)
        log_fatal("%s: cannot open the control socket: %s", cfg->control_socket,
                  control_strerror(rc));
    control_set_resolver(srv->control, server_resolve, srv);
}

/* What every exporter says of itself: the version, as a label of a gauge
 * at 1, and when the process started. */
static void server_register_process(stats_t *s)
{
    *stats_register(s, STATS_GAUGE, "build_info", "version", MXFWD_VERSION,
                    "the mxfwd version running, as its label") = 1;
    *stats_register(s, STATS_GAUGE, "process_start_time_seconds", NULL, NULL,
                    "start time of the process since the epoch, in seconds") =
        (uint64_t)time(NULL);
}

/* The resolver's own counters, read when the registry is (detached
 * before the resolver closes). */
static uint64_t server_dns_queries(void *arg)
{
    dns_stats_t st;

    dns_resolver_stats(arg, &st);
    return st.queries;
}

static uint64_t server_dns_cache_hits(void *arg)
{
    dns_stats_t st;

    dns_resolver_stats(arg, &st);
    return st.cache_hits;
}

static uint64_t server_dns_failures(void *arg)
{
    dns_stats_t st;

    dns_resolver_stats(arg, &st);
    return st.failures;
}

/* Until server_close_dns() detaches them. */
static void server_register_dns(server_t *srv)
{
    stats_register_fn(srv->registry, STATS_COUNTER, "dns_queries", NULL, NULL,
                      "DNS queries sent by the resolver (client names, MX, DKIM, DMARC)",
                      server_dns_queries, srv->resolver);
    stats_register_fn(srv->registry, STATS_COUNTER, "dns_cache_hits", NULL, NULL,
                      "DNS lookups answered from the resolver's cache", server_dns_cache_hits,
                      srv->resolver);
    stats_register_fn(srv->registry, STATS_COUNTER, "dns_failures", NULL, NULL,
                      "DNS queries that ended in a temporary error (SERVFAIL, timeout, ...)",
                      server_dns_failures, srv->resolver);
}

/* metrics_listen, bound with the SMTP listeners (before the privilege
 * drop: a port under 1024 is allowed). */
static void server_open_metrics(server_t *srv)
{
    const config_t *cfg = srv->cfg;
    int rc;

    if (!cfg->has_metrics)
        return;
    rc = metrics_open(srv->loop, (const struct sockaddr *)&cfg->metrics_listen.sa, srv->registry,
                      &srv->metrics);
    if (rc < 0)
        log_fatal("cannot listen on %s (metrics_listen): %s", cfg->metrics_listen.text,
                  uv_strerror(rc));
}

/* ---- main ---------------------------------------------------------------------- */

static void server_report_placeholder(void *ctx, const char *message)
{
    (void)ctx;
    log_error("%s", message);
}

/* Port 25 is for a configuration of this site's own: the sample's names,
 * secret and aliases are refused there (docs/admin-guide.md). */
static void server_refuse_placeholders(server_t *srv)
{
    srs_secrets_t secrets = {NULL, 0};
    int n;

    if (!placeholder_port25(srv->cfg))
        return;
    srs_secrets_load(srv->cfg->srs_secrets, NULL, NULL, NULL, &secrets);
    n = placeholder_check(srv->cfg, smtpd_table(srv->smtpd), &secrets, server_report_placeholder,
                          NULL);
    srs_secrets_free(&secrets);
    if (n > 0)
        log_fatal("not listening on port 25 with the sample configuration's values above "
                  "(mxfwd check-config lists them)");
}

/* The configuration, then the files reload watches, handed to the inbound
 * server: any error is fatal, reported before anything listens. */
static void server_load(server_t *srv)
{
    reload_hooks_t hooks = {
        .set_table = server_set_table,
        .set_srs = server_set_srs,
        .set_tls = server_set_tls,
        .set_signer = server_set_signer,
        .reloaded = server_reloaded,
        .arg = srv,
    };

    srv->reload = reload_new(srv->loop, srv->cfg, &hooks);
    if (reload_initial(srv->reload) > 0)
        log_fatal("not starting");
}

/* The loop thread's log lines wait for the end of each turn of the loop,
 * and go out together, in one system call, before it waits for events
 * (util/log.h): under load a few lines per message, one write. */
static void server_log_flush(uv_prepare_t *h)
{
    (void)h;
    log_batch_flush();
}

static void server_start_log_batches(server_t *srv)
{
    uv_prepare_init(srv->loop, &srv->log_flush);
    uv_prepare_start(&srv->log_flush, server_log_flush);
    uv_unref((uv_handle_t *)&srv->log_flush);
    log_batch_begin();
}

static void server_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    server_close_handle(h);
}

int server_main(const char *config_path, bool verbose)
{
    server_t *srv = xcalloc(1, sizeof(*srv));
    log_level_t level = verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    const struct passwd *pw;
    char dir[PATH_MAX];
    uv_loop_t loop;
    int rc;

    log_init("mxfwd", LOG_TARGET_STDERR, level);
    /* Before the loop's first use of the pool, which sizes it: room for a
     * spool pass's sync jobs, and a few more for the client's file reads
     * and reloads. */
    if (getenv("UV_THREADPOOL_SIZE") == NULL) {
        char n[16];
        snprintf(n, sizeof(n), "%d", DEFAULT_THREADPOOL_SIZE);
        setenv("UV_THREADPOOL_SIZE", n, 1);
    }
    if ((rc = uv_loop_init(&loop)) < 0)
        log_fatal("cannot start the event loop: %s", uv_strerror(rc));
    srv->loop = &loop;
    if (config_load(config_path, server_report, NULL, &srv->cfg) > 0)
        log_fatal("%s: configuration errors, not starting", config_path);
    srv->registry = stats_new();
    server_register_process(srv->registry);
    server_open_resolver(srv);
    server_open_auth(srv);
    server_open_smtpd(srv);
    server_register_dns(srv);
    server_load(srv);
    server_refuse_placeholders(srv);
    if (srv->cfg->log == CONFIG_LOG_SYSLOG) {
        /* Another socket than /dev/log: for tests (mxfwd(8), ENVIRONMENT). */
        const char *sock = getenv("MXFWD_SYSLOG_SOCKET");
        if (sock != NULL && log_set_syslog_path(sock) < 0)
            log_fatal("MXFWD_SYSLOG_SOCKET=%s: not a Unix socket path", sock);
        log_init("mxfwd", LOG_TARGET_SYSLOG, level);
    }
    pw = server_user(srv->cfg);
    server_make_dir(srv->cfg->spool_dir, pw);
    if (server_store_dir(srv->cfg, dir, sizeof(dir)))
        server_make_dir(dir, pw);
    server_dirname(srv->cfg->control_socket, dir, sizeof(dir));
    server_make_dir(dir, pw);
    server_raise_fd_limit(srv->cfg);
    /* Signals are handled from the moment a client can connect (a SIGHUP
     * would otherwise end the daemon); they are acted on once the loop
     * runs, with everything in place. */
    server_signals(srv);
    /* The metrics port first: whoever finds the SMTP port accepting finds
     * it accepting too. */
    server_open_metrics(srv);
    server_listen(srv);
    server_drop_privileges(pw);
    server_check_readable(srv->cfg, pw);
    server_open_queue(srv);
    /* What the scan read and let go goes back at once. */
    malloc_trim(0);
    server_start_trim(srv);
    smtpd_set_spool(srv->smtpd, srv->spool);
    smtpd_set_store(srv->smtpd, srv->store);
    reload_start(srv->reload);
    for (size_t i = 0; i < srv->cfg->nlisten; i++)
        log_info("listening on %s", srv->cfg->listen[i].text);
    if (srv->metrics != NULL)
        log_info("metrics on http://%s/metrics", srv->cfg->metrics_listen.text);
    if (srv->signer != NULL) {
        char key[32];
        log_info("signing forwarded mail as d=%s s=%s (%s key)%s%s", srv->cfg->signing_domain,
                 srv->cfg->signing_selector, sign_ctx_key_text(srv->signer, key, sizeof(key)),
                 srv->cfg->arc_seal ? ", sealing with ARC" : "",
                 srv->cfg->from_rewrite != CONFIG_REWRITE_OFF
                     ? ", rewriting From when DMARC needs it"
                     : "");
    }
    for (size_t i = 0; i < srv->cfg->nmilters; i++)
        log_info("filtering with milter %s", srv->cfg->milters[i].text);
    log_info("mxfwd started: forward table %s (%zu aliases)%s", srv->cfg->forward_table,
             table_count(smtpd_table(srv->smtpd)), smtpd_has_tls(srv->smtpd) ? ", STARTTLS" : "");
    server_notify("READY=1\nSTATUS=accepting mail");
    server_start_log_batches(srv);

    uv_run(&loop, UV_RUN_DEFAULT);

    /* Nothing uses the store now: no session, and no spool pass out. */
    server_store_close(srv->store, srv->registry);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Whatever is left (nothing, normally) is closed before the loop is. */
    uv_walk(&loop, server_walk_close, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    log_batch_end();
    rc = uv_loop_close(&loop);
    if (rc < 0)
        log_error("event loop not empty at exit: %s", uv_strerror(rc));
    if (spool_close(srv->spool) < 0)
        log_error("spool still busy at exit");
    log_info("mxfwd stopped");
    stats_free(srv->registry);
    sign_ctx_unref(srv->signer);
    config_free(srv->cfg);
    free(srv);
    return rc < 0 ? 1 : 0;
}
