/* Unit tests for runtime/runtime_version: Attune's lenient versions and
 * constraint syntax (the cases of its version_matching.rs), and the choice
 * among a runtime's version rows: available ones only, the default without
 * a constraint, the highest match with one, only what the worker advertises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "runtime/runtime_version.h"

static void check(const char *version, const char *constraint, int want)
{
    int got = runtime_version_matches(version, constraint);
    if (got != want)
        fail_msg("'%s' against '%s': %d, expected %d", version, constraint ? constraint : "(null)",
                 got, want);
}

static void test_versions(void **state)
{
    (void)state;
    check("3.12.1", "=3.12.1", 1);
    check("3.12", "=3.12.0", 1);
    check("3", "=3.0.0", 1);
    check("v3.12.1", "=3.12.1", 1);
    check("V20.11.0", "=20.11.0", 1);
    check("  3.12.1  ", "=3.12.1", 1);
    check("3.12.1.4", "=3.12.1", 1);
    check("3.13.0-rc.1", ">=3.13.0-rc.1", 1);
    check("not-a-version", ">=3", -EINVAL);
    check("3.12-beta", ">=3", -EINVAL);
    check("", ">=3", -EINVAL);
}

static void test_constraints(void **state)
{
    (void)state;
    check("3.12.1", ">=3.12", 1);
    check("3.11.0", ">=3.12", 0);
    check("4.0.0", ">=3.12", 1);
    check("3.12.0", "3.12", 1); /* bare: ~3.12 */
    check("3.12.9", "3.12", 1);
    check("3.13.0", "3.12", 0);
    check("3.11.0", "3.12", 0);
    check("3.0.7", "3", 1); /* bare "3" is "~3.0" */
    check("3.1.0", "3", 0);
    check("3.12.99", "~3.12", 1);
    check("3.13.0", "~3.12", 0);
    check("3.99.0", "^3.12", 1);
    check("4.0.0", "^3.12", 0);
    check("3.12.5", ">=3.12,<4.0", 1);
    check("4.0.0", ">=3.12,<4.0", 0);
    check("3.12.5", " >=3.12 , <4.0 ,", 1);
    check("0.0.1", "", 1);
    check("999.0.0", "  ", 1);
    check("999.0.0", NULL, 1);
    check("3.99.99", "<4.0", 1);
    check("4.0.0", "<4.0", 0);
    check("3.12.0", "<=3.12", 1);
    check("3.12.1", "<=3.12", 0); /* <=3.12.0 */
    check("3.12.0", ">3.12", 0);
    check("3.12.1", ">3.12", 1);
    check("20.11.0", ">=18", 1);
    check("16.20.0", ">=18", 0);
    check("3.11.7", "3.11.*", 1);
    check("3.12.0", "3.11.*", 0);
    check("3.12.1", "=3.12.1", 1);
    check("3.12.2", "=3.12.1", 0);
    check("3.12.1", "v3.12", 1);
    check("3.13.0-rc.1", ">=3.12", 0); /* pre-releases only when named */
    check("5.0.0", "*", 1);
    check("3.12.1", ">=3.12 <4.0", -EINVAL);
    check("3.12.1", ">=v3.12", -EINVAL);
    check("3.12.1", "latest", -EINVAL);
}

/* A runtime_version row as the database has it. */
static json_t *row(const char *version, bool is_default, bool available)
{
    return json_pack("{s:s, s:{s:{s:s}}, s:b, s:b}", "version", version, "execution_config",
                     "interpreter", "binary", version, "is_default", is_default, "available",
                     available);
}

static const char *chosen(const json_t *versions, const char *constraint, const json_t *advertised)
{
    const json_t *r = runtime_version_select(versions, constraint, advertised);
    return r ? json_string_value(json_object_get(r, "version")) : NULL;
}

static void test_select(void **state)
{
    (void)state;
    json_t *v = json_pack("[o, o, o]", row("3.11.0", false, true), row("3.12.0", true, true),
                          row("3.14.0", false, true));
    assert_string_equal(chosen(v, NULL, NULL), "3.12.0"); /* the default */
    assert_string_equal(chosen(v, "", NULL), "3.12.0");
    assert_string_equal(chosen(v, ">=3.12,<3.14", NULL), "3.12.0");
    assert_string_equal(chosen(v, ">=3.11", NULL), "3.14.0"); /* a constraint ignores the default */
    assert_null(chosen(v, ">=4.0", NULL));
    assert_null(chosen(v, ">=3 <4", NULL)); /* does not parse: nothing */
    json_object_set_new(json_array_get(v, 1), "is_default", json_false());
    assert_string_equal(chosen(v, NULL, NULL), "3.14.0"); /* no default: the highest */
    json_decref(v);

    v = json_pack("[o, o, o, o]", row("3.11.0", false, true), row("3.12.0", false, true),
                  row("3.12.5", false, true), row("3.13.0", false, true));
    assert_string_equal(chosen(v, "~3.12", NULL), "3.12.5");
    assert_string_equal(chosen(v, "3.12", NULL), "3.12.5");
    assert_string_equal(chosen(v, "3.11.*", NULL), "3.11.0");
    json_decref(v);
}

static void test_select_available_only(void **state)
{
    (void)state;
    json_t *v = json_pack("[o, o]", row("3.12.0", false, true), row("3.14.0", true, false));
    assert_string_equal(chosen(v, ">=3.12", NULL), "3.12.0");
    assert_string_equal(chosen(v, NULL, NULL), "3.12.0"); /* the default is not available */
    json_decref(v);
    v = json_pack("[o, o]", row("3.12.0", false, false), row("3.14.0", false, false));
    assert_null(chosen(v, NULL, NULL));
    json_decref(v);
    v = json_array();
    assert_null(chosen(v, NULL, NULL));
    assert_null(chosen(NULL, NULL, NULL));
    json_decref(v);
    /* Rows without "available" are taken as available; odd rows are skipped. */
    v = json_pack("[{s:s}, s, {s:i}, {s:s}]", "version", "3.10", "junk", "version", 3, "version",
                  "garbage");
    assert_string_equal(chosen(v, NULL, NULL), "3.10");
    assert_string_equal(chosen(v, "~3.10", NULL), "3.10");
    json_decref(v);
}

/* Only versions the worker advertises count, matched as Attune's worker
 * does: the same string, or a registered "3.12" for an advertised 3.12.7. */
static void test_select_advertised(void **state)
{
    (void)state;
    json_t *v = json_pack("[o, o, o]", row("3.11", false, true), row("3.12", true, true),
                          row("3.13.1", false, true));
    json_t *adv = json_pack("[s]", "3.11.2");
    assert_string_equal(chosen(v, NULL, adv), "3.11"); /* the default is not here */
    assert_string_equal(chosen(v, ">=3", adv), "3.11");
    assert_null(chosen(v, ">=3.12", adv));
    json_decref(adv);
    adv = json_pack("[s, s]", "3.13.1", "3.12.7");
    assert_string_equal(chosen(v, NULL, adv), "3.12");
    assert_string_equal(chosen(v, ">=3.12", adv), "3.13.1");
    json_decref(adv);
    adv = json_array();
    assert_null(chosen(v, NULL, adv)); /* advertising nothing: the base runtime */
    json_decref(adv);
    json_decref(v);
}

static void test_config(void **state)
{
    (void)state;
    json_t *v =
        json_pack("[o, o, {s:s, s:{}, s:b}]", row("3.11", false, true), row("3.12", true, true),
                  "version", "3.13", "execution_config", "available", 1);
    const json_t *c = runtime_version_config(v, NULL, NULL);
    assert_non_null(c);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "interpreter"), "binary")), "3.12");
    c = runtime_version_config(v, "~3.11", NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "interpreter"), "binary")), "3.11");
    assert_null(runtime_version_config(v, ">=3.13", NULL)); /* chosen, but {} */
    assert_null(runtime_version_config(v, ">=4", NULL));
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_constraints),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_available_only),
        cmocka_unit_test(test_select_advertised),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
