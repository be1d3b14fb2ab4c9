"""database.schema: Attune's tables in a schema other than `attune`. The worker's
statements name the configured schema, and its connection puts that schema first
on the search_path, because Attune's own triggers name tables without one (the
trigger here does the same). attunectl migrate refuses any schema but `attune`."""
import subprocess
import unittest

from service_support import (CTL_BIN, SLOW, ServiceTestCase, clean_env, wait_until_value,
                             worker_queue, write_action_file, write_pack)

SCHEMA = "tenant_b"

ECHO_SH = """#!/bin/bash
echo "hello from $ATTUNE_ACTION"
"""

# A trigger written the way Attune writes its own: table names without a schema.
UNQUALIFIED_TRIGGER = """
CREATE TABLE %(s)s.status_log (execution BIGINT, status TEXT);
CREATE FUNCTION %(s)s.log_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO status_log (execution, status) VALUES (NEW.id, NEW.status::text);
    RETURN NEW;
END $$;
CREATE TRIGGER log_status AFTER UPDATE OF status ON %(s)s.execution
    FOR EACH ROW EXECUTE FUNCTION %(s)s.log_status();
""" % {"s": SCHEMA}


class OtherSchemaTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "sch")
        write_action_file(cls.packs_dir, "sch", "echo.sh", ECHO_SH)
        pack = cls.db.insert_pack("sch")
        cls.db.insert_action(pack, "sch", "echo", "echo.sh")
        cls.db.execute("ALTER SCHEMA attune RENAME TO %s" % SCHEMA)
        cls.db.execute(UNQUALIFIED_TRIGGER)

    def test_worker_runs_in_the_configured_schema(self):
        w = self.start_worker(env={"ATTUNE__DATABASE__SCHEMA": SCHEMA}, wait=False)
        w.wait_ready()
        self.addCleanup(self.broker.delete_queue, worker_queue(w.id))
        row = self.db.row("SELECT status::text AS status, worker_role::text AS role "
                          "FROM %s.worker WHERE id = %%s" % SCHEMA, (w.id,))
        self.assertEqual(row, {"status": "active", "role": "action"})
        eid = self.db.value(
            "INSERT INTO %s.execution (action, action_ref, config, status, worker) "
            "SELECT id, ref, '{}'::jsonb, 'scheduled', %%s FROM %s.action WHERE ref = 'sch.echo' "
            "RETURNING id" % (SCHEMA, SCHEMA), (w.id,))
        events = self.event_listener()
        self.broker.dispatch(w.id, eid, "sch.echo", {})
        self.assertTrue(events.wait_for(lambda _: events.completed(eid), 20 * SLOW),
                        "no execution.completed\n" + w.describe())
        got = self.db.row("SELECT status::text AS status, result->>'stdout' AS stdout "
                          "FROM %s.execution WHERE id = %%s" % SCHEMA, (eid,))
        self.assertEqual(got["status"], "completed", w.describe())
        self.assertEqual(got["stdout"], "hello from sch.echo\n")
        logged = self.db.rows("SELECT status FROM %s.status_log WHERE execution = %%s "
                              "ORDER BY status" % SCHEMA, (eid,))
        self.assertEqual([r["status"] for r in logged], ["completed", "running"],
                         "the unqualified trigger did not see both updates")
        # The log rows, and their seal, land in the configured schema too.
        sealed = ("SELECT count(*) FROM %s.artifact_version v JOIN %s.log_stream s "
                  "ON s.artifact_version = v.id WHERE v.execution = %%s AND s.sealed"
                  % (SCHEMA, SCHEMA))
        self.assertTrue(wait_until_value(lambda: self.db.value(sealed, (eid,)) == 2, 5 * SLOW),
                        w.describe())
        self.stop_worker(w)
        self.assertTrue(wait_until_value(lambda: self.db.value(
            "SELECT status::text FROM %s.worker WHERE id = %%s" % SCHEMA, (w.id,)) == "inactive",
            5 * SLOW))

    def test_migrate_refuses_another_schema(self):
        proc = subprocess.run([CTL_BIN, "migrate"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd="/",
                              env=clean_env({"ATTUNE__DATABASE__URL": self.db.url,
                                             "ATTUNE__DATABASE__SCHEMA": SCHEMA}))
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn('in the schema "attune" only (database.schema is "%s")' % SCHEMA,
                      proc.stderr)
        self.assertEqual(self.db.value(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'attune'"), 0,
            "migrate created the default schema anyway")


if __name__ == "__main__":
    unittest.main()
