/* The broker's topology (CONTRACT.md section 2) declared with rabbitmq-c's
 * synchronous calls while connecting, and the text of such a call's failure. */
#include "mq/topology.h"

#include <stdio.h>

const char *mq_reply_text(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "ok";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, len, "server closed the connection: %.*s", (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, len, "server closed the channel: %.*s", (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, len, "server error (method 0x%08x)", r.reply.id);
        }
        return buf;
    default:
        return "no reply";
    }
}

/* Checks the reply of the last synchronous call; on failure records why. */
bool mq_rpc_ok(amqp_connection_state_t conn, const char *what, char *why, size_t whylen)
{
    char buf[256];
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    snprintf(why, whylen, "%s: %s", what, mq_reply_text(r, buf, sizeof(buf)));
    return false;
}

bool mq_topology_declare(amqp_connection_state_t c, const char *queue, const char *routing_key,
                         char *why, size_t whylen)
{
    amqp_exchange_declare(c, MQ_CHANNEL, amqp_cstring_bytes(MQ_EXCHANGE),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (!mq_rpc_ok(c, "declare exchange " MQ_EXCHANGE, why, whylen))
        return false;
    amqp_exchange_declare(c, MQ_CHANNEL, amqp_cstring_bytes(MQ_DLX), amqp_cstring_bytes("fanout"),
                          0, 1, 0, 0, amqp_empty_table);
    if (!mq_rpc_ok(c, "declare exchange " MQ_DLX, why, whylen))
        return false;
    amqp_queue_declare(c, MQ_CHANNEL, amqp_cstring_bytes(MQ_DLX_QUEUE), 0, 1, 0, 0,
                       amqp_empty_table);
    if (!mq_rpc_ok(c, "declare queue " MQ_DLX_QUEUE, why, whylen))
        return false;
    amqp_queue_bind(c, MQ_CHANNEL, amqp_cstring_bytes(MQ_DLX_QUEUE), amqp_cstring_bytes(MQ_DLX),
                    amqp_cstring_bytes(""), amqp_empty_table);
    if (!mq_rpc_ok(c, "bind " MQ_DLX_QUEUE, why, whylen))
        return false;
    amqp_table_entry_t dlx_arg = {
        .key = amqp_cstring_bytes("x-dead-letter-exchange"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(MQ_DLX)}};
    amqp_table_t args = {.num_entries = 1, .entries = &dlx_arg};
    amqp_queue_declare(c, MQ_CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    if (!mq_rpc_ok(c, "declare the worker's queue", why, whylen))
        return false;
    amqp_queue_bind(c, MQ_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(MQ_EXCHANGE),
                    amqp_cstring_bytes(routing_key), amqp_empty_table);
    return mq_rpc_ok(c, "bind the worker's queue", why, whylen);
}
