"""``go1o4 t265-echo``: check the T265 stream the runtime will see (rate, age, confidence, trunk velocity).

    go1o4 t265-echo --config deploy/config/go1_default.yaml --duration 10

Reads the ``t265`` section and ``robot.name`` of the robot config, subscribes like the runtime does
(``T265_POSE/<robot>``, identity checked) and prints one line per ``--every`` seconds; ``--robot``
names another robot, e.g. ``--robot sim-go1-8007`` for the ``go1o4 sim-robot`` on port 8007. Exit status 0 if every printed reading was ok, 1 otherwise.
"""
import sys
import time

from go1o4.robot_runtime.t265.source import T265Config, T265Source

from go1o4.config import ConfigError, from_dict, load_yaml


def add_arguments(p) -> None:
    p.add_argument("--config", default="deploy/config/go1_default.yaml", help="robot YAML (its t265 section)")
    p.add_argument("--lcm-url", default=None, help="override t265.lcm_url")
    p.add_argument("--channel", default=None, help="override t265.channel (the base name)")
    p.add_argument("--robot", default=None, help="override robot.name (whose stream to check)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds to listen (default %(default)s)")
    p.add_argument("--every", type=float, default=0.5, help="print period, s (default %(default)s)")


def format_reading(r, rate_hz: float) -> str:
    status = "ok" if r.ok else r.reason
    if r.sample is None:
        return "%-20s no sample yet" % status
    v, w = r.v_body, r.omega_body
    return ("%-20s %6.1f Hz  age %6.1f ms  conf %d  v_body [%+.2f %+.2f %+.2f] m/s  omega_z %+.2f rad/s"
            % (status, rate_hz, r.age_s * 1e3, r.confidence, v[0], v[1], v[2], w[2]))


def run(args) -> int:
    try:
        doc = load_yaml(args.config)
        section, robot = doc.get("t265", {}), args.robot or (doc.get("robot") or {}).get("name", "")
        if args.lcm_url:
            section["lcm_url"] = args.lcm_url
        if args.channel:
            section["channel"] = args.channel
        cfg = from_dict(T265Config, section, "%s: t265" % args.config)
    except ConfigError as e:
        sys.stderr.write("t265-echo: %s\n" % e)
        return 2
    all_ok, printed = True, 0
    with T265Source(cfg, robot=robot) as src:
        print("listening to robot %s's T265 on %s channel %s" % (robot, cfg.lcm_url, src.channel), flush=True)
        end = time.monotonic() + args.duration
        last_n, last_t = 0, time.monotonic()
        while time.monotonic() < end:
            time.sleep(args.every)
            now = time.monotonic()
            n = src.samples_received
            r = src.latest(now)
            print(format_reading(r, (n - last_n) / max(now - last_t, 1e-9)), flush=True)
            last_n, last_t, printed = n, now, printed + 1
            all_ok = all_ok and r.ok
        if src.decode_errors:
            print("%d messages on %s could not be decoded: %s" % (src.decode_errors, src.channel, src.last_error))
        if src.refused:
            print("%d samples refused: %s" % (src.refused, src.refusal))
    return 0 if all_ok and printed else 1
