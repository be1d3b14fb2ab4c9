#!/usr/bin/env bash
# Fails on purpose, to show how a failure is reported.
echo "checking the widget..."
echo "error: the widget is broken" >&2
exit 3
