#!/bin/sh
# The shell-script recipe's start script (the baseline roled replaces), POSIX sh.
# Usage: ROLES=a,b [RECIPE_OUT=path] [SUPERVISORD=command] start.sh MAIN_CONF
set -eu

out=${RECIPE_OUT:-/tmp/supervisord-recipe.conf}
sh "$(dirname "$0")/assemble.sh" "$1" > "$out"
# SUPERVISORD may be several words (e.g. "python -m supervisor.supervisord"): split on purpose.
# shellcheck disable=SC2086
exec ${SUPERVISORD:-supervisord} -n -c "$out"
