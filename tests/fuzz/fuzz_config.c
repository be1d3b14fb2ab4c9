/* libFuzzer target: the configuration loader (config_load of a YAML file, the
 * ATTUNE__ environment overrides, config_validate, the masked print).
 * Input: the file's text, optionally followed by a line "#--env" and then
 * environment entries, one NAME=VALUE a line, that stand in for the process
 * environment while the file is loaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

#define ENV_MARKER "\n#--env\n"
#define MAX_ENV 64
#define DUMMY_KEY "fuzz-dummy-key-that-never-appears-in-input-0123456789"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

static int file_fd = -1;
static char file_path[64];

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", what, detail);
    abort();
}

/* The real environment must not leak into the runs: no ATTUNE_ variables. */
static void drop_attune_environment(void)
{
    for (;;) {
        char **e = environ;
        while (e && *e && strncasecmp(*e, "ATTUNE_", 7) != 0)
            e++;
        if (!e || !*e)
            return;
        char *name = strndup(*e, strcspn(*e, "="));
        unsetenv(name);
        free(name);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    drop_attune_environment();
    /* An in-memory file, rewritten for each input: config_load takes a path. */
    file_fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (file_fd < 0)
        fail("memfd_create", "failed");
    snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
    /* Unknown ATTUNE__ names are logged as warnings; keep the output quiet. */
    log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
    if (ftruncate(file_fd, 0) != 0)
        fail("ftruncate", "failed");
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(file_fd, data + done, size - done, (off_t)done);
        if (n <= 0)
            fail("pwrite", "failed");
        done += (size_t)n;
    }
}

/* Splits text (modified in place) into at most MAX_ENV entries. */
static void split_env(char *text, char **env)
{
    size_t n = 0;
    for (char *line = text; line && *line && n < MAX_ENV;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line)
            env[n++] = line;
        line = nl ? nl + 1 : NULL;
    }
    env[n] = NULL;
}

static char *print_masked(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        fail("open_memstream", "failed");
    config_print_masked(cfg, out);
    fclose(out);
    return text;
}

/* The masked print must not depend on the encryption key's value at all. */
static void check_masked(struct config *cfg)
{
    char *shown = print_masked(cfg);
    if (cfg->encryption_key) {
        char *real = cfg->encryption_key;
        cfg->encryption_key = (char *)DUMMY_KEY;
        char *dummy = print_masked(cfg);
        cfg->encryption_key = real;
        if (strcmp(shown, dummy) != 0)
            fail("the masked print shows the encryption key", shown);
        free(dummy);
    }
    free(shown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *marker = memmem(data, size, ENV_MARKER, strlen(ENV_MARKER));
    size_t file_len = marker ? (size_t)(marker - data) : size;
    char *env[MAX_ENV + 1] = {NULL};
    /* Environment strings end at a NUL, so the entries end at the first one. */
    char *env_text = NULL;
    if (marker) {
        const char *from = (const char *)marker + strlen(ENV_MARKER);
        env_text = strndup(from, size - (size_t)((const uint8_t *)from - data));
        split_env(env_text, env);
    }
    write_file(data, file_len);

    struct config cfg;
    char err[1024] = "";
    config_init_defaults(&cfg);
    char **saved = environ;
    environ = env;
    int rc = config_load(&cfg, file_path, err, sizeof(err));
    environ = saved;
    if (rc == 0)
        rc = config_validate(&cfg, err, sizeof(err));
    if (rc == 0)
        check_masked(&cfg);
    else if (!err[0])
        fail("rejected without a message", file_path);
    config_free(&cfg);
    free(env_text);
    return 0;
}
