/* The broker's topology as Attune's services declare it today (see
 * topology.h), declared with rabbitmq-c's synchronous calls while connecting,
 * and the text of such a call's failure. */
#include "mq/topology.h"

#include <stdio.h>

#include "core/log.h"

/* Attune's per-worker queue TTL: its worker builds the queue from the default
 * settings, never from its configuration, so every deployment has this one. */
#define MQ_WORKER_QUEUE_TTL_MS 300000

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

/* One exchange (type set) or queue (type NULL), durable, never auto-deleted. */
struct declaration {
    const char *name;
    const char *type;
    amqp_table_t args;
};

static void declaration_send(amqp_connection_state_t c, const struct declaration *d, bool passive)
{
    amqp_table_t args = passive ? amqp_empty_table : d->args;
    if (d->type)
        amqp_exchange_declare(c, MQ_CHANNEL, amqp_cstring_bytes(d->name),
                              amqp_cstring_bytes(d->type), passive, 1, 0, 0, args);
    else
        amqp_queue_declare(c, MQ_CHANNEL, amqp_cstring_bytes(d->name), passive, 1, 0, 0, args);
}

/* True when the broker closed the channel with 406 PRECONDITION_FAILED: the
 * object exists with other settings. Its reason (which names the setting,
 * what was asked and what is there) goes into text. */
static bool precondition_failed(amqp_rpc_reply_t r, char *text, size_t len)
{
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return false;
    const amqp_channel_close_t *m = r.reply.decoded;
    if (m->reply_code != AMQP_PRECONDITION_FAILED)
        return false;
    snprintf(text, len, "%.*s", (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    return true;
}

/* The broker closed the channel: acknowledge that and open it again. */
static bool channel_reopen(amqp_connection_state_t c, char *why, size_t whylen)
{
    amqp_channel_close_ok_t close_ok = {0};
    int rc = amqp_send_method(c, MQ_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
    if (rc != AMQP_STATUS_OK) {
        snprintf(why, whylen, "channel.close-ok: %s", amqp_error_string2(rc));
        return false;
    }
    amqp_channel_open(c, MQ_CHANNEL);
    return mq_rpc_ok(c, "channel.open after a refused declaration", why, whylen);
}

/* Declares d. If it exists with other settings (a deployment older than
 * today's Attune, or an earlier version of this worker), the object is taken
 * as it is, declared passively, with a warning: Attune's own services only log
 * this too, and refusing to start would keep the worker out for good. The
 * warning is logged once per object (bit in *warned), not at every reconnection. */
static bool topology_declare_one(amqp_connection_state_t c, const struct declaration *d,
                                 unsigned bit, unsigned *warned, char *why, size_t whylen)
{
    const char *kind = d->type ? "exchange" : "queue";
    char buf[512];
    declaration_send(c, d, false);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    if (!precondition_failed(r, buf, sizeof(buf))) {
        char text[256];
        snprintf(why, whylen, "declare %s %s: %s", kind, d->name,
                 mq_reply_text(r, text, sizeof(text)));
        return false;
    }
    if (!channel_reopen(c, why, whylen))
        return false;
    if (!(*warned & bit))
        log_warn("%s %s already exists with other settings than Attune declares (%s); using it "
                 "as it is (delete it while nothing uses it to have it declared anew)",
                 kind, d->name, buf);
    *warned |= bit;
    declaration_send(c, d, true);
    r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    snprintf(why, whylen, "declare %s %s passively: %s", kind, d->name,
             mq_reply_text(r, buf, sizeof(buf)));
    return false;
}

static bool topology_bind(amqp_connection_state_t c, const char *queue, const char *exchange,
                          const char *key, char *why, size_t whylen)
{
    char what[384];
    amqp_queue_bind(c, MQ_CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(key), amqp_empty_table);
    snprintf(what, sizeof(what), "bind %s to %s with %s", queue, exchange, key);
    return mq_rpc_ok(c, what, why, whylen);
}

void mq_names_init(struct mq_names *n, int64_t worker_id)
{
    long long id = (long long)worker_id;
    snprintf(n->executions_queue, sizeof(n->executions_queue), "worker.%lld.executions", id);
    snprintf(n->dispatch_key, sizeof(n->dispatch_key), "execution.dispatch.worker.%lld", id);
    snprintf(n->cancel_queue, sizeof(n->cancel_queue), "worker.%lld.cancel", id);
    snprintf(n->cancel_key, sizeof(n->cancel_key), "execution.cancel.worker.%lld", id);
}

bool mq_topology_declare(amqp_connection_state_t c, const struct mq_names *names, unsigned *warned,
                         char *why, size_t whylen)
{
    amqp_table_entry_t worker_args[] = {
        {.key = amqp_cstring_bytes("x-dead-letter-exchange"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(MQ_DLX)}},
        {.key = amqp_cstring_bytes("x-message-ttl"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = MQ_WORKER_QUEUE_TTL_MS}},
    };
    const struct declaration decls[] = {
        {"attune.events", "topic", amqp_empty_table},
        {MQ_EXCHANGE, "topic", amqp_empty_table},
        {"attune.notifications", "fanout", amqp_empty_table},
        {"attune.metadata", "topic", amqp_empty_table},
        {MQ_DLX, "direct", amqp_empty_table},
        {MQ_DLX_QUEUE, NULL, amqp_empty_table},
        {names->executions_queue, NULL, {.num_entries = 2, .entries = worker_args}},
        /* The cancel queue has the dead-letter exchange and no TTL. */
        {names->cancel_queue, NULL, {.num_entries = 1, .entries = worker_args}},
    };
    for (unsigned i = 0; i < sizeof(decls) / sizeof(decls[0]); i++)
        if (!topology_declare_one(c, &decls[i], 1u << i, warned, why, whylen))
            return false;
    /* attune.dlx is direct: a message is dead-lettered with the routing key it
     * came with, which "#" (Attune's binding) does not match on a direct
     * exchange. The worker's own keys bring what its queues reject to the
     * dead-letter queue as well. */
    return topology_bind(c, MQ_DLX_QUEUE, MQ_DLX, "#", why, whylen) &&
           topology_bind(c, MQ_DLX_QUEUE, MQ_DLX, names->dispatch_key, why, whylen) &&
           topology_bind(c, MQ_DLX_QUEUE, MQ_DLX, names->cancel_key, why, whylen) &&
           topology_bind(c, names->executions_queue, MQ_EXCHANGE, names->dispatch_key, why,
                         whylen) &&
           topology_bind(c, names->cancel_queue, MQ_EXCHANGE, names->cancel_key, why, whylen);
}
