#!/usr/bin/env bash
# make run: serve Berth under systemd socket activation and say how to reach it.
set -euo pipefail
BERTH=$1; PORT=${2:-8080}; EXAMPLE=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
args=(run)
if [ -n "$EXAMPLE" ]; then
  cf="$here/../shared/seed/examples/example$EXAMPLE/Caddyfile"
  [ -f "$cf" ] || cf="$here/container/examples/example$EXAMPLE/Caddyfile"
  [ -f "$cf" ] || { echo "no Caddyfile for example $EXAMPLE" >&2; exit 1; }
  args+=(--config "$cf")
fi
echo "Berth: listening on 127.0.0.1:$PORT and [::1]:$PORT through systemd socket activation"
echo "       (systemd-socket-activate -l $PORT $BERTH ${args[*]})"
echo "Try:   curl http://localhost:$PORT/"
echo "Stop:  Ctrl-C"
exec systemd-socket-activate -l "$PORT" "$here/$BERTH" "${args[@]}"
