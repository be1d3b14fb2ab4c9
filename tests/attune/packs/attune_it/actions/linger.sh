#!/bin/bash
# Stays until it is stopped, for the cancellation tests. Parameters (PARAM_
# variables): started_file is created first thing; pid_file then gets
# "PID PGID CHILD" (written whole, by a rename), CHILD a background sleeper
# that must not outlive the script; with ignore_term true the whole process
# group ignores SIGTERM, so that only SIGKILL ends it; else term_file, if
# given, is created when the script gets SIGTERM, before it dies of it;
# seconds is how long the script sleeps (30 by default).
read -r _ _ _ _ pgid _ </proc/$$/stat
if [ -n "${PARAM_STARTED_FILE:-}" ]; then
    : >"$PARAM_STARTED_FILE"
fi
if [ "${PARAM_IGNORE_TERM:-}" = true ]; then
    trap '' TERM
elif [ -n "${PARAM_TERM_FILE:-}" ]; then
    trap ': >"$PARAM_TERM_FILE"; trap - TERM; kill -TERM $$' TERM
fi
sleep 120 &
if [ -n "${PARAM_PID_FILE:-}" ]; then
    echo "$$ $pgid $!" >"$PARAM_PID_FILE.tmp" && mv "$PARAM_PID_FILE.tmp" "$PARAM_PID_FILE"
fi
echo "pgid $pgid"
# In the background and waited for: bash runs a trap at once while in wait,
# whether or not the sleeper (just forking) got the signal too.
sleep "${PARAM_SECONDS:-30}" &
wait $!
echo "slept through"
