#include "testdir.h"

#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int test_dir_make(const char *prefix, char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/%s-XXXXXX", tmp != NULL ? tmp : "/tmp", prefix);

    if (n < 0 || (size_t)n >= size)
        return -1;
    return mkdtemp(dir) != NULL ? 0 : -1;
}

const char *test_dir_listing(const char *dir, char *out, size_t size)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    size_t len = 0;

    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.' && len < size) {
            int w = snprintf(out + len, size - len, "%s%s", len > 0 ? " " : "", ents[i]->d_name);
            len = w > 0 ? len + (size_t)w : len;
        }
        free(ents[i]);
    }
    if (n >= 0)
        free(ents);
    return out;
}

static uint64_t test_be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The id in a message image (its I record), into id[14]; false if none. */
static bool test_image_id(const unsigned char *p, size_t n, char id[14])
{
    size_t pos = 8;

    while (pos + 9 <= n) {
        uint64_t len = test_be(p + pos + 1, 8);

        if (len > n - pos - 9)
            return false;
        if (p[pos] == 'I' && len == 13) {
            memcpy(id, p + pos + 9, 13);
            id[13] = '\0';
            return true;
        }
        pos += 9 + (size_t)len;
    }
    return false;
}

static int test_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *test_spool_listing(const char *dir, char *out, size_t size)
{
    char jdir[4096], path[4096 + 260], *names[4096];
    struct dirent **ents;
    size_t nn = 0, len = 0;
    int n = scandir(dir, &ents, NULL, alphasort);

    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.' && strcmp(ents[i]->d_name, "journal") != 0 && nn < 4096)
            names[nn++] = strdup(ents[i]->d_name);
        free(ents[i]);
    }
    if (n >= 0)
        free(ents);
    snprintf(jdir, sizeof(jdir), "%s/journal", dir);
    n = scandir(jdir, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        unsigned char *data = NULL;
        struct stat st;
        size_t pos = 8, have = nn;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", jdir, ents[i]->d_name);
        if (ents[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            (f = fopen(path, "rb")) != NULL) {
            data = malloc((size_t)st.st_size + 1);
            if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
                st.st_size = 0;
            fclose(f);
            while (pos + 9 <= (size_t)st.st_size) {
                size_t rlen = (size_t)test_be(data + pos + 5, 4);
                char id[14];
                bool dup = false;

                if (rlen > (size_t)st.st_size - pos - 9 || !strchr("MDFX", data[pos]))
                    break;
                if (data[pos] == 'M' && test_image_id(data + pos + 9, rlen, id)) {
                    for (size_t k = 0; k < have; k++)
                        dup |= strcmp(names[k], id) == 0;
                    if (!dup && nn < 4096)
                        names[nn++] = strdup(id);
                }
                pos += 9 + rlen;
            }
            free(data);
        }
        free(ents[i]);
    }
    if (n >= 0)
        free(ents);
    qsort(names, nn, sizeof(*names), test_cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < nn; i++) {
        if (len < size) {
            int w = snprintf(out + len, size - len, "%s%s", len > 0 ? " " : "", names[i]);
            len = w > 0 ? len + (size_t)w : len;
        }
        free(names[i]);
    }
    return out;
}

static int test_dir_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

long long test_dir_bytes(const char *dir)
{
    char path[4096];
    long long total = 0;
    struct dirent *e;
    struct stat st;
    DIR *d = opendir(dir);

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            total += st.st_size;
    }
    closedir(d);
    return total;
}

void test_dir_remove(const char *dir)
{
    nftw(dir, test_dir_rm, 16, FTW_DEPTH | FTW_PHYS);
}
