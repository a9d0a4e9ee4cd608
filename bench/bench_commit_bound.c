/*
 * bench_commit_bound - how many spool-style commits per second a file
 * system can make at all, with no spool around them.
 *
 *     bench_commit_bound [-d DIR] [-t SECONDS] [-b BATCH] [-j THREADS] [-p PIPELINES] [-s]
 *
 * The commit protocol of the spool (docs/spool.md): create NAME.tmp
 * (O_EXCL, 0600), write a 4 KiB message, fsync it, rename it to NAME,
 * fsync the directory.  Each of PIPELINES threads (default 1) repeats:
 * create and write BATCH files (default 1), fsync them with THREADS
 * threads (default 1; writeback of all of them started first), rename
 * each, fsync the directory once.  -b 1 -j 1 -p 1 is the raw loop
 * bench_spool compares with; larger values are what any grouping,
 * parallel fsyncs and overlapping groups could give, with nothing else
 * spending CPU.  Every pipeline works in the same directory, as the
 * spool's passes do.  -s makes each group's files durable with one
 * syncfs(2) instead of their fsyncs (the spool's spool_sync = filesystem).
 *
 * Prints commits per second and the process's CPU time per commit (all
 * threads, kernel included).  Files are removed at the end.  A bound for
 * docs/spool.md, not a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 1024
#define THREADS_MAX 64
#define PIPELINES_MAX 64
#define MSG_SIZE 4096

typedef struct pipeline {
    pthread_t thread;
    pthread_t syncers[THREADS_MAX];
    pthread_barrier_t start, end; /* around each group's fsyncs */
    int fds[BATCH_MAX];
    atomic_int next;              /* the next file to fsync */
    bool stop;                    /* written before `start`, read after it */
} pipeline_t;

static int dirfd_, batch = 1, threads = 1, npipes = 1;
static bool use_syncfs;
static double seconds = 2.0;
static char payload[MSG_SIZE];
static atomic_ulong commits, names;

static void die(const char *what)
{
    fprintf(stderr, "bench_commit_bound: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* fsync the group's files, taking them one at a time with the others. */
static void sync_share(pipeline_t *p)
{
    int i;

    if (use_syncfs) {
        /* One thread of the group syncs; the others have nothing to do. */
        if (atomic_fetch_add(&p->next, batch) == 0 && syncfs(dirfd_) != 0)
            die("syncfs");
        return;
    }
    while ((i = atomic_fetch_add(&p->next, 1)) < batch) {
        if (batch > 1 && sync_file_range(p->fds[i], 0, 0, SYNC_FILE_RANGE_WRITE) != 0)
            die("sync_file_range");
        if (fsync(p->fds[i]) != 0)
            die("fsync");
    }
}

static void *syncer(void *arg)
{
    pipeline_t *p = arg;

    for (;;) {
        pthread_barrier_wait(&p->start);
        if (p->stop)
            return NULL;
        sync_share(p);
        pthread_barrier_wait(&p->end);
    }
}

static void *run_pipeline(void *arg)
{
    pipeline_t *p = arg;
    unsigned long ids[BATCH_MAX];
    double stop = now() + seconds;
    char tmp[64], name[64];

    while (now() < stop) {
        for (int i = 0; i < batch; i++) {
            ids[i] = atomic_fetch_add(&names, 1);
            snprintf(tmp, sizeof(tmp), "%lu.tmp", ids[i]);
            p->fds[i] = openat(dirfd_, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (p->fds[i] < 0)
                die("create");
            if (pwrite(p->fds[i], payload, sizeof(payload), 0) != (ssize_t)sizeof(payload))
                die("write");
        }
        atomic_store(&p->next, 0);
        pthread_barrier_wait(&p->start);
        sync_share(p);
        pthread_barrier_wait(&p->end);
        for (int i = 0; i < batch; i++) {
            snprintf(tmp, sizeof(tmp), "%lu.tmp", ids[i]);
            snprintf(name, sizeof(name), "%lu", ids[i]);
            if (renameat(dirfd_, tmp, dirfd_, name) != 0)
                die("rename");
            close(p->fds[i]);
        }
        if (fsync(dirfd_) != 0)
            die("fsync of the directory");
        atomic_fetch_add(&commits, (unsigned long)batch);
    }
    p->stop = true;
    pthread_barrier_wait(&p->start); /* let the syncers see it */
    return NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    static pipeline_t pipes[PIPELINES_MAX];
    const char *base = ".";
    char dir[4096], how[32];
    double t0, elapsed, cpu;
    int c;

    while ((c = getopt(argc, argv, "d:t:b:j:p:s")) != -1) {
        switch (c) {
        case 'd': base = optarg; break;
        case 't': seconds = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'j': threads = atoi(optarg); break;
        case 'p': npipes = atoi(optarg); break;
        case 's': use_syncfs = true; break;
        default:
            fprintf(stderr, "usage: bench_commit_bound [-d DIR] [-t SECONDS] [-b BATCH] "
                            "[-j THREADS] [-p PIPELINES] [-s]\n");
            return 2;
        }
    }
    if (seconds <= 0 || batch < 1 || batch > BATCH_MAX || threads < 1 || threads > THREADS_MAX ||
        npipes < 1 || npipes > PIPELINES_MAX) {
        fprintf(stderr, "bench_commit_bound: bad option value\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s/bench-commit-XXXXXX", base);
    if (mkdtemp(dir) == NULL || (dirfd_ = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
        die(dir);
    memset(payload, 'x', sizeof(payload));
    syncfs(dirfd_);

    cpu = cpu_seconds();
    t0 = now();
    for (int i = 0; i < npipes; i++) {
        pipeline_t *p = &pipes[i];

        pthread_barrier_init(&p->start, NULL, (unsigned)threads);
        pthread_barrier_init(&p->end, NULL, (unsigned)threads);
        for (int k = 1; k < threads; k++)
            pthread_create(&p->syncers[k], NULL, syncer, p);
        pthread_create(&p->thread, NULL, run_pipeline, p);
    }
    for (int i = 0; i < npipes; i++) {
        pthread_join(pipes[i].thread, NULL);
        for (int k = 1; k < threads; k++)
            pthread_join(pipes[i].syncers[k], NULL);
    }
    elapsed = now() - t0;
    cpu = cpu_seconds() - cpu;
    if (use_syncfs)
        snprintf(how, sizeof(how), "one syncfs");
    else
        snprintf(how, sizeof(how), "%d fsync thread%s", threads, threads == 1 ? "" : "s");
    printf("batch %d, %s, %d pipelines: %.0f commits/s, %.0f us CPU each\n", batch, how, npipes,
           (double)commits / elapsed, cpu / (double)commits * 1e6);
    close(dirfd_);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
