/* The consumers of the worker's two queues and the acknowledgements of their
 * deliveries (see mq.h), on the connection mq.c keeps. */
#include <stdio.h>

#include "core/log.h"
#include "mq/mq_private.h"

/* Consumers carry tags of the worker's own making, so that starting and
 * stopping one while deliveries flow needs no synchronous call: frames that
 * arrive during one are queued by rabbitmq-c and pin its pool pages (see
 * inbound.h). Their answers (consume-ok, cancel-ok) arrive as frames. */
static int mq_send_consume(struct mq *mq, const char *queue, const char *tag)
{
    amqp_basic_consume_t m = {
        .queue = amqp_cstring_bytes(queue),
        .consumer_tag = amqp_cstring_bytes(tag),
        .arguments = amqp_empty_table,
    };
    return amqp_send_method(mq->conn, MQ_CHANNEL, AMQP_BASIC_CONSUME_METHOD, &m);
}

/* A new tag each time: the broker may not have ended the last one yet. */
static int mq_consume_executions(struct mq *mq)
{
    snprintf(mq->consumer_tag, sizeof(mq->consumer_tag), "attune-worker-executions-%u",
             ++mq->consumer_seq);
    int rc = mq_send_consume(mq, mq->names.executions_queue, mq->consumer_tag);
    mq->consuming = rc == AMQP_STATUS_OK;
    return rc;
}

/* Cancel requests are consumed whatever the executions consumer does:
 * they are small, and one must get through while every slot is busy. */
bool mq_start_consuming(struct mq *mq, char *why, size_t whylen)
{
    amqp_basic_qos(mq->conn, MQ_CHANNEL, 0, (uint16_t)mq->prefetch, 0);
    if (!mq_rpc_ok(mq->conn, "basic.qos", why, whylen))
        return false;
    amqp_confirm_select(mq->conn, MQ_CHANNEL);
    if (!mq_rpc_ok(mq->conn, "confirm.select", why, whylen))
        return false;
    int rc = mq_send_consume(mq, mq->names.cancel_queue, MQ_CANCEL_CONSUMER_TAG);
    if (rc == AMQP_STATUS_OK && !mq->stop_consuming)
        rc = mq_consume_executions(mq);
    if (rc != AMQP_STATUS_OK)
        snprintf(why, whylen, "basic.consume: %s", amqp_error_string2(rc));
    return rc == AMQP_STATUS_OK;
}

void mq_ack_tag(struct mq *mq, uint64_t connection, uint64_t tag)
{
    if (!mq->connected || connection != mq->generation)
        return;
    log_debug("delivery %llu acknowledged", (unsigned long long)tag);
    int rc = amqp_basic_ack(mq->conn, MQ_CHANNEL, tag, 0);
    if (rc != AMQP_STATUS_OK)
        mq_lost(mq, amqp_error_string2(rc));
}

void mq_reject_tag(struct mq *mq, uint64_t connection, uint64_t tag, bool requeue)
{
    if (!mq->connected || connection != mq->generation)
        return;
    log_debug("delivery %llu rejected", (unsigned long long)tag);
    int rc = amqp_basic_reject(mq->conn, MQ_CHANNEL, tag, requeue);
    if (rc != AMQP_STATUS_OK)
        mq_lost(mq, amqp_error_string2(rc));
}

void mq_reject(struct mq *mq, const struct mq_delivery *d, bool requeue)
{
    mq_reject_tag(mq, d->connection, d->delivery_tag, requeue);
}

void mq_resume_consuming(struct mq *mq)
{
    mq->stop_consuming = false;
    if (!mq->connected || mq->consuming)
        return;
    int rc = mq_consume_executions(mq);
    if (rc != AMQP_STATUS_OK)
        mq_lost(mq, amqp_error_string2(rc));
    else
        mq_schedule_drain(mq);
}

void mq_stop_consuming(struct mq *mq)
{
    mq->stop_consuming = true;
    if (!mq->connected || !mq->consuming)
        return;
    mq->consuming = false;
    amqp_basic_cancel_t m = {.consumer_tag = amqp_cstring_bytes(mq->consumer_tag)};
    int rc = amqp_send_method(mq->conn, MQ_CHANNEL, AMQP_BASIC_CANCEL_METHOD, &m);
    if (rc != AMQP_STATUS_OK)
        mq_lost(mq, amqp_error_string2(rc));
}
