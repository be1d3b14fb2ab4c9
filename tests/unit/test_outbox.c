/* Unit tests for mq/outbox: messages stay until confirmed, a nack or a new
 * connection makes them unsent again, and the counts follow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mq/outbox.h"

/* Adds three messages and sends them as sequence numbers 1, 2, 3. */
static void fill(struct outbox *ob)
{
    memset(ob, 0, sizeof(*ob));
    static const char *const bodies[] = {"{\"a\":1}", "{\"b\":22}", "{\"c\":333}"};
    for (int i = 0; i < 3; i++)
        outbox_add(ob, "execution.completed", bodies[i], "mid", "cid");
    uint64_t seq = 0;
    for (struct outbox_message *m = outbox_next_unsent(ob, NULL); m; m = outbox_next_unsent(ob, m))
        m->seq = ++seq;
    assert_int_equal(seq, 3);
}

static void test_counts_follow_adds_and_confirms(void **state)
{
    (void)state;
    struct outbox ob;
    fill(&ob);
    assert_int_equal(ob.count, 3);
    assert_int_equal(ob.bytes, 7 + 8 + 9);
    outbox_confirm(&ob, 2, false);
    assert_int_equal(ob.count, 2);
    assert_int_equal(ob.bytes, 7 + 9);
    assert_string_equal(ob.head->body, "{\"a\":1}");
    assert_string_equal(ob.tail->body, "{\"c\":333}");
    outbox_confirm(&ob, 3, true);
    assert_int_equal(ob.count, 0);
    assert_int_equal(ob.bytes, 0);
    assert_null(ob.head);
    assert_null(ob.tail);
    /* The list still works after it emptied. */
    outbox_add(&ob, "k", "x", "m", "c");
    assert_ptr_equal(ob.head, ob.tail);
    outbox_free(&ob);
}

static void test_confirm_of_unknown_tag_keeps_everything(void **state)
{
    (void)state;
    struct outbox ob;
    fill(&ob);
    outbox_confirm(&ob, 9, false);
    assert_int_equal(ob.count, 3);
    outbox_free(&ob);
}

static void test_nack_makes_messages_unsent(void **state)
{
    (void)state;
    struct outbox ob;
    fill(&ob);
    assert_null(outbox_next_unsent(&ob, NULL));
    outbox_unsend(&ob, 2, true);
    struct outbox_message *first = outbox_next_unsent(&ob, NULL);
    assert_non_null(first);
    assert_string_equal(first->body, "{\"a\":1}");
    struct outbox_message *second = outbox_next_unsent(&ob, first);
    assert_string_equal(second->body, "{\"b\":22}");
    assert_null(outbox_next_unsent(&ob, second));
    /* An unsent message is not confirmed by a later ack of its old number. */
    outbox_confirm(&ob, 2, true);
    assert_int_equal(ob.count, 3);
    outbox_free(&ob);
}

static void test_new_connection_unsends_all(void **state)
{
    (void)state;
    struct outbox ob;
    fill(&ob);
    outbox_unsend_all(&ob);
    int unsent = 0;
    for (struct outbox_message *m = outbox_next_unsent(&ob, NULL); m;
         m = outbox_next_unsent(&ob, m))
        unsent++;
    assert_int_equal(unsent, 3);
    outbox_free(&ob);
    assert_int_equal(ob.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_follow_adds_and_confirms),
        cmocka_unit_test(test_confirm_of_unknown_tag_keeps_everything),
        cmocka_unit_test(test_nack_makes_messages_unsent),
        cmocka_unit_test(test_new_connection_unsends_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
