/* Unit tests for auth/dkimkey.c: signing keys made now by the openssl
 * command (RSA 2048 in PKCS#1 and PKCS#8, RSA 1024, Ed25519, EC P-256),
 * refused with the reasons an administrator reads; the DKIM record of a
 * key's public half, checked against openssl's own; whether a published
 * record is a key's public half; signatures that the verifier's half of
 * the module accepts. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkimkey.h"
#include "dkimsig.h"

typedef struct {
    char dir[64];
} keydir_t;

static void keydir_init(keydir_t *k)
{
    snprintf(k->dir, sizeof(k->dir), "/tmp/mxfwd-dkimkey-XXXXXX");
    cr_assert_not_null(mkdtemp(k->dir));
}

static void keydir_free(keydir_t *k)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
    cr_assert_eq(system(cmd), 0);
}

/* Run "openssl ARGS" with %s in args standing for the directory; the path
 * of name in it. */
static const char *openssl(const keydir_t *k, const char *name, const char *args)
{
    static char path[256];
    char cmd[1024], a[600];

    snprintf(a, sizeof(a), args, k->dir, k->dir);
    snprintf(cmd, sizeof(cmd), "openssl %s >/dev/null 2>&1", a);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(path, sizeof(path), "%s/%s", k->dir, name);
    return path;
}

static void write_file(const keydir_t *k, const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", k->dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static dkimkey_private_t *load_ok(const keydir_t *k, const char *name)
{
    char path[256], why[DKIMKEY_WHY_MAX];
    dkimkey_private_t *key = NULL;

    snprintf(path, sizeof(path), "%s/%s", k->dir, name);
    cr_assert_eq(dkimkey_load(path, &key, why, sizeof(why)), 0, "%s: %s", name, why);
    cr_assert_not_null(key);
    return key;
}

static void load_refused(const keydir_t *k, const char *name, int code, const char *reason)
{
    char path[256], why[DKIMKEY_WHY_MAX];
    dkimkey_private_t *key = (dkimkey_private_t *)1;

    snprintf(path, sizeof(path), "%s/%s", k->dir, name);
    cr_assert_eq(dkimkey_load(path, &key, why, sizeof(why)), code, "%s", name);
    cr_assert_null(key);
    cr_assert_str_eq(why, reason, "%s", name);
}

/* The record's text for key, NUL-terminated, in a static buffer. */
static const char *record_of(const dkimkey_private_t *key)
{
    static char text[4096];
    buf_t b;

    buf_init(&b, sizeof(text) - 1);
    cr_assert_eq(dkimkey_record(key, &b), 0);
    memcpy(text, buf_ptr(&b), buf_used(&b));
    text[buf_used(&b)] = '\0';
    buf_free(&b);
    return text;
}

/* Base64 of the DER SubjectPublicKeyInfo openssl writes for a key file. */
static const char *openssl_spki_b64(const keydir_t *k, const char *name)
{
    static char text[4096];
    char cmd[600];
    FILE *f;
    size_t n;

    snprintf(cmd, sizeof(cmd),
             "openssl pkey -in '%s/%s' -pubout -outform DER -out '%s/pub.der' && "
             "base64 -w0 '%s/pub.der'", k->dir, name, k->dir, k->dir);
    f = popen(cmd, "r");
    cr_assert_not_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    cr_assert_eq(pclose(f), 0);
    text[n] = '\0';
    return text;
}

Test(dkimkey, rsa_2048_loads_from_pkcs1_and_pkcs8)
{
    keydir_t k;
    dkimkey_private_t *k8, *k1;
    const char *rec;
    char want[4200];

    keydir_init(&k);
    openssl(&k, "rsa8.pem", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa8.pem");
    openssl(&k, "rsa1.pem", "rsa -in %s/rsa8.pem -traditional -out %s/rsa1.pem");
    {
        char head[40] = "";
        FILE *f;
        char path[256];

        snprintf(path, sizeof(path), "%s/rsa1.pem", k.dir);
        f = fopen(path, "r");
        cr_assert(fgets(head, sizeof(head), f) != NULL);
        fclose(f);
        cr_assert_str_eq(head, "-----BEGIN RSA PRIVATE KEY-----\n", "PKCS#1 made");
    }
    k8 = load_ok(&k, "rsa8.pem");
    k1 = load_ok(&k, "rsa1.pem");
    cr_assert_eq(dkimkey_type(k8), DKIM_KEY_RSA);
    cr_assert_eq(dkimkey_alg(k1), DKIM_RSA_SHA256);
    cr_assert_eq(dkimkey_bits(k8), 2048);
    cr_assert_eq(dkimkey_bits(k1), 2048);
    rec = record_of(k8);
    /* The record publishes what openssl calls the public key. */
    snprintf(want, sizeof(want), "v=DKIM1; k=rsa; p=%s", openssl_spki_b64(&k, "rsa8.pem"));
    cr_assert_str_eq(rec, want);
    cr_assert_str_eq(record_of(k1), want, "the same key either way");
    dkimkey_free(k8);
    dkimkey_free(k1);
    keydir_free(&k);
}

Test(dkimkey, ed25519_loads_and_publishes_its_32_bytes)
{
    keydir_t k;
    dkimkey_private_t *key;
    dkimkey_t parsed;
    const char *rec, *why;

    keydir_init(&k);
    openssl(&k, "ed.pem", "genpkey -algorithm ed25519 -out %s/ed.pem");
    key = load_ok(&k, "ed.pem");
    cr_assert_eq(dkimkey_type(key), DKIM_KEY_ED25519);
    cr_assert_eq(dkimkey_alg(key), DKIM_ED25519_SHA256);
    cr_assert_eq(dkimkey_bits(key), 256);
    rec = record_of(key);
    cr_assert(strncmp(rec, "v=DKIM1; k=ed25519; p=", 22) == 0, "%s", rec);
    cr_assert_eq(strlen(rec), 22 + 44, "%s", rec);
    cr_assert_eq(dkimsig_key_parse(rec, strlen(rec), &parsed, &why), 0);
    cr_assert_eq(parsed.p_len, 32);
    dkimkey_free(key);
    keydir_free(&k);
}

Test(dkimkey, what_cannot_sign_is_refused_with_a_reason)
{
    keydir_t k;

    keydir_init(&k);
    openssl(&k, "rsa1024.pem",
            "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out %s/rsa1024.pem");
    openssl(&k, "ec.pem", "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/ec.pem");
    openssl(&k, "ed.pub", "genpkey -algorithm ed25519 -out %s/ed.pem");
    openssl(&k, "ed.pub", "pkey -in %s/ed.pem -pubout -out %s/ed.pub");
    openssl(&k, "enc.pem",
            "genpkey -algorithm ed25519 -aes-128-cbc -pass pass:secret -out %s/enc.pem");
    write_file(&k, "garbage.pem", "this is not a key\n");
    write_file(&k, "empty.pem", "");
    write_file(&k, "truncated.pem", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n");

    load_refused(&k, "rsa1024.pem", DKIMKEY_ESIZE,
                 "RSA key of 1024 bits: signing needs at least 2048");
    load_refused(&k, "ec.pem", DKIMKEY_ETYPE, "not an RSA or Ed25519 key");
    load_refused(&k, "missing.pem", DKIMKEY_EREAD, "cannot read: No such file or directory");
    load_refused(&k, "garbage.pem", DKIMKEY_EFORMAT, "not a PEM private key");
    load_refused(&k, "empty.pem", DKIMKEY_EFORMAT, "not a PEM private key");
    load_refused(&k, "truncated.pem", DKIMKEY_EFORMAT, "not a PEM private key");
    load_refused(&k, "ed.pub", DKIMKEY_EFORMAT, "not a PEM private key");
    load_refused(&k, "enc.pem", DKIMKEY_EFORMAT, "not a PEM private key");
    load_refused(&k, ".", DKIMKEY_EREAD, "cannot read: not a regular file");
    keydir_free(&k);
}

Test(dkimkey, a_published_record_is_recognized_as_the_public_half)
{
    keydir_t k;
    dkimkey_private_t *rsa, *rsa2, *ed;
    dkimkey_t rec;
    const char *why, *text;

    keydir_init(&k);
    openssl(&k, "a.pem", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/a.pem");
    openssl(&k, "b.pem", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/b.pem");
    openssl(&k, "ed.pem", "genpkey -algorithm ed25519 -out %s/ed.pem");
    rsa = load_ok(&k, "a.pem");
    rsa2 = load_ok(&k, "b.pem");
    ed = load_ok(&k, "ed.pem");

    text = record_of(rsa);
    cr_assert_eq(dkimsig_key_parse(text, strlen(text), &rec, &why), 0);
    cr_assert(dkimkey_matches(&rec, rsa, &why));
    cr_assert_null(why);
    cr_assert_not(dkimkey_matches(&rec, rsa2, &why));
    cr_assert_str_eq(why, "a different key");
    cr_assert_not(dkimkey_matches(&rec, ed, &why));
    cr_assert_str_eq(why, "the record is for an RSA key, this key is Ed25519");

    text = record_of(ed);
    cr_assert_eq(dkimsig_key_parse(text, strlen(text), &rec, &why), 0);
    cr_assert(dkimkey_matches(&rec, ed, &why));
    cr_assert_not(dkimkey_matches(&rec, rsa, &why));
    cr_assert_str_eq(why, "the record is for an Ed25519 key, this key is RSA");

    cr_assert_eq(dkimsig_key_parse("v=DKIM1; p=", 11, &rec, &why), 0);
    cr_assert_not(dkimkey_matches(&rec, rsa, &why));
    cr_assert_str_eq(why, "the record is revoked (empty p=)");
    cr_assert_eq(dkimsig_key_parse("v=DKIM1; p=AAAA", 15, &rec, &why), 0);
    cr_assert_not(dkimkey_matches(&rec, rsa, &why));
    cr_assert_str_eq(why, "bad RSA key");
    dkimkey_free(rsa);
    dkimkey_free(rsa2);
    dkimkey_free(ed);
    keydir_free(&k);
}

Test(dkimkey, signatures_verify_with_the_public_half_from_the_record)
{
    static const char data[] = "from:a@example.net\r\nsubject:hello\r\n";
    keydir_t k;
    const char *names[] = {"rsa.pem", "ed.pem"};

    keydir_init(&k);
    openssl(&k, "rsa.pem", "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa.pem");
    openssl(&k, "ed.pem", "genpkey -algorithm ed25519 -out %s/ed.pem");
    for (size_t i = 0; i < 2; i++) {
        dkimkey_private_t *key = load_ok(&k, names[i]);
        const char *text = record_of(key), *why;
        unsigned char sig[DKIMKEY_SIG_MAX], hash[32];
        size_t sig_len;
        unsigned bits = 0;
        dkimkey_t rec;
        EVP_PKEY *pub;

        cr_assert_eq(dkimsig_key_parse(text, strlen(text), &rec, &why), 0);
        pub = dkimkey_public(&rec, &bits, &why);
        cr_assert_not_null(pub, "%s", why);
        cr_assert_eq(bits, dkimkey_bits(key));
        cr_assert_eq(dkimkey_sign(key, data, sizeof(data) - 1, sig, &sig_len), 0);
        cr_assert_eq(sig_len, i == 0 ? 256 : 64);
        cr_assert_eq(EVP_Digest(data, sizeof(data) - 1, hash, NULL, EVP_sha256(), NULL), 1);
        cr_assert(dkimkey_verify(pub, dkimkey_alg(key), sig, sig_len, hash), "%s", names[i]);
        hash[0] ^= 1;
        cr_assert_not(dkimkey_verify(pub, dkimkey_alg(key), sig, sig_len, hash), "%s", names[i]);
        EVP_PKEY_free(pub);
        dkimkey_free(key);
    }
    keydir_free(&k);
}

Test(dkimkey, strerror_words_every_code)
{
    cr_assert_str_eq(dkimkey_strerror(DKIMKEY_EFORMAT), "not a PEM private key");
    cr_assert_str_eq(dkimkey_strerror(DKIMKEY_ETYPE), "not an RSA or Ed25519 key");
    cr_assert_str_eq(dkimkey_strerror(-1), "unknown error");
}
