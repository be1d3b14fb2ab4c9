/* What mq.c (the connection, reading, publishing) and consume.c (the
 * consumers, acknowledgements) share: the connection's state. */
#ifndef ATTUNE_MQ_MQ_PRIVATE_H
#define ATTUNE_MQ_MQ_PRIVATE_H

#include <amqp.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/backoff.h"
#include "mq/inbound.h"
#include "mq/mq.h"
#include "mq/outbox.h"
#include "mq/topology.h"

struct mq {
    sd_event *loop;
    char *url;
    int64_t worker_id;
    int prefetch;
    int heartbeat;
    struct mq_names names;
    char consumer_tag[64]; /* the executions queue's consumer */
    unsigned consumer_seq;

    amqp_connection_state_t conn;
    bool connected;
    bool consuming;
    bool stop_consuming;
    uint64_t generation; /* connection counter */
    uint64_t next_seq;
    sd_event_source *io_src;
    sd_event_source *tick_src;
    sd_event_source *retry_src;
    sd_event_source *drain_src;
    struct backoff backoff;
    unsigned topology_warned; /* objects found with other settings, already reported */

    struct outbox outbox;   /* published, not yet confirmed */
    struct inbound inbound; /* the delivery being read */

    mq_delivery_fn on_delivery;
    mq_state_fn on_state;
    void *userdata;
};

/* The cancel queue's consumer, which is never stopped. */
#define MQ_CANCEL_CONSUMER_TAG "attune-worker-cancel"

/* mq.c: the connection is gone (why for the log); reconnects with backoff. */
void mq_lost(struct mq *mq, const char *why);
/* mq.c: reads what rabbitmq-c has buffered on the next turn of the loop. */
void mq_schedule_drain(struct mq *mq);

/* consume.c: QoS, confirms and the consumers of a new connection; false
 * with why set when the broker refuses one. */
bool mq_start_consuming(struct mq *mq, char *why, size_t whylen);

#endif
