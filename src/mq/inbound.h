/* Deliveries assembled from the broker's frames, one frame at a time. The
 * event loop never waits inside rabbitmq-c for the rest of a message, and
 * rabbitmq-c never holds more than the frame in hand: it keeps, for the life
 * of the connection, as many pool pages as a message's frames once needed at
 * the same time, so a 10 MB body read whole would stay 10 MB of the worker's
 * memory for good. The body is copied out frame by frame instead, and a body
 * over INBOUND_MAX_BODY is read and dropped, the delivery marked too large. */
#ifndef ATTUNE_MQ_INBOUND_H
#define ATTUNE_MQ_INBOUND_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An execution request or a cancel is a few hundred bytes. */
#define INBOUND_MAX_BODY ((uint64_t)1 << 20)

enum inbound_result {
    INBOUND_MORE,     /* a part of a delivery: feed the next frame */
    INBOUND_COMPLETE, /* a delivery is complete in the inbound; inbound_reset after use */
    INBOUND_OTHER,    /* not a part of a delivery: the caller handles the frame */
    INBOUND_BROKEN,   /* a frame out of order: the connection cannot be trusted */
};

struct inbound {
    int stage; /* 0: between deliveries, 1: waiting for the header, 2: for the body */
    uint16_t channel;
    uint64_t delivery_tag;
    bool redelivered;
    char consumer_tag[256];
    uint64_t size;     /* the body's size, from the header */
    uint64_t received; /* body bytes seen so far */
    char *body;        /* NULL when the body is too large (or empty) */
    bool too_large;
};

/* Takes what the delivery needs from the frame (the frame's memory may be
 * reused by rabbitmq-c as soon as this returns). */
enum inbound_result inbound_feed(struct inbound *in, const amqp_frame_t *frame);

/* Forgets the delivery in hand, complete or not. */
void inbound_reset(struct inbound *in);

#endif
