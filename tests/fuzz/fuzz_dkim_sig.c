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

#include <openssl/evp.h>

#include "dkim.h"
#include "dkimsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char *data_of(const char *s)
{
    return (const unsigned char *)s;
}

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

/*
 * A whole message with two signatures fed in two chunks cut where the
 * input says: a well-formed rsa-sha256 one whose key's p= is the input as
 * DER (so hostile key bytes reach OpenSSL's decoders and our SPKI walker),
 * and the input itself as a signature whose key record is the input again.
 * Whatever the verifier makes of them, it is never a pass: nobody forges a
 * signature over this message by chance.
 */
static void check_stream(const char *s, size_t n)
{
    static const char head[] =
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from;"
        " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
        "DKIM-Signature:";
    static const char tail[] = "\r\nFrom: a@example.com\r\nSubject: fuzz\r\n\r\nbody\r\n \r\n";
    static const char kpre[] = "v=DKIM1; k=rsa; p=";
    size_t len = sizeof(head) - 1 + n + sizeof(tail) - 1, cut;
    char *msg = malloc(len), *key = malloc(sizeof(kpre) + 4 * (n / 3 + 1) + 1);
    dkim_options_t opt = {.header_max = 65536, .max_signatures = 4, .now = 1700000000};
    dkim_t *d;
    txt_record_t self = {s, n}, der;

    if (msg == NULL || key == NULL)
        abort();
    memcpy(msg, head, sizeof(head) - 1);
    memcpy(msg + sizeof(head) - 1, s, n);
    memcpy(msg + sizeof(head) - 1 + n, tail, sizeof(tail) - 1);
    memcpy(key, kpre, sizeof(kpre) - 1);
    der.data = key;
    der.len = sizeof(kpre) - 1 +
              (size_t)EVP_EncodeBlock((unsigned char *)key + sizeof(kpre) - 1, data_of(s), (int)n);
    cut = n ? (unsigned char)s[0] * len / 256 : 0;
    d = dkim_new(&opt);
    dkim_feed(d, msg, cut);
    dkim_feed(d, msg + cut, len - cut);
    dkim_end(d);
    for (size_t i = 0; i < dkim_count(d); i++)
        dkim_set_key(d, i, TXT_OK, i == 0 ? &der : &self, 1);
    dkim_finish(d);
    for (size_t i = 0; i < dkim_count(d); i++)
        if (dkim_result(d, i)->status == DKIM_PASS || dkim_result(d, i)->status == DKIM_PENDING)
            abort();
    dkim_free(d);
    free(key);
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
