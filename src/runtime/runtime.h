/* The interface every runtime (shell, python, node, local, native)
 * implements: its name, which entry points it takes, a check at start-up that
 * its interpreter works, and the preparation of one launch (program, argv,
 * environment additions and the control payload that carries secrets). */
#ifndef ATTUNE_RUNTIME_RUNTIME_H
#define ATTUNE_RUNTIME_RUNTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"
#include "exec/action.h"
#include "exec/process.h"
#include "runtime/probe.h"

/* What a runtime needs to know about one execution. */
struct launch_input {
    const struct action *action;
    const json_t *params;        /* validated parameters */
    const json_t *secrets;       /* object of name -> string; never NULL */
    const json_t *hidden_params; /* names of parameters holding secrets; may be NULL */
    /* What the action's environment starts from (PATH, HOME, LANG, worker.env):
     * where interpreters are looked up and what env_vars prepend to. NULL:
     * the default PATH and nothing else. */
    const struct strv *base_env;
    /* {runtime_envs_dir}/{pack}/{runtime} is a pack's runtime environment
     * (a virtualenv...); NULL: none. */
    const char *runtime_envs_dir;
};

/* Decodes a wrapper's answer; returns a new reference, or NULL with the reason
 * in err when the runtime's decoder gives one. */
typedef json_t *(*launch_decode_fn)(const void *data, size_t len, char *err, size_t errlen);

/* What a runtime produces for one execution; the executor adds the common
 * environment, stdin and the output sinks. */
struct launch {
    char *path; /* program to run */
    struct strv argv;
    struct strv env; /* runtime-specific additions (PARAM_* for shell) */
    /* The runtime definition's env_vars: below execution.env_vars, which may
     * replace them, as in Attune. */
    struct strv config_env;
    enum proc_control control;
    struct strbuf control_data; /* secrets travel here, wiped after use */
    /* Decodes the wrapper's answer {"data": ...} or {"error": "..."}; NULL
     * when the runtime runs no wrapper. */
    launch_decode_fn decode_reply;
    /* The launch is the runtime's plain wrapper form, which its fork server
     * (exec/fork_server.h) can serve as well: the child then gets fork_args
     * as its arguments. */
    bool forkable;
    struct strv fork_args;
};

void launch_init(struct launch *l);
void launch_free(struct launch *l);

/* What a spare process (one started ahead of its execution with the
 * runtime's spare_launch, executor/spares.h) is told when an execution takes
 * it: what a cold start puts in the environment and on the command line. */
struct spare_input {
    const struct launch *launch;  /* the execution's, as prepare made it */
    char *const *envp;            /* the execution's whole environment */
    const struct strv *spare_env; /* the environment the spare started with */
    const char *spare_path;       /* the program the spare runs */
    const char *cwd;
};

struct runtime {
    const char *name;
    const char *interpreter_name; /* looked up on the actions' PATH; NULL if none */
    char *interpreter;            /* resolved at validation */
    bool usable;
    /* The names Attune's scheduler knows this runtime by, for the worker's
     * capabilities (runtime names and aliases, lowercase); NULL-terminated. */
    const char *const *attune_names;
    /* The key of capabilities.runtime_versions for the interpreter's version
     * (NULL: none is advertised), and that version once detected. */
    const char *version_key;
    char *version;
    struct probe version_probe; /* asking for it, from start-up until registration */
    /* True when this runtime runs the entry point (by extension). */
    bool (*handles)(const char *entry_path);
    int (*prepare)(const struct runtime *rt, const struct launch_input *in, struct launch *out,
                   char *err, size_t errlen);
    /* NULL for a runtime without spares. The launch of a spare (path, argv,
     * control), which waits on fd 3 and holds no execution's data; preload:
     * the modules it imports before it waits (runtimes.python.preload, which
     * only python reads). */
    void (*spare_launch)(const struct runtime *rt, char *const *preload, struct launch *out);
    /* The control payload a spare reads for one execution: the environment,
     * the cwd and the entry, then the launch's own payload (its secrets).
     * Returns -EINVAL when the execution cannot run in a spare (a variable
     * the interpreter only reads as it starts, say): it then starts cold. */
    int (*spare_control)(const struct spare_input *in, struct strbuf *out);
};

/* Each runtime. */
extern struct runtime runtime_shell;
extern struct runtime runtime_python;
extern struct runtime runtime_node;
extern struct runtime runtime_local;
extern struct runtime runtime_native;

/* The shared piece of the wrapper runtimes: the control payload as JSON
 * {"secrets":{...},"parameters":{...},"entry":"run"}. */
void runtime_json_control(const struct launch_input *in, struct strbuf *out);

/* True when the action carries a runtime definition from the database (a
 * non-empty execution_config) that its launch follows. */
bool runtime_has_config(const struct action *action);

/* The python fork server's command line (argv[0] first), preloading the
 * modules named in preload (NULL-terminated; NULL: none). */
void runtime_python_zygote_argv(const struct runtime *rt, char *const *preload, struct strv *argv);

/* The fork server's environment from the actions' base one: PATH and the
 * locale, nothing else. */
void runtime_python_zygote_env(const struct strv *base, struct strv *env);

/* Whether a warm python interpreter started with started_env (the fork
 * server's or a spare's) reads at its start what one started with envp would:
 * envp sets no PYTHON* variable and the same locale (LANG, LC_ALL, LC_CTYPE). */
bool runtime_python_env_fits(char *const *envp, const struct strv *started_env);

/* Finds an executable by name on the given PATH-style list; NULL if none. */
char *runtime_find_program(const char *name, const char *search_path);

#endif
