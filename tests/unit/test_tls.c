/* Unit tests for tls/tls.c: a server and a client talking through
 * memory only, as the session and the outbound client drive them. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"

static char cert_path[64], key_path[64];

/* A self-signed P-256 certificate in two temporary PEM files. */
static void make_certificate(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FILE *f;
    int fd;

    cr_assert_not_null(key);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"mx.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
    snprintf(cert_path, sizeof(cert_path), "/tmp/mxfwd-tls-cert-XXXXXX");
    snprintf(key_path, sizeof(key_path), "/tmp/mxfwd-tls-key-XXXXXX");
    fd = mkstemp(cert_path);
    f = fdopen(fd, "w");
    PEM_write_X509(f, x);
    fclose(f);
    fd = mkstemp(key_path);
    f = fdopen(fd, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void remove_certificate(void)
{
    unlink(cert_path);
    unlink(key_path);
}

TestSuite(tls, .init = make_certificate, .fini = remove_certificate);

/* Move ciphertext from one side to the other; whether anything moved. */
static bool pump(tls_t *from, tls_t *to)
{
    buf_t wire;
    bool moved;

    buf_init(&wire, 1 << 20);
    tls_drain(from, &wire);
    moved = buf_used(&wire) > 0;
    tls_feed(to, buf_ptr(&wire), buf_used(&wire));
    buf_free(&wire);
    return moved;
}

Test(tls, handshake_and_data_both_ways)
{
    char err[256] = "";
    SSL_CTX *sctx = tls_server_ctx(cert_path, key_path, err, sizeof(err));
    SSL_CTX *cctx = tls_client_ctx(false, err, sizeof(err));
    tls_t *server, *client;
    buf_t plain;

    cr_assert_not_null(sctx, "%s", err);
    cr_assert_not_null(cctx, "%s", err);
    server = tls_new(sctx, true, NULL);
    client = tls_new(cctx, false, "mx.test");
    /* The server may be replaced (reload) while connections live on. */
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    buf_init(&plain, 1 << 16);

    cr_assert_eq(tls_connect(client), TLS_OK);
    for (int i = 0; i < 10 && !(tls_established(server) && tls_established(client)); i++) {
        pump(client, server);
        tls_read(server, &plain);
        pump(server, client);
        tls_read(client, &plain);
    }
    cr_assert(tls_established(server) && tls_established(client));
    cr_assert_eq(buf_used(&plain), 0);
    cr_assert_str_eq(tls_version(server), "TLSv1.3");
    cr_assert_gt(tls_bits(server), 0);

    cr_assert_eq(tls_write(client, "EHLO x\r\n", 8), TLS_OK);
    pump(client, server);
    cr_assert_eq(tls_read(server, &plain), TLS_OK);
    cr_assert_eq(buf_used(&plain), 8);
    cr_assert_eq(memcmp(buf_ptr(&plain), "EHLO x\r\n", 8), 0);
    cr_assert_eq(tls_read(server, &plain), TLS_EWANT);
    buf_reset(&plain);

    cr_assert_eq(tls_write(server, "250 ok\r\n", 8), TLS_OK);
    pump(server, client);
    cr_assert_eq(tls_read(client, &plain), TLS_OK);
    cr_assert_eq(buf_used(&plain), 8);
    buf_reset(&plain);

    /* close_notify reads as the end of the session. */
    tls_close(client);
    pump(client, server);
    cr_assert_eq(tls_read(server, &plain), TLS_ECLOSED);

    buf_free(&plain);
    tls_free(server);
    tls_free(client);
}

Test(tls, plaintext_instead_of_a_handshake_fails)
{
    char err[256] = "";
    SSL_CTX *sctx = tls_server_ctx(cert_path, key_path, err, sizeof(err));
    tls_t *server = tls_new(sctx, true, NULL);
    buf_t plain;

    buf_init(&plain, 4096);
    tls_feed(server, "EHLO not-tls\r\n", 14);
    cr_assert_eq(tls_read(server, &plain), TLS_EFAIL);
    cr_assert_str_neq(tls_strerror(server), "no error");
    buf_free(&plain);
    tls_free(server);
    SSL_CTX_free(sctx);
}

Test(tls, bad_files_are_reported)
{
    char err[256] = "";

    cr_assert_null(tls_server_ctx("/nonexistent/cert.pem", key_path, err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/cert.pem") != NULL, "%s", err);
    cr_assert_null(tls_server_ctx(cert_path, cert_path, err, sizeof(err)));
    cr_assert(strstr(err, cert_path) != NULL, "%s", err);
}
