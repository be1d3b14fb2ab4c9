/* The names of a job's states and events (see job.h), for logs and tests. */
#include <assert.h>

#include "worker/job.h"

const char *job_state_name(enum job_state state)
{
    static const char *const names[JOB_STATE_COUNT] = {
        [JOB_CLAIMING] = "claiming",
        [JOB_CHECKING] = "checking",
        [JOB_RESUMING] = "resuming",
        [JOB_LOADING_KEYS] = "loading-keys",
        [JOB_RUNNING] = "running",
        [JOB_RECORDING] = "recording",
        [JOB_RECORDING_REFUSAL] = "recording-refusal",
        [JOB_VERIFYING] = "verifying",
        [JOB_REPORTING] = "reporting",
        [JOB_DONE] = "done",
    };
    assert((unsigned)state < JOB_STATE_COUNT);
    return names[state];
}

const char *job_event_name(enum job_event_kind kind)
{
    static const char *const names[JOB_EVENT_COUNT] = {
        [JOB_EVENT_ROW] = "row",           [JOB_EVENT_NO_ROW] = "no-row",
        [JOB_EVENT_DB_ERROR] = "db-error", [JOB_EVENT_EXITED] = "exited",
        [JOB_EVENT_SHUTDOWN] = "shutdown", [JOB_EVENT_CANCEL] = "cancel",
    };
    assert((unsigned)kind < JOB_EVENT_COUNT);
    return names[kind];
}
