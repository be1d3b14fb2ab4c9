/* The publisher-confirm outbox: every published message is kept until the
 * broker confirms it, and sent again after a nack or a reconnect. */
#include "mq/mq_private.h"

#include <amqp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"

/* A published message kept until the broker confirms it. */
struct mq_outgoing {
    struct mq_outgoing *next;
    uint64_t seq; /* publish sequence number on the current connection; 0 = not sent */
    char *routing_key;
    char *body;
    char *message_id;
    char *correlation_id;
};

static void mq_outgoing_free(struct mq_outgoing *o)
{
    free(o->routing_key);
    free(o->body);
    free(o->message_id);
    free(o->correlation_id);
    free(o);
}

static bool mq_send(struct mq *mq, struct mq_outgoing *o)
{
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;
    props.message_id = amqp_cstring_bytes(o->message_id);
    props.correlation_id = amqp_cstring_bytes(o->correlation_id);
    props.timestamp = (uint64_t)time(NULL);
    int rc = amqp_basic_publish(mq->conn, MQ_CHANNEL, amqp_cstring_bytes(MQ_EXCHANGE),
                                amqp_cstring_bytes(o->routing_key), 0, 0, &props,
                                amqp_cstring_bytes(o->body));
    if (rc != AMQP_STATUS_OK) {
        mq_lost(mq, amqp_error_string2(rc));
        return false;
    }
    o->seq = ++mq->next_seq;
    return true;
}

static void mq_send_all_unsent(struct mq *mq)
{
    for (struct mq_outgoing *o = mq->out_head; o && mq->connected; o = o->next)
        if (o->seq == 0 && !mq_send(mq, o))
            return;
}

/* basic.ack: everything up to tag (multiple) or just tag is confirmed. */
void mq_outbox_confirmed(struct mq *mq, uint64_t tag, bool multiple)
{
    struct mq_outgoing **link = &mq->out_head, *prev = NULL;
    while (*link) {
        struct mq_outgoing *o = *link;
        bool hit = o->seq != 0 && (multiple ? o->seq <= tag : o->seq == tag);
        if (!hit) {
            prev = o;
            link = &o->next;
            continue;
        }
        *link = o->next;
        if (mq->out_tail == o)
            mq->out_tail = prev;
        mq->unconfirmed--;
        mq->unconfirmed_bytes -= strlen(o->body);
        mq_outgoing_free(o);
    }
}

/* basic.nack: the broker could not take them; send them again. */
void mq_outbox_rejected(struct mq *mq, uint64_t tag, bool multiple)
{
    for (struct mq_outgoing *o = mq->out_head; o; o = o->next)
        if (o->seq != 0 && (multiple ? o->seq <= tag : o->seq == tag))
            o->seq = 0;
    log_warn("broker refused a published message; sending it again");
    mq_send_all_unsent(mq);
}

void mq_outbox_resend(struct mq *mq)
{
    for (struct mq_outgoing *o = mq->out_head; o; o = o->next)
        o->seq = 0;
    mq_send_all_unsent(mq);
}

void mq_outbox_free(struct mq *mq)
{
    while (mq->out_head) {
        struct mq_outgoing *o = mq->out_head;
        mq->out_head = o->next;
        mq_outgoing_free(o);
    }
}

size_t mq_unconfirmed(const struct mq *mq)
{
    return mq->unconfirmed;
}

size_t mq_unconfirmed_bytes(const struct mq *mq)
{
    return mq->unconfirmed_bytes;
}

void mq_publish(struct mq *mq, const char *routing_key, const char *body, const char *message_id,
                const char *correlation_id)
{
    struct mq_outgoing *o = xcalloc(1, sizeof(*o));
    o->routing_key = xstrdup(routing_key);
    o->body = xstrdup(body);
    o->message_id = xstrdup(message_id);
    o->correlation_id = xstrdup(correlation_id);
    if (mq->out_tail)
        mq->out_tail->next = o;
    else
        mq->out_head = o;
    mq->out_tail = o;
    mq->unconfirmed++;
    mq->unconfirmed_bytes += strlen(o->body);
    if (mq->connected)
        mq_send(mq, o);
}
