#!/usr/bin/env bash
# Start a go1o4 runtime session on the real Go1 with the robot config, after preflight checks.
#
#   deploy/launch_session.sh [extra go1o4 session arguments]
#   deploy/launch_session.sh --check    # only the preflight checks
#
# Environment: GO1O4_CONFIG (robot YAML, default deploy/config/go1_default.yaml), GO1O4_POLICY
# (ONNX policy; its contract YAML sits beside it), GO1O4_PYTHON (runtime interpreter),
# GO1O4_SKIP_NETWORK_CHECK=1 (e.g. against the simulated Go1 on 127.0.0.1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CONFIG=${GO1O4_CONFIG:-$HERE/config/go1_default.yaml}
POLICY=${GO1O4_POLICY:-$REPO/sim_pretrain/policies/go1_flat.onnx}
PY=${GO1O4_PYTHON:-$REPO/.venv/bin/python}

die() { echo "launch_session: $*" >&2; exit 1; }
warn() { echo "launch_session: warning: $*" >&2; }

yaml_get() {
  awk -v sec="$1:" -v key="$2:" '
    /^[^[:space:]#]/ { insec = ($1 == sec) }
    insec && $1 == key {
      sub(/^[[:space:]]*[^:]+:[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, ""); gsub(/^"|"$/, ""); print; exit
    }' "$CONFIG"
}

[ -r "$CONFIG" ] || die "config $CONFIG not found (set GO1O4_CONFIG)"
[ -x "$PY" ] || die "python $PY not found (make venv, or set GO1O4_PYTHON)"
[ -r "$POLICY" ] || die "policy $POLICY not found (set GO1O4_POLICY)"

ROBOT_IP=$(yaml_get robot robot_ip)
LOCAL_IP=$(yaml_get robot local_ip)
LOG_DIR=$(yaml_get logging log_dir)
[ -n "$ROBOT_IP" ] || die "$CONFIG: robot.robot_ip is missing"

if [ "${GO1O4_SKIP_NETWORK_CHECK:-0}" != "1" ]; then
  # The robot network must be on a wired interface of this computer (deploy/network.md).
  if ! ip -4 -o addr show 2>/dev/null | grep -q "inet ${LOCAL_IP%.*}\."; then
    die "no interface on ${LOCAL_IP%.*}.0/24: connect the Ethernet cable and set a static address (deploy/network.md)"
  fi
  if ! ping -c 1 -W 1 "$ROBOT_IP" >/dev/null 2>&1; then
    die "the Go1 at $ROBOT_IP does not answer ping: is it powered on and the cable in? (deploy/network.md)"
  fi
  if ip -o link show 2>/dev/null | grep -E "^[0-9]+: wl" | grep -q "state UP"; then
    warn "a WiFi interface is up: make sure the route to $ROBOT_IP uses the wired one ('ip route get $ROBOT_IP')"
  fi
fi

if [ -n "$LOG_DIR" ]; then
  EXISTING=$LOG_DIR  # the log directory, or its nearest existing parent (the runtime creates it)
  while [ ! -d "$EXISTING" ]; do EXISTING=$(dirname "$EXISTING"); done
  [ -w "$EXISTING" ] || die "log directory $LOG_DIR cannot be written ($EXISTING is not writable; logging.log_dir)"
  AVAIL_MB=$(df -Pm "$EXISTING" | awk 'NR == 2 { print $4 }')
  if [ "${AVAIL_MB:-0}" -lt 1024 ]; then
    warn "only ${AVAIL_MB} MB free in $LOG_DIR (an hour of logging is about 0.35 GB before compression)"
  fi
fi

if [ "${1:-}" = "--check" ]; then
  echo "launch_session: preflight ok: robot $ROBOT_IP, policy $POLICY, config $CONFIG"
  exit 0
fi

cd "$REPO"
exec "$PY" -m go1o4.cli session --config "$CONFIG" --policy "$POLICY" --robot-ip "$ROBOT_IP" "$@"
