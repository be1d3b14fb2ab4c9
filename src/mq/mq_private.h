/* What the broker connection (mq.c) and the publisher-confirm outbox
 * (outbox.c) share: the connection's state and the calls between them. */
#ifndef ATTUNE_MQ_MQ_PRIVATE_H
#define ATTUNE_MQ_MQ_PRIVATE_H

#include <amqp.h>

#include "core/backoff.h"
#include "mq/mq.h"

#define MQ_CHANNEL 1

struct mq_outgoing;

struct mq {
    sd_event *loop;
    char *url;
    int64_t worker_id;
    int prefetch;
    int heartbeat;
    char queue[128];
    char routing_key[128];
    char consumer_tag[256];

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
    unsigned failures;

    /* the outbox (outbox.c) */
    struct mq_outgoing *out_head, *out_tail;
    size_t unconfirmed;
    size_t unconfirmed_bytes;

    mq_delivery_fn on_delivery;
    mq_state_fn on_state;
    void *userdata;
};

/* Drops a broken connection and schedules the next attempt. */
void mq_lost(struct mq *mq, const char *why);

/* The outbox (outbox.c). The broker's basic.ack: confirmed, forgotten. */
void mq_outbox_confirmed(struct mq *mq, uint64_t tag, bool multiple);
/* The broker's basic.nack: sent again. */
void mq_outbox_rejected(struct mq *mq, uint64_t tag, bool multiple);
/* On a new connection: sends again whatever was not confirmed. */
void mq_outbox_resend(struct mq *mq);
void mq_outbox_free(struct mq *mq);

#endif
