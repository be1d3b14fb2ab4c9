# attune-worker shell wrapper: run as `bash -c WRAPPER ENTRY_PATH`. Reads the
# secrets from fd 3 (a pipe, as bash assignments the worker quoted), closes it,
# defines get_secret, then runs the action in this same shell: the file
# ENTRY_PATH, or for ad-hoc code (`bash -c WRAPPER ACTION_REF`) the code the
# worker put in __attune_code on fd 3, so that it never touches the disk.
declare -A __attune_secrets=()
. /dev/fd/3
exec 3<&-
get_secret() {
    if [[ -z ${__attune_secrets["$1"]+set} ]]; then
        return 1
    fi
    printf '%s' "${__attune_secrets["$1"]}"
}
if [[ -n ${__attune_code+set} ]]; then
    eval "unset __attune_code; $__attune_code"
else
    . "$0"
fi
