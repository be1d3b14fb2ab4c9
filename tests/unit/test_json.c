/* Unit tests for core/json: the kind of a value in YAML and in JSON Schema
 * words, and whether an array holds a string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json.h"

static void test_kinds(void **state)
{
    (void)state;
    json_t *list = json_array();
    assert_string_equal(json_kind(list), "a list");
    assert_string_equal(json_type_name(list), "array");
    assert_string_equal(json_kind(NULL), "null");
    json_decref(list);
}

/* Only strings count; anything but an array holds nothing. */
static void test_array_has_string(void **state)
{
    (void)state;
    json_t *names = json_pack("[s, i, s]", "token", 7, "password");
    assert_true(json_array_has_string(names, "token"));
    assert_true(json_array_has_string(names, "password"));
    assert_false(json_array_has_string(names, "7"));
    assert_false(json_array_has_string(names, "tok"));
    json_t *object = json_pack("{s:s}", "token", "token");
    assert_false(json_array_has_string(object, "token"));
    assert_false(json_array_has_string(NULL, "token"));
    json_decref(object);
    json_decref(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_array_has_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
