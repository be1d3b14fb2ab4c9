# attune-worker shell wrapper: run as `bash -c WRAPPER ENTRY_PATH`. Reads the
# secrets from fd 3 (a pipe, as bash assignments the worker quoted), closes it,
# defines get_secret, then runs the action in this same shell.
declare -A __attune_secrets=()
. /dev/fd/3
exec 3<&-
get_secret() {
    if [[ -z ${__attune_secrets["$1"]+set} ]]; then
        return 1
    fi
    printf '%s' "${__attune_secrets["$1"]}"
}
. "$0"
