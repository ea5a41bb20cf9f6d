"""What several experiments share: paths of shipped files, and lending finished critics between offline runs."""
import json
import os

from go1o4.experiments.config import REPO

CRITIC_KEYS = ("seed", "val_fraction", "value.", "dynamics.")  # what the value/dynamics stages depend on (not the OPE)


def resolve(path: str) -> str:
    """A path as given, else relative to the repository (shipped files such as the pretrained policy)."""
    if os.path.exists(path) or os.path.isabs(path):
        return os.path.abspath(path)
    return os.path.join(REPO, path)


def reuse_critics(run, src_dir: str) -> bool:
    """Give ``run`` (an OfflineRun before its value stage) the finished value and dynamics stages of the run in
    ``src_dir`` if that run had the same seed, split and value/dynamics configs and the same data (its
    value normaliser's statistics). Returns whether it did."""
    import torch

    from go1o4 import config as cfgmod
    from go1o4.offline_finetune.train import CHECKPOINT, _flatten

    path = os.path.join(src_dir, CHECKPOINT)
    if "value" in run.completed or not os.path.exists(path) or os.path.abspath(src_dir) == os.path.abspath(run.out):
        return False
    old = _flatten(cfgmod.load_yaml(os.path.join(src_dir, "config.yaml")))
    new = _flatten(cfgmod.to_dict(run.cfg))
    if any(old.get(k) != new.get(k) for k in set(old) | set(new) if k.startswith(CRITIC_KEYS) or k in CRITIC_KEYS):
        return False
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not {"value", "dynamics"} <= set(ckpt["completed"]):
        return False
    theirs = ckpt["modules"]["value"]["v"]
    if any("normalizer" in k and not torch.equal(v, theirs[k]) for k, v in run.value.v.state_dict().items()):
        return False  # other data
    run.value.load_state_dict(ckpt["modules"]["value"])
    run.dynamics.load_state_dict(ckpt["modules"]["dynamics"])
    with open(os.path.join(src_dir, "metrics.json")) as f:
        metrics = json.load(f)
    for stage in ("value", "dynamics"):
        run.states[stage], run.metrics[stage] = ckpt["stages"][stage], metrics[stage]
        run.completed.append(stage)
    run.states["critics_from"] = os.path.abspath(src_dir)
    run.save("dynamics")
    return True


