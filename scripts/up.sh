#!/usr/bin/env bash
# The whole stack, natively: servers, the four services and a demo camera.
#   scripts/up.sh      start (idempotent) and print where the API is
#   scripts/down.sh    stop everything
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
RUN="$REPO/.stack/run/services"
LOGS="$REPO/.stack/logs"
API_PORT="${VIGIL_API_PORT:-8000}"
ADMIN_KEY_FILE="$REPO/.stack/admin-key"

bash scripts/bootstrap.sh
bash scripts/stack.sh start
set -a
# shellcheck disable=SC1091
. .stack/env
set +a
mkdir -p "$RUN" "$LOGS"

demo_source() {
  local clip="$REPO/../shared/datasets/ucsd-ped2/test/Test002.mp4"
  if [[ -f "$clip" ]]; then
    echo "$clip"
    return
  fi
  # No dataset beside the repo: a scene of FFmpeg's own, so the demo still has a camera.
  local generated="$REPO/.stack/demo/testsrc.mp4"
  if [[ ! -f "$generated" ]]; then
    mkdir -p "$(dirname "$generated")"
    ffmpeg -loglevel error -f lavfi -i "testsrc2=size=360x240:rate=10" -t 30 \
      -pix_fmt yuv420p -c:v libx264 "$generated"
  fi
  echo "$generated"
}

# The API's bootstrap admin key: made once, readable by this user only, kept across restarts.
admin_key() {
  if [[ ! -s "$ADMIN_KEY_FILE" ]]; then
    (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))' \
      >"$ADMIN_KEY_FILE")
  fi
  chmod 600 "$ADMIN_KEY_FILE"
  cat "$ADMIN_KEY_FILE"
}

start_service() { # name, then the command
  local name=$1
  shift
  local pidfile="$RUN/$name.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "up: $name already running (pid $(cat "$pidfile"))"
    return
  fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  echo "up: $name started (pid $!, log .stack/logs/$name.log)"
}

export VIGIL_API_PORT="$API_PORT"
VIGIL_API_ADMIN_KEY="$(admin_key)" start_service api .venv/bin/python -m vigil_api
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$RUN/api.pid")" 2>/dev/null; then
    echo "up: the API exited; see .stack/logs/api.log:" >&2
    tail -n 5 "$LOGS/api.log" >&2
    exit 1
  fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null || { echo "up: the API did not become ready; see .stack/logs/api.log" >&2; exit 1; }
start_service event-sink .venv/bin/python -m vigil_api.sink_main
start_service inference .venv/bin/python -m vigil_inference
start_service trainer .venv/bin/python -m vigil_trainer
VIGIL_INGEST_CAMERA_ID=demo VIGIL_INGEST_SOURCE="$(demo_source)" VIGIL_INGEST_LOOP=true \
  VIGIL_INGEST_FPS=5 start_service ingest-demo .venv/bin/python -m vigil_ingest

cat <<TXT

Vigil is up.
  API:     http://127.0.0.1:$API_PORT   (OpenAPI docs at /docs, readiness at /readyz)
  Key:     the admin key is in .stack/admin-key (mode 600); every /api/v1 route needs a key:
             KEY=\$(cat .stack/admin-key)
  Events:  curl -H "Authorization: Bearer \$KEY" 'http://127.0.0.1:$API_PORT/api/v1/events?camera_id=demo'
  Viewer:  curl -H "Authorization: Bearer \$KEY" -H 'content-type: application/json' \\
             -d '{"name": "wall screen", "role": "viewer"}' http://127.0.0.1:$API_PORT/api/v1/keys
  Logs:    .stack/logs/
  Stop:    bash scripts/down.sh
TXT
