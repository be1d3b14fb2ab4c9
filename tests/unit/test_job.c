/* Unit tests for worker/job: the execution state machine driven with fake
 * ports (no database, broker or process). Every state meets every event, and
 * the paths a lost database reply, a shutdown or a cancel take are followed
 * end to end;
 * each case checks the next state and what was acknowledged, recorded and
 * published. */
#include "job_fakes.h"

/* What one event in one state must do: the next state and the effects it
 * adds (counts), and the status recorded when it records one. */
struct expectation {
    enum job_state state;
    enum job_event_kind event;
    enum job_state next;
    struct effects adds;
    const char *recorded; /* status of a finish it sends, NULL if none */
};

#define NOTHING                                                                                    \
    {                                                                                              \
        0                                                                                          \
    }

static const struct expectation matrix[] = {
    /* Claiming: a row is ours; nothing matched needs a look; an error retries later. */
    {JOB_CLAIMING,
     JOB_EVENT_ROW,
     JOB_LOADING_KEYS,
     {.acks = 1, .status_msgs = 1, .key_loads = 1},
     NULL},
    {JOB_CLAIMING, JOB_EVENT_NO_ROW, JOB_CHECKING, {.owner_checks = 1}, NULL},
    {JOB_CLAIMING, JOB_EVENT_DB_ERROR, JOB_DONE, {.requeues = 1, .dones = 1}, NULL},
    {JOB_CLAIMING, JOB_EVENT_EXITED, JOB_CLAIMING, NOTHING, NULL},
    {JOB_CLAIMING, JOB_EVENT_SHUTDOWN, JOB_CLAIMING, NOTHING, NULL},
    {JOB_CLAIMING, JOB_EVENT_CANCEL, JOB_CLAIMING, NOTHING, NULL},
    /* Checking: someone else's (here: completed) is acknowledged, not run. */
    {JOB_CHECKING, JOB_EVENT_ROW, JOB_DONE, {.acks = 1, .dones = 1}, NULL},
    {JOB_CHECKING, JOB_EVENT_NO_ROW, JOB_DONE, {.dead_letters = 1, .dones = 1}, NULL},
    {JOB_CHECKING, JOB_EVENT_DB_ERROR, JOB_DONE, {.requeues = 1, .dones = 1}, NULL},
    {JOB_CHECKING, JOB_EVENT_EXITED, JOB_CHECKING, NOTHING, NULL},
    {JOB_CHECKING, JOB_EVENT_SHUTDOWN, JOB_CHECKING, NOTHING, NULL},
    {JOB_CHECKING, JOB_EVENT_CANCEL, JOB_CHECKING, NOTHING, NULL},
    /* Resuming: our own claim, read again. */
    {JOB_RESUMING,
     JOB_EVENT_ROW,
     JOB_LOADING_KEYS,
     {.acks = 1, .status_msgs = 1, .key_loads = 1},
     NULL},
    {JOB_RESUMING, JOB_EVENT_NO_ROW, JOB_DONE, {.requeues = 1, .dones = 1}, NULL},
    {JOB_RESUMING, JOB_EVENT_DB_ERROR, JOB_DONE, {.requeues = 1, .dones = 1}, NULL},
    {JOB_RESUMING, JOB_EVENT_EXITED, JOB_RESUMING, NOTHING, NULL},
    {JOB_RESUMING, JOB_EVENT_SHUTDOWN, JOB_RESUMING, NOTHING, NULL},
    {JOB_RESUMING, JOB_EVENT_CANCEL, JOB_RESUMING, NOTHING, NULL},
    /* Loading the keys: then the action starts. */
    {JOB_LOADING_KEYS, JOB_EVENT_ROW, JOB_RUNNING, {.starts = 1}, NULL},
    {JOB_LOADING_KEYS, JOB_EVENT_NO_ROW, JOB_RUNNING, {.starts = 1}, NULL},
    {JOB_LOADING_KEYS, JOB_EVENT_DB_ERROR, JOB_RECORDING, {.finishes = 1}, "failed"},
    {JOB_LOADING_KEYS, JOB_EVENT_EXITED, JOB_LOADING_KEYS, NOTHING, NULL},
    {JOB_LOADING_KEYS, JOB_EVENT_SHUTDOWN, JOB_LOADING_KEYS, NOTHING, NULL},
    {JOB_LOADING_KEYS, JOB_EVENT_CANCEL, JOB_LOADING_KEYS, NOTHING, NULL},
    /* Running: only the process's end or a stop matter. */
    {JOB_RUNNING, JOB_EVENT_ROW, JOB_RUNNING, NOTHING, NULL},
    {JOB_RUNNING, JOB_EVENT_NO_ROW, JOB_RUNNING, NOTHING, NULL},
    {JOB_RUNNING, JOB_EVENT_DB_ERROR, JOB_RUNNING, NOTHING, NULL},
    {JOB_RUNNING, JOB_EVENT_EXITED, JOB_RECORDING, {.finishes = 1}, "completed"},
    {JOB_RUNNING, JOB_EVENT_SHUTDOWN, JOB_RUNNING, {.stops = 1}, NULL},
    {JOB_RUNNING, JOB_EVENT_CANCEL, JOB_RUNNING, {.stops = 1}, NULL},
    /* Recording: stored means report; nothing changed means look; refused
     * means record a failure instead. */
    {JOB_RECORDING,
     JOB_EVENT_ROW,
     JOB_DONE,
     {.status_msgs = 1, .completed_msgs = 1, .dones = 1},
     NULL},
    {JOB_RECORDING, JOB_EVENT_NO_ROW, JOB_VERIFYING, {.finish_checks = 1}, NULL},
    {JOB_RECORDING, JOB_EVENT_DB_ERROR, JOB_RECORDING_REFUSAL, {.finishes = 1}, "failed"},
    {JOB_RECORDING, JOB_EVENT_EXITED, JOB_RECORDING, NOTHING, NULL},
    {JOB_RECORDING, JOB_EVENT_SHUTDOWN, JOB_RECORDING, NOTHING, NULL},
    {JOB_RECORDING, JOB_EVENT_CANCEL, JOB_RECORDING, NOTHING, NULL},
    {JOB_RECORDING_REFUSAL,
     JOB_EVENT_ROW,
     JOB_DONE,
     {.status_msgs = 1, .completed_msgs = 1, .dones = 1},
     NULL},
    {JOB_RECORDING_REFUSAL, JOB_EVENT_NO_ROW, JOB_VERIFYING, {.finish_checks = 1}, NULL},
    {JOB_RECORDING_REFUSAL, JOB_EVENT_DB_ERROR, JOB_DONE, {.dones = 1}, NULL},
    {JOB_RECORDING_REFUSAL, JOB_EVENT_EXITED, JOB_RECORDING_REFUSAL, NOTHING, NULL},
    {JOB_RECORDING_REFUSAL, JOB_EVENT_SHUTDOWN, JOB_RECORDING_REFUSAL, NOTHING, NULL},
    {JOB_RECORDING_REFUSAL, JOB_EVENT_CANCEL, JOB_RECORDING_REFUSAL, NOTHING, NULL},
    /* Verifying: there (our reply was lost) means report; not there means
     * someone else ended it, and nothing is published. */
    {JOB_VERIFYING,
     JOB_EVENT_ROW,
     JOB_DONE,
     {.status_msgs = 1, .completed_msgs = 1, .dones = 1},
     NULL},
    {JOB_VERIFYING, JOB_EVENT_NO_ROW, JOB_DONE, {.dones = 1}, NULL},
    {JOB_VERIFYING, JOB_EVENT_DB_ERROR, JOB_DONE, {.dones = 1}, NULL},
    {JOB_VERIFYING, JOB_EVENT_EXITED, JOB_VERIFYING, NOTHING, NULL},
    {JOB_VERIFYING, JOB_EVENT_SHUTDOWN, JOB_VERIFYING, NOTHING, NULL},
    {JOB_VERIFYING, JOB_EVENT_CANCEL, JOB_VERIFYING, NOTHING, NULL},
};

static void check_effects(const struct expectation *e, const struct effects *before,
                          const struct effects *after)
{
    const int *b = (const int *)before, *a = (const int *)after, *want = (const int *)&e->adds;
    size_t counters = offsetof(struct effects, finished_status) / sizeof(int);
    for (size_t i = 0; i < counters; i++)
        if (a[i] - b[i] != want[i])
            fail_msg("%s x %s: effect counter %zu changed by %d, want %d", job_state_name(e->state),
                     job_event_name(e->event), i, a[i] - b[i], want[i]);
    if (e->recorded)
        assert_string_equal(after->finished_status, e->recorded);
}

static void test_every_state_meets_every_event(void **state)
{
    (void)state;
    int covered[JOB_STATE_COUNT][JOB_EVENT_COUNT] = {{0}};
    for (size_t i = 0; i < ARRAY_SIZE(matrix); i++) {
        const struct expectation *e = &matrix[i];
        struct world w;
        world_reach(&w, e->state);
        struct effects before = w.io.fx;
        send(&w, e->event);
        if (job_state(w.job) != e->next)
            fail_msg("%s x %s: went to %s, want %s", job_state_name(e->state),
                     job_event_name(e->event), job_state_name(job_state(w.job)),
                     job_state_name(e->next));
        check_effects(e, &before, &w.io.fx);
        covered[e->state][e->event]++;
        world_close(&w);
    }
    /* The table covers each waiting state with each event exactly once. */
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        for (int ev = 0; ev < JOB_EVENT_COUNT; ev++)
            if (s != JOB_REPORTING && s != JOB_DONE && covered[s][ev] != 1)
                fail_msg("%s x %s covered %d times", job_state_name(s), job_event_name(ev),
                         covered[s][ev]);
}

static void test_done_ignores_everything(void **state)
{
    (void)state;
    for (int ev = 0; ev < JOB_EVENT_COUNT; ev++) {
        struct world w;
        world_reach(&w, JOB_VERIFYING);
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_DONE);
        struct effects before = w.io.fx;
        send(&w, (enum job_event_kind)ev);
        assert_int_equal(job_state(w.job), JOB_DONE);
        assert_memory_equal(&before, &w.io.fx, sizeof(before));
        world_close(&w);
    }
}

static void test_malformed_message_goes_to_dead_letters(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "{\"not\": \"an envelope\"}");
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_int_equal(w.io.fx.dead_letters, 1);
    assert_int_equal(w.io.fx.claims, 0);
    assert_int_equal(w.io.fx.dones, 1);
    assert_true(job_settled(w.job));
    world_close(&w);
}

/* The whole ordinary road: one claim, one ack, running then completed. */
static void test_happy_path(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RUNNING);
    assert_true(job_holds_execution(w.job));
    assert_int_equal(w.io.fx.start_timeout, 30); /* the action's own timeout */
    send(&w, JOB_EVENT_EXITED);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_false(job_holds_execution(w.job));
    assert_int_equal(w.io.fx.claims, 1);
    assert_int_equal(w.io.fx.acks, 1);
    assert_int_equal(w.io.fx.status_msgs, 2);
    assert_string_equal(w.io.fx.status_to, "completed");
    assert_int_equal(w.io.fx.completed_msgs, 1);
    assert_string_equal(w.io.fx.completed_status, "completed");
    world_close(&w);
    assert_int_equal(w.io.fx.releases, 1);
}

/* The claim went through but its reply was lost with the connection: the
 * repeated claim matches nothing, the row says it is ours, and the job picks
 * it up once, acknowledging once. */
static void test_lost_claim_reply_is_resumed(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RESUMING);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_LOADING_KEYS);
    assert_int_equal(w.io.fx.acks, 1);
    assert_int_equal(w.io.fx.resumes, 1);
    world_close(&w);
}

/* Ours and running, but another job of this process runs it: not again. */
static void test_running_here_is_not_resumed(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_CHECKING);
    w.io.held_here = true;
    struct execution_owner ours = {.status = "running", .worker_id = WORKER_ID};
    job_step(w.job, &(struct job_event){.kind = JOB_EVENT_ROW, .owner = &ours});
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_int_equal(w.io.fx.resumes, 0);
    assert_int_equal(w.io.fx.acks, 1);
    world_close(&w);
}

/* A repeated request, after the API set the row canceling, for what another
 * job of this process runs: that job reports it; the copy says nothing. */
static void test_canceling_here_is_not_reported(void **state)
{
    (void)state;
    static const char *const statuses[] = {"canceling", "cancelled"};
    for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
        struct world w;
        world_reach(&w, JOB_CHECKING);
        w.io.held_here = true;
        struct execution_owner ours = {.status = statuses[i], .worker_id = WORKER_ID};
        job_step(w.job, &(struct job_event){.kind = JOB_EVENT_ROW, .owner = &ours});
        assert_int_equal(job_state(w.job), JOB_DONE);
        assert_int_equal(w.io.fx.acks, 1);
        assert_int_equal(w.io.fx.status_msgs + w.io.fx.completed_msgs, 0);
        assert_int_equal(w.io.fx.finishes + w.io.fx.starts + w.io.fx.resumes, 0);
        world_close(&w);
    }
}

/* The final update went through but its reply was lost: the repeat changes
 * nothing, the check finds our result, and the reports go out once. */
static void test_lost_finish_reply_is_verified(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RECORDING);
    send(&w, JOB_EVENT_NO_ROW);
    assert_int_equal(job_state(w.job), JOB_VERIFYING);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_int_equal(w.io.fx.completed_msgs, 1);
    assert_string_equal(w.io.fx.completed_status, "completed");
    world_close(&w);
}

/* ExecutionCompleted names the action the execution row points to; without
 * one, the action of its action_ref; with neither, 0. */
static void test_completed_names_the_action(void **state)
{
    (void)state;
    static const struct {
        int64_t execution_action;
        bool action_found;
        int64_t expected;
    } cases[] = {
        {9, true, 9},  /* the row's column wins over the action of its ref (id 5) */
        {0, true, 5},  /* NULL column: the action of its ref */
        {9, false, 9}, /* the action is gone: still the row's */
        {0, false, 0}, /* neither */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct world w;
        world_open(&w, valid_request);
        w.execution.action_id = cases[i].execution_action;
        if (!cases[i].action_found)
            w.execution.action = NULL;
        send(&w, JOB_EVENT_ROW);
        while (job_state(w.job) != JOB_RECORDING)
            send(&w, job_state(w.job) == JOB_RUNNING ? JOB_EVENT_EXITED : JOB_EVENT_ROW);
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_DONE);
        assert_int_equal(w.io.fx.completed_msgs, 1);
        assert_int_equal(w.io.fx.completed_action_id, cases[i].expected);
        world_close(&w);
    }
}

/* A refused result is replaced by a failure that says why, and reported. */
static void test_refused_result_records_a_failure(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RECORDING_REFUSAL);
    assert_string_equal(w.io.fx.finished_status, "failed");
    assert_non_null(strstr(w.io.fx.finished_error, "the result could not be stored"));
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_string_equal(w.io.fx.completed_status, "failed");
    world_close(&w);
}

/* Answers every round trip with its row until the job records; a checking
 * job finds the execution its own, so it resumes it. */
static void answer_until_recording(struct world *w)
{
    w->owner = (struct execution_owner){.status = "running", .worker_id = WORKER_ID};
    for (int turns = 0; turns < 8 && job_state(w->job) != JOB_RECORDING; turns++) {
        assert_int_not_equal(job_state(w->job), JOB_DONE);
        send(w, JOB_EVENT_ROW);
    }
    assert_int_equal(job_state(w->job), JOB_RECORDING);
}

/* Every state that waits before the start, in lifecycle order. */
static const enum job_state waits_before_start[] = {
    JOB_CLAIMING,
    JOB_CHECKING,
    JOB_RESUMING,
    JOB_LOADING_KEYS,
};

/* A shutdown during any round trip before the start lands when that round
 * trip answers (in checking, once the execution is resumed): the action
 * never starts, the message is acknowledged once, and the execution is
 * recorded cancelled. */
static void test_shutdown_before_start_cancels(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(waits_before_start); i++) {
        struct world w;
        world_reach(&w, waits_before_start[i]);
        send(&w, JOB_EVENT_SHUTDOWN);
        answer_until_recording(&w);
        assert_int_equal(w.io.fx.starts, 0);
        assert_int_equal(w.io.fx.acks, 1);
        assert_int_equal(w.io.fx.status_msgs, 1);
        assert_string_equal(w.io.fx.status_to, "running");
        assert_string_equal(w.io.fx.finished_status, "cancelled");
        assert_non_null(strstr(w.io.fx.finished_error, "worker stopping"));
        send(&w, JOB_EVENT_ROW);
        assert_string_equal(w.io.fx.completed_status, "cancelled");
        world_close(&w);
    }
}

/* A shutdown while running stops the process; its end is then recorded. */
static void test_shutdown_while_running_stops_the_action(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RUNNING);
    send(&w, JOB_EVENT_SHUTDOWN);
    assert_int_equal(w.io.fx.stops, 1);
    job_step(w.job, &(struct job_event){.kind = JOB_EVENT_EXITED,
                                        .exit_status = EXECUTION_CANCELLED,
                                        .result = NULL});
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_string_equal(w.io.fx.finished_status, "cancelled");
    world_close(&w);
}

/* A cancel during any round trip before the start: the action never starts,
 * and the execution is recorded cancelled as Attune's worker writes it. A
 * cancel in the claim (or its check and resumption) needs neither the action
 * nor the keys. */
static void test_cancel_before_start_cancels(void **state)
{
    (void)state;
    static const struct {
        enum job_state wait;
        int loads;
    } cases[] = {{JOB_CLAIMING, 0}, {JOB_CHECKING, 0}, {JOB_RESUMING, 0}, {JOB_LOADING_KEYS, 1}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct world w;
        world_reach(&w, cases[i].wait);
        send(&w, JOB_EVENT_CANCEL);
        answer_until_recording(&w);
        assert_int_equal(w.io.fx.starts, 0);
        assert_int_equal(w.io.fx.acks, 1);
        assert_int_equal(w.io.fx.key_loads, cases[i].loads);
        assert_string_equal(w.io.fx.finished_status, "cancelled");
        assert_string_equal(w.io.fx.finished_error, "Execution cancelled by user");
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_DONE);
        assert_string_equal(w.io.fx.completed_status, "cancelled");
        assert_int_equal(w.io.fx.completed_msgs, 1);
        world_close(&w);
    }
}

/* A cancel while running stops the process group with the cancel grace, a
 * shutdown with the kill grace. */
static void test_cancel_while_running_uses_the_cancel_grace(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RUNNING);
    w.cfg.cancel_grace_seconds = 7;
    send(&w, JOB_EVENT_CANCEL);
    assert_int_equal(w.io.fx.stops, 1);
    assert_int_equal(w.io.fx.stop_grace_ms, 7000);
    world_close(&w);
    world_reach(&w, JOB_RUNNING);
    w.cfg.kill_grace_seconds = 3;
    send(&w, JOB_EVENT_SHUTDOWN);
    assert_int_equal(w.io.fx.stop_grace_ms, 3000);
    world_close(&w);
}

/* Sends the executor's end of an execution whose process was never started
 * (stopped while the fork server was still to fork it), as it reports one:
 * the status the stop gave it, a result as for a killed process. */
static void send_unstarted(struct world *w, enum execution_status status)
{
    json_t *result = json_pack("{s:b, s:i}", "succeeded", 0, "exit_code", -1);
    if (w->io.result_filter)
        w->io.result_filter(result, &status, w->io.result_filter_userdata);
    job_step(w->job, &(struct job_event){.kind = JOB_EVENT_EXITED,
                                         .never_started = true,
                                         .exit_status = status,
                                         .result = result});
    json_decref(result);
}

/* A cancel while the process is still to be forked: the executor ends it
 * unstarted, and the execution is recorded as one cancelled before its
 * start (nothing ran: no exit code), as Attune's worker writes it; without
 * a stop, an unstarted end is recorded as the executor reports it. */
static void test_cancel_before_the_fork_is_a_cancel_before_start(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RUNNING);
    send(&w, JOB_EVENT_CANCEL);
    assert_int_equal(w.io.fx.stops, 1);
    send_unstarted(&w, EXECUTION_CANCELLED);
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_string_equal(w.io.fx.finished_status, "cancelled");
    assert_string_equal(w.io.fx.finished_error, "Execution cancelled by user");
    assert_null(json_object_get(w.io.finished_result, "exit_code"));
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_string_equal(w.io.fx.completed_status, "cancelled");
    assert_int_equal(w.io.fx.completed_msgs, 1);
    world_close(&w);

    world_reach(&w, JOB_RUNNING);
    send_unstarted(&w, EXECUTION_FAILED);
    assert_string_equal(w.io.fx.finished_status, "failed");
    world_close(&w);
}

/* Once the action is over, a cancel changes nothing: its real end is
 * recorded and reported. */
static void test_cancel_after_the_end_changes_nothing(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_RECORDING);
    send(&w, JOB_EVENT_CANCEL);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_string_equal(w.io.fx.completed_status, w.io.fx.finished_status);
    assert_string_not_equal(w.io.fx.completed_status, "cancelled");
    world_close(&w);
}

/* The claim's status message goes from the row's status before the claim to
 * running, the last one from running to the final status. */
static void test_status_messages_name_both_ends(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, valid_request);
    w.execution.previous_status = "requested";
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(w.io.fx.status_msgs, 1);
    assert_string_equal(w.io.fx.status_from, "requested");
    assert_string_equal(w.io.fx.status_to, "running");
    send(&w, JOB_EVENT_ROW); /* the keys */
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_int_equal(w.io.fx.status_msgs, 1);
    send(&w, JOB_EVENT_EXITED);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_DONE);
    assert_int_equal(w.io.fx.status_msgs, 2);
    assert_string_equal(w.io.fx.status_from, "running");
    assert_string_equal(w.io.fx.status_to, "completed");
    world_close(&w);
}

/* The action cannot start: recorded failed with the reason, never running. */
static void test_start_failure_is_recorded(void **state)
{
    (void)state;
    struct world w;
    world_reach(&w, JOB_LOADING_KEYS);
    w.io.start_rc = -1;
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_RECORDING);
    assert_string_equal(w.io.fx.finished_status, "failed");
    assert_string_equal(w.io.fx.finished_error, "cannot start: fake failure");
    world_close(&w);
    assert_int_equal(w.io.fx.releases, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_state_meets_every_event),
        cmocka_unit_test(test_done_ignores_everything),
        cmocka_unit_test(test_malformed_message_goes_to_dead_letters),
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_lost_claim_reply_is_resumed),
        cmocka_unit_test(test_running_here_is_not_resumed),
        cmocka_unit_test(test_canceling_here_is_not_reported),
        cmocka_unit_test(test_lost_finish_reply_is_verified),
        cmocka_unit_test(test_completed_names_the_action),
        cmocka_unit_test(test_refused_result_records_a_failure),
        cmocka_unit_test(test_shutdown_before_start_cancels),
        cmocka_unit_test(test_shutdown_while_running_stops_the_action),
        cmocka_unit_test(test_cancel_before_start_cancels),
        cmocka_unit_test(test_cancel_while_running_uses_the_cancel_grace),
        cmocka_unit_test(test_cancel_before_the_fork_is_a_cancel_before_start),
        cmocka_unit_test(test_cancel_after_the_end_changes_nothing),
        cmocka_unit_test(test_status_messages_name_both_ends),
        cmocka_unit_test(test_start_failure_is_recorded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
