#!/usr/bin/env bash
# Start the T265 pose publisher (robot_runtime/t265/realsense_publisher.py) for the robot config.
#
#   deploy/launch_t265.sh            # run (systemd: go1o4-t265.service restarts it if it exits)
#   deploy/launch_t265.sh --check    # only check the interpreter, pyrealsense2, lcm and the config
#
# pyrealsense2 2.53.1 (the last release with T265 support) has wheels for CPython 3.8 and 3.10 only,
# so the publisher runs from its own small env (default: <repo>/.venv-t265, see deploy/README.md).
# Environment: GO1O4_CONFIG (robot YAML), GO1O4_T265_PYTHON (interpreter), GO1O4_T265_SERIAL.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CONFIG=${GO1O4_CONFIG:-$HERE/config/go1_default.yaml}
PY=${GO1O4_T265_PYTHON:-$REPO/.venv-t265/bin/python}

die() { echo "launch_t265: $*" >&2; exit 1; }

# yaml_get SECTION KEY: a scalar from a top-level section of the (simple, two-level) robot YAML.
yaml_get() {
  awk -v sec="$1:" -v key="$2:" '
    /^[^[:space:]#]/ { insec = ($1 == sec) }
    insec && $1 == key {
      sub(/^[[:space:]]*[^:]+:[[:space:]]*/, ""); sub(/[[:space:]]+#.*$/, ""); gsub(/^"|"$/, ""); print; exit
    }' "$CONFIG"
}

[ -r "$CONFIG" ] || die "config $CONFIG not found (set GO1O4_CONFIG)"
[ -x "$PY" ] || die "python $PY not found: create the T265 env (deploy/README.md, 'T265 publisher') or set GO1O4_T265_PYTHON"

LCM_URL=$(yaml_get t265 lcm_url)
CHANNEL=$(yaml_get t265 channel)
ROBOT=$(yaml_get robot name)
SERIAL=${GO1O4_T265_SERIAL:-$(yaml_get t265 serial)}
[ -n "$LCM_URL" ] || die "$CONFIG: t265.lcm_url is missing"
[ -n "$CHANNEL" ] || die "$CONFIG: t265.channel is missing"
[ -n "$ROBOT" ] || die "$CONFIG: robot.name is missing (it names the robot's T265 stream)"

"$PY" - <<'PYCHECK' || die "the interpreter $PY cannot run the publisher (see above)"
import sys
problems = []
if sys.version_info[:2] not in ((3, 8), (3, 10)):
    problems.append("Python %d.%d: pyrealsense2 2.53.1 needs CPython 3.8 or 3.10" % sys.version_info[:2])
for mod, hint in (("pyrealsense2", "pip install pyrealsense2==2.53.1 (and apt install libusb-1.0-0)"),
                  ("lcm", "pip install 'lcm>=1.5,<2'"), ("numpy", "pip install numpy")):
    try:
        __import__(mod)
    except ImportError as e:
        problems.append("cannot import %s (%s): %s" % (mod, e, hint))
for p in problems:
    sys.stderr.write("launch_t265: %s\n" % p)
sys.exit(1 if problems else 0)
PYCHECK

ARGS=(--robot "$ROBOT" --lcm-url "$LCM_URL" --channel "$CHANNEL")
if [ -n "$SERIAL" ]; then
  ARGS+=(--serial "$SERIAL")
fi

if [ "${1:-}" = "--check" ]; then
  echo "launch_t265: ok: $PY, publishing to $LCM_URL channel $CHANNEL/$ROBOT"
  exit 0
fi

cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m go1o4.robot_runtime.t265.realsense_publisher "${ARGS[@]}" "$@"
