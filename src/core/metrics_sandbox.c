/* The sandbox's metrics (see metrics.h): its mode, the uids of the pool in
 * use, the sweeps of each execution's uid and the executions stopped by a
 * per-execution limit, rendered with the rest of /metrics. */
#include "core/metrics.h"

#include <string.h>

static struct {
    bool mode_known;
    enum sandbox_mode mode;
    uint32_t uids_in_use, uids_size; /* size 0: not uid mode */
    uint64_t sweeps, sweeps_killed, sweep_survivors;
    uint64_t limit_exceeded[METRICS_LIMIT_COUNT];
} sb;

static const char *const limit_names[METRICS_LIMIT_COUNT] = {"memory_max", "tasks_max"};

void metrics_sandbox_reset(void)
{
    memset(&sb, 0, sizeof(sb));
}

void metrics_sandbox_mode(enum sandbox_mode mode)
{
    sb.mode_known = true;
    sb.mode = mode;
}

void metrics_sandbox_uids(uint32_t in_use, uint32_t size)
{
    sb.uids_in_use = in_use;
    sb.uids_size = size;
}

void metrics_sandbox_swept(bool killed, int left)
{
    sb.sweeps++;
    sb.sweeps_killed += killed;
    if (left > 0)
        sb.sweep_survivors += (uint64_t)left;
}

void metrics_sandbox_limit_exceeded(enum metrics_sandbox_limit limit)
{
    if (limit < METRICS_LIMIT_COUNT)
        sb.limit_exceeded[limit]++;
}

static void counter(struct strbuf *out, const char *name, const char *help, uint64_t v)
{
    metrics_family(out, name, "counter", help);
    strbuf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

/* One series per resolved mode, 1 for the one in force (auto resolves to
 * uid or userns at start). */
static void render_mode(struct strbuf *out)
{
    static const struct {
        enum sandbox_mode mode;
        const char *name;
    } modes[] = {
        {SANDBOX_MODE_NONE, "none"}, {SANDBOX_MODE_UID, "uid"}, {SANDBOX_MODE_USERNS, "userns"}};
    const char *name = "attune_worker_sandbox_mode";
    metrics_family(out, name, "gauge",
                   "The sandbox actions run in (sandbox.mode as resolved): 1 for it.");
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        strbuf_printf(out, "%s{mode=\"%s\"} %d\n", name, modes[i].name, sb.mode == modes[i].mode);
}

static void render_uids(struct strbuf *out)
{
    metrics_family(out, "attune_worker_sandbox_uids_in_use", "gauge",
                   "uids of sandbox.uid_range held by this worker's executions.");
    strbuf_printf(out, "attune_worker_sandbox_uids_in_use %lu\n", (unsigned long)sb.uids_in_use);
    metrics_family(out, "attune_worker_sandbox_uids_free", "gauge",
                   "uids of sandbox.uid_range this worker's executions do not hold.");
    strbuf_printf(out, "attune_worker_sandbox_uids_free %lu\n",
                  (unsigned long)(sb.uids_size - sb.uids_in_use));
    counter(out, "attune_worker_sandbox_sweeps_total", "Sweeps of an execution's uid at its end.",
            sb.sweeps);
    counter(out, "attune_worker_sandbox_sweeps_killed_total",
            "Sweeps that found processes left on the uid and killed them.", sb.sweeps_killed);
    counter(out, "attune_worker_sandbox_sweep_survivors_total",
            "Processes still alive on a uid after its sweep's last round.", sb.sweep_survivors);
}

void metrics_sandbox_render(struct strbuf *out)
{
    if (sb.mode_known)
        render_mode(out);
    if (sb.uids_size)
        render_uids(out);
    const char *name = "attune_worker_sandbox_limit_exceeded_total";
    metrics_family(out, name, "counter",
                   "Executions that failed or timed out over a per-execution limit, by limit.");
    for (int i = 0; i < METRICS_LIMIT_COUNT; i++)
        strbuf_printf(out, "%s{limit=\"%s\"} %llu\n", name, limit_names[i],
                      (unsigned long long)sb.limit_exceeded[i]);
}
