/* Unit tests for core/metrics and observability.listen: counts rendered in
 * Prometheus' text format, cumulative histogram buckets, label values kept to
 * known names, the queue wait read from RFC 3339 times, and the listen
 * address parsed or refused with a message naming the key; the sandbox's
 * series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/config.h"
#include "core/metrics.h"

static char *render(void)
{
    static char text[16384];
    struct metrics_gauges g = {.running = 3, .slots = 10, .database_connected = true};
    struct strbuf out;
    strbuf_init(&out);
    metrics_render(&out, &g);
    snprintf(text, sizeof(text), "%s", out.data);
    strbuf_free(&out);
    return text;
}

static void expect_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void test_counters_and_gauges(void **state)
{
    (void)state;
    metrics_reset();
    metrics_execution_started();
    metrics_execution_started();
    metrics_execution_finished("shell", "completed", 0.2);
    metrics_execution_finished("shell", "completed", 0.3);
    metrics_execution_finished("python", "failed", 2);
    metrics_message_received();
    metrics_message_requeued();
    metrics_message_dead_lettered();
    metrics_output_truncated(100);
    metrics_output_truncated(-5);
    metrics_server_state(METRICS_SERVER_DATABASE, true);
    metrics_server_state(METRICS_SERVER_DATABASE, false);
    metrics_server_state(METRICS_SERVER_DATABASE, true);
    metrics_server_state(METRICS_SERVER_MESSAGE_QUEUE, true);
    const char *t = render();
    expect_line(t, "# TYPE attune_worker_executions_finished_total counter");
    expect_line(t, "attune_worker_executions_started_total 2");
    expect_line(
        t, "attune_worker_executions_finished_total{runtime=\"shell\",status=\"completed\"} 2");
    expect_line(t,
                "attune_worker_executions_finished_total{runtime=\"python\",status=\"failed\"} 1");
    expect_line(t, "attune_worker_messages_received_total 1");
    expect_line(t, "attune_worker_messages_requeued_total 1");
    expect_line(t, "attune_worker_messages_dead_lettered_total 1");
    expect_line(t, "attune_worker_output_truncated_bytes_total 100");
    expect_line(t, "attune_worker_reconnects_total{server=\"database\"} 1");
    expect_line(t, "attune_worker_reconnects_total{server=\"message_queue\"} 0");
    expect_line(t, "attune_worker_slots_running 3");
    expect_line(t, "attune_worker_slots_free 7");
    expect_line(t, "attune_worker_server_connected{server=\"database\"} 1");
    expect_line(t, "attune_worker_server_connected{server=\"message_queue\"} 0");
    expect_line(t, "attune_worker_build_info{version=\"" ATTUNE_VERSION "\"} 1");
}

static void test_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    metrics_reset();
    metrics_execution_finished("shell", "completed", 0.2);
    metrics_execution_finished("shell", "completed", 0.3);
    metrics_execution_finished("shell", "completed", 5000);
    const char *t = render();
    expect_line(t, "# TYPE attune_worker_execution_duration_seconds histogram");
    expect_line(t, "attune_worker_execution_duration_seconds_bucket{le=\"0.1\"} 0");
    expect_line(t, "attune_worker_execution_duration_seconds_bucket{le=\"0.25\"} 1");
    expect_line(t, "attune_worker_execution_duration_seconds_bucket{le=\"0.5\"} 2");
    expect_line(t, "attune_worker_execution_duration_seconds_bucket{le=\"1800\"} 2");
    expect_line(t, "attune_worker_execution_duration_seconds_bucket{le=\"+Inf\"} 3");
    expect_line(t, "attune_worker_execution_duration_seconds_sum 5000.5");
    expect_line(t, "attune_worker_execution_duration_seconds_count 3");
}

static void test_labels_are_known_names(void **state)
{
    (void)state;
    metrics_reset();
    metrics_execution_finished("Bad\"Name\n", "completed", 0);
    metrics_execution_finished(NULL, "failed", 0);
    const char *t = render();
    expect_line(
        t, "attune_worker_executions_finished_total{runtime=\"other\",status=\"completed\"} 1");
    expect_line(t, "attune_worker_executions_finished_total{runtime=\"none\",status=\"failed\"} 1");
    assert_null(strstr(t, "Bad"));
    /* The table of label pairs is bounded; the rest is counted together. */
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "rt%d", i);
        metrics_execution_finished(name, "completed", 0);
    }
    t = render();
    expect_line(t,
                "attune_worker_executions_finished_total{runtime=\"other\",status=\"other\"} 38");
}

static void rfc3339_ago(char *out, size_t len, time_t seconds_ago, const char *suffix)
{
    time_t t = time(NULL) - seconds_ago;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, "%s", suffix);
}

static void test_queue_wait_from_timestamps(void **state)
{
    (void)state;
    metrics_reset();
    char ts[64];
    rfc3339_ago(ts, sizeof(ts), 20, ".5Z"); /* 19.5 to 20.5 s ago */
    metrics_queue_wait(ts);
    rfc3339_ago(ts, sizeof(ts), 20, ".123456789+00:00");
    metrics_queue_wait(ts);
    metrics_queue_wait("not a time");
    metrics_queue_wait("2024-01-01T00:00:00"); /* no zone */
    rfc3339_ago(ts, sizeof(ts), -3600, "Z");   /* an hour ahead: another clock */
    metrics_queue_wait(ts);
    const char *t = render();
    expect_line(t, "attune_worker_execution_queue_wait_seconds_count 2");
    expect_line(t, "attune_worker_execution_queue_wait_seconds_bucket{le=\"10\"} 0");
    expect_line(t, "attune_worker_execution_queue_wait_seconds_bucket{le=\"30\"} 2");
}

static void test_listen_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage a;
    unsigned len;
    char err[512];
    assert_int_equal(config_parse_listen("127.0.0.1:9464", &a, &len, err, sizeof(err)), 0);
    assert_int_equal(a.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a)->sin_port), 9464);
    assert_int_equal(config_parse_listen("[::1]:80", &a, &len, err, sizeof(err)), 0);
    assert_int_equal(a.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(config_parse_listen("localhost:1", &a, &len, err, sizeof(err)), 0);
    assert_int_equal(config_parse_listen("0.0.0.0:65535", &a, &len, err, sizeof(err)), 0);
    static const char *const bad[] = {
        "9464",           ":9464",  "127.0.0.1:", "127.0.0.1:0",   "127.0.0.1:65536",
        "example.com:80", "::1:80", "[::1:80",    "127.0.0.1:80x", "127.0.0.1:-1",
        "[]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (config_parse_listen(bad[i], &a, &len, err, sizeof(err)) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(strstr(err, "observability.listen"));
    }
}

static void test_listen_key(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    config_init_defaults(&cfg);
    assert_string_equal(cfg.observability_listen, "127.0.0.1:9464");
    assert_int_equal(config_set(&cfg, "observability.listen", "", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), 0);
    assert_int_equal(config_set(&cfg, "observability.listen", "nowhere:1", err, sizeof(err)), 0);
    assert_int_not_equal(config_validate(&cfg, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "observability.listen"));
    config_free(&cfg);
}

/* The sandbox's series: none before the mode is known but the limits' zeros,
 * the uid pool's only in uid mode, sweeps counted by outcome. */
static void test_sandbox_series(void **state)
{
    (void)state;
    metrics_reset();
    const char *t = render();
    assert_null(strstr(t, "attune_worker_sandbox_mode"));
    assert_null(strstr(t, "attune_worker_sandbox_uids"));
    expect_line(t, "attune_worker_sandbox_limit_exceeded_total{limit=\"memory_max\"} 0");
    metrics_sandbox_mode(SANDBOX_MODE_UID);
    metrics_sandbox_uids(0, 16);
    metrics_sandbox_uids(2, 16);
    metrics_sandbox_swept(false, 0);
    metrics_sandbox_swept(true, 0);
    metrics_sandbox_swept(true, 3);
    metrics_sandbox_limit_exceeded(METRICS_LIMIT_MEMORY);
    metrics_sandbox_limit_exceeded(METRICS_LIMIT_TASKS);
    metrics_sandbox_limit_exceeded(METRICS_LIMIT_TASKS);
    t = render();
    expect_line(t, "# TYPE attune_worker_sandbox_mode gauge");
    expect_line(t, "attune_worker_sandbox_mode{mode=\"uid\"} 1");
    expect_line(t, "attune_worker_sandbox_mode{mode=\"none\"} 0");
    expect_line(t, "attune_worker_sandbox_uids_in_use 2");
    expect_line(t, "attune_worker_sandbox_uids_free 14");
    expect_line(t, "attune_worker_sandbox_sweeps_total 3");
    expect_line(t, "attune_worker_sandbox_sweeps_killed_total 2");
    expect_line(t, "attune_worker_sandbox_sweep_survivors_total 3");
    expect_line(t, "attune_worker_sandbox_limit_exceeded_total{limit=\"memory_max\"} 1");
    expect_line(t, "attune_worker_sandbox_limit_exceeded_total{limit=\"tasks_max\"} 2");
    metrics_sandbox_mode(SANDBOX_MODE_NONE);
    metrics_sandbox_uids(0, 0);
    t = render();
    expect_line(t, "attune_worker_sandbox_mode{mode=\"none\"} 1");
    assert_null(strstr(t, "attune_worker_sandbox_uids"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_histogram_buckets_are_cumulative),
        cmocka_unit_test(test_labels_are_known_names),
        cmocka_unit_test(test_queue_wait_from_timestamps),
        cmocka_unit_test(test_listen_addresses),
        cmocka_unit_test(test_listen_key),
        cmocka_unit_test(test_sandbox_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
