/* Unit tests for db/schema: statements written for the default schema name
 * another one, and the connection's search_path option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "db/schema.h"

static void check_sql(const char *sql, const char *schema, const char *want)
{
    char *got = db_schema_sql(sql, schema);
    assert_string_equal(got, want);
    free(got);
}

static void test_default_schema_is_left_as_written(void **state)
{
    (void)state;
    static const char sql[] = "UPDATE attune.worker SET status = $2::attune.worker_status_enum";
    check_sql(sql, "attune", sql);
    check_sql(sql, NULL, sql);
}

static void test_other_schema_replaces_every_qualifier(void **state)
{
    (void)state;
    check_sql("UPDATE attune.worker SET status = $2::attune.worker_status_enum WHERE id = $1",
              "Tenant_2",
              "UPDATE \"Tenant_2\".worker SET status = $2::\"Tenant_2\".worker_status_enum "
              "WHERE id = $1");
    check_sql("SELECT 1", "other", "SELECT 1");
    check_sql("attune.", "x", "\"x\".");
}

static void test_search_path_option(void **state)
{
    (void)state;
    char *opt = db_schema_options("Tenant_2");
    assert_string_equal(opt, "-c search_path=\"Tenant_2\",public");
    free(opt);
    opt = db_schema_options(NULL);
    assert_string_equal(opt, "-c search_path=\"attune\",public");
    free(opt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schema_is_left_as_written),
        cmocka_unit_test(test_other_schema_replaces_every_qualifier),
        cmocka_unit_test(test_search_path_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
