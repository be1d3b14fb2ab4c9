/* Unit tests for db/statements: one entry per SQL text (by content, not by
 * pointer), names that are digests of the text, a bounded cache, and the
 * Prepare answers that decide whether a statement is prepared and which
 * uses get a failed Prepare's message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "db/statements.h"

static void test_one_entry_per_text_by_content(void **state)
{
    (void)state;
    struct db_statements s = {0};
    char built[64];
    snprintf(built, sizeof(built), "SELECT %d", 1);
    struct db_statement *a = db_statements_get(&s, "SELECT 1");
    struct db_statement *b = db_statements_get(&s, built);
    struct db_statement *c = db_statements_get(&s, "SELECT 2");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_int_equal(s.count, 2);
    assert_int_equal(a->state, DB_STATEMENT_UNPREPARED);
    db_statements_clear(&s);
}

static void test_names_are_digests_of_the_text(void **state)
{
    (void)state;
    struct db_statements s = {0}, t = {0};
    /* The SHA-256 of "SELECT 1" begins e004ebd5b5532a4b85984a62. */
    struct db_statement *a = db_statements_get(&s, "SELECT 1");
    assert_string_equal(a->name, "attune_e004ebd5b5532a4b85984a62");
    /* Another connection's cache names the same text the same way. */
    assert_string_equal(db_statements_get(&t, "SELECT 1")->name, a->name);
    assert_string_not_equal(db_statements_get(&s, "SELECT 1 ")->name, a->name);
    db_statements_clear(&s);
    db_statements_clear(&t);
}

static void test_full_cache_gives_no_statement(void **state)
{
    (void)state;
    struct db_statements s = {0};
    char sql[32];
    for (int i = 0; i < DB_STATEMENTS_MAX; i++) {
        snprintf(sql, sizeof(sql), "SELECT %d", i);
        assert_non_null(db_statements_get(&s, sql));
    }
    assert_null(db_statements_get(&s, "SELECT 'one more'"));
    /* Those already there are still found. */
    assert_non_null(db_statements_get(&s, "SELECT 0"));
    db_statements_clear(&s);
}

static void test_answers_decide_the_state(void **state)
{
    (void)state;
    struct db_statements s = {0};
    struct db_statement *st = db_statements_get(&s, "SELECT $1");
    st->state = DB_STATEMENT_PREPARING;
    unsigned first = ++st->prepares;
    db_statement_answered(st, first, "ERROR:  column x does not exist");
    assert_int_equal(st->state, DB_STATEMENT_UNPREPARED);
    /* The uses sent behind that Prepare get its message; later ones do not. */
    assert_string_equal(db_statement_failure(st, first), "ERROR:  column x does not exist");
    st->state = DB_STATEMENT_PREPARING;
    unsigned second = ++st->prepares;
    assert_null(db_statement_failure(st, second));
    db_statement_answered(st, second, NULL);
    assert_int_equal(st->state, DB_STATEMENT_PREPARED);
    /* A new connection has none of them. */
    db_statements_reset(&s);
    assert_int_equal(st->state, DB_STATEMENT_UNPREPARED);
    db_statements_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_entry_per_text_by_content),
        cmocka_unit_test(test_names_are_digests_of_the_text),
        cmocka_unit_test(test_full_cache_gives_no_statement),
        cmocka_unit_test(test_answers_decide_the_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
