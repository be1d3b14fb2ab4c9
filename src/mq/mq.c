/* The broker connection on the event loop (see mq.h): connecting (the
 * topology is topology.c, consuming and acknowledging consume.c),
 * publishing through the outbox (outbox.c) with confirms, reconnecting. */
#include "mq/mq.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/log.h"
#include "core/backoff.h"
#include "core/util.h"
#include "mq/mq_private.h"

#define MQ_BACKOFF_MIN_MS 200
#define MQ_BACKOFF_MAX_MS 10000
#define MQ_CONNECT_TIMEOUT_MS 2000
#define MQ_RPC_TIMEOUT_MS 10000
#define MQ_FRAME_MAX 131072

static void mq_connect(struct mq *mq);
static void mq_drain(struct mq *mq);

static int on_mq_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct mq *mq = userdata;
    (void)s;
    (void)usec;
    mq->retry_src = sd_event_source_disable_unref(mq->retry_src);
    mq_connect(mq);
    return 0;
}

static void mq_close_connection(struct mq *mq)
{
    mq->io_src = sd_event_source_disable_unref(mq->io_src);
    mq->tick_src = sd_event_source_disable_unref(mq->tick_src);
    if (mq->conn) {
        if (mq->connected) {
            amqp_channel_close(mq->conn, MQ_CHANNEL, AMQP_REPLY_SUCCESS);
            amqp_connection_close(mq->conn, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(mq->conn);
    }
    mq->conn = NULL;
    mq->connected = false;
    mq->consuming = false;
    inbound_reset(&mq->inbound);
}

void mq_lost(struct mq *mq, const char *why)
{
    bool was_connected = mq->connected;
    mq->connected = false; /* no polite close on a broken connection */
    mq_close_connection(mq);
    uint64_t delay_ms = backoff_failed(&mq->backoff, "broker", was_connected, why);
    if (was_connected && mq->on_state)
        mq->on_state(mq, false, mq->userdata);
    sd_event_add_time_relative(mq->loop, &mq->retry_src, CLOCK_MONOTONIC, delay_ms * 1000, 1000,
                               on_mq_retry, mq);
}

/* Publishing: every message goes through the outbox and stays there until
 * the broker confirms it. */

static bool mq_send(struct mq *mq, struct outbox_message *m)
{
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;
    props.message_id = amqp_cstring_bytes(m->message_id);
    props.correlation_id = amqp_cstring_bytes(m->correlation_id);
    props.timestamp = (uint64_t)time(NULL);
    int rc = amqp_basic_publish(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(MQ_EXCHANGE),
                                amqp_cstring_bytes(m->routing_key), 0, 0, &props,
                                amqp_cstring_bytes(m->body));
    if (rc != AMQP_STATUS_OK) {
        mq_lost(mq, amqp_error_string2(rc));
        return false;
    }
    m->seq = ++mq->next_seq;
    log_debug("published %s", m->routing_key);
    return true;
}

static void mq_send_unsent(struct mq *mq)
{
    for (struct outbox_message *m = outbox_next_unsent(&mq->outbox, NULL); m && mq->connected;
         m = outbox_next_unsent(&mq->outbox, m))
        if (!mq_send(mq, m))
            return;
}

void mq_publish(struct mq *mq, const char *routing_key, const char *body, const char *message_id,
                const char *correlation_id)
{
    struct outbox_message *m =
        outbox_add(&mq->outbox, routing_key, body, message_id, correlation_id);
    if (mq->connected)
        mq_send(mq, m);
}

size_t mq_unconfirmed(const struct mq *mq)
{
    return mq->outbox.count;
}

size_t mq_unconfirmed_bytes(const struct mq *mq)
{
    return mq->outbox.bytes;
}

/* Reading */

static void mq_handle_frame(struct mq *mq, const amqp_frame_t *frame)
{
    if (frame->frame_type != AMQP_FRAME_METHOD)
        return;
    switch (frame->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *m = frame->payload.method.decoded;
        outbox_confirm(&mq->outbox, m->delivery_tag, m->multiple);
        break;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *m = frame->payload.method.decoded;
        outbox_unsend(&mq->outbox, m->delivery_tag, m->multiple);
        log_warn("broker refused a published message; sending it again");
        mq_send_unsent(mq);
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
        amqp_send_method(mq->conn, MQ_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, NULL);
        mq_lost(mq, "the broker closed the channel");
        break;
    case AMQP_CONNECTION_CLOSE_METHOD:
        amqp_send_method(mq->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, NULL);
        mq_lost(mq, "the broker closed the connection");
        break;
    default:
        break;
    }
}

/* A complete delivery goes to its owner; one too large to keep goes to the
 * dead-letter queue unread. */
static void mq_deliver(struct mq *mq)
{
    struct inbound *in = &mq->inbound;
    if (in->too_large) {
        log_warn("message rejected to the dead-letter queue unread: its body of %llu bytes is "
                 "over the %llu-byte limit",
                 (unsigned long long)in->size, (unsigned long long)INBOUND_MAX_BODY);
        mq_reject_tag(mq, mq->generation, in->delivery_tag, false);
        return;
    }
    /* The body is the caller's for the call, even if the connection drops
     * (and the inbound is reset) inside it. */
    char *body = in->body;
    in->body = NULL;
    struct mq_delivery d = {
        .queue = strcmp(in->consumer_tag, MQ_CANCEL_CONSUMER_TAG) == 0 ? MQ_QUEUE_CANCEL
                                                                       : MQ_QUEUE_EXECUTIONS,
        .connection = mq->generation,
        .delivery_tag = in->delivery_tag,
        .redelivered = in->redelivered,
        .body = body ? body : "",
        .len = (size_t)in->size,
    };
    log_debug("delivery %llu received", (unsigned long long)d.delivery_tag);
    mq->on_delivery(mq, &d, mq->userdata);
    free(body);
}

/* Reads one frame without blocking. Returns false when nothing is left. */
static bool mq_read_one(struct mq *mq)
{
    struct timeval zero = {0, 0};
    amqp_frame_t frame;
    /* Nothing of the frames before is used any more: their pages go back to
     * rabbitmq-c's pool (see inbound.h). */
    amqp_maybe_release_buffers(mq->conn);
    int rc = amqp_simple_wait_frame_noblock(mq->conn, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT)
        return false;
    if (rc != AMQP_STATUS_OK) {
        mq_lost(mq, amqp_error_string2(rc));
        return false;
    }
    switch (inbound_feed(&mq->inbound, &frame)) {
    case INBOUND_MORE:
        break;
    case INBOUND_COMPLETE:
        mq_deliver(mq);
        inbound_reset(&mq->inbound);
        break;
    case INBOUND_OTHER:
        mq_handle_frame(mq, &frame);
        break;
    case INBOUND_BROKEN:
        mq_lost(mq, "the broker sent a message's frames out of order");
        break;
    }
    return mq->connected;
}

static void mq_drain(struct mq *mq)
{
    while (mq->connected && mq_read_one(mq))
        ;
}

/* Frames rabbitmq-c read during a synchronous call wait in its buffer, where
 * the socket's readiness no longer shows them: they are read on the next
 * turn of the loop, never from inside the caller's callback. */
static int on_mq_drain(sd_event_source *s, void *userdata)
{
    sd_event_source_set_enabled(s, SD_EVENT_OFF);
    mq_drain(userdata);
    return 0;
}

void mq_schedule_drain(struct mq *mq)
{
    if (!mq->drain_src && sd_event_add_defer(mq->loop, &mq->drain_src, on_mq_drain, mq) < 0)
        return;
    sd_event_source_set_enabled(mq->drain_src, SD_EVENT_ONESHOT);
}

static int on_mq_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    (void)fd;
    (void)revents;
    mq_drain(userdata);
    return 0;
}

/* rabbitmq-c answers heartbeats only when called; this keeps it called. */
static int on_mq_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct mq *mq = userdata;
    mq_drain(mq);
    if (mq->connected)
        sd_event_source_set_time(s, usec + (uint64_t)mq->heartbeat * 500000u);
    return 0;
}

/* Connecting */

static bool mq_open(struct mq *mq, char *why, size_t whylen)
{
    struct amqp_connection_info info;
    char *url = xstrdup(mq->url);
    bool ok = false;
    if (amqp_parse_url(url, &info) != AMQP_STATUS_OK) {
        snprintf(why, whylen, "message_queue.url is not a valid AMQP URL");
        goto done;
    }
    mq->conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(mq->conn);
    struct timeval tv = {MQ_CONNECT_TIMEOUT_MS / 1000, (MQ_CONNECT_TIMEOUT_MS % 1000) * 1000};
    /* A broker that stops answering (an alarm, a partition) must not hold the
     * loop: a synchronous call that times out drops the connection, which is
     * then rebuilt, and everything unconfirmed is sent again. */
    struct timeval rpc = {MQ_RPC_TIMEOUT_MS / 1000, (MQ_RPC_TIMEOUT_MS % 1000) * 1000};
    amqp_set_handshake_timeout(mq->conn, &rpc);
    amqp_set_rpc_timeout(mq->conn, &rpc);
    int rc =
        sock ? amqp_socket_open_noblock(sock, info.host, info.port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, whylen, "cannot connect to %s:%d: %s", info.host, info.port,
                 amqp_error_string2(rc));
        goto done;
    }
    amqp_rpc_reply_t r = amqp_login(mq->conn, info.vhost, 0, MQ_FRAME_MAX, mq->heartbeat,
                                    AMQP_SASL_METHOD_PLAIN, info.user, info.password);
    char buf[256];
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(why, whylen, "login failed: %s", mq_reply_text(r, buf, sizeof(buf)));
        goto done;
    }
    amqp_channel_open(mq->conn, MQ_CHANNEL);
    ok = mq_rpc_ok(mq->conn, "channel.open", why, whylen);
done:
    secure_zero(url, strlen(url));
    free(url);
    return ok;
}

static void mq_connect(struct mq *mq)
{
    char why[512] = "";
    mq->connected = false;
    if (!mq_open(mq, why, sizeof(why)) ||
        !mq_topology_declare(mq->conn, &mq->names, &mq->topology_warned, why, sizeof(why))) {
        mq_lost(mq, why);
        return;
    }
    if (!mq_start_consuming(mq, why, sizeof(why))) {
        mq_lost(mq, why);
        return;
    }
    mq->connected = true;
    mq->generation++;
    mq->next_seq = 0;
    int fd = amqp_get_sockfd(mq->conn);
    if (sd_event_add_io(mq->loop, &mq->io_src, fd, EPOLLIN, on_mq_io, mq) < 0 ||
        sd_event_add_time_relative(mq->loop, &mq->tick_src, CLOCK_MONOTONIC,
                                   (uint64_t)mq->heartbeat * 500000u, 100000, on_mq_tick, mq) < 0) {
        mq_lost(mq, "cannot watch the broker socket");
        return;
    }
    sd_event_source_set_enabled(mq->tick_src, SD_EVENT_ON);
    backoff_connected(&mq->backoff, "broker");
    /* Whatever was published and not confirmed goes out again. */
    outbox_unsend_all(&mq->outbox);
    mq_send_unsent(mq);
    if (mq->connected && mq->on_state)
        mq->on_state(mq, true, mq->userdata);
    if (mq->connected)
        mq_schedule_drain(mq);
}

struct mq *mq_new(sd_event *loop, const struct mq_settings *settings, mq_delivery_fn on_delivery,
                  mq_state_fn on_state, void *userdata)
{
    struct mq *mq = xcalloc(1, sizeof(*mq));
    mq->loop = sd_event_ref(loop);
    mq->url = xstrdup(settings->url);
    mq->worker_id = settings->worker_id;
    mq->prefetch = settings->prefetch > 0 ? settings->prefetch : 1;
    mq->heartbeat = settings->heartbeat_seconds > 0 ? settings->heartbeat_seconds : 30;
    mq_names_init(&mq->names, mq->worker_id);
    backoff_init(&mq->backoff, MQ_BACKOFF_MIN_MS, MQ_BACKOFF_MAX_MS);
    mq->on_delivery = on_delivery;
    mq->on_state = on_state;
    mq->userdata = userdata;
    mq_connect(mq);
    return mq;
}

void mq_free(struct mq *mq)
{
    if (!mq)
        return;
    mq_close_connection(mq);
    mq->retry_src = sd_event_source_disable_unref(mq->retry_src);
    mq->drain_src = sd_event_source_disable_unref(mq->drain_src);
    outbox_free(&mq->outbox);
    secure_zero(mq->url, strlen(mq->url));
    free(mq->url);
    sd_event_unref(mq->loop);
    free(mq);
}

bool mq_is_connected(const struct mq *mq)
{
    return mq->connected;
}
