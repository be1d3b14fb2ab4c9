#!/bin/bash
# Prints a numbered line on stdout, and every other one on stderr, for about
# three seconds, so that a client can watch the log files grow while it runs.
for i in $(seq 1 12); do
    echo "drip line $i"
    if (( i % 2 == 0 )); then
        echo "drip warning $i" >&2
    fi
    sleep 0.25
done
echo "drip done"
