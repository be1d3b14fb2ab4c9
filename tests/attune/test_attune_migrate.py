"""`attunectl migrate` against a database whose schema Attune's own migration
runner manages (attune._sqlx_migrations, public._attune_migration_runner):
it changes nothing and says so."""
import os
import unittest

from attune_support import CTL_BIN, ENCRYPTION_KEY, UpstreamDatabase, run_ctl, service_urls

# Everything a migration could add, drop or change in any schema of the database.
SNAPSHOT_QUERIES = {
    "relations": """
        SELECT n.nspname, c.relname, c.relkind::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
         ORDER BY 1, 2""",
    "columns": """
        SELECT table_schema, table_name, column_name, data_type, udt_name, is_nullable,
               coalesce(column_default, '')
          FROM information_schema.columns
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
         ORDER BY 1, 2, 3""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN
               ('pg_catalog', 'information_schema')
         ORDER BY 1, 2""",
    "indexes": """
        SELECT schemaname, indexname, indexdef FROM pg_indexes
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3""",
    "types": """
        SELECT t.typnamespace::regnamespace::text, t.typname,
               coalesce(string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder), '')
          FROM pg_type t LEFT JOIN pg_enum e ON e.enumtypid = t.oid
         WHERE t.typnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema',
               'pg_toast') AND t.typtype = 'e'
         GROUP BY 1, 2 ORDER BY 1, 2""",
    "history": "SELECT version, description, success, encode(checksum, 'hex') "
               "FROM attune._sqlx_migrations "
               "ORDER BY version",
    "runner": "SELECT id, runner FROM public._attune_migration_runner",
}


class MigrateTest(unittest.TestCase):
    maxDiff = 8000

    @classmethod
    def setUpClass(cls):
        if not os.access(CTL_BIN, os.X_OK):
            raise unittest.SkipTest("attunectl not found: %s" % CTL_BIN)
        cls.db = UpstreamDatabase(service_urls()["ATTUNE__DATABASE__URL"])
        cls.addClassCleanup(cls.db.drop)

    def snapshot(self):
        out = {}
        for name, sql in SNAPSHOT_QUERIES.items():
            with self.db.conn.cursor() as cur:
                cur.execute(sql)
                out[name] = [tuple(str(v) for v in row) for row in cur.fetchall()]
        return out

    def test_migrate_leaves_an_attune_managed_database_alone(self):
        before = self.snapshot()
        proc = run_ctl(["migrate"], {"ATTUNE__DATABASE__URL": self.db.url,
                                     "ATTUNE__SECURITY__ENCRYPTION_KEY": ENCRYPTION_KEY})
        output = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, "attunectl migrate failed:\n" + output)
        after = self.snapshot()
        for name in SNAPSHOT_QUERIES:
            added = sorted(set(after[name]) - set(before[name]))
            removed = sorted(set(before[name]) - set(after[name]))
            self.assertEqual((added, removed), ([], []),
                             "attunectl migrate changed the %s\n%s" % (name, output))
        self.assertRegex(output, r"(?i)_sqlx_migrations|attune'?s own migration|managed by attune",
                         "attunectl migrate does not say that Attune manages the schema")
        self.assertRegex(output, r"(?i)nothing to do|no changes?|unchanged|left alone|up to date",
                         "attunectl migrate does not say that it changed nothing")


if __name__ == "__main__":
    unittest.main()
