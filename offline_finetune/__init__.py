"""Stage 4: Uni-O4 offline fine-tuning (sim-free: never imports mujoco or isaacgym).

One file per piece (paper equation numbers in each docstring):
``bc`` ensemble BC with the disagreement term (Eq. 6), ``value`` IQL-style Q/V (Eq. 2-3),
``dynamics`` probabilistic dynamics ensemble on the 290 history (Eq. 5), ``ope`` AM-Q,
``uni_o4`` OPE-gated multi-step PPO per member (Eq. 7-9, 25) and the one-step baseline,
``iql`` the AWR baseline, ``train`` the resumable pipeline, ``cli`` the ``go1o4 offline`` command.

Outputs of a run directory (``go1o4 offline --out DIR``), for online fine-tuning and deployment:
``policy.onnx`` + ``policy.yaml`` (selected member, contract), ``policy_actor.pt`` (its GaussianActor
state_dict), ``value_v.pt`` / ``value_q.pt`` (Critic state_dicts; sizes in ``config.yaml`` ``value``),
``checkpoint.pt`` (all state_dicts), ``summary.json``, ``metrics.json``, ``report.md``, ``tb/``.
"""

if __name__ != "go1o4.offline_finetune":  # installed as go1o4.offline_finetune (pyproject package-dir); never a bare top-level package
    raise ImportError("this folder is the package go1o4.offline_finetune; import it by that name")
