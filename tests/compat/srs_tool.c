/*
 * srs_tool - mxfwd's SRS module on a pipe, for the compatibility test
 * against Mail::SRS (srs_compat.pl).  It links the srs library only, and
 * takes the time with every request, so the test pins the clock.
 *
 * One request a line on stdin, words separated by one space:
 *     new DOMAIN MAX_AGE_DAYS SECRET...   make the rewriter
 *     f NOW ADDRESS                       forward
 *     r NOW ADDRESS                       reverse
 * One answer a line on stdout: "ok [RESULT]" or "err NAME" (srs_errname).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srs.h"

#define TOOL_MAX_SECRETS 16

static srs_t *tool_new(char *args)
{
    const char *secrets[TOOL_MAX_SECRETS];
    char *domain = strtok(args, " "), *days = strtok(NULL, " "), *s;
    size_t n = 0;
    srs_t *srs = NULL;

    while ((s = strtok(NULL, " ")) != NULL && n < TOOL_MAX_SECRETS)
        secrets[n++] = s;
    if (domain == NULL || days == NULL ||
        srs_new(domain, strtoull(days, NULL, 10) * 86400, secrets, n, &srs) < 0)
        return NULL;
    return srs;
}

int main(void)
{
    char *line = NULL, out[SRS_ADDR_SIZE];
    size_t cap = 0;
    ssize_t len;
    srs_t *srs = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((len = getline(&line, &cap, stdin)) > 0) {
        char *sp, *addr;
        time_t now;
        int rc;

        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (strncmp(line, "new ", 4) == 0) {
            srs_free(srs);
            srs = tool_new(line + 4);
            printf(srs != NULL ? "ok\n" : "err new\n");
            continue;
        }
        if (srs == NULL || len < 4 || (line[0] != 'f' && line[0] != 'r') || line[1] != ' ') {
            printf("err usage\n");
            continue;
        }
        now = (time_t)strtoll(line + 2, &sp, 10);
        addr = *sp == ' ' ? sp + 1 : sp;
        if (line[0] == 'f')
            rc = srs_forward(srs, addr, strlen(addr), now, out, sizeof(out));
        else
            rc = srs_reverse(srs, addr, strlen(addr), now, out, sizeof(out), NULL);
        if (rc == 0)
            printf("ok %s\n", out);
        else
            printf("err %s\n", srs_errname(rc));
    }
    srs_free(srs);
    free(line);
    return 0;
}
