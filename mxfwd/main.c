/*
 * main - the mxfwd command line: options, subcommand dispatch, help.
 *
 * Options may come before or after the subcommand words:
 * "mxfwd -c F srs forward X" and "mxfwd srs forward -c F X" are the same.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "default.h"
#include "mxfwd_build.h"

/* Options only some commands take. */
#define MAIN_OPT_OUTPUT 0x1u /* -o PATH */
#define MAIN_OPT_DOMAIN 0x2u /* -d DOMAIN */
#define MAIN_OPT_BODY 0x4u   /* --body */

typedef struct {
    const char *name;    /* "srs forward" for two-word commands */
    int min_args;        /* positional arguments after the command words */
    int max_args;        /* -1: no limit */
    const char *args;    /* their names, for usage lines */
    int (*run)(const cli_args_t *args);
    const char *summary; /* its line in mxfwd --help */
    const char *help;    /* mxfwd COMMAND --help */
    unsigned opts;       /* MAIN_OPT_* */
} main_command_t;

static const main_command_t main_commands[] = {
    {"serve", 0, 0, "", cli_serve, "run the forwarder",
     "Run the forwarder in the foreground.  Logs go to stderr, or to syslog\n"
     "(facility mail) with 'log = syslog'.  -v adds debug lines.\n"
     "SIGHUP reloads the forward table and SRS secrets; SIGTERM stops accepting,\n"
     "lets running transactions finish and exits.\n"},
    {"check-config", 0, 0, "", cli_check_config, "check the configuration and the files it names",
     "Parse the configuration, the forward table, the SRS secrets and the signing\n"
     "key.  Prints FILE:LINE: problem for every error found and exits 1 if there\n"
     "was one; notes when signing_key is not set.\n"},
    {"doctor", 0, 0, "", cli_doctor, "check this forwarder's DNS: MX, PTR, SPF, DKIM, DMARC",
     "Check this forwarder's DNS through dns_servers: each alias domain's MX,\n"
     "hostname's addresses and their PTR, srs_domain's SPF, the DKIM key record\n"
     "and the DMARC record for signing, postmaster@ of each domain.  One line per\n"
     "item, ok, problem (with the record to publish) or skipped; exits 1 when\n"
     "there is a problem.\n"},
    {"explain", 1, 1, "SENDER-DOMAIN", cli_explain, "what forwarding does to a domain's mail, and why",
     "Say what happens to mail from SENDER-DOMAIN when it is forwarded: its SPF\n"
     "record, its DMARC policy, whether it needs DKIM to survive forwarding, and\n"
     "which of mxfwd's actions apply with this configuration and why.  Exits 1\n"
     "when the domain does not exist or DNS fails.\n"},
    {"dkim-keygen", 0, 0, "", cli_dkim_keygen, "make a signing key and print its DNS record",
     "Write a new 2048-bit RSA signing key (PKCS#8 PEM, mode 0600) to PATH, by\n"
     "default the configured signing_key, never over an existing file, and print\n"
     "the TXT record to publish at SELECTOR._domainkey.DOMAIN.\n",
     MAIN_OPT_OUTPUT},
    {"resolve", 1, 1, "ADDRESS", cli_resolve, "where mail to ADDRESS goes",
     "Print where mail to ADDRESS goes: each destination on a line, or the\n"
     "SMTP reply that refuses it (exit 1).\n"},
    {"srs forward", 1, 1, "SENDER", cli_srs_forward, "the SRS address SENDER is rewritten to",
     "Print the SRS address that SENDER is rewritten to, using the configured\n"
     "secrets and srs_domain (a long sender: as srs_long_senders says, kept in\n"
     "the envelope store with store), or why it cannot be: too-long, malformed\n"
     "or store-failed (exit 1).\n"},
    {"srs reverse", 1, 1, "ADDRESS", cli_srs_reverse, "the original address behind an SRS ADDRESS",
     "Print the original address behind an SRS ADDRESS, or why it is refused:\n"
     "bad-hash, expired, not-srs, malformed, unknown-key (a keyed address the\n"
     "envelope store has no sender for) or store-failed (exit 1).\n"},
    {"queue", 0, 0, "", cli_queue, "list the queued messages",
     "List queued messages: queue id, age, size, sender, and each recipient\n"
     "with its state, next attempt and last error.  --json for machines.\n"},
    {"queue show", 1, 1, "ID", cli_queue_show, "print a queued message's envelope and headers",
     "Print the queued message ID as postcat -q does: its envelope (client,\n"
     "senders, each recipient's state), then its header section as it will be\n"
     "sent, prepended fields included; --body prints the whole message.  Reads\n"
     "the spool, so run it as root or the daemon's user.\n",
     MAIN_OPT_BODY},
    {"flush", 0, -1, "[ID...]", cli_flush, "retry deferred messages now",
     "Retry every deferred message now; with IDs, those messages; with\n"
     "-d DOMAIN, the recipients at DOMAIN (after fixing that destination).\n",
     MAIN_OPT_DOMAIN},
    {"delete", 1, -1, "ID...|ALL|-", cli_delete, "drop queued messages",
     "Drop the queued messages ID... (in any case), every queued message with\n"
     "ALL, or the ids read from standard input with - (as postsuper -d does).\n"
     "No DSN is sent; each deletion is logged.\n"},
    {"hold", 1, -1, "ID...|-", cli_hold, "keep queued messages from being delivered",
     "Hold the queued messages ID... (or the ids read from standard input with\n"
     "-, as postsuper -h does): their recipients are not tried until released\n"
     "(deliveries under way finish).  Logged.\n"},
    {"release", 1, -1, "ID...|-", cli_release, "let held messages be delivered",
     "Release the messages ID..., held by 'mxfwd hold', quarantined by a milter\n"
     "or held for the postmaster: their recipients are tried at once.  Logged.\n"},
    {"stats", 0, 0, "", cli_stats, "print the counters",
     "Print counters: connections, messages accepted and rejected by reason,\n"
     "delivered, deferred, bounced, queue size.  --json for machines.\n"},
};

#define MAIN_NCOMMANDS (sizeof(main_commands) / sizeof(main_commands[0]))

/* "dkim-keygen [-o PATH]": the command's words and arguments. */
static void main_words(const main_command_t *cmd, char *dst, size_t size)
{
    snprintf(dst, size, "%s%s%s%s%s%s", cmd->name, cmd->opts & MAIN_OPT_OUTPUT ? " [-o PATH]" : "",
             cmd->opts & MAIN_OPT_DOMAIN ? " [-d DOMAIN]" : "",
             cmd->opts & MAIN_OPT_BODY ? " [--body]" : "", cmd->args[0] != '\0' ? " " : "",
             cmd->args);
}

static void main_usage(FILE *out)
{
    fprintf(out, "usage: mxfwd [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < MAIN_NCOMMANDS; i++) {
        const main_command_t *cmd = &main_commands[i];
        char words[80];

        main_words(cmd, words, sizeof(words));
        fprintf(out, "  %-28s %s\n", words, cmd->summary);
    }
    fprintf(out, "\noptions:\n"
                 "  -c FILE     configuration file (default %s, or %s/mxfwd.conf\n"
                 "              when there is none in the working directory)\n"
                 "  -o PATH     where dkim-keygen writes the key\n"
                 "  -d DOMAIN   flush only the recipients at DOMAIN\n"
                 "  --body      queue show: the whole message, not only its headers\n"
                 "  -v          debug logging (serve)\n"
                 "  --json      machine-readable output (queue, stats)\n"
                 "  -h, --help  help; 'mxfwd COMMAND --help' for one command\n"
                 "  --version   print the version\n",
                 DEFAULT_CONFIG_FILE, MXFWD_SYSCONFDIR);
}

static void main_command_usage(FILE *out, const main_command_t *cmd)
{
    char words[80];

    main_words(cmd, words, sizeof(words));
    /* -c FILE after the command's own words: "mxfwd srs forward [-c FILE] X". */
    fprintf(out, "usage: mxfwd %.*s [-c FILE]%s\n", (int)strlen(cmd->name), words,
            words + strlen(cmd->name));
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

/* "mxfwd srs --help": the help of every command under that first word.
 * false when there is none. */
static bool main_group_help(const char *word)
{
    size_t n = strlen(word);
    bool any = false;

    for (size_t i = 0; i < MAIN_NCOMMANDS; i++) {
        const char *name = main_commands[i].name;
        if (strncmp(name, word, n) == 0 && name[n] == ' ') {
            if (any)
                printf("\n");
            main_command_help(&main_commands[i]);
            any = true;
        }
    }
    return any;
}

/* Match the leading words against the command table, two-word commands
 * first ("queue show" before "queue"). */
static const main_command_t *main_find(char **words, int nwords, int *used)
{
    for (size_t i = 0; nwords >= 2 && i < MAIN_NCOMMANDS; i++) {
        const char *name = main_commands[i].name, *space = strchr(name, ' ');
        if (space != NULL && strncmp(words[0], name, (size_t)(space - name)) == 0 &&
            words[0][space - name] == '\0' && strcmp(words[1], space + 1) == 0) {
            *used = 2;
            return &main_commands[i];
        }
    }
    for (size_t i = 0; nwords >= 1 && i < MAIN_NCOMMANDS; i++) {
        if (strcmp(words[0], main_commands[i].name) == 0) {
            *used = 1;
            return &main_commands[i];
        }
    }
    return NULL;
}

/* Where an option followed by a value goes: -c FILE, -o PATH, -d DOMAIN. */
static const char **main_file_option(cli_args_t *args, const char *a)
{
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
        return &args->config_path;
    if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
        return &args->output;
    if (strcmp(a, "-d") == 0 || strcmp(a, "--domain") == 0)
        return &args->domain;
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
                fprintf(stderr, "mxfwd: %s needs a value\n", a);
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
        } else if (strcmp(a, "--body") == 0) {
            args.body = true;
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
    if (cmd == NULL && help && main_group_help(words[0])) {
        free(words);
        return CLI_OK;
    }
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
    if (args.output != NULL && !(cmd->opts & MAIN_OPT_OUTPUT)) {
        fprintf(stderr, "mxfwd: -o is for dkim-keygen, not %s\n", cmd->name);
        free(words);
        return CLI_USAGE;
    }
    if (args.domain != NULL && !(cmd->opts & MAIN_OPT_DOMAIN)) {
        fprintf(stderr, "mxfwd: -d is for flush, not %s\n", cmd->name);
        free(words);
        return CLI_USAGE;
    }
    if (args.body && !(cmd->opts & MAIN_OPT_BODY)) {
        fprintf(stderr, "mxfwd: --body is for queue show, not %s\n", cmd->name);
        free(words);
        return CLI_USAGE;
    }
    if (nwords - used < cmd->min_args || (cmd->max_args >= 0 && nwords - used > cmd->max_args)) {
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
