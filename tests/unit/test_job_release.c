/* Unit tests for worker/job with executions pinned to a pack release: the
 * snapshot's action runs from the release's folder (a copy of the pack at
 * packs_base_dir/pack_ref is never used, nor the claim's action row), its
 * out_schema saying which output fields are secret; a
 * dispatch message that names another release, or a release folder that is
 * missing, fails the execution and nothing runs; and an execution cancelled
 * before it was dispatched is reported as Attune's worker reports it. */
#include "job_fakes.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIGEST "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER_DIGEST "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const char pinned_request[] =
    REQUEST_HEAD "\"config\":{},\"release_id\":11,\"release_digest\":\"" DIGEST "\"}}";

static void write_file(const char *dir, const char *name, const char *text)
{
    char *cmd = xasprintf("mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

/* packs_base_dir with the live pack (the wrong code) and the release DIGEST. */
static char *make_packs(void)
{
    char tmpl[] = "/tmp/test-job-release-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *live = xasprintf("%s/testpack/actions", tmpl);
    char *rel = xasprintf("%s/.releases/sha256/%s/pack/actions", tmpl, DIGEST);
    write_file(live, "echo.sh", "echo live copy\n");
    write_file(rel, "echo.sh", "echo pinned release\n");
    free(live);
    free(rel);
    return xstrdup(tmpl);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_packs(char *root)
{
    nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(root);
}

static json_t *snapshot(const char *digest)
{
    return json_pack("{s:{s:i, s:s}, s:{s:{s:i, s:s, s:i, s:s, s:s, s:s, s:b, s:b, s:i, s:s, "
                     "s:s, s:s, s:{s:{s:s, s:i}}}, s:{s:s, s:{s:{s:s}}}, s:[]}}",
                     "release", "id", 11, "digest", digest, "executable", "action", "id", 5, "ref",
                     "testpack.echo", "pack", 3, "pack_ref", "testpack", "label", "Echo",
                     "entrypoint", "echo.sh", "enabled", 1, "is_adhoc", 0, "timeout_seconds", 12,
                     "parameter_delivery", "stdin", "parameter_format", "json", "output_format",
                     "json", "param_schema", "n", "type", "integer", "default", 4, "runtime",
                     "name", "Shell", "execution_config", "interpreter", "binary", "bash",
                     "runtime_versions");
}

/* A world whose claim answers with an execution pinned to release 11. */
static void open_pinned(struct world *w, const char *body, const char *packs, const char *digest,
                        json_t *snap)
{
    world_open_in(w, body, packs);
    w->execution.pack_release = 11;
    w->execution.pack_release_digest = digest;
    w->execution.executable_snapshot = snap;
}

/* The snapshot's action runs from the release's folder, without the action
 * row; its runtime's execution_config is the runtime's definition. */
static void test_snapshot_runs_the_release(void **state)
{
    (void)state;
    char *packs = make_packs();
    json_t *snap = snapshot(DIGEST);
    struct world w;
    open_pinned(&w, pinned_request, packs, DIGEST, snap);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(job_state(w.job), JOB_LOADING_KEYS);
    send(&w, JOB_EVENT_NO_ROW);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    char *want = xasprintf("%s/.releases/sha256/%s/pack", packs, DIGEST);
    char *real = realpath(want, NULL);
    assert_string_equal(w.io.got.pack_dir, real);
    assert_string_equal(w.io.got.entry_point, "echo.sh");
    assert_false(w.io.got.inline_code);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(w.io.got.runtime_config, "interpreter"), "binary")),
                        "bash");
    assert_int_equal(w.io.fx.start_timeout, 12);
    assert_int_equal(json_integer_value(json_object_get(w.io.got.params, "n")), 4);
    assert_string_equal(w.io.got.digest, DIGEST);
    send(&w, JOB_EVENT_EXITED);
    send(&w, JOB_EVENT_ROW);
    assert_int_equal(w.io.fx.completed_action_id, 5);
    free(real);
    free(want);
    world_close(&w);
    json_decref(snap);
    remove_packs(packs);
}

/* The claim's keys serve a pinned execution when its snapshot names the
 * action and pack they were read for; else the keys are loaded for the
 * snapshot's. */
static void test_snapshot_takes_the_claims_keys_only_for_its_action(void **state)
{
    (void)state;
    static const struct key_row keys[] = {
        {.name = "token", .owner_type = "system", .value = "\"from-the-claim\""},
    };
    char *packs = make_packs();
    json_t *snap = snapshot(DIGEST);
    for (int other = 0; other <= 1; other++) {
        struct world w;
        open_pinned(&w, pinned_request, packs, DIGEST, snap);
        struct action_row row = w.action; /* id 5, pack 3: the snapshot's */
        if (other)
            row.id = 9;
        w.execution.action = &row;
        w.execution.keys_read = true;
        w.execution.keys = keys;
        w.execution.n_keys = 1;
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(w.io.fx.key_loads, other);
        assert_int_equal(job_state(w.job), other ? JOB_LOADING_KEYS : JOB_RUNNING);
        if (!other)
            assert_string_equal(json_string_value(json_object_get(w.io.got.secrets, "token")),
                                "from-the-claim");
        world_close(&w);
    }
    json_decref(snap);
    remove_packs(packs);
}

/* An ad-hoc shell action's entry point is its code. */
static void test_snapshot_adhoc_shell_is_inline(void **state)
{
    (void)state;
    char *packs = make_packs();
    json_t *snap = snapshot(DIGEST);
    json_t *action = json_object_get(json_object_get(snap, "executable"), "action");
    json_object_set_new(action, "is_adhoc", json_true());
    json_object_set_new(action, "entrypoint", json_string("echo inline"));
    struct world w;
    open_pinned(&w, pinned_request, packs, DIGEST, snap);
    send(&w, JOB_EVENT_ROW);
    send(&w, JOB_EVENT_NO_ROW);
    assert_int_equal(job_state(w.job), JOB_RUNNING);
    assert_true(w.io.got.inline_code);
    assert_string_equal(w.io.got.entry_point, "echo inline");
    world_close(&w);
    json_decref(snap);
    remove_packs(packs);
}

/* The snapshot's out_schema decides which output fields are secret. */
static void test_snapshot_out_schema(void **state)
{
    (void)state;
    char *packs = make_packs();
    json_t *snap = snapshot(DIGEST);
    json_t *action = json_object_get(json_object_get(snap, "executable"), "action");
    json_object_set_new(action, "out_schema",
                        json_pack("{s:{s:{s:b}}}", "properties", "password", "secret", 1));
    struct world w;
    open_pinned(&w, pinned_request, packs, DIGEST, snap);
    set_encryption_key(&w.cfg, "unit-test-encryption-key-0123456789-abcdefgh");
    send(&w, JOB_EVENT_ROW);
    send(&w, JOB_EVENT_NO_ROW);
    send_result(&w, JOB_EVENT_EXITED,
                json_pack("{s:b, s:{s:s}}", "succeeded", 1, "data", "password", "pinned-pw"));
    assert_int_equal(w.io.fx.finished_secrets, 1);
    const json_t *pw = json_object_get(json_object_get(w.io.finished_result, "data"), "password");
    assert_true(json_is_true(json_object_get(pw, "$attune_secret")));
    world_close(&w);
    json_decref(snap);
    remove_packs(packs);
}

/* The message and the row must name the same release (none and none are
 * the same); otherwise the execution fails at once and nothing runs. */
static void test_release_mismatch_fails(void **state)
{
    (void)state;
    char *packs = make_packs();
    json_t *snap = snapshot(DIGEST);
    static const char other_digest[] =
        REQUEST_HEAD "\"config\":{},\"release_id\":11,\"release_digest\":\"" OTHER_DIGEST "\"}}";
    static const char other_id[] =
        REQUEST_HEAD "\"config\":{},\"release_id\":12,\"release_digest\":\"" DIGEST "\"}}";
    const struct {
        const char *body;
        bool pinned_row;
    } cases[] = {
        {valid_request, true},   /* the message names none */
        {other_digest, true},    /* another digest */
        {other_id, true},        /* another id */
        {pinned_request, false}, /* the row is not pinned */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct world w;
        if (cases[i].pinned_row)
            open_pinned(&w, cases[i].body, packs, DIGEST, snap);
        else
            world_open_in(&w, cases[i].body, packs);
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_RECORDING);
        assert_string_equal(w.io.fx.finished_status, "failed");
        assert_non_null(strstr(w.io.fx.finished_error, "the dispatch message names pack release"));
        assert_non_null(strstr(w.io.fx.finished_error, "nothing was run"));
        assert_int_equal(w.io.fx.key_loads + w.io.fx.starts, 0);
        send(&w, JOB_EVENT_ROW);
        assert_string_equal(w.io.fx.completed_status, "failed");
        world_close(&w);
    }
    json_decref(snap);
    remove_packs(packs);
}

/* A release whose folder is not there, a digest that is not one, or a
 * snapshot of another release: failed with the reason, nothing runs. */
static void test_release_folder_missing_fails(void **state)
{
    (void)state;
    char *packs = make_packs();
    static const char other_request[] =
        REQUEST_HEAD "\"config\":{},\"release_id\":11,\"release_digest\":\"" OTHER_DIGEST "\"}}";
    static const char upper_request[] =
        REQUEST_HEAD "\"config\":{},\"release_id\":11,\"release_digest\":\"ABC\"}}";
    json_t *other = snapshot(OTHER_DIGEST), *ours = snapshot(DIGEST);
    char *missing = xasprintf("%s/.releases/sha256/%s/pack", packs, OTHER_DIGEST);
    const struct {
        const char *body, *digest;
        json_t *snap;
        const char *error;
    } cases[] = {
        {other_request, OTHER_DIGEST, other, missing},
        {upper_request, "ABC", ours, "not 64 lowercase hex digits"},
        {pinned_request, DIGEST, other, "differs from the execution's pack_release_digest"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct world w;
        open_pinned(&w, cases[i].body, packs, cases[i].digest, cases[i].snap);
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_RECORDING);
        assert_string_equal(w.io.fx.finished_status, "failed");
        if (!strstr(w.io.fx.finished_error, cases[i].error))
            fail_msg("case %zu: error '%s' does not say '%s'", i, w.io.fx.finished_error,
                     cases[i].error);
        assert_int_equal(w.io.fx.key_loads + w.io.fx.starts, 0);
        world_close(&w);
    }
    free(missing);
    json_decref(other);
    json_decref(ours);
    remove_packs(packs);
}

/* Canceling when dispatched: nothing runs or is written; reported
 * cancelled. Cancelled: acknowledged, nothing else. */
static void test_cancelled_before_dispatch(void **state)
{
    (void)state;
    const struct {
        const char *status;
        int64_t release; /* the row's pin: the message names none */
        int reports;
    } cases[] = {{"canceling", 0, 1}, {"cancelled", 0, 0}, {"canceling", 11, 0}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct world w;
        world_open(&w, valid_request);
        send(&w, JOB_EVENT_NO_ROW);
        assert_int_equal(job_state(w.job), JOB_CHECKING);
        w.owner = (struct execution_owner){.status = cases[i].status,
                                           .action_ref = "testpack.echo",
                                           .action_id = 5,
                                           .pack_release = cases[i].release,
                                           .pack_release_digest = cases[i].release ? DIGEST : NULL};
        send(&w, JOB_EVENT_ROW);
        assert_int_equal(job_state(w.job), JOB_DONE);
        assert_int_equal(w.io.fx.acks, 1);
        assert_int_equal(w.io.fx.finishes + w.io.fx.starts + w.io.fx.resumes, 0);
        assert_int_equal(w.io.fx.status_msgs, cases[i].reports);
        assert_int_equal(w.io.fx.completed_msgs, cases[i].reports);
        if (cases[i].reports) {
            assert_string_equal(w.io.fx.status_from, "canceling");
            assert_string_equal(w.io.fx.status_to, "cancelled");
            assert_string_equal(w.io.fx.completed_status, "cancelled");
            assert_int_equal(w.io.fx.completed_action_id, 5);
        }
        world_close(&w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_runs_the_release),
        cmocka_unit_test(test_snapshot_takes_the_claims_keys_only_for_its_action),
        cmocka_unit_test(test_snapshot_adhoc_shell_is_inline),
        cmocka_unit_test(test_snapshot_out_schema),
        cmocka_unit_test(test_release_mismatch_fails),
        cmocka_unit_test(test_release_folder_missing_fails),
        cmocka_unit_test(test_cancelled_before_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
