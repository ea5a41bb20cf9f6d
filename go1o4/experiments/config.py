"""Dataclass config of the online -> offline -> online pipeline (``go1o4 pipeline``, go1o4.config YAML).

Its YAML presets stay with the online stage's: ``online_finetune/configs/{quick,medium,full}.yaml``.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from go1o4 import contract as C
from go1o4.offline_finetune.algorithms import ALGORITHMS
from go1o4.online_finetune.config import EpisodeCommandConfig, EvalConfig, IQLOnlineConfig, OnlineConfig


def pipeline_algorithms() -> List[str]:
    """Offline algorithms the pipeline trains and continues online (offline_finetune.algorithms ``online``)."""
    return [a.name for a in ALGORITHMS.values() if a.online]


def pipeline_methods() -> List[str]:
    """Every method the pipeline can compare: the pretrained policy, each algorithm offline and offline -> online,
    PPO online from the pretrained policy (no offline stage), and the offline-only algorithms (one_step)."""
    return (["pretrained"] + [a + s for a in pipeline_algorithms() for s in ("_offline", "_online")]
            + ["ppo_online"] + [a + "_offline" for a in offline_only_algorithms()])


def offline_only_algorithms() -> List[str]:
    """Registered offline algorithms that no online stage continues (one_step): offline rows of the table only."""
    return [a.name for a in ALGORITHMS.values() if not a.online]


def default_methods() -> List[str]:
    """What ``go1o4 pipeline`` runs unless ``methods`` says otherwise: everything but the offline-only rows."""
    return [m for m in pipeline_methods() if m[:-len("_offline")] not in offline_only_algorithms()]


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "online_finetune", "configs")


@dataclass
class CollectConfig:
    """Offline data collection with the pretrained policy on the mattress (stochastic actions)."""

    steps: int = 180_000  # paper: ~180k steps of mattress data
    episode_steps: int = C.EPISODE_STEPS
    std_scale: float = 0.5  # exploration std = std_scale * exp(policy log_std)
    commands: EpisodeCommandConfig = field(default_factory=EpisodeCommandConfig)

    def validate(self) -> None:
        if self.steps < 2 or self.episode_steps < 2 or self.std_scale < 0:
            raise ValueError("collect needs steps >= 2, episode_steps >= 2, std_scale >= 0")


@dataclass
class PipelineConfig:
    """``go1o4 pipeline``: pretrained -> mattress data -> offline Uni-O4 (A.4) -> online PPO -> evaluation."""

    # the starting policy: an ONNX policy (+ contract), or a walk-these-ways / Uni-O4 actor checkpoint (.pt, e.g.
    # the authors' ../shared/data/uni_o4_go1_policies/ac_weights_000300.pt), imported into <out>/start/ first
    pretrained: str = "sim_pretrain/policies/go1_flat.onnx"
    # offline data: "" collects ``collect.steps`` on the simulated mattress with the starting policy; otherwise
    # a built dataset file, a directory of episode logs, or uni_o4_real (the authors' real mattress logs)
    dataset: str = ""
    dataset_reward: str = "uni_o4_body_si"  # reward computed for a given ``dataset`` (data.rewards name)
    seeds: List[int] = field(default_factory=lambda: [0])
    reward: str = "logged"  # data.rewards name for the offline dataset; "logged" = the runtime's online reward
    collect: CollectConfig = field(default_factory=CollectConfig)
    offline_preset: str = "paper"  # offline_finetune/configs/<preset>.yaml
    offline_overrides: Dict[str, str] = field(default_factory=dict)  # key -> value, e.g. value.steps: 20000
    iql_overrides: Dict[str, str] = field(default_factory=dict)
    online: OnlineConfig = field(default_factory=OnlineConfig)
    iql_online: IQLOnlineConfig = field(default_factory=IQLOnlineConfig)
    methods: List[str] = field(default_factory=default_methods)  # e.g. add one_step_offline
    eval: EvalConfig = field(default_factory=EvalConfig)
    device: str = "auto"  # offline and online training (go1o4.rl.device); --device sets both
    judge_fqe_steps: int = 5000  # FQE steps of the offline judgement (experiments.offline_judgement)
    judge: bool = True  # false skips the judgement (e.g. a rerun for the online stages of already-judged policies)

    def validate(self) -> None:
        from go1o4.rl.device import check_device_spec
        self.device = check_device_spec(self.device)
        known = pipeline_methods()
        bad = [m for m in self.methods if m not in known]
        if bad:
            raise ValueError("unknown method(s) %s; known: %s" % (bad, ", ".join(known)))
        if not self.seeds:
            raise ValueError("seeds must not be empty")


def sub_overrides(prefix: str, values: Optional[Dict[str, str]]) -> List[str]:
    """{"value.steps": 100} -> ["value.steps=100"] (for go1o4.config.load_config)."""
    return ["%s%s=%s" % (prefix, k, v) for k, v in (values or {}).items()]
