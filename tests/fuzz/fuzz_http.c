/* libFuzzer target: arbitrary bytes as one client's side of an HTTP
 * connection to the worker's endpoint (worker/observability.c: the daemon,
 * its limits and its three answers as the worker runs them), over a socket
 * pair driven by an sd-event loop as the service's. What comes back must be
 * HTTP, only a GET of one of the three paths may be answered 200, and
 * stopping the endpoint frees whatever it held (the leak check). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "core/log.h"
#include "worker/observability.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A connection whose client has sent everything and on which the endpoint
 * answers nothing for this many turns of the loop in a row that find nothing
 * to do (the socket pair delivers at once, and libmicrohttpd asks for a turn
 * through its timeout whenever it has work left) is one libmicrohttpd 0.9.75 keeps until its
 * idle timeout: an incomplete request (no blank line yet) followed by the
 * client's end of stream. It is bounded by that timeout and by the
 * connection limit; the fuzzer closes its side and goes on, and stops the
 * endpoint (which frees every connection it holds) before the limit fills. */
#define STALL_TURNS 2
#define STALLED_MAX 8
/* What is kept of the replies to one input (the rest is read and dropped). */
#define REPLY_MAX (64u << 10)

static sd_event *loop;
static struct observability *obs;
static size_t input_size; /* varies what the service tells */
static int stalled;       /* connections the endpoint still holds */

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_http: %s: %.300s\n", what, detail);
    abort();
}

static void status(void *userdata, struct observability_status *st)
{
    (void)userdata;
    *st = (struct observability_status){.registered = input_size % 2 == 1,
                                        .paused = input_size % 3 == 0,
                                        .running = input_size % 5};
}

static void setup(void)
{
    if (obs && stalled < STALLED_MAX)
        return;
    if (!loop) {
        log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
        if (sd_event_new(&loop) < 0)
            fail("sd_event_new", strerror(errno));
    }
    observability_free(obs);
    stalled = 0;
    obs = observability_start_unlistening(loop, 4, status, NULL);
    if (!obs)
        fail("cannot start the endpoint", "");
}

/* One turn of the loop: whether it handled anything. */
static bool turn(void)
{
    int rc = sd_event_run(loop, 0);
    if (rc < 0)
        fail("sd_event_run", strerror(-rc));
    return rc > 0;
}

/* Writes what the client sends, turning the loop whenever the socket is
 * full; stops early when the endpoint reads no more. */
static void send_all(int fd, const uint8_t *data, size_t size)
{
    size_t off = 0;
    int idle = 0;
    while (off < size && idle < STALL_TURNS) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            idle = 0;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            return; /* the endpoint closed the connection early: fine */
        idle = turn() ? 0 : idle + 1;
    }
}

/* Reads the replies until the endpoint closes its side (true) or stalls. */
static bool receive_all(int fd, char *reply, size_t cap, size_t *len)
{
    int idle = 0;
    *len = 0;
    while (idle < STALL_TURNS) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n > 0) {
            size_t take = (size_t)n < cap - *len ? (size_t)n : cap - *len;
            memcpy(reply + *len, buf, take);
            *len += take;
            idle = 0;
            continue;
        }
        if (errno != EAGAIN)
            fail("recv", strerror(errno));
        idle = turn() ? 0 : idle + 1;
    }
    return false;
}

/* "GET" and the path both in the request: libmicrohttpd reads the method as
 * a C string, so "GET\0 /healthz" is a GET too (harmless: the same answer). */
static bool served_path(const uint8_t *data, size_t size, const char *path)
{
    return memmem(data, size, "GET", 3) && memmem(data, size, path, strlen(path));
}

/* Every reply starts with a status line, and a 200 answers a GET of a path
 * the endpoint serves. */
static void check_reply(const uint8_t *data, size_t size, const char *reply, size_t len)
{
    if (len == 0)
        return;
    if (len < 12 || memcmp(reply, "HTTP/1.", 7) != 0)
        fail("a reply that is not HTTP", reply);
    if (memcmp(reply + 9, "200", 3) == 0 && !served_path(data, size, "/metrics") &&
        !served_path(data, size, "/healthz") && !served_path(data, size, "/readyz"))
        fail("200 for a request of no served path", reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    input_size = size;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        fail("socketpair", strerror(errno));
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
        fail("fcntl", strerror(errno));
    if (observability_add_connection(obs, sv[1]) < 0)
        fail("the endpoint refused a connection", strerror(errno));
    send_all(sv[0], data, size);
    shutdown(sv[0], SHUT_WR);
    static char reply[REPLY_MAX + 1];
    size_t len;
    if (!receive_all(sv[0], reply, REPLY_MAX, &len))
        stalled++;
    reply[len] = '\0';
    check_reply(data, size, reply, len);
    close(sv[0]);
    return 0;
}
