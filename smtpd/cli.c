#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "reply.h"
#include "table.h"

static void cli_print_error(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "%s\n", message);
}

/* A subcommand whose machinery is not part of this build yet. */
static int cli_not_built(const char *command, const char *waiting_for)
{
    fprintf(stderr, "mxfwd %s: not built yet: this needs %s, which mxfwd does not have yet\n",
            command, waiting_for);
    return CLI_FAIL;
}

int cli_serve(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("serve", "the inbound SMTP server");
}

int cli_check_config(const cli_args_t *args)
{
    config_t *cfg = NULL;
    table_t *table = NULL;
    int errors;

    errors = config_load(args->config_path, cli_print_error, NULL, &cfg);
    if (errors > 0)
        return CLI_FAIL;
    errors = table_load(cfg->forward_table, cli_print_error, NULL, &table);
    if (errors == 0)
        printf("%s: ok; %s: %zu aliases\n", args->config_path, cfg->forward_table,
               table_count(table));
    table_unref(table);
    config_free(cfg);
    return errors > 0 ? CLI_FAIL : CLI_OK;
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

int cli_resolve(const cli_args_t *args)
{
    config_t *cfg = NULL;
    table_t *table = NULL;
    table_dests_t dests;
    table_result_t result;
    const char *addr = args->argv[0];
    char reply[600], shown[300];
    size_t len;
    int rc = CLI_FAIL;

    if (config_load(args->config_path, cli_print_error, NULL, &cfg) > 0)
        return CLI_FAIL;
    if (table_load(cfg->forward_table, cli_print_error, NULL, &table) > 0)
        goto done;
    cli_strip_brackets(&addr, &len);
    result = table_lookup(table, addr, len, &dests);
    if (result == TABLE_FOUND) {
        for (size_t i = 0; i < dests.n; i++)
            printf("%s\n", dests.addr[i]);
        rc = CLI_OK;
    } else {
        snprintf(shown, sizeof(shown), "%.*s", (int)(len < 256 ? len : 256), addr);
        printf("%s\n", reply_for_lookup(result, shown, reply, sizeof(reply)));
    }
done:
    table_unref(table);
    config_free(cfg);
    return rc;
}

int cli_srs_forward(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("srs forward", "the SRS module");
}

int cli_srs_reverse(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("srs reverse", "the SRS module");
}

int cli_queue(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("queue", "the queue manager and its control socket");
}

int cli_flush(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("flush", "the queue manager and its control socket");
}

int cli_delete(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("delete", "the queue manager and its control socket");
}

int cli_stats(const cli_args_t *args)
{
    (void)args;
    return cli_not_built("stats", "the queue manager and its control socket");
}
