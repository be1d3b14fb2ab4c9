/* Unit tests for worker/cancels: a pending cancel request is taken once,
 * expires with age, and the set stays bounded, dropping the oldest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "worker/cancels.h"

static void test_a_request_is_taken_once(void **state)
{
    (void)state;
    struct cancels *c = calloc(1, sizeof(*c));
    cancels_add(c, 7, 1000);
    assert_false(cancels_take(c, 8, 1001));
    assert_true(cancels_take(c, 7, 1002));
    assert_false(cancels_take(c, 7, 1003));
    assert_int_equal(c->count, 0);
    free(c);
}

static void test_an_old_request_expires(void **state)
{
    (void)state;
    struct cancels *c = calloc(1, sizeof(*c));
    cancels_add(c, 1, 0);
    cancels_add(c, 2, 1000);
    assert_false(cancels_take(c, 1, CANCELS_MAX_AGE_MS));
    assert_true(cancels_take(c, 2, CANCELS_MAX_AGE_MS));
    /* Received again: its age starts anew. */
    cancels_add(c, 3, 0);
    cancels_add(c, 3, CANCELS_MAX_AGE_MS - 1);
    assert_true(cancels_take(c, 3, CANCELS_MAX_AGE_MS + 5));
    free(c);
}

static void test_the_set_is_bounded_and_drops_the_oldest(void **state)
{
    (void)state;
    struct cancels *c = calloc(1, sizeof(*c));
    for (int64_t id = 1; id <= CANCELS_MAX + 10; id++)
        cancels_add(c, id, 100);
    assert_int_equal(c->count, CANCELS_MAX);
    for (int64_t id = 1; id <= 10; id++)
        assert_false(cancels_take(c, id, 101));
    assert_true(cancels_take(c, 11, 101));
    assert_true(cancels_take(c, CANCELS_MAX + 10, 101));
    assert_int_equal(c->count, CANCELS_MAX - 2);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_request_is_taken_once),
        cmocka_unit_test(test_an_old_request_expires),
        cmocka_unit_test(test_the_set_is_bounded_and_drops_the_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
