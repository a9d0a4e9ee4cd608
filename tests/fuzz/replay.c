/*
 * replay - run a fuzz harness over files without libFuzzer, so the
 * default (gcc) build compiles every harness and runs its seed corpus as a
 * regression test.  Arguments are files or directories of files.  Prints
 * "replayed N inputs" and exits 0 (a harness signals trouble by aborting).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not seeds. */
#define REPLAY_MAX (1024 * 1024)

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    buf = malloc(REPLAY_MAX);
    if (buf == NULL)
        abort();
    n = fread(buf, 1, REPLAY_MAX, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *d;
        struct dirent *e;

        if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
            rc |= replay_file(argv[i]);
            count++;
            continue;
        }
        if ((d = opendir(argv[i])) == NULL) {
            perror(argv[i]);
            return 1;
        }
        while ((e = readdir(d)) != NULL) {
            char path[4096];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            rc |= replay_file(path);
            count++;
        }
        closedir(d);
    }
    printf("replayed %zu inputs\n", count);
    return rc != 0 || count == 0;
}
