/* The spare processes' metrics (see metrics.h): per runtime that has spares,
 * the executions started in one and those started without (none ready, or
 * one the execution could not use), and how many wait ready now. Rendered
 * with the rest of /metrics; the runtimes are a handful of fixed names. */
#include "core/metrics.h"

#include <string.h>

#define SPARE_RUNTIMES_MAX 4
#define SPARE_RUNTIME_NAME_MAX 15

static struct {
    struct {
        char name[SPARE_RUNTIME_NAME_MAX + 1];
        uint64_t in_spare, without;
        uint64_t idle;
    } rt[SPARE_RUNTIMES_MAX];
    size_t count;
} sp;

void metrics_spares_reset(void)
{
    memset(&sp, 0, sizeof(sp));
}

/* The runtime's row, added when new; NULL past the table's size. */
static size_t spare_row(const char *runtime)
{
    for (size_t i = 0; i < sp.count; i++)
        if (strcmp(sp.rt[i].name, runtime) == 0)
            return i;
    if (sp.count == SPARE_RUNTIMES_MAX || strlen(runtime) > SPARE_RUNTIME_NAME_MAX)
        return SPARE_RUNTIMES_MAX;
    strcpy(sp.rt[sp.count].name, runtime);
    return sp.count++;
}

void metrics_spare_start(const char *runtime, bool in_spare)
{
    size_t i = spare_row(runtime);
    if (i == SPARE_RUNTIMES_MAX)
        return;
    if (in_spare)
        sp.rt[i].in_spare++;
    else
        sp.rt[i].without++;
}

void metrics_spares_idle(const char *runtime, size_t idle)
{
    size_t i = spare_row(runtime);
    if (i < SPARE_RUNTIMES_MAX)
        sp.rt[i].idle = idle;
}

void metrics_spares_render(struct strbuf *out)
{
    if (sp.count == 0)
        return;
    const char *name = "attune_worker_spare_starts_total";
    metrics_family(out, name, "counter",
                   "Executions of a runtime with spare processes, by whether one ran in a spare.");
    for (size_t i = 0; i < sp.count; i++)
        strbuf_printf(out,
                      "%s{runtime=\"%s\",in_spare=\"true\"} "
                      "%llu\n%s{runtime=\"%s\",in_spare=\"false\"} %llu\n",
                      name, sp.rt[i].name, (unsigned long long)sp.rt[i].in_spare, name,
                      sp.rt[i].name, (unsigned long long)sp.rt[i].without);
    name = "attune_worker_spares_idle";
    metrics_family(out, name, "gauge", "Spare processes ready for an execution, by runtime.");
    for (size_t i = 0; i < sp.count; i++)
        strbuf_printf(out, "%s{runtime=\"%s\"} %llu\n", name, sp.rt[i].name,
                      (unsigned long long)sp.rt[i].idle);
}
