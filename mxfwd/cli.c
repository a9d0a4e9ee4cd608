#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "control.h"
#include "dkimkey.h"
#include "json.h"
#include "options.h"
#include "placeholder.h"
#include "reply.h"
#include "resolve.h"
#include "server.h"
#include "srs.h"
#include "srs_secrets.h"
#include "srs_store.h"
#include "str.h"
#include "table.h"
#include "tls.h"
#include "xalloc.h"

/* The certificate and key STARTTLS would use, loaded as the daemon does:
 * 0, or 1 with the problem printed. */
static int cli_check_tls(const config_t *cfg)
{
    char err[512];
    SSL_CTX *ctx;

    if (cfg->tls_cert == NULL)
        return 0;
    if ((ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    SSL_CTX_free(ctx);
    return 0;
}

static void cli_print_warning(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "warning: %s\n", message);
}

void cli_print_error(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "%s\n", message);
}

int cli_serve(const cli_args_t *args)
{
    return server_main(args->config_path, args->verbose);
}

/* The signing key, loaded as the daemon loads it: "; FILE: RSA key of
 * 2048 bits" into what[size], or "FILE: problem" on stderr and 1. */
static int cli_check_signing_key(const config_t *cfg, char *what, size_t size)
{
    dkimkey_private_t *key = NULL;
    char why[DKIMKEY_WHY_MAX];

    what[0] = '\0';
    if (cfg->signing_key == NULL)
        return 0;
    if (dkimkey_load(cfg->signing_key, &key, why, sizeof(why)) < 0) {
        fprintf(stderr, "%s: signing_key: %s\n", cfg->signing_key, why);
        return 1;
    }
    snprintf(what, size, "; %s: %s key of %u bits", cfg->signing_key,
             dkimkey_type(key) == DKIM_KEY_RSA ? "RSA" : "Ed25519", dkimkey_bits(key));
    dkimkey_free(key);
    return 0;
}

int cli_check_config(const cli_args_t *args)
{
    config_t *cfg = NULL;
    table_t *table = NULL;
    srs_secrets_t secrets = {NULL, 0};
    char key[PATH_MAX + 64];
    int errors;

    errors = config_load(args->config_path, cli_print_error, NULL, &cfg);
    if (errors > 0)
        return CLI_FAIL;
    errors = table_load(cfg->forward_table, cli_print_error, NULL, &table);
    /* Warnings (a secrets file others can read) are printed, not counted. */
    errors += srs_secrets_load(cfg->srs_secrets, cli_print_error, cli_print_error, NULL, &secrets);
    errors += cli_check_signing_key(cfg, key, sizeof(key));
    errors += cli_check_tls(cfg);
    if (errors == 0) {
        /* Sample values: a warning here, a refusal to start on port 25. */
        placeholder_check(cfg, table, &secrets, cli_print_warning, NULL);
        printf("%s: ok; %s: %zu aliases; %s: %zu SRS secret%s%s\n", args->config_path,
               cfg->forward_table, table_count(table), cfg->srs_secrets, secrets.n,
               secrets.n == 1 ? "" : "s", key);
        if (cfg->signing_key == NULL)
            printf("note: " CLI_SIGNING_OFF "\n");
        if (cfg->postmaster == NULL)
            fprintf(stderr, "warning: postmaster is not set: mail to postmaster@%s and "
                            "postmaster@%s is accepted and held in the queue (mxfwd queue show), "
                            "and a bounce that cannot be delivered is only logged\n",
                    cfg->hostname, cfg->srs_domain);
    }
    srs_secrets_free(&secrets);
    table_unref(table);
    config_free(cfg);
    return errors > 0 ? CLI_FAIL : CLI_OK;
}

table_result_t cli_table_lookup(const config_t *cfg, const table_t *table, const char *addr,
                                size_t len, table_dests_t *dests)
{
    table_result_t result = table_lookup(table, addr, len, dests);
    const char *at = memrchr(addr, '@', len);

    /* srs_domain is ours even when the table does not list it. */
    if (result == TABLE_RELAY_DENIED && at != NULL &&
        str_eq_ci_n(at + 1, len - (size_t)(at + 1 - addr), cfg->srs_domain))
        result = TABLE_UNKNOWN_USER;
    return result;
}

/* Accept "<addr>" as well as "addr", as people paste either. */
static void cli_strip_brackets(const char **addr, size_t *len)
{
    *len = strlen(*addr);
    if (*len >= 2 && (*addr)[0] == '<' && (*addr)[*len - 1] == '>') {
        (*addr)++;
        *len -= 2;
    }
}

/* The SRS rewriter of the configuration: its secrets file loaded (warnings
 * and errors on stderr).  CLI_OK and *srs, or CLI_FAIL. */
static int cli_srs_open(const config_t *cfg, srs_t **srs)
{
    srs_secrets_t secrets;
    int rc;

    *srs = NULL;
    if (srs_secrets_load(cfg->srs_secrets, cli_print_error, cli_print_error, NULL, &secrets) > 0)
        return CLI_FAIL;
    rc = srs_new(cfg->srs_domain, cfg->srs_max_age, (const char *const *)secrets.secret,
                 secrets.n, srs);
    srs_secrets_free(&secrets);
    if (rc < 0) {
        fprintf(stderr, "mxfwd: %s\n", srs_strerror(rc));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* An address as shown in messages: at most 256 octets of it. */
static const char *cli_shown(const char *addr, size_t len, char *dst, size_t size)
{
    snprintf(dst, size, "%.*s", (int)(len < 256 ? len : 256), addr);
    return dst;
}

/* How long resolve waits for the daemon before reading the files itself. */
#define CLI_RESOLVE_TIMEOUT_MS 5000

/* A keyed SRS address's key looked up as RCPT looks it up: the sender,
 * or the reply the session would give. */
static int cli_resolve_key(const config_t *cfg, const char *key, const char *shown)
{
    char why[600], reply[600], *sender = NULL;
    int rc = cli_store_get(cfg, key, &sender, why, sizeof(why));

    if (rc == 0) {
        printf("%s\n", sender);
        free(sender);
        return CLI_OK;
    }
    if (rc != SRS_STORE_ENOTFOUND && rc != CLI_STORE_NONE)
        fprintf(stderr, "mxfwd: envelope store %s: %s\n", cfg->envelope_store,
                why[0] != '\0' ? why : srs_store_strerror(rc));
    printf("%s\n", reply_format(rc == SRS_STORE_ENOTFOUND || rc == CLI_STORE_NONE
                                    ? REPLY_SRS_UNKNOWN_KEY
                                    : REPLY_SRS_STORE_READ,
                                shown, reply, sizeof(reply)));
    return CLI_FAIL;
}

/* A reply of resolve_json(), printed; a keyed SRS address's sender is
 * looked up in the envelope store here, as RCPT would. */
static int cli_resolve_print(const config_t *cfg, const json_t *v, const char *addr,
                             const char *source)
{
    const json_t *dests = json_get(v, "dests");
    char shown[300];

    if (strcmp(json_get_str(v, "kind", ""), "keyed") == 0 && dests != NULL && dests->n == 1)
        return cli_resolve_key(cfg, dests->items[0]->string,
                               cli_shown(addr, strlen(addr), shown, sizeof(shown)));
    return resolve_print(v, source);
}

/*
 * resolve: the running daemon answers when there is one, from the table
 * it has loaded; otherwise the files say what a daemon started now would
 * do.  Both answer through resolve_json() (mxfwd/resolve.h).
 */
int cli_resolve(const cli_args_t *args)
{
    config_t *cfg = NULL;
    table_t *table = NULL;
    srs_t *srs = NULL;
    json_t *v = NULL;
    char request[CONTROL_LINE_MAX + 1], source[600];
    const char *addr = args->argv[0];
    rcpt_ctx_t ctx;
    buf_t reply;
    int rc = CLI_FAIL;

    buf_init(&reply, SIZE_MAX);
    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        goto done;
    if (strlen(addr) + 8 <= CONTROL_LINE_MAX && strpbrk(addr, "\r\n") == NULL) {
        snprintf(request, sizeof(request), "resolve %s", addr);
        if (control_request(cfg->control_socket, request, CLI_RESOLVE_TIMEOUT_MS, &reply) == 0 &&
            json_parse(buf_ptr(&reply), buf_used(&reply), &v) == 0 && json_get(v, "ok") != NULL &&
            json_get(v, "ok")->boolean && json_get(v, "kind") != NULL) {
            rc = cli_resolve_print(cfg, v, addr, "as the running daemon has it loaded");
            goto done;
        }
        json_free(v);
        v = NULL;
    }
    /* No daemon (or one that cannot say): the files. */
    if (table_load(cfg->forward_table, cli_print_error, NULL, &table) > 0 ||
        cli_srs_open(cfg, &srs) != CLI_OK)
        goto done;
    ctx = (rcpt_ctx_t){
        .table = table,
        .srs = srs,
        .hostname = cfg->hostname,
        .srs_domain = cfg->srs_domain,
        .now = time(NULL),
    };
    buf_reset(&reply);
    resolve_json(&ctx, cfg->forward_table, addr, &reply);
    if (json_parse(buf_ptr(&reply), buf_used(&reply), &v) == 0) {
        snprintf(source, sizeof(source), "read from the file (no daemon answered at %.500s)",
                 cfg->control_socket);
        rc = cli_resolve_print(cfg, v, addr, source);
    }
done:
    json_free(v);
    buf_free(&reply);
    srs_free(srs);
    table_unref(table);
    config_free(cfg);
    return rc;
}

/* Print "NAME: sentence" for an SRS refusal, with the figures that make
 * it concrete where there are some. */
static void cli_srs_refusal(const srs_t *srs, const config_t *cfg, bool forward, int rc,
                            const char *shown, unsigned age)
{
    unsigned max = srs_max_age_days(srs);

    switch (rc) {
    case SRS_EEXPIRED:
        if (age >= 512)
            printf("expired: the SRS address is dated %u days in the future (or %u days ago); "
                   "addresses older than %u days are refused\n",
                   1024 - age, age, max);
        else
            printf("expired: the SRS address is %u days old; addresses older than %u days are "
                   "refused\n",
                   age, max);
        break;
    case SRS_EBADHASH:
        printf("bad-hash: the hash of <%s> matches none of the secrets in %s: the address was not "
               "made with them, or was altered\n",
               shown, cfg->srs_secrets);
        break;
    case SRS_ETOOLONG:
        printf("too-long: <%s> would become an SRS address with a local part over %d octets, "
               "which RFC 5321 does not allow (srs_long_senders = %s)\n",
               shown, ADDR_LOCAL_MAX,
               cfg->srs_long_senders == CONFIG_LONG_EMBED ? "embed" : "reject");
        break;
    case SRS_EMALFORMED:
        if (forward) {
            printf("malformed: <%s> is not an address SRS can carry (it needs local@domain, "
                   "with no quoted local part or address literal)\n",
                   shown);
            break;
        }
        /* fall through */
    default:
        printf("%s: <%s>: %s\n", srs_errname(rc), shown, srs_strerror(rc));
        break;
    }
}

/*
 * A keyed address: forward keeps the sender in the envelope store (as the
 * daemon does at the end of the data), reverse looks it up.  CLI_OK with
 * the address to print in out, or CLI_FAIL with the refusal printed.
 */
static int cli_srs_keyed(const config_t *cfg, bool forward, const char *key, const char *addr,
                         size_t len, const char *shown, char *out, size_t size)
{
    char why[600], *sender = NULL, *copy;
    int rc;

    if (forward) {
        copy = xstrndup(addr, len);
        rc = cli_store_put(cfg, key, copy, why, sizeof(why));
        free(copy);
        if (rc == CLI_STORE_NONE)
            fprintf(stderr, "note: envelope store %s does not exist yet (mxfwd serve makes it): "
                            "the sender was not recorded\n", cfg->envelope_store);
        if (rc == 0 || rc == CLI_STORE_NONE)
            return CLI_OK;
    } else {
        rc = cli_store_get(cfg, key, &sender, why, sizeof(why));
        if (rc == 0) {
            str_lcpy(out, sender, size);
            free(sender);
            return CLI_OK;
        }
        if (rc == SRS_STORE_ENOTFOUND || rc == CLI_STORE_NONE) {
            printf("unknown-key: <%s>: the envelope store has no sender under its key "
                   "(unknown, or expired after %u days)\n",
                   shown, (unsigned)(cfg->srs_max_age / 86400));
            return CLI_FAIL;
        }
    }
    printf("store-failed: envelope store %s: %s\n", cfg->envelope_store,
           why[0] != '\0' ? why : srs_store_strerror(rc));
    return CLI_FAIL;
}

/* srs forward and srs reverse: the address, or the refusal and exit 1. */
static int cli_srs_run(const cli_args_t *args, bool forward)
{
    config_t *cfg = NULL;
    srs_t *srs = NULL;
    const char *addr = args->argv[0];
    char out[SRS_ADDR_SIZE], shown[300], key[SRS_KEY_SIZE];
    unsigned age = 0;
    size_t len;
    int rc = CLI_FAIL, err;

    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        return CLI_FAIL;
    if (cli_srs_open(cfg, &srs) != CLI_OK)
        goto done;
    cli_strip_brackets(&addr, &len);
    cli_shown(addr, len, shown, sizeof(shown));
    if (forward)
        err = srs_forward_long(srs, options_long_senders(cfg), addr, len, time(NULL), out,
                               sizeof(out), key);
    else
        err = srs_reverse(srs, addr, len, time(NULL), out, sizeof(out), &age);
    if (err == SRS_KEYED) {
        if (cli_srs_keyed(cfg, forward, forward ? key : out, addr, len, shown, out,
                          sizeof(out)) != CLI_OK)
            goto done;
        err = 0;
    }
    if (err == 0) {
        /* The null sender stays the null sender. */
        printf("%s\n", out[0] != '\0' ? out : "<>");
        rc = CLI_OK;
    } else {
        cli_srs_refusal(srs, cfg, forward, err, shown, age);
    }
done:
    srs_free(srs);
    config_free(cfg);
    return rc;
}

int cli_srs_forward(const cli_args_t *args)
{
    return cli_srs_run(args, true);
}

int cli_srs_reverse(const cli_args_t *args)
{
    return cli_srs_run(args, false);
}
