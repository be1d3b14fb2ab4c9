"""The worker's database connection in pipeline mode, on the real servers: many
executions at once put several statements in flight together; one the database
refuses ends only itself (each statement has a sync of its own), the answers stay
in order, and the connection is never dropped for it."""
import unittest

from service_support import SLOW, ServiceTestCase, write_action_file, write_pack

ECHO_SH = """#!/bin/bash
echo "done $ATTUNE_EXEC_ID"
"""

# Refuses the final update of one action's executions to 'completed'; the
# worker then records a failure in a second statement, which passes.
REFUSE_TRIGGER = """
CREATE FUNCTION attune.test_refuse_completion() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'completed' AND NEW.action_ref = 'pipe.refused' THEN
        RAISE EXCEPTION 'refused by the test';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_refuse_completion BEFORE UPDATE ON attune.execution
    FOR EACH ROW EXECUTE FUNCTION attune.test_refuse_completion();
"""


class ServicePipelineTest(ServiceTestCase):

    @classmethod
    def setUpData(cls):
        write_pack(cls.packs_dir, "pipe")
        write_action_file(cls.packs_dir, "pipe", "echo.sh", ECHO_SH)
        pack_id = cls.db.insert_pack("pipe")
        cls.db.insert_action(pack_id, "pipe", "ok", "echo.sh")
        cls.db.insert_action(pack_id, "pipe", "refused", "echo.sh")
        cls.db.execute(REFUSE_TRIGGER)

    def test_a_refused_statement_ends_only_its_own_execution(self):
        w = self.start_worker(env={"ATTUNE__WORKER__MAX_CONCURRENT_TASKS": "10"})
        refs = ["pipe.refused" if i % 4 == 1 else "pipe.ok" for i in range(24)]
        ids = [self.db.insert_execution(ref, {}) for ref in refs]
        for eid, ref in zip(ids, refs):
            self.broker.dispatch(w.id, eid, ref, {})
        statuses = self.wait_all_final(ids, 60 * SLOW, worker=w)
        for eid, ref in zip(ids, refs):
            row = self.db.execution(eid)
            if ref == "pipe.ok":
                self.assertEqual(statuses[eid], "completed", "%r\n%s" % (row, w.describe()))
                self.assertTrue(row["result"]["succeeded"])
                self.assertEqual(row["result"]["stdout"], "done %d\n" % eid)
            else:
                self.assertEqual(statuses[eid], "failed", "%r\n%s" % (row, w.describe()))
                self.assertIn("the result could not be stored", row["result"]["error"])
                self.assertIn("refused by the test", row["result"]["error"])
        self.assertNotIn("database connection lost", w.log(), w.describe())


if __name__ == "__main__":
    unittest.main()
