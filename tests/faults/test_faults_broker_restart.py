"""RabbitMQ stopped and started again while 1,000 short executions are in
flight: all complete, each ran exactly once, and every execution.completed
message reaches a consumer (see restart_scenario.py)."""
import unittest

from restart_scenario import RestartScenario


class BrokerRestartTest(RestartScenario):

    restart = "restart-rabbitmq"
    fresh_broker_after = True

    def test_broker_restart_with_1000_in_flight(self):
        self.run_scenario()


if __name__ == "__main__":
    unittest.main()
