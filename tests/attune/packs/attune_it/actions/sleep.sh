#!/bin/bash
# Runs far longer than the tests' timeouts; first says its process group, so
# that the test can check that nothing of it outlives the timeout.
read -r _ _ _ _ pgid _ </proc/$$/stat
echo "pgid $pgid"
sleep 30
echo "slept through"
