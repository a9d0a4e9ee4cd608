/*
 * dmarc - DMARC (RFC 7489): policy records, the From domain, the
 * organizational domain, identifier alignment and the evaluation.
 *
 * Everything here is pure and synchronous; the DNS side (the _dmarc
 * lookups, falling back to the organizational domain) is the orchestrator's
 * (auth.c), which feeds each answer to dmarc_select() and the outcome to
 * dmarc_evaluate().
 *
 * Hostile or broken records follow the RFC: a record that does not start
 * with v=DMARC1 is not a DMARC record at all (6.6.3 step 3); unknown tags
 * and malformed tags are ignored and bad adkim/aspf/pct values fall back to
 * their defaults (6.3); a record without a usable p= (or with a bad sp=) is
 * read as p=none when it names a valid rua= address and is otherwise
 * unusable: a permerror, which applies no policy (6.6.3 step 6); several
 * DMARC records at one name are a permerror too (step 5).
 *
 * The organizational domain comes from libpsl's built-in Public Suffix
 * List.  No function allocates; results are fixed-size.
 */
#ifndef MXFWD_DMARC_H
#define MXFWD_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "txt.h"

#define DMARC_DOMAIN_MAX 256
#define DMARC_FROM_MAX 8 /* distinct From domains evaluated */

typedef enum { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT } dmarc_policy_t;
typedef enum { DMARC_ALIGN_RELAXED, DMARC_ALIGN_STRICT } dmarc_align_t;

typedef struct {
    dmarc_policy_t p;
    bool has_sp;
    dmarc_policy_t sp;
    dmarc_align_t adkim, aspf;
    unsigned pct;      /* 0..100 */
    unsigned nrua;     /* syntactically valid rua= URIs (reports are not sent) */
    bool p_from_rua;   /* p= was unusable; p=none because of rua= */
} dmarc_record_t;

/* The dmarc band of error codes (docs/development.md, "Error codes"):
 * dmarc_record_parse()'s and dmarc_from_domains()'s. */
#define DMARC_EBASE (-17000)
#define DMARC_REC_NOT (DMARC_EBASE - 1)     /* not a DMARC record */
#define DMARC_REC_INVALID (DMARC_EBASE - 2) /* a DMARC record without a usable policy */

/* Parse one TXT record.  0, DMARC_REC_NOT, or DMARC_REC_INVALID with *why. */
int dmarc_record_parse(const char *s, size_t len, dmarc_record_t *rec, const char **why);

/* The outcome of one _dmarc lookup (RFC 7489 6.6.3 steps 2 to 5). */
typedef enum {
    DMARC_LOOKUP_FOUND,    /* *rec holds the one DMARC record */
    DMARC_LOOKUP_NONE,     /* no DMARC record there: try the org domain */
    DMARC_LOOKUP_INVALID,  /* unusable record(s): permerror, *why says why */
    DMARC_LOOKUP_TEMPFAIL, /* DNS trouble: temperror */
} dmarc_lookup_t;

dmarc_lookup_t dmarc_select(txt_status_t status, const txt_record_t *records, size_t n,
                            dmarc_record_t *rec, const char **why);

/*
 * The domains of the addresses in one From field's value (RFC 5322
 * address-list: display names, comments, quoted strings, groups), lowercased
 * and without duplicates, appended to domains[*n] up to DMARC_FROM_MAX.
 * 0; DMARC_FROM_ENONE when the field holds no usable address;
 * DMARC_FROM_EMANY when there are more domains than fit.
 */
#define DMARC_FROM_ENONE (DMARC_EBASE - 3)
#define DMARC_FROM_EMANY (DMARC_EBASE - 4)
int dmarc_from_domains(const char *value, size_t len, char domains[][DMARC_DOMAIN_MAX],
                       size_t *n);

/* The organizational domain of a lowercased domain (RFC 7489 3.2): its
 * registrable domain per the Public Suffix List, or the domain itself when
 * it is a public suffix.  Points into domain. */
const char *dmarc_org_domain(const char *domain);

/* Identifier alignment (RFC 7489 3.1): strict is equality; relaxed is the
 * same organizational domain.  Case-insensitive. */
bool dmarc_aligned(const char *a, const char *b, dmarc_align_t mode);

/* ---- evaluation ---- */

typedef enum {
    DMARC_NONE, /* no policy published */
    DMARC_PASS,
    DMARC_FAIL,
    DMARC_TEMPERROR,
    DMARC_PERMERROR,
} dmarc_status_t;

/* An authenticated (or not) identifier offered for alignment. */
typedef enum { DMARC_ID_PASS, DMARC_ID_FAIL, DMARC_ID_TEMPERROR } dmarc_id_status_t;
typedef struct {
    dmarc_id_status_t status;
    const char *domain;
} dmarc_id_t;

typedef struct {
    const char *from_domain;
    dmarc_lookup_t lookup;      /* of the record finally used */
    const dmarc_record_t *rec;  /* when FOUND */
    bool at_org;                /* the record came from the organizational domain */
    const char *lookup_why;     /* when INVALID */
    dmarc_id_t spf;             /* the SPF-authenticated domain (MAIL FROM or HELO) */
    const dmarc_id_t *dkim;     /* one per DKIM signature, with its d= */
    size_t ndkim;
    /* 0..99, uniform: asked only for a fail under a record with pct < 100
     * (a draw can cost a system call, and most records say pct=100). */
    unsigned (*sample)(void *arg);
    void *sample_arg;
} dmarc_input_t;

typedef struct {
    dmarc_status_t status;
    const char *reason; /* static text, or NULL */
    char domain[DMARC_DOMAIN_MAX];
    bool has_policy;
    dmarc_policy_t policy;  /* p= or sp=, as published */
    dmarc_policy_t applied; /* after pct sampling; what a fail asks for */
    bool spf_aligned;       /* an aligned SPF pass */
    bool dkim_aligned;      /* an aligned DKIM pass */
    bool spf_unknown;       /* the aligned SPF identifier had a temperror */
    bool dkim_unknown;      /* an aligned DKIM signature had a temperror */
} dmarc_result_t;

void dmarc_evaluate(const dmarc_input_t *in, dmarc_result_t *out);

const char *dmarc_status_name(dmarc_status_t s);
const char *dmarc_policy_name(dmarc_policy_t p);

#endif
