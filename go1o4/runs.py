"""Training run folders the rsl_rl way: one timestamped folder per run, resume by folder, optional W&B.

    <root>/<YYYY-mm-dd_HH-MM-SS>[_<run name>]/   config.yaml, command.txt, TensorBoard events, model_*.pt

A new run never writes into an existing run's folder (so two runs' TensorBoard events never mix); ``--resume``
takes a run folder (its latest checkpoint) or a checkpoint file and continues in that checkpoint's folder.
"""
import os
import re
import time
from typing import Any, Dict, Optional, Tuple


class RunError(ValueError):
    """A run folder or checkpoint cannot be used (the message says why)."""


def new_run_dir(root: str, run_name: Optional[str] = None, now: Optional[float] = None) -> str:
    """Create and return ``<root>/<timestamp>[_<run_name>]`` (``_2``, ``_3``... if started within one second)."""
    if run_name is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", run_name):
        raise RunError("--run-name %r: use letters, digits, '_', '-' or '.'" % run_name)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(time.time() if now is None else now))
    base = os.path.join(root, stamp + ("_" + run_name if run_name else ""))
    path, k = base, 1
    while True:
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            k += 1
            path = "%s_%d" % (base, k)


def _iteration(name: str) -> int:
    m = re.fullmatch(r"model_(\d+)\.pt", name)
    return int(m.group(1)) if m else -1


def latest_checkpoint(run_dir: str) -> str:
    """The newest checkpoint of a run: ``model_last.pt`` (written at every save, time-based ones and Ctrl-C
    included), else the highest ``model_<N>.pt``."""
    if not os.path.isdir(run_dir):
        raise RunError("%s: no such run folder" % run_dir)
    names = os.listdir(run_dir)
    if "model_last.pt" in names:
        return os.path.join(run_dir, "model_last.pt")
    numbered = sorted((n for n in names if _iteration(n) >= 0), key=_iteration)
    if not numbered:
        raise RunError("%s holds no checkpoint (model_*.pt)" % run_dir)
    return os.path.join(run_dir, numbered[-1])


def resolve_run(out_root: Optional[str], resume: Optional[str], run_name: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """(run folder, checkpoint to load or None) for ``--out ROOT [--run-name N]`` or ``--resume RUN|CKPT``."""
    if resume:
        ckpt = latest_checkpoint(resume) if os.path.isdir(resume) else resume
        if not os.path.isfile(ckpt):
            raise RunError("--resume %s: no such checkpoint or run folder" % resume)
        return os.path.dirname(os.path.abspath(ckpt)), ckpt
    if not out_root:
        raise RunError("--out ROOT is needed for a new run (or --resume RUN_FOLDER)")
    return new_run_dir(out_root, run_name), None


def start_wandb(run_dir: str, config: Dict[str, Any], project: str = "go1o4", job: str = "pretrain"):
    """Mirror the run's TensorBoard scalars to Weights & Biases (``--wandb``); imported only when asked."""
    try:
        import wandb
    except ImportError:
        raise RunError("--wandb needs the wandb package (pip install wandb); it is never required otherwise")
    return wandb.init(project=project, job_type=job, name=os.path.basename(run_dir), dir=run_dir, config=config,
                      sync_tensorboard=True, resume="allow", id=re.sub(r"[^A-Za-z0-9_-]", "-", os.path.basename(run_dir)))
