/* attunectl: the admin tool (migrate, pack load, key set, run, execution get,
 * execution tail, cancel, workers): argument parsing, configuration, and dispatch to src/ctl/. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/harden.h"
#include "core/log.h"
#include "core/util.h"
#include "ctl/ctl.h"
#include "runtime/registry.h"

static const char usage_text[] =
    "Usage: attunectl [-c FILE] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  migrate                       create or update the database schema\n"
    "  pack load DIR                 register or update the pack in DIR and its actions,\n"
    "                                and release its files (a new version for new files)\n"
    "  key set NAME VALUE [--pack REF | --action REF] [--encrypt]\n"
    "                                store a key (secret); VALUE '-' reads standard input\n"
    "                                (one trailing newline is dropped)\n"
    "  run ACTION_REF [-p NAME=VALUE]... [--params-json JSON] [--timeout S] [--wait]\n"
    "                                create an execution pinned to the pack's active\n"
    "                                release and hand it to a live worker;\n"
    "                                with --wait, print its result as JSON\n"
    "  execution get ID              print an execution as JSON\n"
    "  execution tail ID [-f] [--stream stdout|stderr|both]\n"
    "                                print the execution's output (stdout.log, stderr.log,\n"
    "                                masked by the worker); -f follows it until the\n"
    "                                execution ends\n"
    "  cancel ID                     cancel an execution: at once if no worker has started\n"
    "                                it, else mark it canceling and ask its worker to stop it\n"
    "  workers                       list the registered workers\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration file (else $ATTUNE_CONFIG, else ./config.yaml)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n"
    "  --pack REF            key set: the key belongs to this pack\n"
    "  --action REF          key set: the key belongs to this action\n"
    "  --encrypt             key set: store the value encrypted with security.encryption_key\n"
    "  -p, --param NAME=VALUE  run: a parameter, converted to the type the action declares\n"
    "  --params-json JSON    run: parameters as one JSON object (-p values override it);\n"
    "                        @FILE reads it from FILE, - from standard input\n"
    "  --timeout SECONDS     run: the execution's timeout\n"
    "  --wait                run: wait for the end and print the result\n"
    "  -f, --follow          execution tail: print output as it is written, until the\n"
    "                        execution reaches a final status\n"
    "  --stream WHICH        execution tail: both (default: stdout.log on standard\n"
    "                        output, stderr.log on standard error), stdout or stderr\n"
    "                        (that log alone, on standard output)\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 bad usage or invalid input, 78 bad\n"
    "configuration; run --wait: 0 completed, 1 failed, 124 timed out.\n"
    "A VALUE that starts with '-' goes after '--'. A value given on the command\n"
    "line is visible to other local users while attunectl runs: prefer '-'.\n";

enum option_id {
    OPT_PACK = 256,
    OPT_ACTION,
    OPT_ENCRYPT,
    OPT_PARAMS_JSON,
    OPT_TIMEOUT,
    OPT_WAIT,
    OPT_STREAM,
};

/* Which command-specific options a command accepts. */
#define ALLOW_KEY (1u << 0)
#define ALLOW_RUN (1u << 1)
#define ALLOW_TAIL (1u << 2)

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"pack", required_argument, NULL, OPT_PACK},
    {"action", required_argument, NULL, OPT_ACTION},
    {"encrypt", no_argument, NULL, OPT_ENCRYPT},
    {"param", required_argument, NULL, 'p'},
    {"params-json", required_argument, NULL, OPT_PARAMS_JSON},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"wait", no_argument, NULL, OPT_WAIT},
    {"follow", no_argument, NULL, 'f'},
    {"stream", required_argument, NULL, OPT_STREAM},
    {NULL, 0, NULL, 0},
};

typedef int (*command_fn)(const struct config *cfg, const struct ctl_options *opts);

struct command {
    const char *word;
    const char *subword; /* NULL for one-word commands */
    int nargs;
    unsigned allowed;
    command_fn run;
    const char *synopsis;
};

static const struct command commands[] = {
    {"migrate", NULL, 0, 0, ctl_migrate, "migrate"},
    {"pack", "load", 1, 0, ctl_pack_load, "pack load DIR"},
    {"key", "set", 2, ALLOW_KEY, ctl_key_set,
     "key set NAME VALUE [--pack REF | --action REF] [--encrypt]"},
    {"run", NULL, 1, ALLOW_RUN, ctl_run,
     "run ACTION_REF [-p NAME=VALUE]... [--params-json JSON] [--timeout S] [--wait]"},
    {"execution", "get", 1, 0, ctl_execution_get, "execution get ID"},
    {"execution", "tail", 1, ALLOW_TAIL, ctl_execution_tail,
     "execution tail ID [-f] [--stream stdout|stderr|both]"},
    {"cancel", NULL, 1, 0, ctl_cancel, "cancel ID"},
    {"workers", NULL, 0, 0, ctl_workers, "workers"},
};

static int usage_error(const char *message, const char *detail)
{
    fprintf(stderr, "attunectl: %s%s\nTry 'attunectl --help'.\n", message, detail);
    return CTL_EXIT_USAGE;
}

static int parse_timeout(const char *text, int *out)
{
    int64_t v;
    if (!parse_int64(text, &v) || v <= 0 || v > 604800)
        return usage_error("--timeout expects a whole number of seconds (1 to 604800), got ", text);
    *out = (int)v;
    return -1;
}

/* Returns -1 to go on, or an exit status; *used collects the command-specific
 * options seen. */
static int parse_option(struct ctl_options *o, int opt, unsigned *used)
{
    switch (opt) {
    case 'c':
        o->config_path = optarg;
        return -1;
    case 'h':
        fputs(usage_text, stdout);
        return CTL_EXIT_OK;
    case 'V':
        puts("attunectl " ATTUNE_VERSION);
        return CTL_EXIT_OK;
    case OPT_PACK:
        o->pack_ref = optarg;
        *used |= ALLOW_KEY;
        return -1;
    case OPT_ACTION:
        o->action_ref = optarg;
        *used |= ALLOW_KEY;
        return -1;
    case OPT_ENCRYPT:
        o->encrypt = true;
        *used |= ALLOW_KEY;
        return -1;
    case 'p':
        strv_push(&o->assignments, optarg);
        *used |= ALLOW_RUN;
        return -1;
    case OPT_PARAMS_JSON:
        o->params_json = optarg;
        *used |= ALLOW_RUN;
        return -1;
    case OPT_TIMEOUT:
        *used |= ALLOW_RUN;
        return parse_timeout(optarg, &o->timeout_seconds);
    case OPT_WAIT:
        o->wait = true;
        *used |= ALLOW_RUN;
        return -1;
    case 'f':
        o->follow = true;
        *used |= ALLOW_TAIL;
        return -1;
    case OPT_STREAM:
        o->stream = optarg;
        *used |= ALLOW_TAIL;
        return -1;
    default:
        return usage_error("invalid option", "");
    }
}

static const struct command *find_command(char **words, int nwords, int *consumed)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        const struct command *c = &commands[i];
        if (nwords < 1 || strcmp(words[0], c->word) != 0)
            continue;
        if (!c->subword) {
            *consumed = 1;
            return c;
        }
        if (nwords >= 2 && strcmp(words[1], c->subword) == 0) {
            *consumed = 2;
            return c;
        }
    }
    return NULL;
}

/* A word with subcommands (execution get, execution tail): names them all. */
static int unknown_command(char **words, int nwords)
{
    struct strbuf synopses;
    strbuf_init(&synopses);
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (commands[i].subword && strcmp(words[0], commands[i].word) == 0)
            strbuf_printf(&synopses, "%s%s", synopses.len ? " | attunectl " : "",
                          commands[i].synopsis);
    int rc = synopses.len ? usage_error(nwords < 2 ? "missing subcommand; usage: attunectl "
                                                   : "unknown subcommand; usage: attunectl ",
                                        synopses.data)
                          : usage_error("unknown command: ", words[0]);
    strbuf_free(&synopses);
    return rc;
}

static int check_words(const struct command *cmd, const struct ctl_options *o, unsigned used)
{
    if (o->nargs != cmd->nargs)
        return usage_error(o->nargs < cmd->nargs ? "missing argument; usage: attunectl "
                                                 : "too many arguments; usage: attunectl ",
                           cmd->synopsis);
    if (used & ~cmd->allowed)
        return usage_error("option not valid here; usage: attunectl ", cmd->synopsis);
    if (o->pack_ref && o->action_ref)
        return usage_error("--pack and --action exclude each other", "");
    return -1;
}

static int parse_cli(struct ctl_options *o, const struct command **cmd, int argc, char **argv)
{
    int opt, rc, consumed = 0;
    unsigned used = 0;
    /* GNU getopt moves the options in front, so they may come anywhere. */
    while ((opt = getopt_long(argc, argv, "c:hVp:f", long_options, NULL)) != -1)
        if ((rc = parse_option(o, opt, &used)) >= 0)
            return rc;
    char **words = argv + optind;
    int nwords = argc - optind;
    if (nwords == 0)
        return usage_error("a command is needed", "");
    *cmd = find_command(words, nwords, &consumed);
    if (!*cmd)
        return unknown_command(words, nwords);
    o->args = words + consumed;
    o->nargs = nwords - consumed;
    return check_words(*cmd, o, used);
}

static int load_config(const struct ctl_options *o, struct config *cfg)
{
    char err[1024];
    int rc = config_load(cfg, o->config_path, err, sizeof(err));
    config_scrub_environment();
    if (rc == 0)
        rc = config_validate(cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "attunectl: configuration error: %s\n", err);
        return CONFIG_EXIT_STATUS;
    }
    if (registry_check_config(cfg, "attunectl") != 0)
        return CONFIG_EXIT_STATUS;
    log_setup(cfg->log_level, cfg->log_format);
    return 0;
}

int main(int argc, char **argv)
{
    struct ctl_options opts = {0};
    const struct command *cmd = NULL;
    struct config cfg;
    /* attunectl holds the encryption key and the values of keys it sets. */
    harden_process("attunectl");
    strv_init(&opts.assignments);
    config_init_defaults(&cfg);
    int status = parse_cli(&opts, &cmd, argc, argv);
    if (status < 0)
        status = load_config(&opts, &cfg);
    if (status == 0 && cmd)
        status = cmd->run(&cfg, &opts);
    config_free(&cfg);
    strv_free(&opts.assignments);
    return status;
}
