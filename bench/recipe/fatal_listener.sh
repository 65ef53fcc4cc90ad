#!/bin/sh
# Supervisor event listener in POSIX sh (runs under dash: no `read -n`): when a program
# enters FATAL, tell supervisord (our parent) to quit, so the container exits.
# Protocol: print READY, read one header line, read exactly len bytes of payload,
# answer RESULT 2\nOK, repeat.

while :; do
    printf 'READY\n'
    IFS= read -r header || exit 0
    len=${header##*len:}
    len=${len%%[!0-9]*}
    payload=$(head -c "${len:-0}")
    case $header in
        *eventname:PROCESS_STATE_FATAL*)
            name=${payload#*processname:}
            name=${name%% *}
            echo "recipe: FATAL $name, stopping supervisord" >&2
            kill -TERM "$PPID"
            ;;
    esac
    printf 'RESULT 2\nOK'
done
