/* The deny-list of action environment variables (see env_policy.h). */
#include "core/env_policy.h"

#include <stdbool.h>
#include <string.h>

#include "core/util.h"

struct denied_name {
    const char *name;
    bool prefix; /* every name starting with it */
    const char *why;
};

static const struct denied_name denied[] = {
    {"BASH_ENV", false, "bash runs the file it names before the wrapper and the script"},
    {"ENV", false, "sh and bash in POSIX mode run the file it names"},
    {"BASH_FUNC_", true, "it defines bash functions that replace commands"},
    {"SHELLOPTS", false, "it turns on shell options in the wrapper (xtrace with PS4)"},
    {"BASHOPTS", false, "it turns on bash options in the wrapper"},
    {"PS4", false, "bash expands it, command substitutions included, with xtrace"},
    {"IFS", false, "it changes how the shell splits words"},
    {"LD_", true, "the dynamic loader loads code from it into every program"},
    {"GCONV_PATH", false, "glibc loads conversion modules from it"},
    {"GLIBC_TUNABLES", false, "it changes glibc's allocator and loader in every program"},
    {"HOSTALIASES", false, "it redirects host names the resolver looks up"},
    {"PYTHON", true, "Python imports or runs code from it (PYTHONPATH, PYTHONSTARTUP...)"},
    {"NODE_OPTIONS", false, "node takes options from it (--require, --import run code)"},
    {"NODE_PATH", false, "node's require() looks for modules in it"},
    {"PERL5OPT", false, "perl takes options from it (-M loads modules)"},
    {"PERL5LIB", false, "perl loads modules from it"},
    {"PERLLIB", false, "perl loads modules from it"},
    {"PERL5DB", false, "perl runs it as the debugger"},
    {"RUBYOPT", false, "ruby takes options from it (-r loads code)"},
    {"RUBYLIB", false, "ruby loads code from it"},
    {"JAVA_TOOL_OPTIONS", false, "the JVM takes options from it (-javaagent runs code)"},
    {"JDK_JAVA_OPTIONS", false, "the java launcher takes options from it"},
    {"_JAVA_OPTIONS", false, "the JVM takes options from it"},
    {"PARAM_", true, "it would pass for a parameter the schema never checked"},
};

/* Python variables that only change how output is written or what is left
 * out, never what code runs; common in deployments, so not refused. */
static const char *const python_harmless[] = {
    "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE", "PYTHONUTF8",
    "PYTHONNOUSERSITE", "PYTHONSAFEPATH",   "PYTHONFAULTHANDLER",      "PYTHONHASHSEED",
};

const char *env_policy_denied(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(python_harmless); i++)
        if (strcmp(name, python_harmless[i]) == 0)
            return NULL;
    for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
        const struct denied_name *d = &denied[i];
        if (d->prefix ? str_starts_with(name, d->name) : strcmp(name, d->name) == 0)
            return d->why;
    }
    return NULL;
}
