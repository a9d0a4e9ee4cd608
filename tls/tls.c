#include "tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

struct tls {
    SSL *ssl;
    BIO *rbio; /* ciphertext in; owned by ssl */
    BIO *wbio; /* ciphertext out; owned by ssl */
    char error[160];
};

/* The reason for the last failure of this thread's OpenSSL calls. */
static void tls_last_error(char *dst, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *reason;

    if (e == 0) {
        str_lcpy(dst, fallback, size);
        return;
    }
    reason = ERR_reason_error_string(e);
    if (reason != NULL)
        str_lcpy(dst, reason, size);
    else
        ERR_error_string_n(e, dst, size);
    ERR_clear_error();
}

static SSL_CTX *tls_ctx_common(const SSL_METHOD *method, char *err, size_t errsize)
{
    SSL_CTX *ctx;

    ERR_clear_error();
    if ((ctx = SSL_CTX_new(method)) == NULL) {
        tls_last_error(err, errsize, "cannot make a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Renegotiation costs the server a handshake for nothing; idle
     * connections keep no read and write buffers. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errsize)
{
    static const unsigned char sid_ctx[] = "mxfwd";
    SSL_CTX *ctx = tls_ctx_common(TLS_server_method(), err, errsize);
    char reason[160];

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_last_error(reason, sizeof(reason), "unreadable");
        snprintf(err, errsize, "%s: %s", cert_file, reason);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        tls_last_error(reason, sizeof(reason), "unreadable");
        snprintf(err, errsize, "%s: %s", key_file, reason);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_last_error(reason, sizeof(reason), "does not match");
        snprintf(err, errsize, "%s does not match %s: %s", key_file, cert_file, reason);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx(bool legacy, char *err, size_t errsize)
{
    SSL_CTX *ctx = tls_ctx_common(TLS_client_method(), err, errsize);

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (legacy) {
        /* Debian's openssl.cnf sets security level 2, which refuses TLS
         * 1.0 and 1.1 whatever the minimum says; level 0 lets the old
         * protocols and their SHA-1 signatures through, for a hop that
         * would otherwise get the message in the clear. */
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    }
    return ctx;
}

tls_t *tls_new(SSL_CTX *ctx, bool server, const char *sni)
{
    tls_t *t = xcalloc(1, sizeof(*t));

    ERR_clear_error();
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    /* An empty memory BIO means "try again later", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (sni != NULL)
            SSL_set_tlsext_host_name(t->ssl, sni);
    }
    return t;
}

void tls_free(tls_t *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

void tls_feed(tls_t *t, const char *p, size_t n)
{
    /* A memory BIO grows as needed; the caller bounds how much it reads
     * before draining plaintext. */
    if (n > 0)
        BIO_write(t->rbio, p, (int)n);
}

/* Map an SSL_get_error() result to TLS_E*, keeping the reason. */
static int tls_status(tls_t *t, int ret)
{
    int e = SSL_get_error(t->ssl, ret);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_EWANT;
    case SSL_ERROR_ZERO_RETURN:
        str_lcpy(t->error, "closed by peer", sizeof(t->error));
        return TLS_ECLOSED;
    case SSL_ERROR_SYSCALL:
        tls_last_error(t->error, sizeof(t->error), "unexpected end of stream");
        return TLS_EFAIL;
    default:
        tls_last_error(t->error, sizeof(t->error), "protocol error");
        return TLS_EFAIL;
    }
}

int tls_read(tls_t *t, buf_t *plain)
{
    /* One record's worth at most per call: the caller handles it, then
     * asks again. */
    size_t want = buf_room(plain) > 16384 ? 16384 : buf_room(plain);
    bool was_init = SSL_is_init_finished(t->ssl);
    char *dst;
    int n;

    ERR_clear_error();
    if (want == 0 || (dst = buf_reserve(plain, want)) == NULL)
        return TLS_OK;
    n = SSL_read(t->ssl, dst, (int)want);
    if (n > 0) {
        buf_commit(plain, (size_t)n);
        return TLS_OK;
    }
    n = tls_status(t, n);
    /* The handshake finishing is progress even without application data. */
    if (n == TLS_EWANT && !was_init && SSL_is_init_finished(t->ssl))
        return TLS_OK;
    return n;
}

int tls_write(tls_t *t, const char *p, size_t n)
{
    ERR_clear_error();
    while (n > 0) {
        int w = SSL_write(t->ssl, p, n > 65536 ? 65536 : (int)n);
        if (w <= 0) {
            /* With memory BIOs a write never waits: the BIO grows. */
            tls_status(t, w);
            return TLS_EFAIL;
        }
        p += w;
        n -= (size_t)w;
    }
    return TLS_OK;
}

int tls_connect(tls_t *t)
{
    int r;

    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return TLS_OK;
    r = tls_status(t, r);
    return r == TLS_EWANT ? TLS_OK : r;
}

void tls_close(tls_t *t)
{
    ERR_clear_error();
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

int tls_drain(tls_t *t, buf_t *out)
{
    size_t pending = BIO_ctrl_pending(t->wbio);
    char *dst;
    int n;

    if (pending == 0)
        return 0;
    if ((dst = buf_reserve(out, pending)) == NULL)
        return TLS_EFAIL;
    n = BIO_read(t->wbio, dst, (int)pending);
    if (n <= 0)
        return 0;
    buf_commit(out, (size_t)n);
    return n;
}

bool tls_has_output(const tls_t *t)
{
    return BIO_ctrl_pending(t->wbio) > 0;
}

bool tls_established(const tls_t *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *tls_version(const tls_t *t)
{
    return SSL_get_version(t->ssl);
}

const char *tls_cipher(const tls_t *t)
{
    return SSL_get_cipher_name(t->ssl);
}

int tls_bits(const tls_t *t)
{
    return SSL_get_cipher_bits(t->ssl, NULL);
}

const SSL *tls_ssl(const tls_t *t)
{
    return t->ssl;
}

const char *tls_strerror(const tls_t *t)
{
    return t->error[0] != '\0' ? t->error : "no error";
}
