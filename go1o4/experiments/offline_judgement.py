"""What can be known offline about a policy trained on logs, before any robot runs it (issue 17, item 4).

For an offline run (``go1o4 offline`` / a pipeline offline stage) and the policy it started from, on the run's
held-out episodes (never seen by BC, Q/V, the model or the policy step):

* held-out log-likelihood of the logged actions (nats per transition) under each policy with its own std;
* AM-Q (the paper's rule, from held-out start states) and FQE (fitted on the held-out episodes, a head per
  policy, :func:`go1o4.experiments.ope_study.evaluator_scores`) of the start and of the trained policy;
* the action change on held-out states: |mu_new(s) - mu_start(s)| per joint, in units of the start's std;
* the files ready for ``go1o4 session`` (the run's ``policy.onnx`` + ``policy.yaml``, checked by loading).

Behaviour on the simulated mattress comes from the pipeline's own evaluation of the same files.
"""
import os
from typing import Any, Dict

import numpy as np

EVALUATORS = {"am_q": {"method": "am_q", "falls": "alive_only"}, "fqe": {"method": "fqe"}}
DONE = "judgement.json"


def action_change(start, trained, obs) -> Dict[str, Any]:
    """Mean |mu_trained - mu_start| per joint on ``obs``, raw and in units of the start policy's std (pure)."""
    import torch

    with torch.no_grad():
        d = (trained(obs) - start(obs)).abs().mean(0).cpu().numpy().astype(np.float64)
        std = start.log_std.exp().reshape(-1).detach().cpu().numpy().astype(np.float64)
    return {"mean_abs": float(d.mean()), "per_joint": d.tolist(), "in_start_std": float((d / std).mean()),
            "max_in_start_std": float((d / std).max())}


def judge(offline_dir: str, start_policy: str, dataset, fqe_steps: int = 5000, progress: bool = False) -> Dict[str, Any]:
    """The judgement of ``<offline_dir>/policy.onnx`` against ``start_policy``; cached in ``judgement.json``."""
    import json

    import torch

    from go1o4.config import load_config
    from go1o4.data.log_format import atomic_write_json
    from go1o4.experiments.ope_study import evaluator_scores
    from go1o4.offline_finetune.config import OfflineConfig
    from go1o4.offline_finetune.ope import pooled_score, start_states
    from go1o4.offline_finetune.pretrained import load_pretrained_actor
    from go1o4.offline_finetune.train import OfflineRun
    from go1o4.policy_contract import file_sha256
    from go1o4.rl.networks import GaussianActor
    from go1o4.robot_runtime.rollout import load_checked_policy

    policy = os.path.join(offline_dir, "policy.onnx")
    key = [file_sha256(policy), file_sha256(start_policy), fqe_steps]
    target = os.path.join(offline_dir, DONE)
    if os.path.exists(target):
        with open(target) as f:
            doc = json.load(f)
        if doc.get("key") == key:
            return doc
    load_checked_policy(policy)  # what go1o4 session will load: contract, shapes, a smoke run
    run = OfflineRun(load_config(OfflineConfig, os.path.join(offline_dir, "config.yaml"), []), dataset, offline_dir,
                     progress=progress)
    start, trained = load_pretrained_actor(start_policy), load_pretrained_actor(policy)
    ens = GaussianActor.stack([start, trained]).to(run.device)
    obs, act = run.val["observations"], run.val["actions"]
    with torch.no_grad():
        ll = ens.log_prob(obs, act).mean(-1).cpu().numpy()
    starts = start_states(obs, run.cfg.ope.num_starts, run.cfg.ope.seed)
    scores = {n: pooled_score(*v).tolist() for n, v in evaluator_scores(run, ens, EVALUATORS, fqe_steps, starts).items()}
    doc = {"key": key, "policy": os.path.abspath(policy), "contract": os.path.abspath(policy[:-5] + ".yaml"),
           "start_policy": os.path.abspath(start_policy), "algo": run.cfg.algo,
           "val_transitions": len(run.val_tr), "val_episodes": int(run.val_tr.num_episodes),
           "log_likelihood": {"start": float(ll[0]), "trained": float(ll[1])},
           "am_q": {"start": scores["am_q"][0], "trained": scores["am_q"][1]},
           "fqe": {"start": scores["fqe"][0], "trained": scores["fqe"][1]},
           "action_change": action_change(start.to(run.device), trained.to(run.device), obs),
           "critic_check": run.summary().get("critic_check")}
    atomic_write_json(target, doc)
    return doc


def markdown_rows(judged: Dict[str, Dict[str, Any]]) -> list:
    """Table rows: one per judged policy (name -> :func:`judge` result)."""
    lines = ["| policy | held-out log-lik start → trained | AM-Q start → trained | FQE start → trained "
             "| action change (start std, mean / max joint) | Q/MC ratio | files |", "|---" * 7 + "|"]
    for name, d in judged.items():
        ac, cc = d["action_change"], d.get("critic_check") or {}
        lines.append("| %s | %.2f → %.2f | %.3f → %.3f | %.3f → %.3f | %.3f / %.3f | %s | `%s` |" % (
            name, d["log_likelihood"]["start"], d["log_likelihood"]["trained"], d["am_q"]["start"],
            d["am_q"]["trained"], d["fqe"]["start"], d["fqe"]["trained"], ac["in_start_std"], ac["max_in_start_std"],
            "%.3f" % cc["q_mc_ratio"] if cc.get("q_mc_ratio") is not None else "-", os.path.basename(d["policy"])))
    return lines
