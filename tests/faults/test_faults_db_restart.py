"""PostgreSQL stopped and started again while 1,000 short executions are in
flight: all complete, each ran exactly once, and every execution.completed
message reaches a consumer (see restart_scenario.py). The worker runs its
statements as prepared ones: the restart loses them with the connection, and the
queries sent again prepare them again on the new one."""
import re
import unittest

from restart_scenario import RestartScenario

PREPARING = re.compile(r"preparing statement (attune_[0-9a-f]+) on this connection: WITH prev AS")


class DatabaseRestartTest(RestartScenario):

    restart = "restart-postgres"
    # The debug lines say when a statement is prepared.
    worker_settings = {"ATTUNE__LOG__LEVEL": "debug"}

    def test_database_restart_with_1000_in_flight(self):
        self.run_scenario()
        log = self.worker.log()
        lost = log.index("database connection lost")
        before, after = PREPARING.findall(log[:lost]), PREPARING.findall(log[lost:])
        self.assertEqual(len(before), 1, "the claim prepared %d times before the restart"
                         % len(before))
        self.assertGreaterEqual(len(after), 1, "the claim not prepared again after the restart")
        self.assertEqual(set(before), set(after))


if __name__ == "__main__":
    unittest.main()
