/* The publisher-confirm outbox: every published message is kept until the
 * broker confirms it. A plain list: the connection (mq.c) sends what it
 * hands out, numbers each send, and tells it what the broker answered. */
#ifndef ATTUNE_MQ_OUTBOX_H
#define ATTUNE_MQ_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbox_message {
    struct outbox_message *next;
    uint64_t seq; /* publish sequence number on the current connection; 0 = not sent */
    char *routing_key;
    char *body;
    char *message_id;
    char *correlation_id;
};

struct outbox {
    struct outbox_message *head, *tail;
    size_t count; /* messages not yet confirmed */
    size_t bytes; /* their bodies' size */
};

/* Keeps a copy of the message; returns it, unsent. */
struct outbox_message *outbox_add(struct outbox *ob, const char *routing_key, const char *body,
                                  const char *message_id, const char *correlation_id);
/* basic.ack: forgets the message with seq tag, or (multiple) every one up to it. */
void outbox_confirm(struct outbox *ob, uint64_t tag, bool multiple);
/* basic.nack: marks the same messages unsent, to be sent again. */
void outbox_unsend(struct outbox *ob, uint64_t tag, bool multiple);
/* A new connection: every message is unsent. */
void outbox_unsend_all(struct outbox *ob);
/* The first unsent message after `after` (NULL: from the start), or NULL. */
struct outbox_message *outbox_next_unsent(const struct outbox *ob, struct outbox_message *after);
void outbox_free(struct outbox *ob);

#endif
