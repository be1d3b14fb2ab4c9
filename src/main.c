/* attune-worker: the worker service and its subcommands (run-action,
 * check-config): argument parsing and dispatch. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/harden.h"
#include "core/log.h"
#include "core/util.h"
#include "exec/sandbox.h"
#include "runtime/registry.h"
#include "worker/artifacts.h"
#include "worker/oneshot.h"

static const char usage_text[] =
    "Usage:\n"
    "  attune-worker [-c FILE] [-n NAME]          run the worker service\n"
    "  attune-worker run-action [OPTIONS] PACK.ACTION\n"
    "                                             run one action here, print its result\n"
    "  attune-worker check-config [-c FILE]       validate and print the configuration\n"
    "\n"
    "Common options:\n"
    "  -c, --config FILE     configuration file (else $ATTUNE_CONFIG, else ./config.yaml)\n"
    "  -n, --name NAME       worker name (worker.name)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n"
    "\n"
    "run-action options:\n"
    "  --packs-dir DIR       where packs live (default: packs_base_dir)\n"
    "  -p, --param NAME=VALUE  a parameter, converted to the type the action declares;\n"
    "                        may be repeated\n"
    "  --params-json JSON    parameters as one JSON object (-p values override it);\n"
    "                        @FILE reads it from FILE, - from standard input, so that\n"
    "                        no secret needs the command line\n"
    "  --secrets-file FILE   JSON or YAML mapping of secret name to value\n"
    "  --timeout SECONDS     overrides the action's timeout\n"
    "  --artifacts-dir DIR   overrides worker.artifacts_dir\n"
    "\n"
    "run-action exit status: 0 completed, 1 failed, 124 timed out, 2 bad usage or\n"
    "bad action definition. A bad configuration exits with 78.\n"
    "Configuration keys can be overridden with ATTUNE__SECTION__KEY variables,\n"
    "e.g. ATTUNE__WORKER__MAX_CONCURRENT_TASKS=4.\n";

enum command { CMD_SERVICE, CMD_RUN_ACTION, CMD_CHECK_CONFIG };

struct cli {
    char **argv;
    enum command command;
    const char *config_path;
    const char *worker_name;
    struct oneshot_options run;
    struct strv assignments;
};

enum long_only_option {
    OPT_PACKS_DIR = 256,
    OPT_PARAMS_JSON,
    OPT_SECRETS_FILE,
    OPT_TIMEOUT,
    OPT_ARTIFACTS_DIR,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"name", required_argument, NULL, 'n'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"param", required_argument, NULL, 'p'},
    {"packs-dir", required_argument, NULL, OPT_PACKS_DIR},
    {"params-json", required_argument, NULL, OPT_PARAMS_JSON},
    {"secrets-file", required_argument, NULL, OPT_SECRETS_FILE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"artifacts-dir", required_argument, NULL, OPT_ARTIFACTS_DIR},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attune-worker: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see attune-worker --help)\n");
    va_end(ap);
    return ONESHOT_EXIT_USAGE;
}

static int parse_timeout(const char *text, int *out)
{
    int64_t v;
    if (!parse_int64(text, &v) || v <= 0 || v > 604800)
        return usage_error("--timeout expects a whole number of seconds (1 to 604800), got '%s'",
                           text);
    *out = (int)v;
    return 0;
}

/* Returns -1 to go on, or an exit status. */
static int parse_option(struct cli *cli, int opt)
{
    switch (opt) {
    case 'c':
        cli->config_path = optarg;
        return -1;
    case 'n':
        cli->worker_name = optarg;
        return -1;
    case 'h':
        fputs(usage_text, stdout);
        return 0;
    case 'V':
        puts("attune-worker " ATTUNE_VERSION);
        return 0;
    case 'p':
        strv_push(&cli->assignments, optarg);
        return -1;
    case OPT_PACKS_DIR:
        cli->run.packs_dir = optarg;
        return -1;
    case OPT_PARAMS_JSON:
        cli->run.params_json = optarg;
        return -1;
    case OPT_SECRETS_FILE:
        cli->run.secrets_file = optarg;
        return -1;
    case OPT_TIMEOUT:
        return parse_timeout(optarg, &cli->run.timeout_seconds) ? ONESHOT_EXIT_USAGE : -1;
    case OPT_ARTIFACTS_DIR:
        cli->run.artifacts_dir = optarg;
        return -1;
    case ':':
        return usage_error("option %s needs a value", optind > 0 ? cli->argv[optind - 1] : "");
    default:
        return usage_error("unknown option %s", optind > 0 ? cli->argv[optind - 1] : "");
    }
}

static int parse_command(struct cli *cli, int argc, char **argv)
{
    if (optind >= argc)
        return -1;
    const char *word = argv[optind];
    if (strcmp(word, "run-action") == 0)
        cli->command = CMD_RUN_ACTION;
    else if (strcmp(word, "check-config") == 0)
        cli->command = CMD_CHECK_CONFIG;
    else
        return usage_error("unknown command '%s'", word);
    optind++;
    return -1;
}

static int parse_cli(struct cli *cli, int argc, char **argv)
{
    int opt, rc;
    cli->argv = argv;
    opterr = 0; /* our messages name the option and fit on one line */
    /* Options may come before or after the command word. */
    while ((opt = getopt_long(argc, argv, "+:c:n:hVp:", long_options, NULL)) != -1)
        if ((rc = parse_option(cli, opt)) >= 0)
            return rc;
    if ((rc = parse_command(cli, argc, argv)) >= 0)
        return rc;
    while ((opt = getopt_long(argc, argv, "+:c:n:hVp:", long_options, NULL)) != -1)
        if ((rc = parse_option(cli, opt)) >= 0)
            return rc;
    if (cli->command == CMD_RUN_ACTION) {
        if (optind >= argc)
            return usage_error("%s", "run-action needs PACK.ACTION");
        cli->run.action_ref = argv[optind++];
        while ((opt = getopt_long(argc, argv, "+:c:n:hVp:", long_options, NULL)) != -1)
            if ((rc = parse_option(cli, opt)) >= 0)
                return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    cli->run.assignments = cli->assignments.items;
    return -1;
}

/* The service lives in its own executable so that run-action, which starts
 * once per execution, does not load the database and broker libraries (and
 * the thirty libraries behind them). It keeps this process's pid. */
static int exec_service(char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *candidates[2] = {NULL, ATTUNE_SERVICE_PATH};
    char *sibling = NULL;
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        sibling = xasprintf("%.*s/attune-worker-service", (int)(slash - self), self);
        candidates[0] = sibling;
    }
    for (size_t i = 0; i < ARRAY_SIZE(candidates); i++)
        if (candidates[i] && access(candidates[i], X_OK) == 0)
            execv(candidates[i], argv);
    fprintf(stderr, "attune-worker: cannot start the service: %s not found (%s)\n",
            sibling ? sibling : ATTUNE_SERVICE_PATH, strerror(errno));
    free(sibling);
    return 1;
}

/* A sandbox mode this worker cannot provide is a configuration error; none
 * is said loudly. */
static int sandbox_ready(const struct config *cfg, bool warn)
{
    enum sandbox_mode mode;
    char err[1024];
    if (sandbox_resolve_mode(cfg, &mode, err, sizeof(err)) < 0) {
        fprintf(stderr, "attune-worker: configuration error: %s\n", err);
        return CONFIG_EXIT_STATUS;
    }
    if (warn && sandbox_none_warning(mode))
        fprintf(stderr, "attune-worker: WARNING: %s\n", sandbox_none_warning(mode));
    return 0;
}

/* An artifacts root others could write to would let them redirect the logs. */
static int root_ready(const char *root)
{
    char err[1024];
    if (artifacts_root_check(root, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "attune-worker: %s\n", err);
    return CONFIG_EXIT_STATUS;
}

int main(int argc, char **argv)
{
    struct cli cli = {.command = CMD_SERVICE};
    struct config cfg;
    /* Before anything secret is read (run-action's secrets file); the
     * service program, which execve makes dumpable again, does it itself. */
    harden_process("attune-worker");
    strv_init(&cli.assignments);
    int status = parse_cli(&cli, argc, argv);
    if (status >= 0)
        goto out;
    if (cli.command == CMD_SERVICE) {
        status = exec_service(argv);
        goto out;
    }
    status = config_load_for_program(&cfg, "attune-worker", cli.config_path, cli.worker_name);
    if (status == 0)
        status = registry_check_config(&cfg, "attune-worker");
    if (status == 0) {
        switch (cli.command) {
        case CMD_CHECK_CONFIG:
            status = sandbox_ready(&cfg, true);
            if (status == 0)
                config_print_masked(&cfg, stdout);
            break;
        case CMD_RUN_ACTION:
            sandbox_defer_userns_probe(); /* its one execution's start tells */
            status = root_ready(cli.run.artifacts_dir ? cli.run.artifacts_dir : cfg.artifacts_dir);
            if (status == 0)
                status = sandbox_ready(&cfg, false); /* run-action's start warns */
            if (status == 0)
                status = oneshot_run(&cfg, &cli.run);
            break;
        case CMD_SERVICE:
            break;
        }
    }
    config_free(&cfg);
out:
    strv_free(&cli.assignments);
    return status;
}
