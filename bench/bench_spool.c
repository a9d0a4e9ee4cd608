/*
 * bench_spool - spool commits per second beside the disk's raw fsync rate.
 *
 *     bench_spool [-d DIR] [-t SECONDS] [-r RUNS] [-s SIZE] [-w WRITERS] [-j JOBS]
 *                 [-m file|filesystem] [-F]
 *
 * Four figures per run, each phase in a fresh directory under DIR (default
 * ".", so run it on the file system the spool will live on; everything is
 * removed at the end):
 *
 *   raw       one file at a time: create, write SIZE bytes, fsync, rename,
 *             fsync the directory: what a commit costs without grouping
 *             (beside it, the bare rate of appending SIZE bytes to one
 *             file and fdatasyncing it, what the disk does per sync)
 *   1 writer  spool commits of SIZE-byte messages, one at a time
 *   N writers N commits always in flight (default 64), as N SMTP sessions
 *
 * -m chooses how a pass makes its files durable (spool_options_t sync,
 * the daemon's spool_sync): an fsync per file (file, the default) or one
 * syncfs per pass (filesystem).  -F commits every message as a file of
 * its own (spool_options_t files_only): by default a message this small
 * goes through the commit journal, one append per message and one
 * fdatasync per pass (docs/spool.md).  -j sets the spool's parallel sync
 * jobs per pass (sync_jobs; default SPOOL_SYNC_JOBS), and libuv's pool to
 * match.
 *
 * Commits run on a libuv loop with the thread pool doing the fsync passes,
 * as in the daemon.  Prints each run, then the medians.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "spool.h"
#include "spool_uv.h"

#define RUNS_MAX 15

static size_t msg_size = 4096;
static unsigned sync_jobs; /* 0: the spool's default */
static spool_sync_t sync_mode = SPOOL_SYNC_FILES;
static bool files_only;
static double phase_seconds = 2.0;
static char *payload;

/* CPU time of the whole process (all threads), in seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void die(const char *what, int err)
{
    fprintf(stderr, "bench_spool: %s: %s\n", what, spool_strerror(err));
    exit(1);
}

/*
 * A fresh directory for one phase, under the run's top directory.  Files
 * stay until the program ends: removing them between phases would make
 * later phases pay for it (ext4 without a journal skips recently freed
 * inodes when it allocates, scanning past each one), and the phases would
 * no longer be compared on equal terms.  The file system is synced before
 * each phase so none inherits another's dirty data.
 */
static char *top;

static char *phase_dir(void)
{
    static unsigned n;
    size_t len = strlen(top) + 16;
    char *dir = malloc(len);
    int fd;

    snprintf(dir, len, "%s/%u", top, n++);
    if (mkdir(dir, 0700) != 0)
        die("mkdir", -errno);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
        syncfs(fd);
        close(fd);
    }
    return dir;
}

/* ---- raw: one durable file at a time ---- */

static double bench_raw(void)
{
    char *dir = phase_dir();
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t start = uv_hrtime(), stop = start + (uint64_t)(phase_seconds * 1e9), now;
    unsigned long n = 0;

    if (dfd < 0)
        die("open", -errno);
    do {
        char tmp[32], name[32];
        int fd;

        snprintf(tmp, sizeof(tmp), "%lu.tmp", n);
        snprintf(name, sizeof(name), "%lu", n);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, payload, msg_size) != (ssize_t)msg_size || fsync(fd) != 0 ||
            renameat(dfd, tmp, dfd, name) != 0 || fsync(dfd) != 0)
            die("raw loop", -errno);
        close(fd);
        n++;
        now = uv_hrtime();
    } while (now < stop);
    close(dfd);
    free(dir);
    return n / ((now - start) / 1e9);
}

/*
 * The bare fsync rate: SIZE bytes appended to one file and fdatasynced,
 * again and again (no new file, no name): what the disk does per sync
 * when nothing else is asked of the file system.
 */
static double bench_fdatasync(void)
{
    char *dir = phase_dir(), path[600];
    uint64_t start = uv_hrtime(), stop = start + (uint64_t)(phase_seconds * 1e9), now;
    unsigned long n = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/append", dir);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        die("open", -errno);
    do {
        if (pwrite(fd, payload, msg_size, (off_t)(n * msg_size)) != (ssize_t)msg_size ||
            fdatasync(fd) != 0)
            die("fdatasync loop", -errno);
        n++;
        now = uv_hrtime();
    } while (now < stop);
    close(fd);
    free(dir);
    return n / ((now - start) / 1e9);
}

/* ---- spool: W writers, each starting its next message on commit ---- */

typedef struct {
    spool_t *s;
    uint64_t stop;
    uint64_t last;
    unsigned long commits;
} bench_t;

static void writer_start(bench_t *b);

static void committed(void *arg, int status, spool_msg_t *msg)
{
    bench_t *b = arg;

    if (status != 0)
        die("commit", status);
    spool_msg_free(msg);
    b->commits++;
    b->last = uv_hrtime();
    if (b->last < b->stop)
        writer_start(b);
}

static void writer_start(bench_t *b)
{
    static const spool_env_rcpt_t rcpt = {"user@dest.test", "user@alias.test"};
    static const char prepend[] = "Received: from client.test (client.test [127.0.0.1])\r\n"
                                  "\tby fwd.test (mxfwd) with ESMTP\r\n";
    spool_envelope_t env = {
        .client = "client.test[127.0.0.1]",
        .helo = "client.test",
        .sender = "sender@origin.test",
        .srs_sender = "SRS0=HHHH=TT=origin.test=sender@fwd.test",
        .prepend = prepend,
        .prepend_len = sizeof(prepend) - 1,
        .rcpts = &rcpt,
        .nrcpts = 1,
    };
    spool_writer_t *w;
    int err;

    if ((err = spool_writer_open(b->s, &w)) != 0)
        die("spool_writer_open", err);
    spool_writer_write(w, payload, msg_size);
    if ((err = spool_writer_commit(w, &env, committed, b)) != 0)
        die("spool_writer_commit", err);
}

static double bench_spool(unsigned writers, double *per_pass, double *cpu_us)
{
    char *dir = phase_dir();
    uv_loop_t loop;
    spool_options_t opt;
    spool_stats_t st;
    bench_t b = {0};
    uint64_t start;
    int err;

    uv_loop_init(&loop);
    opt = (spool_options_t){
        .exec = spool_uv_executor(&loop), .sync_jobs = sync_jobs, .sync = sync_mode,
        .files_only = files_only};
    if ((err = spool_open(dir, &opt, &b.s)) != 0)
        die("spool_open", err);
    double cpu = cpu_seconds();
    start = uv_hrtime();
    b.stop = start + (uint64_t)(phase_seconds * 1e9);
    for (unsigned i = 0; i < writers; i++)
        writer_start(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    *cpu_us = (cpu_seconds() - cpu) / b.commits * 1e6;
    spool_get_stats(b.s, &st);
    *per_pass = st.passes ? (double)st.commits / st.passes : 0;
    if ((err = spool_close(b.s)) != 0)
        die("spool_close", err);
    if (uv_loop_close(&loop) != 0)
        die("uv_loop_close", -EBUSY);
    free(dir);
    return b.commits / ((b.last - start) / 1e9);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *base = ".";
    unsigned writers = 64;
    int runs = 3, c;
    double raw[RUNS_MAX], bare[RUNS_MAX], one[RUNS_MAX], many[RUNS_MAX], pass1, passn, cpu1,
        cpun;

    while ((c = getopt(argc, argv, "d:t:r:s:w:j:m:F")) != -1) {
        switch (c) {
        case 'F': files_only = true; break;
        case 'd': base = optarg; break;
        case 't': phase_seconds = atof(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 's': msg_size = (size_t)atol(optarg); break;
        case 'w': writers = (unsigned)atoi(optarg); break;
        case 'j': sync_jobs = (unsigned)atoi(optarg); break;
        case 'm':
            if (strcmp(optarg, "file") == 0) {
                sync_mode = SPOOL_SYNC_FILES;
                break;
            }
            if (strcmp(optarg, "filesystem") == 0) {
                sync_mode = SPOOL_SYNC_FILESYSTEM;
                break;
            }
            /* fall through */
        default:
            fprintf(stderr, "usage: bench_spool [-d DIR] [-t SECONDS] [-r RUNS] [-s SIZE] "
                            "[-w WRITERS] [-j JOBS] [-m file|filesystem] [-F]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > RUNS_MAX || phase_seconds <= 0 || msg_size == 0 || writers == 0 ||
        sync_jobs > 16) {
        fprintf(stderr, "bench_spool: bad option value\n");
        return 2;
    }
    /* libuv sizes its pool at the first submission: room for every job. */
    if (sync_jobs > 4 && getenv("UV_THREADPOOL_SIZE") == NULL) {
        char n[16];

        snprintf(n, sizeof(n), "%u", sync_jobs);
        setenv("UV_THREADPOOL_SIZE", n, 1);
    }
    size_t toplen = strlen(base) + 32;
    top = malloc(toplen);
    snprintf(top, toplen, "%s/bench-spool-XXXXXX", base);
    if (mkdtemp(top) == NULL)
        die("mkdtemp", -errno);
    payload = malloc(msg_size);
    for (size_t i = 0; i < msg_size; i++)
        payload[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : (char)('a' + i % 26);

    printf("%zu-byte messages, %.1f s per phase, directory %s, spool_sync %s, %s\n", msg_size,
           phase_seconds, base, sync_mode == SPOOL_SYNC_FILES ? "file" : "filesystem",
           files_only ? "a file per message (-F)" : "small messages through the journal");
    for (int r = 0; r < runs; r++) {
        raw[r] = bench_raw();
        bare[r] = bench_fdatasync();
        one[r] = bench_spool(1, &pass1, &cpu1);
        many[r] = bench_spool(writers, &passn, &cpun);
        printf("run %d: raw %.0f/s  append+fdatasync %.0f/s  1 writer %.0f/s (%.1f per pass, "
               "%.0f us CPU each)  %u writers %.0f/s (%.1f per pass, %.0f us CPU each)\n",
               r + 1, raw[r], bare[r], one[r], pass1, cpu1, writers, many[r], passn, cpun);
        fflush(stdout);
    }
    double mraw = median(raw, runs), mbare = median(bare, runs), mone = median(one, runs),
           mmany = median(many, runs);
    printf("median of %d: raw fsync loop %.0f/s, spool 1 writer %.0f/s, spool %u writers "
           "%.0f/s = %.1fx raw\n",
           runs, mraw, mone, writers, mmany, mmany / mraw);
    printf("           bare append+fdatasync loop %.0f/s: %u writers = %.1fx that\n", mbare,
           writers, mmany / mbare);
    nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(top);
    free(payload);
    return 0;
}
