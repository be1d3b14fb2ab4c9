/* Deliveries assembled from frames (see inbound.h): basic.deliver, then the
 * content header with the body's size, then body frames until that size. */
#include "mq/inbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/util.h"

static enum inbound_result inbound_begin(struct inbound *in, const amqp_frame_t *frame)
{
    if (frame->frame_type != AMQP_FRAME_METHOD ||
        frame->payload.method.id != AMQP_BASIC_DELIVER_METHOD)
        return frame->frame_type == AMQP_FRAME_METHOD ? INBOUND_OTHER : INBOUND_BROKEN;
    const amqp_basic_deliver_t *m = frame->payload.method.decoded;
    in->stage = 1;
    in->channel = frame->channel;
    in->delivery_tag = m->delivery_tag;
    in->redelivered = m->redelivered != 0;
    snprintf(in->consumer_tag, sizeof(in->consumer_tag), "%.*s", (int)m->consumer_tag.len,
             (const char *)m->consumer_tag.bytes);
    return INBOUND_MORE;
}

/* A whole message: counted here, where every one passes; one too large to
 * keep goes to the dead-letter queue unread (mq_deliver). */
static enum inbound_result inbound_complete(const struct inbound *in)
{
    metrics_message_received();
    if (in->too_large)
        metrics_message_dead_lettered();
    return INBOUND_COMPLETE;
}

static enum inbound_result inbound_header(struct inbound *in, const amqp_frame_t *frame)
{
    if (frame->frame_type != AMQP_FRAME_HEADER)
        return INBOUND_BROKEN;
    in->size = frame->payload.properties.body_size;
    in->received = 0;
    in->too_large = in->size > INBOUND_MAX_BODY;
    if (!in->too_large)
        in->body = xmalloc((size_t)in->size + 1);
    in->stage = 2;
    return in->size == 0 ? inbound_complete(in) : INBOUND_MORE;
}

static enum inbound_result inbound_body(struct inbound *in, const amqp_frame_t *frame)
{
    if (frame->frame_type != AMQP_FRAME_BODY)
        return INBOUND_BROKEN;
    const amqp_bytes_t *part = &frame->payload.body_fragment;
    if (part->len > in->size - in->received)
        return INBOUND_BROKEN;
    if (in->body)
        memcpy(in->body + in->received, part->bytes, part->len);
    in->received += part->len;
    return in->received == in->size ? inbound_complete(in) : INBOUND_MORE;
}

enum inbound_result inbound_feed(struct inbound *in, const amqp_frame_t *frame)
{
    /* Channel 0 is the connection's own (its close, its heartbeats). */
    if (frame->channel == 0)
        return INBOUND_OTHER;
    if (in->stage != 0 && frame->channel != in->channel)
        return INBOUND_BROKEN;
    switch (in->stage) {
    case 0:
        return inbound_begin(in, frame);
    case 1:
        return inbound_header(in, frame);
    default:
        return inbound_body(in, frame);
    }
}

void inbound_reset(struct inbound *in)
{
    free(in->body);
    *in = (struct inbound){0};
}
