/* The broker connection on the event loop (rabbitmq-c): declares Attune's
 * topology (topology.h), consumes the worker's queue with manual
 * acknowledgement, publishes with publisher confirms (keeping each message
 * until the broker confirms it, and sending it again after a reconnect), and
 * reconnects with capped exponential backoff. */
#ifndef ATTUNE_MQ_MQ_H
#define ATTUNE_MQ_MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define MQ_EXCHANGE "attune.executions"
#define MQ_DLX "attune.dlx"
#define MQ_DLX_QUEUE "attune.dlx.queue"

struct mq;

/* The worker's two queues. */
enum mq_queue { MQ_QUEUE_EXECUTIONS, MQ_QUEUE_CANCEL };

struct mq_delivery {
    enum mq_queue queue;
    uint64_t connection; /* which connection delivered it: acks on a later one are moot */
    uint64_t delivery_tag;
    bool redelivered;
    const void *body;
    size_t len;
};

typedef void (*mq_delivery_fn)(struct mq *mq, const struct mq_delivery *d, void *userdata);
typedef void (*mq_state_fn)(struct mq *mq, bool connected, void *userdata);

struct mq_settings {
    const char *url;
    int64_t worker_id; /* names the queue and the routing key */
    int prefetch;      /* worker.max_concurrent_tasks */
    int heartbeat_seconds;
};

struct mq *mq_new(sd_event *loop, const struct mq_settings *settings, mq_delivery_fn on_delivery,
                  mq_state_fn on_state, void *userdata);
void mq_free(struct mq *mq);

bool mq_is_connected(const struct mq *mq);
/* Messages published and not yet confirmed by the broker. */
size_t mq_unconfirmed(const struct mq *mq);
size_t mq_unconfirmed_bytes(const struct mq *mq);

/* Rejects without requeue (to the dead-letter exchange) or with requeue. A
 * delivery from an earlier connection is ignored: the broker delivers it
 * again. */
void mq_reject(struct mq *mq, const struct mq_delivery *d, bool requeue);
/* Acknowledges or rejects by connection and tag (for deliveries whose body is
 * gone); the same rule about earlier connections holds. */
void mq_ack_tag(struct mq *mq, uint64_t connection, uint64_t tag);
void mq_reject_tag(struct mq *mq, uint64_t connection, uint64_t tag, bool requeue);

/* Publishes a JSON body persistently on MQ_EXCHANGE; kept until confirmed. */
void mq_publish(struct mq *mq, const char *routing_key, const char *body, const char *message_id,
                const char *correlation_id);

/* Stops consuming (basic.cancel), also across reconnections: unacknowledged
 * deliveries return to the queue when the connection closes. */
void mq_stop_consuming(struct mq *mq);
/* Consumes again after mq_stop_consuming. */
void mq_resume_consuming(struct mq *mq);

#endif
