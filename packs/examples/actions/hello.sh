#!/usr/bin/env bash
# Greets PARAM_NAME; the worker sets PARAM_<NAME> for each parameter of a shell action.
set -euo pipefail
echo "Hello, ${PARAM_NAME}!"
