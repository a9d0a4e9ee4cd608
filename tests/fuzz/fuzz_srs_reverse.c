/*
 * libFuzzer harness for srs_reverse(): any bytes as the address to
 * reverse.  Beyond "no crash, no sanitizer report", it checks what the
 * API promises: an error leaves an empty result and is one of the SRS_E*
 * codes; a success is shorter than the input and holds one '@'.  It also
 * runs the input through srs_forward() and back: whatever forward accepts
 * (a plain sender) must reverse to itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srs.h"

/* PostSRSd's vector time, so seeds made with tops3cr3t are fresh. */
#define FUZZ_NOW ((time_t)1577836860)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srs_t *fuzz_srs(void)
{
    static srs_t *srs;
    static const char *const secrets[] = {"tops3cr3t", "an-older-secret-still-verifying"};

    if (srs == NULL && srs_new("example.com", 21 * 86400, secrets, 2, &srs) < 0)
        abort();
    return srs;
}

static void fuzz_check_result(int rc, const char *out, size_t in_len)
{
    /* srs_errname() knows every SRS_E* code, and only those. */
    if (rc > 0 || rc == SRS_ETOOLONG || strcmp(srs_errname(rc), "unknown") == 0)
        abort();
    if (rc < 0 && out[0] != '\0')
        abort();
    if (rc == 0) {
        const char *at = strchr(out, '@');
        if (strlen(out) >= in_len || at == NULL || strchr(at + 1, '@') != NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out[SRS_ADDR_SIZE], fwd[SRS_ADDR_SIZE], back[SRS_ADDR_SIZE];
    unsigned age = 0;
    srs_t *srs = fuzz_srs();
    int rc;

    rc = srs_reverse(srs, s, size, FUZZ_NOW, out, sizeof(out), &age);
    fuzz_check_result(rc, out, size);
    if (age > 1023 || (rc != SRS_EEXPIRED && age != 0))
        abort();

    /* Round trip: a plain sender forwarded, then reversed, is itself.
     * SRS senders are excluded: they become SRS1, which reverses to the
     * first forwarder's address by design. */
    rc = srs_forward(srs, s, size, FUZZ_NOW, fwd, sizeof(fwd));
    if (rc == 0 && strncmp(fwd, "SRS0=", 5) == 0 &&
        !(strlen(fwd) == size && memcmp(fwd, s, size) == 0)) {
        rc = srs_reverse(srs, fwd, strlen(fwd), FUZZ_NOW, back, sizeof(back), NULL);
        if (rc != 0 || strlen(back) != size || memcmp(back, s, size) != 0)
            abort();
    }
    return 0;
}
