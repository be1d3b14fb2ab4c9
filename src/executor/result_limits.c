/* The result's error of an execution over a limit (see result_limits.h). */
#include "executor/result_limits.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/util.h"

/* What runtimes print when an allocation fails: Python, V8, glibc, C++, the shell. */
static const char *const memory_words[] = {
    "MemoryError",    "heap out of memory", "Cannot allocate memory",
    "std::bad_alloc", "Out of memory",      "out of memory",
};
/* What they print when a fork or thread is refused (EAGAIN). */
static const char *const tasks_words[] = {
    "Resource temporarily unavailable",
    "BlockingIOError",
    "can't start new thread",
};

static bool mentions(const json_t *r, const char *const *words, size_t n)
{
    const char *texts[] = {json_string_value(json_object_get(r, "error")),
                           json_string_value(json_object_get(r, "stderr"))};
    for (size_t t = 0; t < ARRAY_SIZE(texts); t++)
        for (size_t i = 0; texts[t] && i < n; i++)
            if (strstr(texts[t], words[i]))
                return true;
    return false;
}

/* Signals the kernel or a runtime sends itself when memory runs out. */
static bool memory_signal(const json_t *r)
{
    json_int_t sig = json_integer_value(json_object_get(r, "signal"));
    return sig == SIGKILL || sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS || sig == SIGTRAP;
}

static void result_set_error(json_t *r, char *text)
{
    json_object_set_new(r, "error", json_string(text));
    free(text);
}

/* "WHY: the error as it was" (or WHY alone when there was none). */
static void prefix_error(json_t *r, const char *why)
{
    const char *old = json_string_value(json_object_get(r, "error"));
    size_t len = old ? strlen(old) : 0;
    /* Python's "MemoryError: " has an empty message. */
    while (len && strchr(": \n", old[len - 1]))
        len--;
    result_set_error(r, len ? xasprintf("%s: %.*s", why, (int)len, old) : xstrdup(why));
}

static void note_failed(json_t *r, const struct sandbox_limits *l, const struct limits_outcome *o)
{
    char *mem = sandbox_limits_memory_text(l);
    char *tasks = sandbox_limits_tasks_text(l);
    char *why = NULL;
    if (mem && (o->memory_exceeded || (sandbox_limits_backend(l) == LIMITS_RLIMIT &&
                                       mentions(r, memory_words, ARRAY_SIZE(memory_words))))) {
        why = xasprintf("the action exceeded %s", mem);
        metrics_sandbox_limit_exceeded(METRICS_LIMIT_MEMORY);
    } else if (tasks && (o->tasks_exceeded || mentions(r, tasks_words, ARRAY_SIZE(tasks_words)))) {
        why = xasprintf("the action reached %s", tasks);
        metrics_sandbox_limit_exceeded(METRICS_LIMIT_TASKS);
    } else if (memory_signal(r)) {
        char *all = sandbox_limits_describe(l);
        if (all)
            why = xasprintf("the action was killed by a signal; limits in force: %s", all);
        free(all);
    }
    if (why)
        prefix_error(r, why);
    free(why);
    free(mem);
    free(tasks);
}

void execution_result_note_limits(json_t *r, enum execution_status status,
                                  const struct sandbox_limits *l,
                                  const struct limits_outcome *outcome)
{
    if (!l || status == EXECUTION_COMPLETED || status == EXECUTION_CANCELLED)
        return;
    if (status == EXECUTION_FAILED) {
        note_failed(r, l, outcome);
        return;
    }
    /* A timeout keeps Attune's words first; what the cgroup saw follows. */
    char *tasks = outcome->tasks_exceeded ? sandbox_limits_tasks_text(l) : NULL;
    char *mem = outcome->memory_exceeded ? sandbox_limits_memory_text(l) : NULL;
    const char *old = json_string_value(json_object_get(r, "error"));
    if (tasks || mem)
        metrics_sandbox_limit_exceeded(tasks ? METRICS_LIMIT_TASKS : METRICS_LIMIT_MEMORY);
    if (old && (tasks || mem))
        result_set_error(r, xasprintf("%s; the action %s %s", old, tasks ? "reached" : "exceeded",
                                      tasks ? tasks : mem));
    free(tasks);
    free(mem);
}
