/* attune-worker-service: the worker service itself. `attune-worker` with no
 * subcommand runs this program (same arguments, same pid). */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/harden.h"
#include "core/log.h"
#include "exec/sandbox.h"
#include "runtime/registry.h"
#include "worker/artifacts.h"
#include "worker/service.h"

static const char usage_text[] =
    "Usage: attune-worker [-c FILE] [-n NAME]\n"
    "Runs the worker service: takes execution requests from RabbitMQ, runs them,\n"
    "records them in PostgreSQL. SIGTERM or SIGINT stops it gracefully; a second\n"
    "signal stops it at once.\n"
    "  -c, --config FILE   configuration file (else $ATTUNE_CONFIG, else ./config.yaml)\n"
    "  -n, --name NAME     worker name (worker.name)\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n";

/* A sandbox mode this worker cannot provide is a configuration error. */
static int service_check_sandbox(const struct config *cfg)
{
    enum sandbox_mode mode;
    char err[256];
    if (sandbox_resolve_mode(cfg, &mode, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "attune-worker: configuration error: %s\n", err);
    return CONFIG_EXIT_STATUS;
}

/* glibc raises its mmap threshold to the size of the largest block freed
 * (up to 32 MB) and its trim threshold to twice that, so after one 10 MB
 * message the heap would keep up to 20 MB it no longer uses, for good. Fixed
 * thresholds keep large blocks in their own mappings, returned when freed. */
static void service_tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *name = NULL;
    int opt;
    /* Before anything secret is read: the configuration, keys, secrets. */
    harden_process("attune-worker");
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:n:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            puts("attune-worker " ATTUNE_VERSION);
            return 0;
        default:
            fprintf(stderr, "attune-worker: %s %s (see attune-worker --help)\n",
                    opt == ':' ? "option needs a value:" : "unknown option", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "attune-worker: unexpected argument '%s' (see attune-worker --help)\n",
                argv[optind]);
        return 2;
    }
    struct config cfg;
    int status = config_load_for_program(&cfg, "attune-worker", config_path, name);
    if (status == 0)
        status = service_check_sandbox(&cfg);
    if (status == 0)
        status = registry_check_config(&cfg, "attune-worker");
    char err[1024];
    if (status == 0 && artifacts_root_check(cfg.artifacts_dir, err, sizeof(err)) < 0) {
        log_error("%s", err);
        status = CONFIG_EXIT_STATUS;
    }
    if (status == 0 && !cfg.jwt_secret)
        log_warn("security.jwt_secret is not set: execution API tokens (ATTUNE_API_TOKEN) are "
                 "signed with Attune's insecure default secret");
    if (status == 0) {
        service_tune_malloc();
        status = service_run(&cfg);
    }
    config_free(&cfg);
    return status;
}
