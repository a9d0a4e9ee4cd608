/*
 * libFuzzer harness for ARC's parsers and the chain-structure check: any
 * bytes as a header section (split into fields at CRLF, folding kept) for
 * arc_chain_collect(), as an ARC-Seal and an ARC-Message-Signature value
 * and as an ARC-Authentication-Results value; then the same bytes as a
 * whole message through the streaming validator (arc_t on the DKIM
 * verifier, a fixed key) and through the sealer (a key made at start).
 * Beyond "no crash, no sanitizer report" it checks what the API promises:
 * a structure error comes with a reason and a sound chain has every set
 * from 1 to n inside the input; parsed signatures have an instance of 1 or
 * more, a seal relaxed canonicalization, a message signature no ARC-Seal
 * in h=; garbage never validates; sealing succeeds or says why, and what it
 * writes is three fields.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "dkimkey.h"
#include "dkimsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FIELDS 256

/* The RFC 8463 example key: nothing the fuzzer makes verifies with it. */
static const char fuzz_key[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

static dkimkey_private_t *fuzz_signing_key(void)
{
    static dkimkey_private_t *key;
    EVP_PKEY *pk = NULL;
    BIO *bio;
    char *pem, why[DKIMKEY_WHY_MAX];
    long len;

    if (key != NULL)
        return key;
    bio = BIO_new(BIO_s_mem());
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (bio == NULL || pk == NULL || PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1)
        abort();
    len = BIO_get_mem_data(bio, &pem);
    if (dkimkey_load_pem(pem, (size_t)len, &key, why, sizeof(why)) != 0)
        abort();
    EVP_PKEY_free(pk);
    BIO_free(bio);
    return key;
}

/* Fields at CRLF, lines starting with white space continuing the last. */
static size_t fuzz_fields(const char *s, size_t n, canon_field_t *f)
{
    size_t nf = 0, i = 0;

    while (i < n) {
        const char *eol = memmem(s + i, n - i, "\r\n", 2);
        size_t end = eol ? (size_t)(eol - s) : n;

        if (end == i)
            break;
        if ((s[i] == ' ' || s[i] == '\t') && nf > 0) {
            f[nf - 1].len = end - (size_t)(f[nf - 1].ptr - s);
        } else if (nf < FUZZ_FIELDS) {
            f[nf].ptr = s + i;
            f[nf].len = end - i;
            nf++;
        }
        i = eol ? end + 2 : n;
    }
    return nf;
}

static bool fuzz_inside(const canon_field_t *f, const char *s, size_t n)
{
    return f->ptr != NULL && f->ptr >= s && f->ptr + f->len <= s + n;
}

static void check_chain(const char *s, size_t n, const canon_field_t *f, size_t nf, arc_chain_t *c)
{
    const char *why = NULL;
    int rc = arc_chain_collect(f, nf, c, &why);

    if ((rc != 0 && rc != ARC_ESTRUCT) || (rc == 0) != (why == NULL) || c->n > ARC_INSTANCE_MAX)
        abort();
    if (rc == 0 && c->latest_fail)
        abort();
    for (unsigned i = 1; rc == 0 && i <= c->n; i++)
        if (!fuzz_inside(&c->set[i].aar, s, n) || !fuzz_inside(&c->set[i].ams, s, n) ||
            !fuzz_inside(&c->set[i].as, s, n))
            abort();
}

static void check_values(const char *s, size_t n)
{
    dkimsig_t *sig = malloc(sizeof(*sig));
    const char *why = NULL;
    unsigned instance = 0;
    size_t payload = 0;

    if (sig == NULL)
        abort();
    if (dkimsig_parse_kind(DKIMSIG_SEAL, s, n, sig, &why) == 0 &&
        (sig->instance == 0 || sig->hcanon != CANON_RELAXED || sig->b_raw_end > n))
        abort();
    if (dkimsig_parse_kind(DKIMSIG_AMS, s, n, sig, &why) == 0 &&
        (sig->instance == 0 || dkimsig_signs(sig, "arc-seal") || !dkimsig_signs(sig, "from")))
        abort();
    if (arc_aar_parse(s, n, &instance, &payload) == 0 &&
        (instance == 0 || instance > 999 || payload > n))
        abort();
    free(sig);
}

typedef struct {
    dkim_t *d;
    arc_t *a;
} fuzz_rig_t;

static void fuzz_on_field(void *arg, const char *field, size_t len, size_t name_len)
{
    arc_field(((fuzz_rig_t *)arg)->a, field, len, name_len);
}

static void fuzz_on_headers_done(void *arg)
{
    fuzz_rig_t *r = arg;

    arc_headers_done(r->a, r->d);
}

/* The input as a message, a body added, fed in two pieces. */
static void check_stream(const char *s, size_t n)
{
    static const char tail[] = "\r\n\r\nbody\r\n";
    fuzz_rig_t r;
    dkim_options_t o = {.header_max = 65536, .max_signatures = 4, .now = 1700000000,
                        .on_field = fuzz_on_field, .on_headers_done = fuzz_on_headers_done,
                        .arg = &r};
    size_t cut = n ? (unsigned char)s[0] * n / 256 : 0;
    txt_record_t key = {fuzz_key, sizeof(fuzz_key) - 1};

    r.a = arc_new(1700000000);
    r.d = dkim_new(&o);
    dkim_feed(r.d, s, cut);
    dkim_feed(r.d, s + cut, n - cut);
    dkim_feed(r.d, tail, sizeof(tail) - 1);
    dkim_end(r.d);
    for (size_t k = 0; k < arc_key_count(r.a); k++)
        arc_set_key(r.a, k, k % 2 ? TXT_OK : TXT_TEMPFAIL, &key, 1);
    arc_finish(r.a, r.d);
    if (arc_result(r.a)->cv == DKIM_CV_PASS)
        abort();
    arc_free(r.a);
    dkim_free(r.d);
}

static void check_seal(const canon_field_t *f, size_t nf, const arc_chain_t *c)
{
    static const unsigned char bh[32];
    dkimsign_t signer = {.key = fuzz_signing_key(), .domain = "fwd.test", .selector = "s",
                         .time = 1700000000};
    buf_t out;
    int rc;

    buf_init(&out, 1 << 20);
    rc = arc_seal(&signer, f, nf, bh, "mx.test; none", 13, c->n ? DKIM_CV_FAIL : DKIM_CV_NONE,
                  c->n, &out);
    if (rc == 0 && (buf_used(&out) < 3 || memcmp(buf_ptr(&out), "ARC-Seal: i=", 12) != 0))
        abort();
    if (rc != 0 && (buf_used(&out) != 0 || (rc != ARC_ECHAINFAILED && rc != ARC_EFULL &&
                                            rc != ARC_EINVAL && rc != BUF_EFULL &&
                                            rc != DKIMSIGN_EINVAL)))
        abort();
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    canon_field_t *f = malloc(FUZZ_FIELDS * sizeof(*f));
    arc_chain_t *chain = malloc(sizeof(*chain));
    size_t nf;

    if (f == NULL || chain == NULL)
        abort();
    nf = fuzz_fields(s, size, f);
    check_chain(s, size, f, nf, chain);
    check_values(s, size);
    check_stream(s, size);
    check_seal(f, nf, chain);
    free(chain);
    free(f);
    return 0;
}
