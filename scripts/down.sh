#!/usr/bin/env bash
# Stops the services started by scripts/up.sh (SIGTERM, SIGKILL after 15 s), then the servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN=.stack/run/services

stop_group() { # pidfile
  local pid
  pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "down: $(basename "$1" .pid) ignored SIGTERM for 15 s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
}

if [[ -d "$RUN" ]]; then
  # Producers first, so consumers can drain what is already in flight.
  for name in ingest ingest-demo inference event-sink camera-status loop retention trainer api; do
    [[ -f "$RUN/$name.pid" ]] && { stop_group "$RUN/$name.pid"; echo "down: $name stopped"; }
  done
fi
bash scripts/stack.sh stop
