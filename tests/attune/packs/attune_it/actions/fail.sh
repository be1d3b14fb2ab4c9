#!/bin/bash
# Fails: a line on stdout, the reason on stderr, exit status 3.
echo "partial output before the failure"
echo "the widget exploded" >&2
exit 3
