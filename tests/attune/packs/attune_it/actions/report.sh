#!/bin/bash
# Reports what the worker gave this shell action as one JSON document on
# stdout: the parameters (one JSON line on stdin, or the file named by
# ATTUNE_PARAMETER_FILE), the whole environment, the working directory and the
# script's own path. Pure bash, so that only the shell runtime is involved.
set -u

esc() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '%s' "$s"
}

params=
if [ "${ATTUNE_PARAMETER_DELIVERY:-}" = file ] && [ -n "${ATTUNE_PARAMETER_FILE:-}" ]; then
    params=$(cat -- "$ATTUNE_PARAMETER_FILE")
else
    IFS= read -r params || true
fi
[ -n "$params" ] || params=null

script="$(cd "$(dirname -- "$0")" && pwd -P)/$(basename -- "$0")"
printf '{"runtime":"shell","bash":"%s","script":"%s","cwd":"%s","params":%s,"env":{' \
    "$(esc "${BASH_VERSION:-}")" "$(esc "$script")" "$(esc "$(pwd -P)")" "$params"
sep=
while IFS= read -r name; do
    printf '%s"%s":"%s"' "$sep" "$(esc "$name")" "$(esc "${!name}")"
    sep=,
done < <(compgen -e)
printf '}}\n'
