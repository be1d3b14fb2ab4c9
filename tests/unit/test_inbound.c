/* Unit tests for mq/inbound: a delivery is assembled from its method, header
 * and body frames; a body over the limit is counted, never kept; frames out
 * of order break the connection; anything else is the caller's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mq/inbound.h"

static amqp_basic_deliver_t deliver_method = {
    .consumer_tag = {20, (void *)"attune-worker-cancel"},
    .delivery_tag = 42,
    .redelivered = 1,
};

static amqp_frame_t deliver_frame(uint16_t channel)
{
    amqp_frame_t f = {.frame_type = AMQP_FRAME_METHOD, .channel = channel};
    f.payload.method.id = AMQP_BASIC_DELIVER_METHOD;
    f.payload.method.decoded = &deliver_method;
    return f;
}

static amqp_frame_t header_frame(uint64_t body_size)
{
    amqp_frame_t f = {.frame_type = AMQP_FRAME_HEADER, .channel = 1};
    f.payload.properties.body_size = body_size;
    return f;
}

static amqp_frame_t body_frame(const char *text)
{
    amqp_frame_t f = {.frame_type = AMQP_FRAME_BODY, .channel = 1};
    f.payload.body_fragment = (amqp_bytes_t){strlen(text), (void *)text};
    return f;
}

static void test_a_delivery_is_assembled_from_its_frames(void **state)
{
    (void)state;
    struct inbound in = {0};
    amqp_frame_t f = deliver_frame(1);
    assert_int_equal(inbound_feed(&in, &f), INBOUND_MORE);
    f = header_frame(11);
    assert_int_equal(inbound_feed(&in, &f), INBOUND_MORE);
    f = body_frame("hello ");
    assert_int_equal(inbound_feed(&in, &f), INBOUND_MORE);
    f = body_frame("world");
    assert_int_equal(inbound_feed(&in, &f), INBOUND_COMPLETE);
    assert_memory_equal(in.body, "hello world", 11);
    assert_int_equal(in.size, 11);
    assert_int_equal(in.delivery_tag, 42);
    assert_true(in.redelivered);
    assert_string_equal(in.consumer_tag, "attune-worker-cancel");
    assert_false(in.too_large);
    inbound_reset(&in);
    assert_int_equal(in.stage, 0);
    assert_null(in.body);
}

static void test_an_empty_body_completes_with_the_header(void **state)
{
    (void)state;
    struct inbound in = {0};
    amqp_frame_t f = deliver_frame(1);
    inbound_feed(&in, &f);
    f = header_frame(0);
    assert_int_equal(inbound_feed(&in, &f), INBOUND_COMPLETE);
    assert_int_equal(in.size, 0);
    inbound_reset(&in);
}

static void test_a_body_over_the_limit_is_counted_not_kept(void **state)
{
    (void)state;
    struct inbound in = {0};
    amqp_frame_t f = deliver_frame(1);
    inbound_feed(&in, &f);
    f = header_frame(INBOUND_MAX_BODY + 6);
    assert_int_equal(inbound_feed(&in, &f), INBOUND_MORE);
    assert_true(in.too_large);
    assert_null(in.body);
    static char chunk[4096];
    memset(chunk, 'x', sizeof(chunk) - 1);
    amqp_frame_t part = {.frame_type = AMQP_FRAME_BODY, .channel = 1};
    part.payload.body_fragment = (amqp_bytes_t){sizeof(chunk) - 1, chunk};
    uint64_t left = INBOUND_MAX_BODY + 6;
    enum inbound_result r = INBOUND_MORE;
    while (left > 0) {
        part.payload.body_fragment.len = left < sizeof(chunk) - 1 ? left : sizeof(chunk) - 1;
        left -= part.payload.body_fragment.len;
        r = inbound_feed(&in, &part);
        if (left > 0)
            assert_int_equal(r, INBOUND_MORE);
    }
    assert_int_equal(r, INBOUND_COMPLETE);
    assert_true(in.too_large);
    assert_null(in.body);
    assert_int_equal(in.received, INBOUND_MAX_BODY + 6);
    inbound_reset(&in);
}

static void test_frames_out_of_order_break_the_connection(void **state)
{
    (void)state;
    struct inbound in = {0};
    amqp_frame_t f = body_frame("stray");
    assert_int_equal(inbound_feed(&in, &f), INBOUND_BROKEN); /* body with no delivery */
    f = deliver_frame(1);
    inbound_feed(&in, &f);
    f = body_frame("early");
    assert_int_equal(inbound_feed(&in, &f), INBOUND_BROKEN); /* body before the header */
    inbound_reset(&in);
    f = deliver_frame(1);
    inbound_feed(&in, &f);
    f = header_frame(3);
    inbound_feed(&in, &f);
    f = body_frame("toolong");
    assert_int_equal(inbound_feed(&in, &f), INBOUND_BROKEN); /* more than announced */
    inbound_reset(&in);
    f = deliver_frame(1);
    inbound_feed(&in, &f);
    f = deliver_frame(2);
    assert_int_equal(inbound_feed(&in, &f), INBOUND_BROKEN); /* another channel mid-way */
    inbound_reset(&in);
}

static void test_other_frames_are_the_callers(void **state)
{
    (void)state;
    struct inbound in = {0};
    amqp_frame_t ack = {.frame_type = AMQP_FRAME_METHOD, .channel = 1};
    ack.payload.method.id = AMQP_BASIC_ACK_METHOD;
    assert_int_equal(inbound_feed(&in, &ack), INBOUND_OTHER);
    amqp_frame_t f = deliver_frame(1);
    inbound_feed(&in, &f);
    /* The connection's own frames may come between a delivery's frames. */
    amqp_frame_t close = {.frame_type = AMQP_FRAME_METHOD, .channel = 0};
    close.payload.method.id = AMQP_CONNECTION_CLOSE_METHOD;
    assert_int_equal(inbound_feed(&in, &close), INBOUND_OTHER);
    f = header_frame(2);
    assert_int_equal(inbound_feed(&in, &f), INBOUND_MORE);
    inbound_reset(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_delivery_is_assembled_from_its_frames),
        cmocka_unit_test(test_an_empty_body_completes_with_the_header),
        cmocka_unit_test(test_a_body_over_the_limit_is_counted_not_kept),
        cmocka_unit_test(test_frames_out_of_order_break_the_connection),
        cmocka_unit_test(test_other_frames_are_the_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
