"""``go1o4 data``: list, validate, import, build, plot, merge/split and export episode logs and datasets.

    go1o4 data import shared/data/uni_o4_go1_mattress_2023_08 logs/real
    go1o4 data ls logs/real            # per session;  `info` lists every episode
    go1o4 data validate logs/
    go1o4 data build logs/real -o mattress.h5 --reward uni_o4_body
    go1o4 data split mattress.h5 --val-fraction 0.1 --seed 0
    go1o4 data plot logs/real --episode 3 -o ep.png ; go1o4 data plot mattress.h5 -o hist.png
    go1o4 data export mattress.h5 --format d4rl -o mattress_d4rl.hdf5
    go1o4 data export mattress.h5 --format minari -o ~/.minari/datasets     # minari.load_dataset("go1o4/mattress-v0")
    go1o4 data export logs/real --format lerobot -o mattress_lerobot         # LeRobotDataset(..., root=...)
    go1o4 data view logs/real --episode 3                                   # rerun .rrd, one timeline
Every command accepts our runtime logs and the raw Uni-O4 ``.hdf5`` files alike.
"""
import argparse
import os
import sys
from typing import List, Optional

import numpy as np
from go1o4.data.log_format import LogReadError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for name, help_text in (("ls", "sessions: episodes, steps, duration, terrain, policy, return, falls"),
                            ("info", "every episode: steps, duration, end, return, status")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("paths", nargs="+", help="session folders, episode files or folders holding them")
        p.add_argument("--reward", default=None, help="recompute the return with this reward (default: logged)")
    p = sub.add_parser("validate", help="check logs; exit 1 on errors")
    p.add_argument("paths", nargs="+", help="session folders, episode files or folders holding them")
    p = sub.add_parser("import", help="real Uni-O4 logs -> our episode format")
    p.add_argument("src", help="folder of the real Uni-O4 Go1 logs (../shared/data/uni_o4_go1_mattress_2023_08)")
    p.add_argument("dst", help="output folder (one session per source file)")
    p.add_argument("--reward", default="uni_o4_world", help="reward to recompute (default %(default)s)")
    p = sub.add_parser("build", help="episodes -> training dataset file (HDF5)")
    p.add_argument("paths", nargs="+", help="session folders or episode files")
    p.add_argument("-o", "--output", required=True, help="dataset file to write (.h5)")
    p.add_argument("--config", default=None, help="YAML with BuildConfig fields")
    p.add_argument("--reward", default=None, help="reward of the dataset, a data.rewards name (default: uni_o4_world; logged: the reward the runtime logged)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a BuildConfig field (repeatable)")
    p.add_argument("--compress", action="store_true", help="gzip the dataset file (~6x smaller, slower)")
    p = sub.add_parser("plot", help="PNG of one episode (logs) or of a dataset file (histograms)")
    p.add_argument("path", help="session folder, episode file or dataset file")
    p.add_argument("-o", "--output", required=True, help="PNG to write")
    p.add_argument("--episode", default="0", help="index or name (session/episode_00003)")
    p.add_argument("--reward", default=None, help="recompute the reward with this one (default: logged)")
    p.add_argument("--window", default=None, metavar="START:END", help="zoom to this time range in seconds")
    p = sub.add_parser("view", help="one episode -> rerun recording (.rrd) on one timeline; opens the viewer if it can")
    p.add_argument("path", help="a log folder or episode file")
    p.add_argument("--episode", default="0", help="index or name (session/episode_00003)")
    p.add_argument("-o", "--output", default=None, help=".rrd file (default: <episode>.rrd in the current folder)")
    p.add_argument("--reward", default=None, help="recompute the reward with this one (default: logged)")
    p.add_argument("--no-open", action="store_true", help="only write the file")
    p = sub.add_parser("merge", help="merge dataset files")
    p.add_argument("inputs", nargs="+", help="dataset files to merge")
    p.add_argument("-o", "--output", required=True, help="merged dataset file")
    p = sub.add_parser("split", help="split a dataset file by episode into <out>.train.h5 / <out>.val.h5")
    p.add_argument("input", help="dataset file to split")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of episodes for validation (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default %(default)s)")
    p.add_argument("-o", "--output", default=None, help="prefix (default: input without .h5)")
    p = sub.add_parser("export", help="dataset file or logs -> D4RL flat HDF5, Minari dataset or LeRobot dataset")
    p.add_argument("paths", nargs="+", help="a dataset file (d4rl, minari) or episode log folders/files")
    p.add_argument("--format", choices=("d4rl", "minari", "lerobot"), required=True,
                   help="D4RL flat HDF5 (d3rlpy), a Minari dataset, or a LeRobot v3.0 dataset")
    p.add_argument("-o", "--output", required=True,
                   help="d4rl: the .hdf5 file; minari: the datasets root (MINARI_DATASETS_PATH) that receives "
                        "<dataset-id>; lerobot: the new dataset folder")
    p.add_argument("--reward", default=None, help="when building from logs (lerobot: default the logged reward)")
    p.add_argument("--dataset-id", default="go1o4/mattress-v0", help="Minari dataset id / LeRobot repo id")


def _is_dataset_file(path: str) -> bool:
    import h5py
    from go1o4.data.dataset import DATASET_FORMAT

    if not os.path.isfile(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("format", "")) == DATASET_FORMAT
    except OSError:
        return False


def _load_or_build(paths: List[str], reward: Optional[str]):
    from go1o4.data.dataset import BuildConfig, TransitionDataset, build_dataset

    if len(paths) == 1 and _is_dataset_file(paths[0]):
        return TransitionDataset.load(paths[0])
    return build_dataset(paths, BuildConfig(reward=reward or "uni_o4_world"), progress=True)


def _return(ep, reward: Optional[str]) -> float:
    from go1o4.data.rewards import compute_reward

    name = reward or ("logged" if "reward" in ep.steps else "uni_o4_world")
    try:
        return float(np.nansum(compute_reward(name, ep.steps, dt=1.0 / ep.rate_hz)))
    except ValueError:
        return float("nan")


def _ls(args, per_episode: bool) -> int:
    from go1o4.data.reader import open_dataset

    ds = open_dataset(args.paths)
    for p, problem in ds.problems:
        print("ERROR %s: %s" % (p, problem), file=sys.stderr)
    rows, bad = {}, 0
    if per_episode:
        print("%-40s %7s %8s %-10s %-14s %9s %-8s" % ("episode", "steps", "dur_s", "end", "reason", "return", "status"))
    for ep in _iter(ds):
        if ep is None:
            bad += 1
            continue
        ret, dur = _return(ep, args.reward), ep.num_steps / ep.rate_hz
        if per_episode:
            print("%-40s %7d %8.1f %-10s %-14s %9.3f %-8s" % (ep.name, ep.num_steps, dur, ep.end, ep.reason[:14],
                                                              ret, ep.status))
        r = rows.setdefault(ep.name.split("/")[0], {"episodes": 0, "steps": 0, "dur": 0.0, "ret": 0.0, "falls": 0,
                                                     "terrain": ep.session.get("terrain"),
                                                     "policy": ep.session.get("policy_hash")})
        r["episodes"] += 1
        r["steps"] += ep.num_steps
        r["dur"] += dur
        r["ret"] += ret
        r["falls"] += int(ep.terminal)
    if not per_episode:
        print("%-24s %4s %7s %8s %-16s %-12s %9s %5s" % ("session", "eps", "steps", "dur_s", "terrain", "policy",
                                                         "return", "falls"))
        for sid, r in rows.items():
            print("%-24s %4d %7d %8.1f %-16s %-12s %9.3f %5d" % (sid, r["episodes"], r["steps"], r["dur"],
                                                                 str(r["terrain"])[:16], str(r["policy"])[:12],
                                                                 r["ret"], r["falls"]))
    tot = {k: sum(r[k] for r in rows.values()) for k in ("episodes", "steps", "dur", "falls")}
    print("total: %d session(s), %d episode(s), %d steps, %.1f min, %d fall(s), %d unreadable"
          % (len(rows), tot["episodes"], tot["steps"], tot["dur"] / 60.0, tot["falls"], bad))
    return 1 if bad or ds.problems else 0


def _iter(ds):
    for ref in ds.episodes:
        try:
            yield ref.load()
        except LogReadError as e:
            print("ERROR %s" % e, file=sys.stderr)
            yield None


def _window(text: Optional[str]):
    if text is None:
        return None
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise ValueError("--window takes START:END in seconds, e.g. 10:20 (got %r)" % text)
    if hi <= lo:
        raise ValueError("--window %s: END must be after START" % text)
    return lo, hi


def _iter_ok(paths: List[str]):
    """Readable episodes of ``paths``; unreadable ones are reported on stderr and skipped."""
    from go1o4.data.reader import open_dataset

    return (ep for ep in _iter(open_dataset(paths)) if ep is not None)


def _pick_episode(path: str, which: str):
    from go1o4.data.reader import open_dataset

    ds = open_dataset(path)
    if not ds.episodes:
        raise LogReadError(path, "no episode found")
    if which.isdigit():
        i = int(which)
        if i >= len(ds.episodes):
            raise LogReadError(path, "episode index %d out of range (%d episodes)" % (i, len(ds.episodes)))
        return ds.episodes[i].load()
    for ref in ds.episodes:
        if ref.name == which or ref.name.endswith("/" + which):
            return ref.load()
    raise LogReadError(path, "no episode named %r" % which)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (LogReadError, ValueError, OSError) as e:
        print("go1o4 data %s: %s" % (args.action, e), file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    a = args.action
    if a in ("ls", "info"):
        return _ls(args, per_episode=(a == "info"))
    if a == "validate":
        from go1o4.data.reader import open_dataset

        report = open_dataset(args.paths).validate(progress=True)
        print(report.format())
        return 0 if report.ok else 1
    if a == "import":
        from go1o4.data.import_uni_o4 import import_uni_o4

        s = import_uni_o4(args.src, args.dst, reward=args.reward)
        print("imported %d episode(s), %d steps, %d fall(s) into %d session(s) under %s"
              % (s["episodes"], s["steps"], s["falls"], s["sessions"], args.dst))
        for msg in s["skipped"]:
            print("SKIPPED %s" % msg, file=sys.stderr)
        return 1 if s["skipped"] else 0
    if a == "build":
        from go1o4.data.dataset import BuildConfig, build_dataset

        from go1o4.config import load_config

        overrides = list(args.overrides) + (["reward=%s" % args.reward] if args.reward else [])
        cfg = load_config(BuildConfig, args.config, overrides)
        ds = build_dataset(args.paths, cfg, progress=True)
        ds.save(args.output, compression="gzip" if args.compress else None)
        for msg in ds.meta.get("load_errors", []):
            print("SKIPPED %s" % msg, file=sys.stderr)
        for msg in ds.meta.get("skipped_episodes", []):
            print("SKIPPED %s" % msg, file=sys.stderr)
        print("%s: %d transitions from %d episode(s) (%d terminal, %d timeouts), reward %s"
              % (args.output, len(ds), ds.num_episodes, int(ds.terminals.sum()), int(ds.timeouts.sum()), cfg.reward))
        m = ds.meta  # the accounting: every step that did not become a transition, and why
        print("accounting: %d steps read; dropped %d stale start step(s), %d non-finite step(s), quarantined %d "
              "out-of-range step(s) (data/README.md ranges); %d episode(s) unreadable, %d too short; %d last steps "
              "(no next observation)" % (m["steps"] + m["dropped_stale_steps"] + m["dropped_nonfinite_steps"]
                                         + m["quarantined_out_of_range_steps"], m["dropped_stale_steps"],
                                         m["dropped_nonfinite_steps"], m["quarantined_out_of_range_steps"],
                                         len(m.get("load_errors", [])), m["skipped_short_episodes"], ds.num_episodes))
        return 1 if ds.meta.get("load_errors") else 0
    if a == "plot":
        from go1o4.data.plots import plot_dataset, plot_episode

        if _is_dataset_file(args.path):
            from go1o4.data.dataset import TransitionDataset

            plot_dataset(TransitionDataset.load(args.path), args.output)
        else:
            plot_episode(_pick_episode(args.path, args.episode), args.output, args.reward, _window(args.window))
        print(args.output)
        return 0
    if a == "view":
        from go1o4.data.view import open_viewer, write_rrd

        ep = _pick_episode(args.path, args.episode)
        out = args.output or (ep.name or "episode").replace("/", "_") + ".rrd"
        info = write_rrd(ep, out, args.reward)
        print("%s: %d steps, %d series, %d events" % (out, ep.num_steps, len(info["entities"]) - 1, info["events"]))
        if args.no_open or not open_viewer(out):
            print("open it with: rerun %s   (rerun-sdk's viewer; or drag it into https://rerun.io/viewer)" % out)
        return 0
    if a == "merge":
        from go1o4.data.dataset import TransitionDataset, merge_datasets

        ds = merge_datasets([TransitionDataset.load(p) for p in args.inputs])
        ds.save(args.output)
        print("%s: %d transitions, %d episodes" % (args.output, len(ds), ds.num_episodes))
        return 0
    if a == "split":
        from go1o4.data.dataset import TransitionDataset

        prefix = args.output or (args.input[:-3] if args.input.endswith(".h5") else args.input)
        train, val = TransitionDataset.load(args.input).split(args.val_fraction, args.seed)
        for part, name in ((train, "train"), (val, "val")):
            part.save("%s.%s.h5" % (prefix, name))
            print("%s.%s.h5: %d transitions, %d episodes" % (prefix, name, len(part), part.num_episodes))
        return 0
    if a == "export":
        from go1o4.data.export import export_d4rl, export_minari

        if args.format == "lerobot":
            from go1o4.data.export_lerobot import export_lerobot

            if len(args.paths) == 1 and _is_dataset_file(args.paths[0]):
                raise ValueError("the LeRobot export reads episode logs (per-step T265 velocity, commands), "
                                 "not a dataset file")
            out = export_lerobot(_iter_ok(args.paths), args.output, args.dataset_id, reward=args.reward or "logged")
        else:
            ds = _load_or_build(args.paths, args.reward)
            out = (export_d4rl(ds, args.output) if args.format == "d4rl"
                   else export_minari(ds, args.output, args.dataset_id))
        for k, v in out.items():
            print("%-12s %s" % (k + ":", v))
        return 0
    raise ValueError("unknown action %r" % a)
