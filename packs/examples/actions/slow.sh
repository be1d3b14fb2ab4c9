#!/usr/bin/env bash
# Runs longer than its timeout allows, to show how a timeout is handled.
echo "starting a long job"
sleep 10
echo "finished (never printed: the timeout comes first)"
