#include "table.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "diag.h"
#include "htab.h"
#include "lines.h"
#include "str.h"
#include "xalloc.h"

#define TABLE_FILE_MAX (512u * 1024 * 1024)
/* A REJECT without words of its own (docs/forward-table.md). */
#define TABLE_REJECT_TEXT "Recipient address rejected"
#define TABLE_SEPS " \t,"

typedef enum {
    TABLE_NEW,
    TABLE_EXPANDING,
    TABLE_DONE,
    TABLE_FAILED,
} table_state_t;

typedef struct table_entry {
    unsigned line;
    table_action_t action;
    char *text; /* REJECT's words; NULL for the default */
    char esc[8]; /* REJECT's enhanced status code */
    char **raw; /* destinations as written */
    size_t nraw;
    const char **flat; /* expanded and deduplicated; == raw when nothing nested */
    size_t nflat;
    table_state_t state;
    bool bad_dest;  /* a destination was reported as bad */
    unsigned depth; /* levels of aliases below and including this one */
    /* Lowercased "local@domain", or "@domain" for a catch-all.  Inline, and
     * the aliases hash borrows it: a lookup touches one allocation. */
    char key[];
} table_entry_t;

struct table {
    unsigned refs;
    htab_t *aliases; /* key -> table_entry_t */
    htab_t *domains; /* lowercased domain -> its first entry */
    table_entry_t **entries;
    size_t nentries;
};

typedef struct {
    diag_t diag;
    table_t *t;
    size_t cap_entries;
    table_entry_t *current; /* entry that continuation lines extend */
    bool current_bad;       /* its line was reported as bad */
    table_entry_t *path_stack[TABLE_MAX_DEPTH + 2];
    unsigned depth;
    table_t **out;
} table_parser_t;

#define table_error(p, line, ...) diag_error(&(p)->diag, (line), __VA_ARGS__)

/* The entry an address resolves to, by the lookup order, or NULL.  key is
 * scratch space of at least ADDR_INPUT_MAX + 2 bytes; the address is
 * valid. */
static table_entry_t *table_match(const table_t *t, const addr_t *a, char *key,
                                  table_result_t *result)
{
    size_t len = a->local_len + 1 + a->domain_len;
    const char *domain;
    table_entry_t *e;
    const char *plus;

    memcpy(key, a->local, a->local_len);
    key[a->local_len] = '@';
    memcpy(key + a->local_len + 1, a->domain, a->domain_len);
    str_lower_n(key, len);
    domain = key + a->local_len + 1;

    if (htab_get(t->domains, domain, a->domain_len) == NULL || addr_is_relay_trick(a)) {
        *result = TABLE_RELAY_DENIED;
        return NULL;
    }
    *result = TABLE_FOUND;
    if ((e = htab_get(t->aliases, key, len)) != NULL)
        return e;
    /* alice+tag@ -> alice@: the subaddress starts at the first '+'. */
    plus = a->quoted ? NULL : memchr(key, '+', a->local_len);
    if (plus != NULL && plus > key) {
        size_t base = (size_t)(plus - key);
        memmove(key + base, domain - 1, a->domain_len + 1);
        if ((e = htab_get(t->aliases, key, base + 1 + a->domain_len)) != NULL)
            return e;
        domain = key + base + 1;
    }
    if ((e = htab_get(t->aliases, domain - 1, a->domain_len + 1)) != NULL)
        return e;
    *result = TABLE_UNKNOWN_USER;
    return NULL;
}

table_result_t table_lookup_addr(const table_t *t, const addr_t *a, table_dests_t *dests)
{
    char key[ADDR_INPUT_MAX + 2];
    table_result_t result;
    table_entry_t *e;

    /* A recipient with a long local part (a VERP address, say) may still
     * match its domain's catch-all or a subaddress's base. */
    if (a->local_len + 1 + a->domain_len > ADDR_INPUT_MAX)
        return TABLE_BAD_ADDRESS;
    e = table_match(t, a, key, &result);
    if (e == NULL)
        return result;
    *dests = (table_dests_t){
        .n = e->nflat,
        .addr = e->flat,
        .action = e->action,
        .esc = e->esc,
        .text = e->text != NULL ? e->text : TABLE_REJECT_TEXT,
        .key = e->key,
        .line = e->line,
    };
    return TABLE_FOUND;
}

table_result_t table_lookup(const table_t *t, const char *addr, size_t len, table_dests_t *dests)
{
    addr_t a;

    if (addr_parse_input(addr, len, &a) < 0)
        return TABLE_BAD_ADDRESS;
    return table_lookup_addr(t, &a, dests);
}

bool table_has_domain(const table_t *t, const char *domain, size_t len)
{
    char key[ADDR_DOMAIN_MAX + 1];

    if (len > ADDR_DOMAIN_MAX)
        return false;
    memcpy(key, domain, len);
    str_lower_n(key, len);
    return htab_get(t->domains, key, len) != NULL;
}

bool table_next_domain(const table_t *t, size_t *pos, const char **domain)
{
    while (*pos < t->nentries) {
        const table_entry_t *e = t->entries[(*pos)++];
        const char *d = strchr(e->key, '@') + 1;

        if (htab_get(t->domains, d, strlen(d)) == e) {
            *domain = d;
            return true;
        }
    }
    return false;
}

size_t table_count(const table_t *t)
{
    return t->nentries;
}

table_t *table_ref(table_t *t)
{
    t->refs++;
    return t;
}

static void table_entry_free(table_entry_t *e)
{
    if ((const char **)e->raw != e->flat)
        free(e->flat);
    for (size_t i = 0; i < e->nraw; i++)
        free(e->raw[i]);
    free(e->raw);
    free(e->text);
    free(e);
}

static void table_destroy(table_t *t)
{
    for (size_t i = 0; i < t->nentries; i++)
        table_entry_free(t->entries[i]);
    free(t->entries);
    htab_free(t->aliases, NULL);
    htab_free(t->domains, NULL);
    free(t);
}

void table_unref(table_t *t)
{
    if (t != NULL && --t->refs == 0)
        table_destroy(t);
}

/* ---- loading ---- */

static table_entry_t *table_add_entry(table_parser_t *p, const char *alias, unsigned line)
{
    table_t *t = p->t;
    size_t len = strlen(alias);
    char key[ADDR_MAX + 2];
    table_entry_t *e, *old;
    addr_t a;
    int err;

    if (alias[0] == '@') {
        err = addr_domain_check(alias + 1, len - 1);
        if (err == 0 && alias[1] == '[')
            err = ADDR_EDOMAIN;
    } else {
        err = addr_parse(alias, len, &a);
        if (err == 0 && a.literal)
            err = ADDR_EDOMAIN;
    }
    if (err < 0) {
        table_error(p, line, "bad alias '%s': %s", alias, addr_strerror(err));
        return NULL;
    }
    if (alias[0] != '@' && addr_is_relay_trick(&a)) {
        table_error(p, line, "bad alias '%s': '%%', '!' and quoted '@' hide another address",
                    alias);
        return NULL;
    }
    memcpy(key, alias, len + 1);
    str_lower(key);
    if ((old = htab_get(t->aliases, key, len)) != NULL) {
        table_error(p, line, "duplicate alias %s (first on line %u)", alias, old->line);
        return NULL;
    }
    e = xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->line = line;
    htab_put(t->aliases, e->key, len, e);
    /* The domain's first entry: table_next_domain() lists it there. */
    if (htab_get(t->domains, strchr(key, '@') + 1, strlen(strchr(key, '@') + 1)) == NULL)
        htab_put(t->domains, strchr(key, '@') + 1, strlen(strchr(key, '@') + 1), e);
    t->entries = xgrow(t->entries, &p->cap_entries, t->nentries + 1, sizeof(*t->entries));
    t->entries[t->nentries++] = e;
    return e;
}

/* "REJECT", "DISCARD" (any case): the action word; else TABLE_FORWARD. */
static table_action_t table_action_word(const char *tok)
{
    if (str_eq_ci(tok, "REJECT"))
        return TABLE_REJECT;
    if (str_eq_ci(tok, "DISCARD"))
        return TABLE_DISCARD;
    return TABLE_FORWARD;
}

static const char *table_action_name(table_action_t action)
{
    return action == TABLE_REJECT ? "REJECT" : "DISCARD";
}

/* The rest of an entry's first line after its action word. */
static void table_set_action(table_parser_t *p, table_entry_t *e, table_action_t action,
                             char *rest, unsigned line)
{
    size_t len;

    e->action = action;
    snprintf(e->esc, sizeof(e->esc), "5.7.1");
    rest = str_trim(rest);
    if ((len = strlen(rest)) == 0)
        return;
    if (action == TABLE_DISCARD) {
        table_error(p, line, "DISCARD for %s takes no text or destinations: '%s'", e->key, rest);
        e->bad_dest = true;
        return;
    }
    if (str_has_8bit(rest, len) || len > TABLE_TEXT_MAX) {
        table_error(p, line, "REJECT text for %s must be ASCII and at most %d octets", e->key,
                    TABLE_TEXT_MAX);
        e->bad_dest = true;
        return;
    }
    /* "5.1.1 No such user": the admin's own enhanced status code. */
    if (len > 6 && rest[0] == '5' && rest[1] == '.' && rest[5] == ' ' &&
        strspn(rest + 2, "0123456789.") >= 3 && rest[3] == '.') {
        memcpy(e->esc, rest, 5);
        e->esc[5] = '\0';
        rest = str_trim(rest + 6);
    }
    e->text = xstrdup(rest);
}

static void table_add_dest(table_parser_t *p, table_entry_t *e, const char *dest, unsigned line)
{
    addr_t a;
    int err;

    if (e->action != TABLE_FORWARD || table_action_word(dest) != TABLE_FORWARD) {
        table_error(p, line, "%s for %s must be its only destination, on the alias's line",
                    table_action_name(e->action != TABLE_FORWARD ? e->action
                                                                : table_action_word(dest)),
                    e->key);
        e->bad_dest = true;
        return;
    }
    err = addr_parse(dest, strlen(dest), &a);
    if (err < 0) {
        table_error(p, line, "bad destination '%s' for %s: %s", dest, e->key, addr_strerror(err));
        e->bad_dest = true;
        return;
    }
    e->raw = xrealloc(e->raw, (e->nraw + 1) * sizeof(*e->raw));
    e->raw[e->nraw++] = xstrdup(dest);
}

/* An entry is complete when the next one starts or the file ends. */
static void table_finish_entry(table_parser_t *p)
{
    table_entry_t *e = p->current;

    if (e != NULL && e->nraw == 0 && e->action == TABLE_FORWARD && !e->bad_dest)
        table_error(p, e->line, "alias %s has no destinations", e->key);
}

/* Before the first line of a file that could be read: the table, its
 * aliases hash sized for one entry a line. */
static void table_start(void *parser, const char *text, size_t len, const struct stat *st)
{
    table_parser_t *p = parser;
    size_t nlines = 1;

    (void)st;
    for (size_t i = 0; i < len; i++)
        nlines += text[i] == '\n';
    p->t = xcalloc(1, sizeof(*p->t));
    p->t->refs = 1;
    p->t->aliases = htab_new_borrowed(nlines);
    p->t->domains = htab_new(16);
}

/* One line: an alias and destinations, or (starting with white space) more
 * destinations for the entry before (docs/forward-table.md). */
static void table_line(void *parser, char *line, size_t len, size_t lineno)
{
    table_parser_t *p = parser;
    bool continuation = (line[0] == ' ' || line[0] == '\t');
    char *cursor = line, *tok;
    const char *bad = NULL;
    table_entry_t *e;

    if (strlen(line) != len)
        bad = "NUL byte in line";
    else if (str_has_ctl(line, len))
        bad = "control character in line";
    if (bad != NULL) {
        table_error(p, lineno, "%s", bad);
        p->current = NULL;
        p->current_bad = true;
        return;
    }
    /* '#' at the start of a token starts a comment. */
    for (char *h = line; (h = strchr(h, '#')) != NULL; h++) {
        if (h == line || strchr(TABLE_SEPS, h[-1]) != NULL) {
            *h = '\0';
            break;
        }
    }
    if (line[strspn(line, TABLE_SEPS)] == '\0')
        return; /* blank or comment: does not end a continued entry */
    if (!continuation) {
        table_finish_entry(p);
        tok = str_token(&cursor, TABLE_SEPS);
        p->current = table_add_entry(p, tok, (unsigned)lineno);
        p->current_bad = p->current == NULL;
    } else if (p->current == NULL) {
        if (!p->current_bad)
            table_error(p, lineno, "continuation line without an entry before it");
        return;
    }
    if ((e = p->current) == NULL)
        return;
    tok = str_token(&cursor, TABLE_SEPS);
    if (!continuation && tok != NULL && table_action_word(tok) != TABLE_FORWARD) {
        /* An action right after the alias: the rest of the line is its
         * text. */
        table_set_action(p, e, table_action_word(tok), cursor, (unsigned)lineno);
        return;
    }
    if (tok != NULL)
        table_add_dest(p, e, tok, (unsigned)lineno);
    while ((tok = str_token(&cursor, TABLE_SEPS)) != NULL)
        table_add_dest(p, e, tok, (unsigned)lineno);
}

static void table_dedupe(table_entry_t *e)
{
    size_t out = 0;
    htab_t *seen = e->nflat > 32 ? htab_new(e->nflat) : NULL;
    char key[ADDR_MAX + 1];

    for (size_t i = 0; i < e->nflat; i++) {
        const char *d = e->flat[i];
        bool dup = false;
        if (seen != NULL) {
            size_t n = strlen(d);
            memcpy(key, d, n);
            str_lower_n(key, n);
            dup = htab_put(seen, key, n, (void *)d) != NULL;
        } else {
            for (size_t j = 0; j < out && !dup; j++)
                dup = str_eq_ci(e->flat[j], d);
        }
        if (!dup)
            e->flat[out++] = d;
    }
    e->nflat = out;
    htab_free(seen, NULL);
}

static void table_report_loop(table_parser_t *p, table_entry_t *e, table_entry_t *target)
{
    char chain[800];
    size_t used = 0;
    unsigned start = 0;

    while (start < p->depth && p->path_stack[start] != target)
        start++;
    chain[0] = '\0';
    for (unsigned i = start; i < p->depth; i++) {
        int n = snprintf(chain + used, sizeof(chain) - used, "%s -> ", p->path_stack[i]->key);
        if (n < 0 || (size_t)n >= sizeof(chain) - used)
            break;
        used += (size_t)n;
    }
    snprintf(chain + used, sizeof(chain) - used, "%s", target->key);
    table_error(p, e->line, "alias loop: %s", chain);
}

static int table_expand(table_parser_t *p, table_entry_t *e)
{
    const char **flat = NULL;
    size_t nflat = 0, cap = 0;
    bool nested = false, failed = false;
    unsigned depth = 1;
    char key[ADDR_MAX + 2];

    if (e->state == TABLE_DONE)
        return 0;
    if (e->state == TABLE_FAILED)
        return -1;
    e->state = TABLE_EXPANDING;
    p->path_stack[p->depth++] = e;

    for (size_t i = 0; i < e->nraw; i++) {
        table_result_t result;
        table_entry_t *child;
        addr_t a;

        addr_parse(e->raw[i], strlen(e->raw[i]), &a);
        child = table_match(p->t, &a, key, &result);
        if (result == TABLE_RELAY_DENIED && !table_has_domain(p->t, a.domain, a.domain_len)) {
            /* Not one of our domains: a final destination. */
            flat = xgrow(flat, &cap, nflat + 1, sizeof(*flat));
            flat[nflat++] = e->raw[i];
            continue;
        }
        nested = true;
        if (result == TABLE_RELAY_DENIED) {
            table_error(p, e->line, "destination %s of %s hides another address ('%%', '!')",
                        e->raw[i], e->key);
            failed = true;
            continue;
        }
        if (child == NULL) {
            table_error(p, e->line, "destination %s of %s is in an alias domain but matches no alias",
                        e->raw[i], e->key);
            failed = true;
            continue;
        }
        if (child->action != TABLE_FORWARD) {
            table_error(p, e->line, "destination %s of %s is %s by the entry on line %u",
                        e->raw[i], e->key, child->action == TABLE_REJECT ? "rejected" : "discarded",
                        child->line);
            failed = true;
            continue;
        }
        if (child->state == TABLE_EXPANDING) {
            table_report_loop(p, e, child);
            failed = true;
            continue;
        }
        if (table_expand(p, child) < 0) {
            failed = true;
            continue;
        }
        if (child->depth + 1 > depth)
            depth = child->depth + 1;
        flat = xgrow(flat, &cap, nflat + child->nflat, sizeof(*flat));
        memcpy(flat + nflat, child->flat, child->nflat * sizeof(*flat));
        nflat += child->nflat;
    }
    p->depth--;

    if (!failed && depth > TABLE_MAX_DEPTH) {
        table_error(p, e->line, "%s expands through more than %d levels of aliases", e->key,
                    TABLE_MAX_DEPTH);
        failed = true;
    }
    if (failed) {
        free(flat);
        e->state = TABLE_FAILED;
        return -1;
    }
    if (nested) {
        e->flat = flat;
    } else {
        free(flat);
        e->flat = (const char **)e->raw;
    }
    e->nflat = nested ? nflat : e->nraw;
    e->depth = depth;
    table_dedupe(e);
    e->state = TABLE_DONE;
    return 0;
}

/* After the last line: the entries expanded, and the table when there was
 * no error. */
static void table_finish(void *parser)
{
    table_parser_t *p = parser;

    table_finish_entry(p);
    /* Loops and dangling destinations are reported with the lines' own
     * errors, all in one pass (docs/forward-table.md). */
    for (size_t i = 0; i < p->t->nentries; i++)
        table_expand(p, p->t->entries[i]);
    if (p->diag.errors > 0)
        table_destroy(p->t);
    else
        *p->out = p->t;
}

static const lines_loader_t table_lines = {
    .max = TABLE_FILE_MAX, .start = table_start, .line = table_line, .finish = table_finish};

int table_parse(const char *path, const char *text, size_t len, table_error_fn on_error,
                void *ctx, table_t **out)
{
    table_parser_t p = {.diag = {.path = path, .on_error = on_error, .ctx = ctx}, .out = out};

    *out = NULL;
    return lines_parse(&p.diag, &table_lines, text, len, &p);
}

int table_load(const char *path, table_error_fn on_error, void *ctx, table_t **out)
{
    table_parser_t p = {.diag = {.path = path, .on_error = on_error, .ctx = ctx}, .out = out};

    *out = NULL;
    return lines_load(&p.diag, &table_lines, &p);
}
