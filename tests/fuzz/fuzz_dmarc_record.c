/*
 * libFuzzer harness for DMARC's parsers: any bytes as a policy record, as
 * a set of TXT records (split at newlines) for policy discovery, and as a
 * From field's value; the domains found are then aligned with each other.
 * Beyond "no crash, no sanitizer report" it checks the promises: a record
 * parses to a known outcome with pct in 0..100 and a reason when invalid;
 * From yields lowercased, distinct, well-formed domains or an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_record(const char *s, size_t n)
{
    dmarc_record_t rec;
    const char *why = NULL;
    int rc = dmarc_record_parse(s, n, &rec, &why);

    if (rc != 0 && rc != DMARC_REC_NOT && rc != DMARC_REC_INVALID)
        abort();
    if ((rc == DMARC_REC_INVALID) != (why != NULL))
        abort();
    if (rc == 0 && (rec.pct > 100 || rec.p > DMARC_P_REJECT))
        abort();
}

static void check_discovery(const char *s, size_t n)
{
    txt_record_t recs[16];
    size_t k = 0, start = 0;
    dmarc_record_t rec;
    const char *why;
    dmarc_lookup_t l;

    for (size_t i = 0; i <= n && k < 16; i++) {
        if (i == n || s[i] == '\n') {
            recs[k].data = s + start;
            recs[k].len = i - start;
            k++;
            start = i + 1;
        }
    }
    l = dmarc_select(TXT_OK, recs, k, &rec, &why);
    if (l == DMARC_LOOKUP_INVALID && why == NULL)
        abort();
    if (l == DMARC_LOOKUP_TEMPFAIL)
        abort();
}

static void check_from(const char *s, size_t n)
{
    char d[DMARC_FROM_MAX][DMARC_DOMAIN_MAX];
    size_t count = 0;
    int rc = dmarc_from_domains(s, n, d, &count);

    if (rc != 0 && rc != DMARC_FROM_ENONE && rc != DMARC_FROM_EMANY)
        abort();
    if (count > DMARC_FROM_MAX || (rc == DMARC_FROM_ENONE && count != 0))
        abort();
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(d[i]);

        if (len == 0 || len > 253 || d[i][0] == '.' || d[i][len - 1] == '.')
            abort();
        for (size_t j = 0; j < len; j++)
            if (d[i][j] >= 'A' && d[i][j] <= 'Z')
                abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(d[i], d[j]) == 0)
                abort();
        /* Alignment is reflexive, and strict implies relaxed. */
        if (!dmarc_aligned(d[i], d[i], DMARC_ALIGN_STRICT))
            abort();
        if (i > 0 && dmarc_aligned(d[i], d[0], DMARC_ALIGN_STRICT) &&
            !dmarc_aligned(d[i], d[0], DMARC_ALIGN_RELAXED))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    check_record(s, size);
    check_discovery(s, size);
    check_from(s, size);
    return 0;
}
