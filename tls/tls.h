/*
 * tls - a TLS connection over memory BIOs, for STARTTLS on a libuv stream.
 *
 * The socket stays libuv's: the caller feeds the ciphertext it reads into
 * tls_feed(), takes plaintext out with tls_read(), hands plaintext to
 * tls_write(), and sends whatever tls_drain() gives it.  No I/O happens
 * here, so a connection works the same on any transport and in tests.
 * OpenSSL's handshake, alerts and close_notify all travel through the same
 * two calls: after any of them, drain and send.
 *
 * Contexts (SSL_CTX) are refcounted by OpenSSL: a tls_t keeps its own
 * reference, so the owner of a context may replace it (certificate reload)
 * while connections made from the old one finish.  TLS 1.2 is the least
 * version offered; renegotiation is refused.
 *
 * Errors: functions return TLS_E* (negative); tls_strerror() on the
 * connection gives OpenSSL's reason for the last failure.
 */
#ifndef MXFWD_TLS_H
#define MXFWD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "buf.h"

#define TLS_OK 0
/* The tls band of error codes (docs/development.md, "Error codes"). */
#define TLS_EBASE (-11000)
#define TLS_EWANT (TLS_EBASE - 1)   /* nothing more until the peer sends more */
#define TLS_ECLOSED (TLS_EBASE - 2) /* the peer closed the TLS session (close_notify) */
#define TLS_EFAIL (TLS_EBASE - 3)   /* handshake or protocol failure: drop the connection */

typedef struct tls tls_t;

/*
 * A server context from PEM files (the certificate file may hold the
 * chain).  NULL on failure, with OpenSSL's reason in err.
 */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errsize);
/* A client context: no verification here, the caller decides what the
 * peer's certificate is worth.  With legacy, TLS 1.0 and 1.1 and the
 * ciphers they need are allowed too (opportunistic delivery: any TLS beats
 * none, docs/delivery.md); without, TLS 1.2 and up. */
SSL_CTX *tls_client_ctx(bool legacy, char *err, size_t errsize);

/* A connection from ctx; server or client side.  For a client, sni may
 * name the server (NULL for none). */
tls_t *tls_new(SSL_CTX *ctx, bool server, const char *sni);
void tls_free(tls_t *t);

/* Ciphertext from the peer. */
void tls_feed(tls_t *t, const char *p, size_t n);
/*
 * Advance the handshake and append decrypted bytes to plain, as many as fit.
 * TLS_OK when bytes were added or the handshake moved on; TLS_EWANT when
 * waiting for the peer; TLS_ECLOSED; TLS_EFAIL.  Call again while it
 * returns TLS_OK: records may hold more than plain had room for.
 */
int tls_read(tls_t *t, buf_t *plain);
/* Encrypt p[0..n).  Only once established.  TLS_OK or TLS_EFAIL. */
int tls_write(tls_t *t, const char *p, size_t n);
/* Start the handshake (clients) or send close_notify. */
int tls_connect(tls_t *t);
void tls_close(tls_t *t);
/* Move the ciphertext waiting to be sent into out.  Bytes moved, or
 * TLS_EFAIL when out has no room. */
int tls_drain(tls_t *t, buf_t *out);
/* Whether ciphertext waits to be sent. */
bool tls_has_output(const tls_t *t);

bool tls_established(const tls_t *t);
/* Once established: "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256. */
const char *tls_version(const tls_t *t);
const char *tls_cipher(const tls_t *t);
int tls_bits(const tls_t *t);
/* The OpenSSL connection, to look at the peer's certificate (clients). */
const SSL *tls_ssl(const tls_t *t);

/* Why the last call failed, e.g. "wrong version number". */
const char *tls_strerror(const tls_t *t);

#endif
