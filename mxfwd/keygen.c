/*
 * keygen - mxfwd dkim-keygen [-o PATH]: a new signing key, and the DNS
 * record that publishes it (docs/admin-guide.md, "Signing and the DNS to
 * publish").
 *
 * The key is RSA of 2048 bits (RFC 8301 3.2: what signers should use, and
 * what every receiver verifies, which Ed25519 is not yet), written as
 * PKCS#8 PEM, mode 0600, to a file that must not exist: a key in use is
 * never replaced, since mail signed with it would stop verifying.  The
 * record is made by the loader the daemon uses (dkimkey.h) from the bytes
 * written, so what is published is what will sign.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_dns.h"
#include "dkimkey.h"
#include "file.h"

#define KEYGEN_BITS DKIMKEY_RSA_SIGN_MIN_BITS
#define KEYGEN_RECORD_MAX 8192

/* A new key as PEM in *bio (the caller's to free).  0, or -1. */
static int keygen_pem(BIO **bio)
{
    EVP_PKEY *pk = EVP_RSA_gen(KEYGEN_BITS);
    int rc = -1;

    *bio = BIO_new(BIO_s_mem());
    if (pk != NULL && *bio != NULL &&
        PEM_write_bio_PKCS8PrivateKey(*bio, pk, NULL, NULL, 0, NULL, NULL) == 1)
        rc = 0;
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

/* Where the record goes: SELECTOR._domainkey.DOMAIN, with the config's
 * selector when it has one. */
static void keygen_print_record(const config_t *cfg, const char *record)
{
    const char *selector = cfg->signing_selector != NULL ? cfg->signing_selector : "SELECTOR";
    char name[DNS_NAME_MAX * 2];
    buf_t zone;

    buf_init(&zone, KEYGEN_RECORD_MAX);
    snprintf(name, sizeof(name), "%s._domainkey.%s", selector, cfg->signing_domain);
    printf("Publish its record before signing with it: a TXT record at %s\n", name);
    if (cfg->signing_selector == NULL)
        printf("(SELECTOR: the signing_selector you will set beside signing_key) ");
    printf("whose value is\n%s\n", record);
    if (cli_dns_zone_txt(name, record, &zone) == 0)
        printf("or, as a zone file line (the strings joined make the value):\n%.*s\n",
               (int)buf_used(&zone), buf_ptr(&zone));
    buf_free(&zone);
}

int cli_dkim_keygen(const cli_args_t *args)
{
    config_t *cfg = NULL;
    BIO *bio = NULL;
    dkimkey_private_t *key = NULL;
    const char *path;
    char *pem = NULL, why[DKIMKEY_WHY_MAX];
    long len = 0;
    buf_t record;
    int rc = CLI_FAIL, err;

    buf_init(&record, KEYGEN_RECORD_MAX);
    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        goto done;
    path = args->output != NULL ? args->output : cfg->signing_key;
    if (path == NULL) {
        fprintf(stderr,
                "usage: mxfwd dkim-keygen [-c FILE] [-o PATH]: %s sets no signing_key, "
                "so say where the key goes with -o PATH\n",
                args->config_path);
        rc = CLI_USAGE;
        goto done;
    }
    if (keygen_pem(&bio) < 0 || (len = BIO_get_mem_data(bio, &pem)) <= 0 ||
        dkimkey_load_pem(pem, (size_t)len, &key, why, sizeof(why)) < 0 ||
        dkimkey_record(key, &record) < 0 || buf_append(&record, "", 1) < 0) {
        fprintf(stderr, "mxfwd: cannot make an RSA key: %s\n", dkimkey_strerror(DKIMKEY_ECRYPTO));
        goto done;
    }
    err = file_create(path, pem, (size_t)len, 0600);
    if (err == -EEXIST) {
        fprintf(stderr,
                "mxfwd: %s exists: not replaced (mail signed with a key in use would stop "
                "verifying); choose another path with -o\n",
                path);
        goto done;
    }
    if (err < 0) {
        fprintf(stderr, "mxfwd: %s: %s\n", path, strerror(-err));
        goto done;
    }
    printf("%s: a new RSA key of %d bits, mode 0600\n", path, KEYGEN_BITS);
    if (geteuid() == 0)
        printf("It belongs to root: give it to the user mxfwd runs as (chown mxfwd: %s).\n", path);
    keygen_print_record(cfg, buf_ptr(&record));
    rc = CLI_OK;
done:
    if (pem != NULL)
        OPENSSL_cleanse(pem, (size_t)len); /* the private key, in the clear */
    BIO_free(bio);
    dkimkey_free(key);
    buf_free(&record);
    config_free(cfg);
    return rc;
}
