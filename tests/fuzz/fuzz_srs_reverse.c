/*
 * libFuzzer harness for srs_reverse(): any bytes as the address to
 * reverse.  Beyond "no crash, no sanitizer report", it checks what the
 * API promises: an error leaves an empty result and is one of the SRS_E*
 * codes; a success is shorter than the input and holds one '@'.  It also
 * runs the input through srs_forward() and back: whatever forward accepts
 * (a plain sender) must reverse to itself.  The long-sender paths too
 * (docs/srs.md, "Long senders"): a keyed address reverses to the key
 * srs_key() gives the sender, and never to anything else; an embedded long
 * address reverses to the sender.
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
    if ((rc > 0 && rc != SRS_KEYED) || rc == SRS_ETOOLONG ||
        strcmp(srs_errname(rc), "unknown") == 0)
        abort();
    if (rc == SRS_KEYED && (strlen(out) != SRS_KEY_LEN ||
                            strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != SRS_KEY_LEN))
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
    char key[SRS_KEY_SIZE], want[SRS_KEY_SIZE];
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
    /* Keyed: its key is the sender's, and the address reverses to it. */
    rc = srs_forward_long(srs, SRS_LONG_STORE, s, size, FUZZ_NOW, fwd, sizeof(fwd), key);
    if (rc == SRS_KEYED) {
        if (strchr(fwd, '@') - fwd > 64 || srs_key(srs, s, size, want) != 0 ||
            strcmp(key, want) != 0)
            abort();
        rc = srs_reverse(srs, fwd, strlen(fwd), FUZZ_NOW, back, sizeof(back), NULL);
        if (rc != SRS_KEYED || strcmp(back, key) != 0)
            abort();
    }
    /* Embedded long: reverses to the sender. */
    rc = srs_forward_long(srs, SRS_LONG_EMBED, s, size, FUZZ_NOW, fwd, sizeof(fwd), NULL);
    if (rc == 0 && strncmp(fwd, "SRS0=", 5) == 0 &&
        !(strlen(fwd) == size && memcmp(fwd, s, size) == 0)) {
        rc = srs_reverse(srs, fwd, strlen(fwd), FUZZ_NOW, back, sizeof(back), NULL);
        if (rc != 0 || strlen(back) != size || memcmp(back, s, size) != 0)
            abort();
    }
    return 0;
}
