/*
 * mxdeliver - drive the outbound SMTP client (client/) from the
 * command line, for the end-to-end tests, until the queue manager and
 * `mxfwd serve` use it.
 *
 *   mxdeliver -c CONFIG [-v] [-t SECONDS] [-S MS] [JOBFILE]
 *
 * Jobs come from JOBFILE (or stdin), one per line, as key=value words:
 *
 *   job id=J1 file=PATH [offset=N] [length=N] [prepend=PATH] sender=ADDR
 *       domain=DOMAIN rcpt=ADDR [rcpt=ADDR...] [smtputf8] [8bitmime]
 *   wait
 *   sleep MS
 *
 * Jobs up to a "wait" or "sleep" line (or the end) are handed to the
 * client at once; the next ones once those are done (and MS milliseconds
 * more after "sleep").  length defaults to the rest of the
 * file; sender "<>" is the null sender.  For each recipient of a finished
 * job one line is printed:
 *
 *   result id=J1 rcpt=<ADDR> status=OK|TEMPFAIL|PERMFAIL dsn=X remote=0|1
 *       relay=RELAY reply=TEXT...
 *
 * and at the end "stats connections=N reused=N transactions=N tls=N
 * connect_failures=N".  -S MS shuts the client down MS milliseconds after
 * the start (jobs still running end TEMPFAIL); -t bounds the whole run
 * (default 60 s; exit 3 when it was hit).  Exit 0 otherwise, 1 on errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "client.h"
#include "config.h"
#include "options.h"
#include "dns.h"
#include "file.h"
#include "log.h"
#include "stats.h"
#include "xalloc.h"

typedef struct {
    char *id;
    delivery_job_t job;
    char *prepend;
    int batch;
    unsigned pause_ms; /* before this job's batch */
} tool_job_t;

static uv_loop_t loop;
static config_t *cfg;
static dns_resolver_t *resolver;
static client_t *client;
static stats_t *registry;
static delivery_t delivery;
static tool_job_t *jobs;
static size_t njobs, next_job, running;
static int cur_batch, status;
static uv_timer_t deadline, stopper, pauser;
static bool stopping;

static const char *status_name(delivery_status_t s)
{
    switch (s) {
    case DELIVERY_OK:
        return "OK";
    case DELIVERY_TEMPFAIL:
        return "TEMPFAIL";
    case DELIVERY_PERMFAIL:
        return "PERMFAIL";
    default:
        return "PENDING";
    }
}

static void config_error(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "mxdeliver: %s\n", message);
}

static void resolver_closed(void *arg)
{
    (void)arg;
}

static void client_closed(void *arg)
{
    (void)arg;
    client = NULL;
    dns_resolver_close(resolver, resolver_closed, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&stopper, NULL);
    uv_close((uv_handle_t *)&pauser, NULL);
}

static void stop(void)
{
    if (stopping)
        return;
    stopping = true;
    printf("stats connections=%" PRIu64 " reused=%" PRIu64 " transactions=%" PRIu64 " tls=%" PRIu64
           " connect_failures=%" PRIu64 "\n",
           stats_get(registry, "outbound_connections", NULL),
           stats_get(registry, "outbound_reused", NULL),
           stats_get(registry, "outbound_transactions", NULL),
           stats_get(registry, "outbound_tls", NULL),
           stats_get(registry, "outbound_connect_failures", NULL));
    fflush(stdout);
    client_shutdown(client, client_closed, NULL);
}

static void submit_batch(void);

static void pause_cb(uv_timer_t *t)
{
    (void)t;
    if (!stopping)
        submit_batch();
}

/* The next batch, after its pause. */
static void next_batch(void)
{
    if (next_job < njobs && jobs[next_job].pause_ms > 0)
        uv_timer_start(&pauser, pause_cb, jobs[next_job].pause_ms, 0);
    else
        submit_batch();
}

static void job_done(delivery_job_t *job, void *arg)
{
    tool_job_t *t = arg;

    for (size_t i = 0; i < job->nrcpts; i++) {
        const delivery_rcpt_t *r = &job->rcpts[i];
        printf("result id=%s rcpt=<%s> status=%s dsn=%s remote=%d relay=%s reply=%s\n", t->id,
               r->addr, status_name(r->status), r->dsn, r->remote_reply ? 1 : 0, r->relay,
               r->reply);
    }
    fflush(stdout);
    running--;
    if (running == 0 && !stopping) {
        if (next_job < njobs)
            next_batch();
        else
            stop();
    }
}

static void submit_batch(void)
{
    if (next_job >= njobs) {
        stop();
        return;
    }
    cur_batch = jobs[next_job].batch;
    while (next_job < njobs && jobs[next_job].batch == cur_batch) {
        tool_job_t *t = &jobs[next_job++];
        if (delivery.ops->deliver(delivery.impl, &t->job, job_done, t) != 0) {
            fprintf(stderr, "mxdeliver: job %s not started\n", t->id);
            status = 1;
            continue;
        }
        running++;
    }
    if (running == 0)
        stop();
}

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "mxdeliver: deadline reached\n");
    status = 3;
    stop();
}

static void stopper_cb(uv_timer_t *t)
{
    (void)t;
    stop();
}

static char *read_all(const char *path, size_t *len)
{
    char *text = NULL;
    int rc = file_read(path, 1 << 30, &text, len, NULL);

    if (rc < 0) {
        fprintf(stderr, "mxdeliver: %s: %s\n", path, file_strerror(rc));
        exit(1);
    }
    return text;
}

static char *read_stdin(void)
{
    size_t len = 0, cap = 4096, n;
    char *text = xmalloc(cap);

    while ((n = fread(text + len, 1, cap - len - 1, stdin)) > 0) {
        len += n;
        if (cap - len < 2)
            text = xgrow(text, &cap, cap * 2, 1);
    }
    text[len] = '\0';
    return text;
}

/* One "job ..." line into jobs[]. */
static void parse_job(char *line, int batch, unsigned pause_ms)
{
    tool_job_t *t;
    delivery_job_t *j;
    delivery_rcpt_t *rcpts = NULL;
    size_t cap = 0;
    char *word, *cursor = line;
    bool has_length = false;
    struct stat st;

    jobs = xrealloc(jobs, (njobs + 1) * sizeof(*jobs));
    t = &jobs[njobs++];
    memset(t, 0, sizeof(*t));
    t->batch = batch;
    t->pause_ms = pause_ms;
    t->id = xstrdup("job");
    t->prepend = xstrdup("");
    j = &t->job;
    j->queue_id = t->id;
    j->prepend = t->prepend;
    j->rcpts = rcpts;
    while ((word = strsep(&cursor, " \t")) != NULL) {
        char *eq = strchr(word, '=');
        char *v = eq != NULL ? eq + 1 : NULL;
        if (*word == '\0' || strcmp(word, "job") == 0)
            continue;
        if (eq != NULL)
            *eq = '\0';
        if (strcmp(word, "id") == 0 && v) {
            free(t->id);
            t->id = xstrdup(v);
            j->queue_id = t->id;
        } else if (strcmp(word, "file") == 0 && v) {
            j->path = xstrdup(v);
        } else if (strcmp(word, "offset") == 0 && v) {
            j->offset = strtoull(v, NULL, 10);
        } else if (strcmp(word, "length") == 0 && v) {
            j->length = strtoull(v, NULL, 10);
            has_length = true;
        } else if (strcmp(word, "prepend") == 0 && v) {
            free(t->prepend);
            t->prepend = read_all(v, &j->prepend_len);
            j->prepend = t->prepend;
        } else if (strcmp(word, "sender") == 0 && v) {
            j->sender = xstrdup(strcmp(v, "<>") == 0 ? "" : v);
        } else if (strcmp(word, "domain") == 0 && v) {
            j->domain = xstrdup(v);
        } else if (strcmp(word, "rcpt") == 0 && v) {
            if (j->nrcpts == cap)
                j->rcpts = rcpts = xgrow(rcpts, &cap, j->nrcpts + 1, sizeof(*rcpts));
            memset(&rcpts[j->nrcpts], 0, sizeof(*rcpts));
            rcpts[j->nrcpts].addr = xstrdup(v);
            rcpts[j->nrcpts].orig_addr = rcpts[j->nrcpts].addr;
            j->nrcpts++;
        } else if (strcmp(word, "smtputf8") == 0) {
            j->smtputf8 = true;
        } else if (strcmp(word, "8bitmime") == 0) {
            j->body_8bitmime = true;
        } else {
            fprintf(stderr, "mxdeliver: unknown word '%s'\n", word);
            exit(2);
        }
    }
    if (j->path == NULL || j->sender == NULL || j->domain == NULL || j->nrcpts == 0) {
        fprintf(stderr, "mxdeliver: a job needs file, sender, domain and rcpt\n");
        exit(2);
    }
    if (!has_length) {
        if (stat(j->path, &st) == 0 && (uint64_t)st.st_size > j->offset)
            j->length = (uint64_t)st.st_size - j->offset;
    }
    j->size = j->prepend_len + j->length;
}

static void parse_jobs(char *text)
{
    char *line, *cursor = text;
    unsigned pause_ms = 0;
    int batch = 0;

    while ((line = strsep(&cursor, "\n")) != NULL) {
        if (strncmp(line, "job", 3) == 0) {
            parse_job(line, batch, pause_ms);
            pause_ms = 0;
        } else if (strcmp(line, "wait") == 0) {
            batch++;
        } else if (strncmp(line, "sleep ", 6) == 0) {
            batch++;
            pause_ms = (unsigned)atoi(line + 6);
        }
    }
}

static void free_jobs(void)
{
    for (size_t i = 0; i < njobs; i++) {
        delivery_job_t *j = &jobs[i].job;
        for (size_t k = 0; k < j->nrcpts; k++)
            free((char *)j->rcpts[k].addr);
        free(j->rcpts);
        free((char *)j->path);
        free((char *)j->sender);
        free((char *)j->domain);
        free(jobs[i].prepend);
        free(jobs[i].id);
    }
    free(jobs);
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *jobfile = NULL;
    dns_options_t dopts = {0};
    client_options_t copts;
    options_client_t cstore;
    unsigned seconds = 60, stop_ms = 0;
    bool verbose = false;
    char err[256], *text;
    size_t len;
    int opt, rc;

    while ((opt = getopt(argc, argv, "c:vt:S:")) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 't':
            seconds = (unsigned)atoi(optarg);
            break;
        case 'S':
            stop_ms = (unsigned)atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: mxdeliver -c CONFIG [-v] [-t SECONDS] [-S MS] [JOBFILE]\n");
            return 2;
        }
    }
    if (conf == NULL || optind + 1 < argc) {
        fprintf(stderr, "usage: mxdeliver -c CONFIG [-v] [-t SECONDS] [-S MS] [JOBFILE]\n");
        return 2;
    }
    jobfile = optind < argc ? argv[optind] : NULL;
    log_init("mxdeliver", LOG_TARGET_STDERR, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    if (config_load(conf, config_error, NULL, &cfg) != 0)
        return 1;
    text = jobfile != NULL ? read_all(jobfile, &len) : read_stdin();
    parse_jobs(text);
    free(text);

    uv_loop_init(&loop);
    dopts.servers = (const char *const *)cfg->dns_servers;
    dopts.nservers = cfg->ndns_servers;
    if ((rc = dns_resolver_new(&loop, &dopts, &resolver)) != 0) {
        fprintf(stderr, "mxdeliver: resolver: %s\n", dns_strerror(rc));
        return 1;
    }
    registry = stats_new();
    options_client(cfg, registry, &copts, &cstore);
    rc = client_new(&loop, resolver, &copts, &client, err, sizeof(err));
    options_client_free(&cstore);
    if (rc != 0) {
        fprintf(stderr, "mxdeliver: client: %s\n", err);
        return 1;
    }
    /* The client copied what it needs: the snapshot may go. */
    config_free(cfg);
    delivery = client_delivery(client);
    uv_timer_init(&loop, &deadline);
    uv_timer_start(&deadline, deadline_cb, (uint64_t)seconds * 1000, 0);
    uv_timer_init(&loop, &stopper);
    uv_timer_init(&loop, &pauser);
    if (stop_ms > 0)
        uv_timer_start(&stopper, stopper_cb, stop_ms, 0);
    submit_batch();
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "mxdeliver: handles left on the loop\n");
        status = 1;
    }
    free_jobs();
    stats_free(registry);
    return status;
}
