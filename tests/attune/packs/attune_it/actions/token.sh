#!/bin/bash
# Says whether the worker gave this action an API token (ATTUNE_API_TOKEN) and
# hands it back reversed, so that the test can check the token while the
# token itself appears in no output, log or result of the worker's.
if [ -n "${ATTUNE_API_TOKEN+set}" ]; then
    token=$ATTUNE_API_TOKEN reversed=
    for ((i = ${#token} - 1; i >= 0; i--)); do
        reversed+=${token:i:1}
    done
    printf '{"present":true,"reversed":"%s"}\n' "$reversed"
else
    printf '{"present":false}\n'
fi
