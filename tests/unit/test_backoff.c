/* Unit tests for core/backoff: each delay lies between the step and one and a
 * half steps, the step doubles up to the cap, a reset starts over, and the
 * failed attempts are counted until a connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "core/backoff.h"

static void expect_delay_for_step(struct backoff *b, uint64_t step)
{
    uint64_t delay = backoff_next_ms(b);
    if (delay < step || delay > step + step / 2)
        fail_msg("delay %llu outside [%llu, %llu]", (unsigned long long)delay,
                 (unsigned long long)step, (unsigned long long)(step + step / 2));
}

/* The database's numbers: 100 ms doubling up to 5 s. */
static void test_doubles_up_to_the_cap(void **state)
{
    (void)state;
    static const uint64_t steps[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    struct backoff b;
    backoff_init(&b, 100, 5000);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        expect_delay_for_step(&b, steps[i]);
}

static void test_reset_starts_over(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 200, 10000);
    for (int i = 0; i < 10; i++)
        backoff_next_ms(&b);
    expect_delay_for_step(&b, 10000);
    backoff_reset(&b);
    expect_delay_for_step(&b, 200);
    expect_delay_for_step(&b, 400);
}

/* Jitter spreads the delays over the whole range, not just one end of it. */
static void test_jitter_spreads(void **state)
{
    (void)state;
    uint64_t lowest = UINT64_MAX, highest = 0;
    srand(1);
    for (int i = 0; i < 1000; i++) {
        struct backoff b;
        backoff_init(&b, 100, 5000);
        uint64_t delay = backoff_next_ms(&b);
        lowest = delay < lowest ? delay : lowest;
        highest = delay > highest ? delay : highest;
    }
    assert_true(lowest < 110);
    assert_true(highest > 140);
    assert_true(highest <= 150);
}

/* A step of 1 ms still gets its (empty) jitter range without dividing by zero. */
static void test_tiny_step(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 1, 3);
    expect_delay_for_step(&b, 1);
    expect_delay_for_step(&b, 2);
    expect_delay_for_step(&b, 3);
    expect_delay_for_step(&b, 3);
}

/* Each failure counts and waits a step longer; a connection clears the count
 * and starts the steps over. */
static void test_failures_counted_until_connected(void **state)
{
    (void)state;
    struct backoff b;
    backoff_init(&b, 100, 5000);
    uint64_t first = backoff_failed(&b, "database", true, "gone");
    assert_true(first >= 100 && first <= 150);
    uint64_t second = backoff_failed(&b, "database", false, "refused");
    assert_true(second >= 200 && second <= 300);
    assert_int_equal(b.failures, 2);
    backoff_connected(&b, "database");
    assert_int_equal(b.failures, 0);
    expect_delay_for_step(&b, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_up_to_the_cap),
        cmocka_unit_test(test_reset_starts_over),
        cmocka_unit_test(test_jitter_spreads),
        cmocka_unit_test(test_tiny_step),
        cmocka_unit_test(test_failures_counted_until_connected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
