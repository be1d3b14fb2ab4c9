/* The worker's metrics (see metrics.h): counters, two histograms, and their
 * rendering in Prometheus' text format 0.0.4. Label values come from a small
 * fixed set (runtime names, final statuses), and the table of them is
 * bounded, so a scrape stays small whatever the worker sees. */
#include "core/metrics.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define METRICS_MAX_FINISHED 64
#define METRICS_LABEL_MAX 32

static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                       2.5,   5,    10,    30,   60,  300,  1800};
#define N_BUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct histogram {
    uint64_t counts[N_BUCKETS + 1]; /* the last one: above every bound */
    uint64_t count;
    double sum;
};

struct finished {
    char runtime[METRICS_LABEL_MAX + 1];
    char status[METRICS_LABEL_MAX + 1];
    uint64_t count;
};

static struct {
    uint64_t started, received, dead_lettered, requeued, truncated_bytes;
    uint64_t connections[METRICS_SERVER_COUNT];
    struct finished finished[METRICS_MAX_FINISHED];
    size_t n_finished;
    uint64_t finished_overflow; /* label pairs beyond the table */
    struct histogram duration, queue_wait;
    uint64_t fork_server[METRICS_FORK_EVENT_COUNT];
} m;

static const char *const server_names[METRICS_SERVER_COUNT] = {"database", "message_queue"};

void metrics_reset(void)
{
    memset(&m, 0, sizeof(m));
    metrics_sandbox_reset();
    metrics_spares_reset();
}

static void histogram_observe(struct histogram *h, double v)
{
    size_t i = 0;
    while (i < N_BUCKETS && v > bucket_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

void metrics_execution_started(void)
{
    m.started++;
}

/* Label values are names the worker knows; anything else is "other", so
 * nothing needs escaping and no one's text reaches the scrape. */
static void label_copy(char *out, const char *value)
{
    size_t len = value ? strlen(value) : 0;
    bool ok = len > 0 && len <= METRICS_LABEL_MAX &&
              strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len;
    snprintf(out, METRICS_LABEL_MAX + 1, "%s", ok ? value : value ? "other" : "none");
}

void metrics_execution_finished(const char *runtime, const char *status, double seconds)
{
    char rt[METRICS_LABEL_MAX + 1], st[METRICS_LABEL_MAX + 1];
    label_copy(rt, runtime);
    label_copy(st, status);
    histogram_observe(&m.duration, seconds < 0 ? 0 : seconds);
    for (size_t i = 0; i < m.n_finished; i++) {
        if (strcmp(m.finished[i].runtime, rt) == 0 && strcmp(m.finished[i].status, st) == 0) {
            m.finished[i].count++;
            return;
        }
    }
    if (m.n_finished == METRICS_MAX_FINISHED) {
        m.finished_overflow++;
        return;
    }
    struct finished *f = &m.finished[m.n_finished++];
    memcpy(f->runtime, rt, sizeof(rt));
    memcpy(f->status, st, sizeof(st));
    f->count = 1;
}

/* "2024-05-01T12:00:00.123456Z" or with a "+02:00" offset; false otherwise. */
static bool parse_rfc3339(const char *s, double *out)
{
    struct tm tm = {0};
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double t = (double)timegm(&tm);
    const char *p = s + n;
    if (*p == '.') {
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            t += (*p - '0') * scale;
    }
    int oh, om;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
        t -= (*p == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
        p += 6;
    } else
        return false;
    *out = t;
    return *p == '\0';
}

void metrics_queue_wait(const char *timestamp)
{
    double created;
    struct timespec now;
    if (!parse_rfc3339(timestamp, &created) || clock_gettime(CLOCK_REALTIME, &now) != 0)
        return;
    double wait = (double)now.tv_sec + (double)now.tv_nsec / 1e9 - created;
    if (wait < -1.0) /* another host's clock ahead of ours: nothing to learn */
        return;
    histogram_observe(&m.queue_wait, wait < 0 ? 0 : wait);
}

void metrics_message_received(void)
{
    m.received++;
}

void metrics_message_dead_lettered(void)
{
    m.dead_lettered++;
}

void metrics_message_requeued(void)
{
    m.requeued++;
}

void metrics_server_state(enum metrics_server server, bool connected)
{
    if (connected && server < METRICS_SERVER_COUNT)
        m.connections[server]++;
}

void metrics_output_truncated(int64_t bytes)
{
    if (bytes > 0)
        m.truncated_bytes += (uint64_t)bytes;
}

/* Rendering */

static void scalar(struct strbuf *out, const char *name, const char *type, const char *help,
                   uint64_t v)
{
    metrics_family(out, name, type, help);
    strbuf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void histogram_render(struct strbuf *out, const char *name, const char *help,
                             const struct histogram *h)
{
    metrics_family(out, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cumulative += h->counts[i];
        strbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[i],
                      (unsigned long long)cumulative);
    }
    strbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
                  (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

static void render_executions(struct strbuf *out)
{
    scalar(out, "attune_worker_executions_started_total", "counter",
           "Executions claimed by this worker.", m.started);
    const char *name = "attune_worker_executions_finished_total";
    metrics_family(out, name, "counter",
                   "Executions whose end this worker recorded, by runtime and status.");
    for (size_t i = 0; i < m.n_finished; i++)
        strbuf_printf(out, "%s{runtime=\"%s\",status=\"%s\"} %llu\n", name, m.finished[i].runtime,
                      m.finished[i].status, (unsigned long long)m.finished[i].count);
    if (m.finished_overflow)
        strbuf_printf(out, "%s{runtime=\"other\",status=\"other\"} %llu\n", name,
                      (unsigned long long)m.finished_overflow);
    histogram_render(out, "attune_worker_execution_duration_seconds",
                     "From an execution's claim to its recorded end.", &m.duration);
    histogram_render(out, "attune_worker_execution_queue_wait_seconds",
                     "From an execution request's creation to its claim by this worker.",
                     &m.queue_wait);
}

static void render_messages(struct strbuf *out)
{
    scalar(out, "attune_worker_messages_received_total", "counter",
           "Messages delivered by the broker.", m.received);
    scalar(out, "attune_worker_messages_dead_lettered_total", "counter",
           "Messages rejected to the dead-letter exchange.", m.dead_lettered);
    scalar(out, "attune_worker_messages_requeued_total", "counter",
           "Messages returned to their queue.", m.requeued);
    scalar(out, "attune_worker_output_truncated_bytes_total", "counter",
           "Bytes of action output dropped over worker.max_stdout_bytes/max_stderr_bytes.",
           m.truncated_bytes);
    const char *name = "attune_worker_reconnects_total";
    metrics_family(out, name, "counter", "Connections restored after being lost, by server.");
    for (int i = 0; i < METRICS_SERVER_COUNT; i++)
        strbuf_printf(out, "%s{server=\"%s\"} %llu\n", name, server_names[i],
                      (unsigned long long)(m.connections[i] ? m.connections[i] - 1 : 0));
}

static void gauge(struct strbuf *out, const char *name, const char *help, int64_t v)
{
    metrics_family(out, name, "gauge", help);
    strbuf_printf(out, "%s %lld\n", name, (long long)v);
}

static void render_gauges(struct strbuf *out, const struct metrics_gauges *g)
{
    gauge(out, "attune_worker_slots_running", "Executions in hand.", g->running);
    gauge(out, "attune_worker_slots_free", "Slots free of worker.max_concurrent_tasks.",
          g->slots - g->running);
    gauge(out, "attune_worker_publishes_unconfirmed", "Messages awaiting the broker's confirm.",
          g->unconfirmed_publishes);
    gauge(out, "attune_worker_database_queries_pending", "Database queries sent or queued.",
          g->db_queries_pending);
    const char *name = "attune_worker_server_connected";
    metrics_family(out, name, "gauge", "1 while connected to the server.");
    strbuf_printf(out, "%s{server=\"database\"} %d\n%s{server=\"message_queue\"} %d\n", name,
                  g->database_connected, name, g->message_queue_connected);
}

/* The python fork server */

void metrics_fork_server(enum metrics_fork_server_event event)
{
    m.fork_server[event]++;
}

static void render_fork_server(struct strbuf *out)
{
    scalar(out, "attune_worker_fork_server_forks_total", "counter",
           "Python children forked from the warm fork server: executions and spares.",
           m.fork_server[METRICS_FORK_SERVED]);
    scalar(out, "attune_worker_fork_server_cold_fallbacks_total", "counter",
           "Python executions the fork server could serve that started cold (it was down).",
           m.fork_server[METRICS_FORK_COLD]);
    scalar(out, "attune_worker_fork_server_restarts_total", "counter",
           "Fork servers replaced after they died, hung or grew.",
           m.fork_server[METRICS_FORK_RESTART]);
}

void metrics_render(struct strbuf *out, const struct metrics_gauges *g)
{
    render_executions(out);
    render_messages(out);
    render_gauges(out, g);
    render_fork_server(out);
    metrics_sandbox_render(out);
    metrics_spares_render(out);
    metrics_family(out, "attune_worker_build_info", "gauge", "The worker's version; always 1.");
    strbuf_printf(out, "attune_worker_build_info{version=\"%s\"} 1\n", ATTUNE_VERSION);
}
