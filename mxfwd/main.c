/*
 * main - the mxfwd command line: options, subcommand dispatch, help.
 *
 * Options may come before or after the subcommand words:
 * "mxfwd -c F srs forward X" and "mxfwd srs forward -c F X" are the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "default.h"
#include "mxfwd_build.h"

typedef struct {
    const char *name;    /* "srs forward" for two-word commands */
    int nargs;           /* positional arguments after the command words */
    const char *args;    /* their names, for usage lines */
    int (*run)(const cli_args_t *args);
    const char *summary; /* its line in mxfwd --help */
    const char *help;    /* mxfwd COMMAND --help */
    bool output;         /* takes -o PATH */
} main_command_t;

static const main_command_t main_commands[] = {
    {"serve", 0, "", cli_serve, "run the forwarder",
     "Run the forwarder in the foreground.  Logs go to stderr, or to syslog\n"
     "(facility mail) with 'log = syslog'.  -v adds debug lines.\n"
     "SIGHUP reloads the forward table and SRS secrets; SIGTERM stops accepting,\n"
     "lets running transactions finish and exits.\n"},
    {"check-config", 0, "", cli_check_config, "check the configuration and the files it names",
     "Parse the configuration, the forward table, the SRS secrets and the signing\n"
     "key.  Prints FILE:LINE: problem for every error found and exits 1 if there\n"
     "was one; notes when signing_key is not set.\n"},
    {"doctor", 0, "", cli_doctor, "check this forwarder's DNS: MX, PTR, SPF, DKIM, DMARC",
     "Check this forwarder's DNS through dns_servers: each alias domain's MX,\n"
     "hostname's addresses and their PTR, srs_domain's SPF, the DKIM key record\n"
     "and the DMARC record for signing, postmaster@ of each domain.  One line per\n"
     "item, ok, problem (with the record to publish) or skipped; exits 1 when\n"
     "there is a problem.\n"},
    {"explain", 1, "SENDER-DOMAIN", cli_explain, "what forwarding does to a domain's mail, and why",
     "Say what happens to mail from SENDER-DOMAIN when it is forwarded: its SPF\n"
     "record, its DMARC policy, whether it needs DKIM to survive forwarding, and\n"
     "which of mxfwd's actions apply with this configuration and why.  Exits 1\n"
     "when the domain does not exist or DNS fails.\n"},
    {"dkim-keygen", 0, "", cli_dkim_keygen, "make a signing key and print its DNS record",
     "Write a new 2048-bit RSA signing key (PKCS#8 PEM, mode 0600) to PATH, by\n"
     "default the configured signing_key, never over an existing file, and print\n"
     "the TXT record to publish at SELECTOR._domainkey.DOMAIN.\n",
     true},
    {"resolve", 1, "ADDRESS", cli_resolve, "where mail to ADDRESS goes",
     "Print where mail to ADDRESS goes: each destination on a line, or the\n"
     "SMTP reply that refuses it (exit 1).\n"},
    {"srs forward", 1, "SENDER", cli_srs_forward, "the SRS address SENDER is rewritten to",
     "Print the SRS address that SENDER is rewritten to, using the configured\n"
     "secrets and srs_domain (a long sender: as srs_long_senders says, kept in\n"
     "the envelope store with store), or why it cannot be: too-long, malformed\n"
     "or store-failed (exit 1).\n"},
    {"srs reverse", 1, "ADDRESS", cli_srs_reverse, "the original address behind an SRS ADDRESS",
     "Print the original address behind an SRS ADDRESS, or why it is refused:\n"
     "bad-hash, expired, not-srs, malformed, unknown-key (a keyed address the\n"
     "envelope store has no sender for) or store-failed (exit 1).\n"},
    {"queue", 0, "", cli_queue, "list the queued messages",
     "List queued messages: queue id, age, size, sender, and each recipient\n"
     "with its state, next attempt and last error.  --json for machines.\n"},
    {"flush", 0, "", cli_flush, "retry every deferred message now",
     "Retry every deferred message now.\n"},
    {"delete", 1, "ID", cli_delete, "drop a queued message", "Drop the queued message ID (logged).\n"},
    {"stats", 0, "", cli_stats, "print the counters",
     "Print counters: connections, messages accepted and rejected by reason,\n"
     "delivered, deferred, bounced, queue size.  --json for machines.\n"},
};

#define MAIN_NCOMMANDS (sizeof(main_commands) / sizeof(main_commands[0]))

static void main_usage(FILE *out)
{
    fprintf(out, "usage: mxfwd [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < MAIN_NCOMMANDS; i++) {
        const main_command_t *cmd = &main_commands[i];
        char words[64];

        snprintf(words, sizeof(words), "%s%s%s%s", cmd->name, cmd->output ? " [-o PATH]" : "",
                 cmd->nargs ? " " : "", cmd->args);
        fprintf(out, "  %-28s %s\n", words, cmd->summary);
    }
    fprintf(out, "\noptions:\n"
                 "  -c FILE     configuration file (default %s, or %s/mxfwd.conf\n"
                 "              when there is none in the working directory)\n"
                 "  -o PATH     where dkim-keygen writes the key\n"
                 "  -v          debug logging (serve)\n"
                 "  --json      machine-readable output (queue, stats)\n"
                 "  -h, --help  help; 'mxfwd COMMAND --help' for one command\n"
                 "  --version   print the version\n",
                 DEFAULT_CONFIG_FILE, MXFWD_SYSCONFDIR);
}

static void main_command_usage(FILE *out, const main_command_t *cmd)
{
    fprintf(out, "usage: mxfwd %s [-c FILE]%s%s%s\n", cmd->name, cmd->output ? " [-o PATH]" : "",
            cmd->nargs ? " " : "", cmd->args);
}

static void main_command_help(const main_command_t *cmd)
{
    main_command_usage(stdout, cmd);
    printf("\n%s", cmd->help);
}

static const char *main_default_config(void)
{
    static const char installed[] = MXFWD_SYSCONFDIR "/mxfwd.conf";

    if (access(DEFAULT_CONFIG_FILE, F_OK) == 0 || access(installed, F_OK) != 0)
        return DEFAULT_CONFIG_FILE;
    return installed;
}

/* Match the leading words against the command table. */
static const main_command_t *main_find(char **words, int nwords, int *used)
{
    for (size_t i = 0; i < MAIN_NCOMMANDS; i++) {
        const char *name = main_commands[i].name;
        const char *space = strchr(name, ' ');
        if (space == NULL) {
            if (nwords >= 1 && strcmp(words[0], name) == 0) {
                *used = 1;
                return &main_commands[i];
            }
        } else if (nwords >= 2 && strncmp(words[0], name, (size_t)(space - name)) == 0 &&
                   words[0][space - name] == '\0' && strcmp(words[1], space + 1) == 0) {
            *used = 2;
            return &main_commands[i];
        }
    }
    return NULL;
}

/* Where an option followed by a file name goes: -c FILE, -o PATH. */
static const char **main_file_option(cli_args_t *args, const char *a)
{
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
        return &args->config_path;
    if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
        return &args->output;
    return NULL;
}

int main(int argc, char **argv)
{
    cli_args_t args = {.config_path = NULL};
    char **words = calloc((size_t)argc + 1, sizeof(*words));
    int nwords = 0, used = 0, rc;
    bool help = false, only_options = false;
    const main_command_t *cmd;
    const char **slot;

    if (words == NULL)
        return CLI_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_options || a[0] != '-' || a[1] == '\0') {
            words[nwords++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            only_options = true;
        } else if ((slot = main_file_option(&args, a)) != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mxfwd: %s needs a file name\n", a);
                free(words);
                return CLI_USAGE;
            }
            *slot = argv[++i];
        } else if (strncmp(a, "-c", 2) == 0) {
            args.config_path = a + 2;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            args.verbose = true;
        } else if (strcmp(a, "--json") == 0) {
            args.json = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("mxfwd %s\n", MXFWD_VERSION);
            free(words);
            return CLI_OK;
        } else {
            fprintf(stderr, "mxfwd: unknown option '%s' (mxfwd --help lists them)\n", a);
            free(words);
            return CLI_USAGE;
        }
    }

    if (nwords == 0 || (nwords == 1 && strcmp(words[0], "help") == 0)) {
        main_usage(help || nwords == 1 ? stdout : stderr);
        free(words);
        return help || nwords == 1 ? CLI_OK : CLI_USAGE;
    }
    cmd = main_find(words, nwords, &used);
    if (cmd == NULL) {
        fprintf(stderr, "mxfwd: unknown command '%s'%s (mxfwd --help lists them)\n", words[0],
                strcmp(words[0], "srs") == 0 ? ": say 'srs forward' or 'srs reverse'" : "");
        free(words);
        return CLI_USAGE;
    }
    if (help) {
        main_command_help(cmd);
        free(words);
        return CLI_OK;
    }
    if (args.output != NULL && !cmd->output) {
        fprintf(stderr, "mxfwd: -o is for dkim-keygen, not %s\n", cmd->name);
        free(words);
        return CLI_USAGE;
    }
    if (nwords - used != cmd->nargs) {
        main_command_usage(stderr, cmd);
        free(words);
        return CLI_USAGE;
    }
    if (args.config_path == NULL)
        args.config_path = main_default_config();
    args.argc = nwords - used;
    args.argv = words + used;
    rc = cmd->run(&args);
    free(words);
    return rc;
}
