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
# Every process serves Prometheus metrics (docs/operations.md#ports); each reads its own variable.
export VIGIL_INGEST_METRICS_PORT="${VIGIL_INGEST_METRICS_PORT:-9101}"
export VIGIL_INFERENCE_METRICS_PORT="${VIGIL_INFERENCE_METRICS_PORT:-9102}"
export VIGIL_TRAINER_METRICS_PORT="${VIGIL_TRAINER_METRICS_PORT:-9103}"
export VIGIL_API_SINK_METRICS_PORT="${VIGIL_API_SINK_METRICS_PORT:-9104}"
export VIGIL_API_CAMERA_STATUS_METRICS_PORT="${VIGIL_API_CAMERA_STATUS_METRICS_PORT:-9105}"
export VIGIL_API_RETENTION_METRICS_PORT="${VIGIL_API_RETENTION_METRICS_PORT:-9106}"
export VIGIL_LOOP_METRICS_PORT="${VIGIL_LOOP_METRICS_PORT:-9107}"

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

DEMO_SOURCE="$(realpath "$(demo_source)")" # absolute and without '..', as the API wants paths
export VIGIL_API_PORT="$API_PORT"
VIGIL_API_ADMIN_KEY="$(admin_key)" \
  VIGIL_API_CAMERA_FILE_ROOT="${VIGIL_API_CAMERA_FILE_ROOT:-$(dirname "$DEMO_SOURCE")}" \
  start_service api .venv/bin/python -m vigil_api
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
# Static group membership (one name per process): a restarted consumer gets its partitions back
# at once instead of after the session timeout.
VIGIL_KAFKA_GROUP_INSTANCE_ID="event-sink-{hostname}" \
  start_service event-sink .venv/bin/python -m vigil_api.consumers.sink_main
VIGIL_KAFKA_GROUP_INSTANCE_ID="camera-status-{hostname}" \
  start_service camera-status .venv/bin/python -m vigil_api.consumers.camera_status_main
VIGIL_KAFKA_GROUP_INSTANCE_ID="loop-{hostname}" \
  start_service loop .venv/bin/python -m vigil_api.consumers.loop_main
VIGIL_KAFKA_GROUP_INSTANCE_ID="inference-{hostname}" \
  start_service inference .venv/bin/python -m vigil_inference
start_service retention .venv/bin/python -m vigil_api.retention
start_service trainer .venv/bin/python -m vigil_trainer

API="http://127.0.0.1:$API_PORT"
# Keys go to curl as header files, never as arguments (which any user can read in ps).
bearer() { printf 'Authorization: Bearer %s\n' "$1"; }
as_admin() {
  curl -fsS -H @<(bearer "$(admin_key)") -H 'content-type: application/json' "$@"
}

# The demo camera, registered through the API like any camera (kept if it is already there).
if ! as_admin -o /dev/null "$API/api/v1/cameras/demo" 2>/dev/null; then
  as_admin -o /dev/null -d "{\"id\": \"demo\", \"name\": \"Demo (looped clip)\", \
\"source\": \"$DEMO_SOURCE\", \"target_fps\": 5}" "$API/api/v1/cameras"
  echo "up: demo camera registered ($DEMO_SOURCE)"
fi

# Ingest's operator key (it reads the sources' passwords): made once, kept while the API takes it.
INGEST_KEY_FILE="$REPO/.stack/ingest-key"
if [[ ! -s "$INGEST_KEY_FILE" ]] || ! curl -fsS -o /dev/null \
  -H @<(bearer "$(cat "$INGEST_KEY_FILE")") "$API/api/v1/ingest/cameras?limit=1"; then
  (umask 077 && as_admin -d '{"name": "ingest (up.sh)", "role": "operator", "service": true}' "$API/api/v1/keys" |
    .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["key"])' >"$INGEST_KEY_FILE")
fi
chmod 600 "$INGEST_KEY_FILE" # one made by an older up.sh may be world-readable
# The single-camera demo ingest of earlier versions would publish the demo camera twice.
if [[ -f "$RUN/ingest-demo.pid" ]]; then
  kill -TERM -- "-$(cat "$RUN/ingest-demo.pid")" 2>/dev/null || true
  rm -f "$RUN/ingest-demo.pid"
fi
VIGIL_INGEST_API_URL="$API" VIGIL_INGEST_API_KEY="$(cat "$INGEST_KEY_FILE")" \
  VIGIL_INGEST_LOOP=true start_service ingest .venv/bin/python -m vigil_ingest

cat <<TXT

Vigil is up.
  API:     http://127.0.0.1:$API_PORT   (OpenAPI docs at /docs and /redoc, readiness at /readyz)
  CLI:     export PATH="\$PWD/.venv/bin:\$PATH"; vigil login --url http://127.0.0.1:$API_PORT --key-file .stack/admin-key
  Key:     the admin key is in .stack/admin-key (mode 600); every /api/v1 route needs a key:
             KEY=\$(cat .stack/admin-key)
  Events:  curl -H "Authorization: Bearer \$KEY" 'http://127.0.0.1:$API_PORT/api/v1/events?camera_id=demo'
  Viewer:  curl -H "Authorization: Bearer \$KEY" -H 'content-type: application/json' \\
             -d '{"name": "wall screen", "role": "viewer"}' http://127.0.0.1:$API_PORT/api/v1/keys
  Cameras: ingest runs every enabled camera registered through /api/v1/cameras (demo included)
  Metrics: http://127.0.0.1:$API_PORT/metrics; ingest, inference, trainer, event sink, camera
           status, retention and loop on ports $VIGIL_INGEST_METRICS_PORT, $VIGIL_INFERENCE_METRICS_PORT, $VIGIL_TRAINER_METRICS_PORT, $VIGIL_API_SINK_METRICS_PORT, $VIGIL_API_CAMERA_STATUS_METRICS_PORT, $VIGIL_API_RETENTION_METRICS_PORT, $VIGIL_LOOP_METRICS_PORT (/metrics)
  Logs:    .stack/logs/
  Stop:    bash scripts/down.sh
TXT
