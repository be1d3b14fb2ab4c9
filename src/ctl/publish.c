/* One blocking publish with a publisher confirm, for attunectl: connect,
 * declare the exchange, publish as mandatory, wait for basic.ack. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ctl/ctl.h"

#define PUBLISH_CHANNEL 1
#define PUBLISH_FRAME_MAX 131072

static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t buflen)
{
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        return amqp_error_string2(r.library_error);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *m = r.reply.decoded;
        snprintf(buf, buflen, "%.*s", (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        snprintf(buf, buflen, "%.*s", (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    } else {
        snprintf(buf, buflen, "unexpected reply from the broker");
    }
    return buf;
}

static int rpc_ok(amqp_connection_state_t conn, const char *what, char *err, size_t errlen)
{
    char buf[256];
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    return set_error(err, errlen, EPROTO, "%s: %s", what, reply_text(r, buf, sizeof(buf)));
}

static int open_channel(amqp_connection_state_t conn, const struct config *cfg, char *err,
                        size_t errlen)
{
    struct amqp_connection_info info;
    char *url = xstrdup(cfg->message_queue_url);
    char buf[256];
    int rc;
    if (amqp_parse_url(url, &info) != AMQP_STATUS_OK || info.ssl) {
        rc = set_error(err, errlen, EINVAL,
                       "message_queue.url is not an amqp:// URL that attunectl can use");
        goto done;
    }
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {cfg->database_connect_timeout > 0 ? cfg->database_connect_timeout : 10, 0};
    int st =
        sock ? amqp_socket_open_noblock(sock, info.host, info.port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (st != AMQP_STATUS_OK) {
        rc = set_error(err, errlen, ECONNREFUSED, "cannot connect to the broker at %s:%d: %s",
                       info.host, info.port, amqp_error_string2(st));
        goto done;
    }
    amqp_rpc_reply_t r = amqp_login(conn, info.vhost, 0, PUBLISH_FRAME_MAX, 0,
                                    AMQP_SASL_METHOD_PLAIN, info.user, info.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        rc = set_error(err, errlen, EACCES, "broker login failed: %s",
                       reply_text(r, buf, sizeof(buf)));
        goto done;
    }
    amqp_channel_open(conn, PUBLISH_CHANNEL);
    rc = rpc_ok(conn, "channel.open", err, errlen);
done:
    secure_zero(url, strlen(url));
    free(url);
    return rc;
}

static int send_message(amqp_connection_state_t conn, const struct ctl_message *m)
{
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;
    props.message_id = amqp_cstring_bytes(m->message_id);
    props.correlation_id = amqp_cstring_bytes(m->correlation_id);
    props.type = amqp_cstring_bytes(m->type);
    props.timestamp = (uint64_t)time(NULL);
    /* mandatory: a message no queue takes comes back instead of vanishing */
    return amqp_basic_publish(conn, PUBLISH_CHANNEL, amqp_cstring_bytes(m->exchange),
                              amqp_cstring_bytes(m->routing_key), 1, 0, &props,
                              amqp_cstring_bytes(m->body));
}

/* Reads frames until the confirm; a basic.return before it means no queue
 * was bound to the routing key. */
static int wait_confirm(amqp_connection_state_t conn, const struct ctl_message *m, char *err,
                        size_t errlen)
{
    bool returned = false;
    for (;;) {
        amqp_frame_t frame;
        struct timeval tv = {30, 0};
        int st = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
        if (st != AMQP_STATUS_OK)
            return set_error(err, errlen, ETIMEDOUT, "no confirm from the broker: %s",
                             amqp_error_string2(st));
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue; /* the returned message's header and body */
        switch (frame.payload.method.id) {
        case AMQP_BASIC_RETURN_METHOD:
            returned = true;
            continue;
        case AMQP_BASIC_ACK_METHOD:
            if (returned)
                return set_error(err, errlen, ENOENT,
                                 "no queue is bound to %s with routing key %s (is the worker "
                                 "running?)",
                                 m->exchange, m->routing_key);
            return 0;
        case AMQP_BASIC_NACK_METHOD:
            return set_error(err, errlen, EIO, "the broker refused the message (basic.nack)");
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            return set_error(err, errlen, EPROTO, "the broker closed the connection");
        default:
            continue;
        }
    }
}

int ctl_publish(const struct config *cfg, const struct ctl_message *m, char *err, size_t errlen)
{
    amqp_connection_state_t conn = amqp_new_connection();
    int rc = open_channel(conn, cfg, err, errlen);
    if (rc == 0) {
        amqp_confirm_select(conn, PUBLISH_CHANNEL);
        rc = rpc_ok(conn, "confirm.select", err, errlen);
    }
    if (rc == 0) {
        amqp_exchange_declare(conn, PUBLISH_CHANNEL, amqp_cstring_bytes(m->exchange),
                              amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
        rc = rpc_ok(conn, "declare exchange", err, errlen);
    }
    if (rc == 0 && send_message(conn, m) != AMQP_STATUS_OK)
        rc = set_error(err, errlen, EIO, "cannot send the message to the broker");
    if (rc == 0)
        rc = wait_confirm(conn, m, err, errlen);
    if (rc == 0) {
        amqp_channel_close(conn, PUBLISH_CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
    return rc;
}
