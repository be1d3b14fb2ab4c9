/* Unit tests for runtime/semver: strict versions, their order (pre-releases
 * before the release), and requirements as Rust's semver crate reads and
 * matches them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "runtime/semver.h"

static void test_parse(void **state)
{
    (void)state;
    struct semver v;
    assert_int_equal(semver_parse("3.12.1", &v), 0);
    assert_true(v.major == 3 && v.minor == 12 && v.patch == 1);
    assert_string_equal(v.pre, "");
    assert_int_equal(semver_parse("1.0.0-rc.1+build.5", &v), 0);
    assert_string_equal(v.pre, "rc.1");
    assert_int_equal(semver_parse("0.0.0", &v), 0);
    const char *bad[] = {"",
                         "3",
                         "3.12",
                         "3.12.1.4",
                         "03.1.2",
                         "3.1.2-",
                         "3.1.2+",
                         "3.1.2-01",
                         "v3.1.2",
                         " 3.1.2",
                         "3.1.2 ",
                         "3.1.x",
                         "99999999999999999999.0.0"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (semver_parse(bad[i], &v) != -EINVAL)
            fail_msg("'%s' parsed", bad[i]);
}

static int cmp(const char *a, const char *b)
{
    struct semver va, vb;
    assert_int_equal(semver_parse(a, &va), 0);
    assert_int_equal(semver_parse(b, &vb), 0);
    return semver_compare(&va, &vb);
}

/* The order of semver.org's example, each before the next. */
static void test_order(void **state)
{
    (void)state;
    const char *order[] = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                           "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
                           "1.0.1",        "1.2.0",         "1.10.0",           "2.0.0"};
    for (size_t i = 0; i + 1 < ARRAY_SIZE(order); i++) {
        assert_true(cmp(order[i], order[i + 1]) < 0);
        assert_true(cmp(order[i + 1], order[i]) > 0);
    }
    assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0);
}

static bool req(const char *r, const char *version)
{
    struct semver_req q;
    struct semver v;
    if (semver_req_parse(r, &q) != 0)
        fail_msg("requirement '%s' does not parse", r);
    assert_int_equal(semver_parse(version, &v), 0);
    return semver_req_matches(&q, &v);
}

static void test_operators(void **state)
{
    (void)state;
    assert_true(req("=3.12.1", "3.12.1"));
    assert_false(req("=3.12.1", "3.12.2"));
    assert_true(req("=3.12", "3.12.7"));
    assert_true(req(">=3.12.0", "3.12.0"));
    assert_true(req(">=3.12.0", "4.0.0"));
    assert_false(req(">=3.12.0", "3.11.9"));
    assert_false(req(">3.12.0", "3.12.0"));
    assert_true(req(">3.12.0", "3.12.1"));
    assert_false(req(">3.12", "3.12.9")); /* a partial version: > all of 3.12 */
    assert_true(req(">3.12", "3.13.0"));
    assert_true(req("<4.0.0", "3.99.99"));
    assert_false(req("<4.0.0", "4.0.0"));
    assert_true(req("<=3.12.0", "3.12.0"));
    assert_false(req("<=3.12.0", "3.12.1"));
    assert_true(req("<=3.12", "3.12.5"));
    assert_true(req("~3.12.1", "3.12.5"));
    assert_false(req("~3.12.1", "3.12.0"));
    assert_false(req("~3.12.1", "3.13.0"));
    assert_true(req("~3", "3.99.0"));
    assert_false(req("~3", "4.0.0"));
    assert_true(req("^3.12", "3.99.0"));
    assert_false(req("^3.12", "3.11.0"));
    assert_false(req("^3.12", "4.0.0"));
    assert_true(req("^0.2.3", "0.2.9"));
    assert_false(req("^0.2.3", "0.3.0"));
    assert_false(req("^0.0.3", "0.0.4"));
    assert_true(req("3.12", "3.99.0")); /* no operator: caret */
    assert_true(req(">=3.12.0, <4.0.0", "3.13.2"));
    assert_false(req(">=3.12.0, <4.0.0", "4.0.0"));
    assert_true(req(">= 3.12.0 ,<4.0.0", "3.12.0"));
}

static void test_wildcards(void **state)
{
    (void)state;
    assert_true(req("*", "0.0.1"));
    assert_true(req("x", "99.0.0"));
    assert_true(req("3.11.*", "3.11.4"));
    assert_false(req("3.11.*", "3.12.0"));
    assert_true(req("3.*", "3.12.0"));
    assert_false(req("3.*", "4.0.0"));
    assert_true(req("~3.11.*", "3.11.9"));
    assert_false(req("~3.11.*", "3.12.0"));
    assert_true(req(">=3.*", "3.0.0"));
}

static void test_prereleases(void **state)
{
    (void)state;
    assert_false(req("*", "3.13.0-rc.1"));
    assert_false(req(">=3.12.0", "3.13.0-rc.1"));
    assert_true(req(">=3.13.0-rc.1", "3.13.0-rc.2"));
    assert_true(req(">=3.13.0-rc.1", "3.13.0"));
    assert_false(req(">=3.13.0-rc.1", "3.14.0-a.1"));
    assert_false(req("~3.13.0-rc.2", "3.13.0-rc.1"));
}

static void test_bad_requirements(void **state)
{
    (void)state;
    struct semver_req q;
    const char *bad[] = {"",           ">=",      ">=3.12.0 <4.0.0", "3.*.1",  "*, >=1.0.0",
                         ">=1.0.0, *", "~>3.1.0", "3.12.0-",         "03.1",   ">=v3.0.0",
                         "3..1",       "=*",      ">=1.0.0,",        "1.0.0 x"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (semver_req_parse(bad[i], &q) != -EINVAL)
            fail_msg("requirement '%s' parsed", bad[i]);
    struct strbuf many;
    strbuf_init(&many);
    for (int i = 0; i < SEMVER_REQ_MAX; i++)
        strbuf_printf(&many, "%s>=%d.0.0", i ? ", " : "", i);
    assert_int_equal(semver_req_parse(many.data, &q), 0);
    assert_int_equal(q.count, SEMVER_REQ_MAX);
    strbuf_puts(&many, ", <100.0.0");
    assert_int_equal(semver_req_parse(many.data, &q), -EINVAL);
    strbuf_free(&many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),       cmocka_unit_test(test_order),
        cmocka_unit_test(test_operators),   cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_prereleases), cmocka_unit_test(test_bad_requirements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
