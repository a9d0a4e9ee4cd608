/*
 * Unit tests for the error code bands (docs/development.md, "Error codes"):
 * every module's codes lie in a band of a thousand of its own, apart from
 * -errno, from libuv's own codes and from every other module's, and each
 * mod_strerror() words each code of its module.  It takes the whole
 * program's library, as only the program sees every module.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "addr.h"
#include "arc.h"
#include "sign.h"
#include "auth.h"
#include "buf.h"
#include "client.h"
#include "client_proto.h"
#include "control.h"
#include "dkimkey.h"
#include "dkimsig.h"
#include "dkimsign.h"
#include "dmarc.h"
#include "dns.h"
#include "file.h"
#include "json.h"
#include "milter_proto.h"
#include "proto.h"
#include "queue.h"
#include "spf.h"
#include "spool.h"
#include "srs.h"
#include "srs_store.h"
#include "tagval.h"
#include "tls.h"

#define ERRORS_BAND 1000
#define ERRORS_CODES_MAX 16

typedef struct {
    const char *module;
    int base;
    const char *(*strerror)(int err); /* NULL: the module has none */
    bool errno_too;                   /* -errno too, worded by strerror */
    int codes[ERRORS_CODES_MAX];      /* ended by 0 */
} errors_band_t;

static const errors_band_t errors_bands[] = {
    {"spool", SPOOL_EBASE, spool_strerror, true,
     {SPOOL_ELOCKED, SPOOL_EPARTIAL, SPOOL_ECORRUPT, SPOOL_EINVAL, SPOOL_EBUSY, SPOOL_EEXIST,
      SPOOL_ENOTFILE, SPOOL_EJOURNAL}},
    {"control", CONTROL_EBASE, control_strerror, true,
     {CONTROL_EINUSE, CONTROL_ENOTSOCK, CONTROL_ETOOLONG, CONTROL_EREPLY}},
    {"buf", BUF_EBASE, NULL, false, {BUF_EFULL}},
    {"addr", ADDR_EBASE, addr_strerror, false,
     {ADDR_EEMPTY, ADDR_ENOAT, ADDR_ELOCAL, ADDR_EDOMAIN, ADDR_ELOCALLEN, ADDR_EDOMAINLEN,
      ADDR_ELEN, ADDR_EUTF8}},
    {"file", FILE_EBASE, file_strerror, false,
     {FILE_EOPEN, FILE_EREAD, FILE_ENOTREG, FILE_ETOOBIG}},
    {"json", JSON_EBASE, json_strerror, false, {JSON_ESYNTAX, JSON_EDEPTH}},
    {"srs", SRS_EBASE, srs_strerror, false,
     {SRS_ENOTSRS, SRS_EMALFORMED, SRS_EBADHASH, SRS_EEXPIRED, SRS_ETOOLONG, SRS_ENOSECRET,
      SRS_ECRYPTO}},
    {"srs_store", SRS_STORE_EBASE, srs_store_strerror, true,
     {SRS_STORE_ENOTFOUND, SRS_STORE_EDOWN, SRS_STORE_EREDIS, SRS_STORE_ELMDB,
      SRS_STORE_ELOCATION, SRS_STORE_EFULL, SRS_STORE_ETIMEOUT, SRS_STORE_ECLOSED,
      SRS_STORE_ESYNC}},
    {"dns", DNS_EBASE, dns_strerror, false,
     {DNS_ENXDOMAIN, DNS_ENODATA, DNS_EBADNAME, DNS_ESERVFAIL, DNS_EREFUSED, DNS_ETIMEOUT,
      DNS_ECONNREFUSED, DNS_EBADRESP, DNS_EFAIL, DNS_ECANCELED, DNS_ECLOSING, DNS_EINVAL}},
    {"tls", TLS_EBASE, NULL, false, {TLS_EWANT, TLS_ECLOSED, TLS_EFAIL}},
    {"queue", QUEUE_EBASE, queue_strerror, false, {QUEUE_EINVAL, QUEUE_ENOENT, QUEUE_ESPOOL}},
    {"auth", AUTH_EBASE, auth_strerror, false, {AUTH_EINVAL, AUTH_ESPF}},
    {"spf", SPF_EBASE, spf_strerror, false, {SPF_EINVAL, SPF_ENOMEM}},
    {"dkimsig", DKIMSIG_EBASE, NULL, false, {DKIMSIG_EINVAL}},
    {"tagval", TAGVAL_EBASE, tagval_strerror, false, {TAGVAL_ESYNTAX, TAGVAL_EDUP, TAGVAL_EMANY}},
    {"dmarc", DMARC_EBASE, NULL, false,
     {DMARC_REC_NOT, DMARC_REC_INVALID, DMARC_FROM_ENONE, DMARC_FROM_EMANY}},
    {"client", CLIENT_EBASE, NULL, false, {CLIENT_ECLOSING, CLIENT_ETLS, CLIENT_ESELF}},
    {"client_proto", CLIENT_REPLY_EBASE, NULL, false, {CLIENT_REPLY_EBAD, CLIENT_REPLY_ELONG}},
    {"proto", PROTO_EBASE, proto_strerror, false,
     {PROTO_ESYNTAX, PROTO_EADDR, PROTO_EPARAM, PROTO_EVALUE, PROTO_ENULLRCPT}},
    {"dkimkey", DKIMKEY_EBASE, dkimkey_strerror, false,
     {DKIMKEY_EREAD, DKIMKEY_EFORMAT, DKIMKEY_ETYPE, DKIMKEY_ESIZE, DKIMKEY_ECRYPTO}},
    {"dkimsign", DKIMSIGN_EBASE, dkimsign_strerror, false, {DKIMSIGN_EINVAL, DKIMSIGN_ECRYPTO}},
    {"arc", ARC_EBASE, arc_strerror, false,
     {ARC_ESTRUCT, ARC_ECHAINFAILED, ARC_EFULL, ARC_EINVAL}},
    {"sign", SIGN_EBASE, sign_strerror, false, {SIGN_EKEY, SIGN_EHEADERS, SIGN_ESTATE}},
    {"milter", MILTER_EBASE, milter_proto_strerror, false,
     {MILTER_EPROTO, MILTER_ETOOBIG, MILTER_ETIMEOUT, MILTER_ECLOSED, MILTER_ENEGOTIATE,
      MILTER_ECONNECT}},
};
#define ERRORS_NBANDS (sizeof(errors_bands) / sizeof(errors_bands[0]))

/* Whether code lies in the band of b. */
static bool errors_in_band(const errors_band_t *b, int code)
{
    return code < b->base && code > b->base - ERRORS_BAND;
}

Test(errors, bands_lie_apart_from_errno_libuv_and_each_other)
{
    /* libuv's own codes, on every platform: not -errno anywhere. */
    static const int uv_own[] = {UV_EAI_ADDRFAMILY, UV_EAI_PROTOCOL, UV_ECHARSET, UV_EFTYPE,
                                 UV_EOF};

    for (size_t i = 0; i < ERRORS_NBANDS; i++) {
        const errors_band_t *b = &errors_bands[i];

        cr_expect_leq(b->base, -ERRORS_BAND, "%s: band above -1000, where -errno lies", b->module);
        cr_expect_eq(b->base % ERRORS_BAND, 0, "%s: band not on a thousand", b->module);
        for (size_t k = 0; k < sizeof(uv_own) / sizeof(uv_own[0]); k++)
            cr_expect_not(errors_in_band(b, uv_own[k]), "%s: band holds libuv's %s", b->module,
                          uv_err_name(uv_own[k]));
        for (size_t j = 0; j < i; j++)
            cr_expect_neq(b->base, errors_bands[j].base, "%s and %s share a band", b->module,
                          errors_bands[j].module);
    }
}

Test(errors, every_code_lies_in_its_band_once)
{
    for (size_t i = 0; i < ERRORS_NBANDS; i++) {
        const errors_band_t *b = &errors_bands[i];

        cr_expect_neq(b->codes[0], 0, "%s: no codes listed", b->module);
        for (size_t k = 0; k < ERRORS_CODES_MAX && b->codes[k] != 0; k++) {
            cr_expect(errors_in_band(b, b->codes[k]), "%s: %d is outside its band", b->module,
                      b->codes[k]);
            for (size_t j = 0; j < k; j++)
                cr_expect_neq(b->codes[k], b->codes[j], "%s: %d twice", b->module, b->codes[k]);
        }
    }
}

/* strerror(err) into dst: file_strerror() words some codes in a buffer of
 * its own that the next call overwrites. */
static void errors_text(const errors_band_t *b, int err, char *dst, size_t size)
{
    errno = ENOENT; /* for file_strerror()'s FILE_EOPEN and FILE_EREAD */
    snprintf(dst, size, "%s", b->strerror(err));
}

/*
 * Each code gets words of its own: not those of another code of the
 * module, not those for a code the module does not have, and not those
 * for -errno, which a module that returns -errno too words as strerror(3)
 * does.
 */
Test(errors, strerror_words_every_code)
{
    for (size_t i = 0; i < ERRORS_NBANDS; i++) {
        const errors_band_t *b = &errors_bands[i];
        char text[ERRORS_CODES_MAX][200], unknown[200], eperm[200], enoent[200];
        size_t n = 0;

        if (b->strerror == NULL)
            continue;
        errors_text(b, b->base - ERRORS_BAND + 1, unknown, sizeof(unknown));
        errors_text(b, -EPERM, eperm, sizeof(eperm));
        errors_text(b, -ENOENT, enoent, sizeof(enoent));
        if (b->errno_too) {
            cr_expect_str_eq(eperm, strerror(EPERM), "%s", b->module);
            cr_expect_str_eq(enoent, strerror(ENOENT), "%s", b->module);
        }
        for (; n < ERRORS_CODES_MAX && b->codes[n] != 0; n++) {
            errors_text(b, b->codes[n], text[n], sizeof(text[n]));
            cr_expect_str_neq(text[n], "", "%s: %d", b->module, b->codes[n]);
            cr_expect_str_neq(text[n], unknown, "%s: %d reads as unknown", b->module,
                              b->codes[n]);
            cr_expect_str_neq(text[n], eperm, "%s: %d reads as -EPERM", b->module, b->codes[n]);
            cr_expect_str_neq(text[n], enoent, "%s: %d reads as -ENOENT", b->module,
                              b->codes[n]);
            for (size_t j = 0; j < n; j++)
                cr_expect_str_neq(text[n], text[j], "%s: %d and %d read alike", b->module,
                                  b->codes[n], b->codes[j]);
        }
    }
}
