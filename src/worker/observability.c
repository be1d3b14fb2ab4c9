/* The HTTP endpoint (see observability.h): libmicrohttpd's epoll fd and its
 * timeout watched by the loop, and the three answers. */
#include "worker/observability.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "db/db.h"
#include "mq/mq.h"

/* Hostile clients: this many connections at once, each idle this long at
 * most, each request's line and headers within this much memory. */
#define OBS_MAX_CONNECTIONS 16
#define OBS_IDLE_TIMEOUT_S 5
#define OBS_REQUEST_MEMORY 8192

struct observability {
    struct MHD_Daemon *daemon;
    sd_event_source *io_src, *timer_src;
    observability_status_fn status;
    void *userdata;
    size_t slots;        /* worker.max_concurrent_tasks */
    bool was_registered; /* a worker no longer registered is stopping */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type, char *body,
                             size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
    return reply(c, code, "text/plain; charset=utf-8", xstrdup(text), strlen(text));
}

/* The first reason the worker cannot take work, NULL when it can. */
static const char *not_ready_reason(struct observability *obs,
                                    const struct observability_status *st)
{
    obs->was_registered |= st->registered;
    if (!st->registered)
        return obs->was_registered ? "stopping" : "starting: not registered yet";
    if (!st->db || !db_is_connected(st->db))
        return "database disconnected";
    if (!st->mq || !mq_is_connected(st->mq))
        return "message queue disconnected";
    if (st->paused)
        return "taking no new work until the backlog for the broker or database is through";
    return NULL;
}

static enum MHD_Result answer_readyz(struct observability *obs, struct MHD_Connection *c)
{
    struct observability_status st = {0};
    obs->status(obs->userdata, &st);
    const char *why = not_ready_reason(obs, &st);
    char *body = why ? xasprintf("{\"ready\":false,\"reason\":\"%s\"}\n", why)
                     : xstrdup("{\"ready\":true}\n");
    return reply(c, why ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, "application/json", body,
                 strlen(body));
}

static enum MHD_Result answer_metrics(struct observability *obs, struct MHD_Connection *c)
{
    struct observability_status st = {0};
    obs->status(obs->userdata, &st);
    struct metrics_gauges g = {
        .running = (int64_t)st.running,
        .slots = (int64_t)obs->slots,
        .unconfirmed_publishes = st.mq ? (int64_t)mq_unconfirmed(st.mq) : 0,
        .db_queries_pending = st.db ? (int64_t)db_pending(st.db) : 0,
        .database_connected = st.db && db_is_connected(st.db),
        .message_queue_connected = st.mq && mq_is_connected(st.mq),
    };
    struct strbuf out;
    strbuf_init(&out);
    metrics_render(&out, &g);
    size_t len;
    char *body = strbuf_detach(&out, &len);
    return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

/* A GET announcing a body is refused before the body is read. */
static bool has_body(struct MHD_Connection *c)
{
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    return (len && strcmp(len, "0") != 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding") != NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct observability *obs = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is served\n");
    if (*upload_data_size != 0 || has_body(c))
        return reply_text(c, MHD_HTTP_BAD_REQUEST, "a GET takes no body\n");
    if (strcmp(url, "/metrics") == 0)
        return answer_metrics(obs, c);
    if (strcmp(url, "/healthz") == 0)
        return reply_text(c, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0)
        return answer_readyz(obs, c);
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n");
}

/* Driving the daemon from the loop */

static void obs_run(struct observability *obs)
{
    MHD_run(obs->daemon);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(obs->daemon, &ms) == MHD_YES) {
        sd_event_source_set_time_relative(obs->timer_src, (uint64_t)ms * 1000u);
        sd_event_source_set_enabled(obs->timer_src, SD_EVENT_ONESHOT);
    } else {
        sd_event_source_set_enabled(obs->timer_src, SD_EVENT_OFF);
    }
}

static int on_obs_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)fd;
    (void)revents;
    obs_run(userdata);
    return 0;
}

static int on_obs_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s;
    (void)usec;
    obs_run(userdata);
    return 0;
}

/* Listening on addr, or nowhere when addr is NULL (connections then come
 * through observability_add_connection). */
static struct MHD_Daemon *obs_daemon(struct observability *obs, const struct sockaddr *addr)
{
    unsigned flags = MHD_USE_EPOLL | (!addr                         ? MHD_USE_NO_LISTEN_SOCKET
                                      : addr->sa_family == AF_INET6 ? MHD_USE_IPv6
                                                                    : 0);
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, obs, MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)OBS_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)OBS_IDLE_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)OBS_REQUEST_MEMORY,
                            MHD_OPTION_END);
}

static struct observability *obs_new(size_t slots, observability_status_fn status, void *userdata)
{
    struct observability *obs = xcalloc(1, sizeof(*obs));
    obs->status = status;
    obs->userdata = userdata;
    obs->slots = slots;
    return obs;
}

/* Hands the daemon's epoll fd and timeout to the loop; frees obs on failure. */
static struct observability *obs_watch(struct observability *obs, sd_event *loop)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(obs->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || sd_event_add_io(loop, &obs->io_src, info->epoll_fd, EPOLLIN, on_obs_io, obs) < 0 ||
        sd_event_add_time_relative(loop, &obs->timer_src, CLOCK_MONOTONIC, 0, 1000, on_obs_timer,
                                   obs) < 0) {
        observability_free(obs);
        return NULL;
    }
    sd_event_source_set_enabled(obs->timer_src, SD_EVENT_OFF);
    return obs;
}

struct observability *observability_start(sd_event *loop, const struct config *cfg,
                                          observability_status_fn status, void *userdata)
{
    const char *listen = cfg->observability_listen;
    if (!listen || !*listen)
        return NULL;
    struct sockaddr_storage addr;
    unsigned addrlen;
    char err[256];
    if (config_parse_listen(listen, &addr, &addrlen, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return NULL;
    }
    struct observability *obs = obs_new((size_t)cfg->max_concurrent_tasks, status, userdata);
    errno = 0;
    obs->daemon = obs_daemon(obs, (const struct sockaddr *)&addr);
    if (!obs->daemon) {
        log_warn("observability.listen %s: cannot listen (%s); no /metrics, /healthz or /readyz",
                 listen, errno ? strerror(errno) : "see above");
        free(obs);
        return NULL;
    }
    if (!obs_watch(obs, loop)) {
        log_error("observability.listen %s: cannot watch the endpoint", listen);
        return NULL;
    }
    log_info("serving /metrics, /healthz and /readyz on http://%s", listen);
    return obs;
}

struct observability *observability_start_unlistening(sd_event *loop, size_t slots,
                                                      observability_status_fn status,
                                                      void *userdata)
{
    struct observability *obs = obs_new(slots, status, userdata);
    obs->daemon = obs_daemon(obs, NULL);
    if (!obs->daemon) {
        free(obs);
        return NULL;
    }
    return obs_watch(obs, loop);
}

int observability_add_connection(struct observability *obs, int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    if (getpeername(fd, (struct sockaddr *)&addr, &len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    errno = 0;
    if (MHD_add_connection(obs->daemon, fd, (const struct sockaddr *)&addr, len) != MHD_YES)
        return errno ? -errno : -EIO;
    /* The new connection's first turn, as a listening socket's accept would give it. */
    obs_run(obs);
    return 0;
}

void observability_free(struct observability *obs)
{
    if (!obs)
        return;
    sd_event_source_disable_unref(obs->io_src);
    sd_event_source_disable_unref(obs->timer_src);
    if (obs->daemon)
        MHD_stop_daemon(obs->daemon);
    free(obs);
}
