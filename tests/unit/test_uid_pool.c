/* Unit tests for exec/uid_pool and exec/uid_lock: distinct uids from the range
 * only, handed out in turn, none when the range is used up, a released uid
 * reused last, and a uid another pool (another worker) holds skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "exec/uid_lock.h"
#include "exec/uid_pool.h"

#include <unistd.h>

static void test_distinct_within_range(void **state)
{
    (void)state;
    struct uid_pool pool;
    uid_t got[40];
    uid_pool_init(&pool, 300000, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(uid_pool_acquire(&pool, &got[i]), 0);
        assert_true(got[i] >= 300000 && got[i] < 300040);
        assert_true(uid_pool_taken(&pool, got[i]));
        for (int j = 0; j < i; j++)
            assert_int_not_equal(got[i], got[j]);
    }
    uid_t extra = 0;
    assert_int_equal(uid_pool_acquire(&pool, &extra), -EAGAIN);
    assert_int_equal(extra, 0);
    uid_pool_free(&pool);
}

static void test_release_reuses_last(void **state)
{
    (void)state;
    struct uid_pool pool;
    uid_t a, b, c, d;
    uid_pool_init(&pool, 500, 3);
    assert_int_equal(uid_pool_acquire(&pool, &a), 0);
    assert_int_equal(uid_pool_acquire(&pool, &b), 0);
    uid_pool_release(&pool, a);
    assert_false(uid_pool_taken(&pool, a));
    /* The untouched uid comes before the one just given back. */
    assert_int_equal(uid_pool_acquire(&pool, &c), 0);
    assert_int_equal(c, 502);
    assert_int_equal(uid_pool_acquire(&pool, &d), 0);
    assert_int_equal(d, a);
    assert_int_equal(uid_pool_acquire(&pool, &d), -EAGAIN);
    uid_pool_release(&pool, b);
    assert_int_equal(uid_pool_acquire(&pool, &d), 0);
    assert_int_equal(d, b);
    uid_pool_free(&pool);
}

static void test_release_unknown_is_ignored(void **state)
{
    (void)state;
    struct uid_pool pool;
    uid_t a;
    uid_pool_init(&pool, 1000, 1);
    assert_true(uid_pool_contains(&pool, 1000));
    assert_false(uid_pool_contains(&pool, 999));
    assert_false(uid_pool_contains(&pool, 1001));
    uid_pool_release(&pool, 1000);
    uid_pool_release(&pool, 7);
    assert_int_equal(uid_pool_acquire(&pool, &a), 0);
    assert_int_equal(a, 1000);
    uid_pool_release(&pool, 7);
    assert_true(uid_pool_taken(&pool, 1000));
    uid_pool_free(&pool);
    uid_pool_free(&pool);
}

/* A range of its own: the claims are host-wide. */
#define CLAIM_FIRST 239500u

static void test_claim_is_exclusive_until_closed(void **state)
{
    (void)state;
    int fd = uid_lock_take(CLAIM_FIRST);
    assert_true(fd >= 0);
    assert_true(uid_lock_held(CLAIM_FIRST));
    assert_int_equal(uid_lock_take(CLAIM_FIRST), -EADDRINUSE);
    close(fd);
    assert_false(uid_lock_held(CLAIM_FIRST));
}

/* Two workers on one range: the second never gets a uid the first holds,
 * and gets it once the first gives it back. */
static void test_pools_share_a_range_without_sharing_a_uid(void **state)
{
    (void)state;
    struct uid_pool first, second;
    uid_t a, b, c;
    uid_pool_init(&first, CLAIM_FIRST + 10, 2);
    uid_pool_init(&second, CLAIM_FIRST + 10, 2);
    assert_int_equal(uid_pool_acquire(&first, &a), 0);
    assert_int_equal(uid_pool_acquire(&second, &b), 0);
    assert_int_not_equal(a, b);
    assert_int_equal(uid_pool_acquire(&second, &c), -EAGAIN);
    uid_pool_release(&first, a);
    assert_false(uid_lock_held(a));
    assert_int_equal(uid_pool_acquire(&second, &c), 0);
    assert_int_equal(c, a);
    uid_pool_free(&second);
    assert_false(uid_lock_held(b));
    uid_pool_free(&first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct_within_range),
        cmocka_unit_test(test_release_reuses_last),
        cmocka_unit_test(test_release_unknown_is_ignored),
        cmocka_unit_test(test_claim_is_exclusive_until_closed),
        cmocka_unit_test(test_pools_share_a_range_without_sharing_a_uid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
