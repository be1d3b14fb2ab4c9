/* The broker's topology as Attune's services declare it today (docs/
 * interfaces.md, "Messages"): its exchanges, the dead-letter queue and this
 * worker's queue, declared on an open channel with rabbitmq-c's synchronous
 * calls, and the text of such a call's failure. */
#ifndef ATTUNE_MQ_TOPOLOGY_H
#define ATTUNE_MQ_TOPOLOGY_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mq/mq.h"

/* The one channel the worker uses. */
#define MQ_CHANNEL 1

/* The text of a synchronous call's reply: "ok", the library's error, or
 * what the server said when it closed the channel or connection. */
const char *mq_reply_text(amqp_rpc_reply_t reply, char *buf, size_t len);

/* Checks the reply of the last synchronous call; on failure writes
 * "what: why" into why and returns false. */
bool mq_rpc_ok(amqp_connection_state_t conn, const char *what, char *why, size_t whylen);

/* The names of the worker's own queues and their routing keys. */
struct mq_names {
    char executions_queue[64];
    char dispatch_key[80];
    char cancel_queue[64];
    char cancel_key[80];
};

void mq_names_init(struct mq_names *names, int64_t worker_id);

/* Declares Attune's exchanges (MQ_EXCHANGE and MQ_DLX among them),
 * MQ_DLX_QUEUE, and the worker's two queues (executions and cancel), each
 * bound to its routing key with upstream's arguments. An object
 * that already exists with other settings is used as it is, with a warning
 * the first time (*warned keeps which were reported; start it at 0). Returns
 * false with the step that failed in why. */
bool mq_topology_declare(amqp_connection_state_t conn, const struct mq_names *names,
                         unsigned *warned, char *why, size_t whylen);

#endif
