"""The ``go1o4`` command. Each stage registers its subcommands in ``COMMANDS``.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; modules are
imported lazily so that ``go1o4 data ...`` never imports mujoco or torch.
"""
import argparse
import importlib
import os
import shlex
import sys
from typing import List, Optional

from go1o4 import __version__

# name -> (module, one-line help)
COMMANDS = {
    "sim-robot": ("go1o4.robot_runtime.simulated_go1.cli", "run the simulated Go1 answering the SDK's UDP protocol"),
    "stand": ("go1o4.robot_runtime.stand", "stand the robot from damping to the default pose through the SDK"),
    "demo": ("go1o4.robot_runtime.demo", "a short look: the simulated Go1 stands up from damping through the real SDK"),
    "pretrain": ("go1o4.sim_pretrain.cli_pretrain", "PPO pretraining of the Go1 policy in the vectorised MuJoCo env"),
    "export": ("go1o4.sim_pretrain.cli_export", "export a pretrain checkpoint to ONNX + YAML policy contract"),
    "calibrate": ("go1o4.sim_pretrain.calibration.cli",
                  "fit the simulated mattress + motor model to the real logs with the authors' policy (report)"),
    "import-policy": ("go1o4.sim_pretrain.cli_import_policy",
                      "walk-these-ways / Uni-O4 actor state_dict -> ONNX + YAML policy contract (checked)"),
    "evaluate": ("go1o4.sim_pretrain.cli_evaluate", "evaluate a policy (ONNX or checkpoint) in MuJoCo at fixed commands"),
    "data": ("go1o4.data.cli", "episode logs and datasets: ls, info, validate, import, build, plot, merge, split, export"),
    "session": ("go1o4.robot_runtime.session_cli", "run a policy on the Go1 (real or simulated): operator workflow, safety, logging"),
    "t265-echo": ("go1o4.robot_runtime.t265.echo", "check the T265 pose stream on LCM: rate, age, confidence, trunk velocity"),
    "offline": ("go1o4.offline_finetune.cli", "offline Uni-O4 fine-tuning on a dataset (BC ensemble, IQL Q/V, dynamics OPE, PPO)"),
    "online": ("go1o4.online_finetune.cli", "online PPO fine-tuning on the (simulated) Go1 through the runtime, resumable"),
    "pipeline": ("go1o4.experiments.pipeline_cli", "pretrained -> mattress data -> offline Uni-O4 -> online PPO -> eval"),
    "offline-evidence": ("go1o4.experiments.evidence", "offline one-step / Uni-O4 / IQL seeds evaluated on the simulated Go1 + AM-Q quality"),
    "ope-study": ("go1o4.experiments.ope_study", "OPE gate study: AM-Q / FQE accept decisions vs the simulated return (paper Fig. 6a)"),
    "ope-recipe": ("go1o4.experiments.ope_recipe", "AM-Q / FQE / model-return decisions on a finished pipeline's policies vs the simulated return"),
}


#: the top-level help, by pipeline stage (commands not listed here appear under "other")
STAGES = (
    ("1 simulation pretraining", ("pretrain", "export", "evaluate")),
    ("2 robot: real or simulated Go1", ("sim-robot", "session", "stand", "t265-echo", "demo")),
    ("3 data: episode logs and datasets", ("data",)),
    ("4 offline fine-tuning", ("offline", "offline-evidence", "ope-study")),
    ("5 online fine-tuning and the whole recipe", ("online", "pipeline", "ope-recipe")),
)
USAGE = """usage: go1o4 COMMAND [ARGUMENTS]     go1o4 COMMAND --help: that command's arguments

Unitree Go1 from simulation to real-world Uni-O4 fine-tuning (Lei et al., ICLR 2024).
First steps: `make demo` runs the whole recipe on the simulated Go1 in a few minutes;
`go1o4 sim-robot` in one terminal and `go1o4 session --robot-ip 127.0.0.1` in another
drive the simulated robot like a real one (README, "Quick reference").
"""


def format_help() -> str:
    """The top-level help: commands grouped by pipeline stage."""
    lines = [USAGE]
    for title, names in STAGES + (("other", tuple(n for n in COMMANDS if not any(n in g for _, g in STAGES))),):
        names = [n for n in names if n in COMMANDS]
        if names:
            lines.append("%s:" % title)
            lines += ["  %-17s %s" % (n, COMMANDS[n][1]) for n in names]
            lines.append("")
    lines.append("options:\n  -h, --help        this help\n  --version         the go1o4 version")
    return "\n".join(lines) + "\n"


def extra_args(name: str) -> List[str]:
    """Arguments appended from ``GO1O4_ARGS_<COMMAND>`` (e.g. ``GO1O4_ARGS_PRETRAIN="--iterations 1"``): how the
    README's commands run as written with test budgets (tests/test_quick_reference.py). Unset: nothing."""
    return shlex.split(os.environ.get("GO1O4_ARGS_" + name.upper().replace("-", "_"), ""))


def _optional(name: str, module: str, help_text: str) -> None:
    COMMANDS.setdefault(name, (module, help_text))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="go1o4", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version="go1o4 %s" % __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, add_help=False)
        sp.set_defaults(_module=module)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(format_help())
        return 0
    if argv[0] == "--version":
        parser.parse_args(argv)
    name = argv[0]
    if name not in COMMANDS:
        parser.error("unknown command %r (choose from %s)" % (name, ", ".join(COMMANDS)))
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        sys.stderr.write("go1o4 %s: cannot import %s (%s). Is the right extra installed? "
                         "See README (make venv).\n" % (name, module_name, e))
        return 2
    sp = argparse.ArgumentParser(prog="go1o4 %s" % name, description=help_text)
    module.add_arguments(sp)
    args = sp.parse_args(argv[1:] + extra_args(name))
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback (trainers save their checkpoint before this)
        sys.stderr.write("\ngo1o4 %s: interrupted\n" % name)
        return 130


if __name__ == "__main__":
    sys.exit(main())
