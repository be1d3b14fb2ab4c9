#!/bin/sh
# The wrong copy: must never run.
echo '{"copy": "wrong"}'
exit 42
