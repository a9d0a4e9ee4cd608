#include "testdir.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int test_dir_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void test_dir_remove(const char *dir)
{
    nftw(dir, test_dir_rm, 16, FTW_DEPTH | FTW_PHYS);
}
