#!/bin/sh
# The shell-script recipe's assembly step (the baseline roled replaces), POSIX sh.
# Usage: ROLES=a,b assemble.sh MAIN_CONF > assembled.conf
# Prints MAIN_CONF, then every file of each role with common.conf inserted right after each
# [program:x] header (so a program's own later keys win: supervisor's parser keeps the last
# value), then the FATAL listener that makes supervisord quit when a program gives up.
set -eu

main=$1
dir=$(dirname "$main")
here=$(cd "$(dirname "$0")" && pwd)
common=$dir/common.conf

cat "$main"

# Split ROLES on commas and blanks without glob expansion.
set -f
old_ifs=$IFS
IFS=', '
# shellcheck disable=SC2086
set -- ${ROLES:?ROLES is empty}
IFS=$old_ifs
set +f

for role do
    if [ -f "$dir/roles/$role.conf" ]; then
        set -- "$dir/roles/$role.conf"
    elif [ -d "$dir/roles/$role" ]; then
        set -- "$dir/roles/$role"/*.conf
    else
        echo "recipe: unknown role: $role" >&2
        exit 2
    fi
    echo
    # One sed per role, not per file: sed also ends a file that lacks its final newline.
    if [ -f "$common" ]; then
        sed "/^\[program:/r $common" "$@"
    else
        cat "$@"
    fi
done

cat <<CONF

[eventlistener:recipe_fatal]
command=/bin/sh $here/fatal_listener.sh
events=PROCESS_STATE_FATAL
; supervisord sends events only to RUNNING listeners: without this, a program that fails
; in its first second waits a whole extra second before the listener hears of it.
startsecs=0
stderr_logfile=/dev/stderr
stderr_logfile_maxbytes=0
CONF
