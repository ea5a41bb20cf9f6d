"""Dataclass configs of the offline Uni-O4 stage (loaded with :func:`go1o4.config.load_config`).

Defaults are the paper's (Table 5, A.5.2) and the public code's ``main.py`` where the paper is silent.
The ``quick`` preset only shortens step counts and sizes of the evaluation, never the algorithm.
"""
from dataclasses import dataclass, field
from typing import List

from go1o4.offline_finetune.algorithms import algorithm_names

from go1o4.config import require

INITS = ("data", "pretrained")


@dataclass
class BCConfig:
    """Ensemble behaviour cloning with the disagreement term (paper Eq. 6)."""

    ensemble_size: int = 4
    alpha: float = 0.1  # disagreement coefficient; 0 is plain BC
    kl_samples: int = 1  # reparameterised samples per state for KL(pi_i || pi_mix)
    steps: int = 200_000  # public code Go1 script: --bc_steps 200000
    batch_size: int = 512
    lr: float = 1e-4
    init_std: float = 1.0
    min_log_std: float = -5.0
    eval_every: int = 2000  # held-out log-likelihood and disagreement

    def validate(self) -> None:
        require(self, "", ("lr", "init_std"), ("batch_size", "eval_every"), ("steps",))
        if self.ensemble_size < 1:
            raise ValueError("bc.ensemble_size must be >= 1")
        if self.alpha < 0:
            raise ValueError("bc.alpha must be >= 0, got %r" % self.alpha)
        if self.steps < 0 or self.batch_size < 1 or self.kl_samples < 1:
            raise ValueError("bc.steps >= 0, bc.batch_size >= 1 and bc.kl_samples >= 1 required")


@dataclass
class ValueConfig:
    """IQL-style double Q and V (paper Eq. 2-3)."""

    q_hidden: List[int] = field(default_factory=lambda: [1024, 1024])
    v_hidden: List[int] = field(default_factory=lambda: [256, 256, 256])
    q_heads: int = 2  # double Q: min over heads
    activation: str = "relu"
    expectile: float = 0.7
    gamma: float = 0.99
    polyak: float = 0.005
    lr: float = 1e-4
    batch_size: int = 512
    steps: int = 500_000  # public code Go1 script: --v_steps / --q_bc_steps 500000
    eval_every: int = 5000

    def validate(self) -> None:
        require(self, "", ("lr",), ("batch_size", "eval_every"), ("steps",))
        if not 0.0 < self.expectile < 1.0:
            raise ValueError("value.expectile must be in (0, 1), got %r" % self.expectile)
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError("value.gamma must be in [0, 1), got %r" % self.gamma)
        if not 0.0 < self.polyak <= 1.0:
            raise ValueError("value.polyak must be in (0, 1], got %r" % self.polyak)
        if self.q_heads < 1:
            raise ValueError("value.q_heads must be >= 1")
        if self.activation not in ("relu", "elu", "tanh", "silu"):
            raise ValueError("value.activation must be relu, elu, tanh or silu")


@dataclass
class DynamicsConfig:
    """Probabilistic dynamics ensemble for AM-Q (paper Eq. 5; code: MOBILE's EnsembleDynamicsModel)."""

    ensemble_size: int = 7
    num_elites: int = 5
    hidden: List[int] = field(default_factory=lambda: [200, 200, 200, 200])
    weight_decay: List[float] = field(default_factory=lambda: [2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4])
    lr: float = 1e-3
    batch_size: int = 256
    holdout_fraction: float = 0.1  # of the training split, by episode
    max_holdout: int = 5000
    epoch_steps: int = 1000  # gradient steps between holdout checks ("epoch")
    max_epochs: int = 200
    max_epochs_since_update: int = 5  # early stopping patience
    logvar_loss_coef: float = 0.01
    sample: bool = False  # OPE: sample the Gaussian (True) or use the elite member's mean (False)

    def validate(self) -> None:
        require(self, "", ("lr",), ("batch_size", "epoch_steps", "max_epochs"), ())
        if not 1 <= self.num_elites <= self.ensemble_size:
            raise ValueError("dynamics.num_elites must be in [1, ensemble_size]")
        if len(self.weight_decay) != len(self.hidden) + 1:
            raise ValueError("dynamics.weight_decay needs one entry per layer (%d), got %d"
                             % (len(self.hidden) + 1, len(self.weight_decay)))
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError("dynamics.holdout_fraction must be in (0, 1)")


OPE_METHODS = ("am_q", "fqe", "model_return")
FALLS = ("terminal", "alive_only")


@dataclass
class FQEConfig:
    """Fitted Q evaluation of each candidate policy (Le et al. 2019), independent of the critic PPO climbs.

    One Q head per member, fitted on ``data`` (held-out episodes by default) to r + gamma (1 - terminal)
    Q_target(s', pi(s')); warm-started across OPE checks: ``first_steps`` at the first check, then ``steps``.
    ``mc_init_steps`` first regress every head on the data's Monte-Carlo discounted return (the behaviour
    policy's value), a start close to a candidate that stays near the data.
    """

    hidden: List[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    lr: float = 3e-4
    batch_size: int = 256
    polyak: float = 0.02
    mc_init_steps: int = 1000
    first_steps: int = 2000
    steps: int = 500  # per later OPE check
    data: str = "val"  # val: held-out episodes (never seen by BC/Q/V/PPO); train: the training split

    def validate(self) -> None:
        if self.data not in ("val", "train"):
            raise ValueError("ope.fqe.data must be val or train, got %r" % self.data)
        if not 0.0 < self.polyak <= 1.0 or self.batch_size < 1:
            raise ValueError("ope.fqe.polyak must be in (0, 1] and ope.fqe.batch_size >= 1")
        if min(self.mc_init_steps, self.first_steps, self.steps) < 0:
            raise ValueError("ope.fqe step counts must be >= 0")
        if self.activation not in ("relu", "elu", "tanh", "silu"):
            raise ValueError("ope.fqe.activation must be relu, elu, tanh or silu")


@dataclass
class OPEConfig:
    """Offline policy evaluation gating the multi-step update (paper Sec. 3.2, Definition 1).

    ``method``: am_q (the paper: Q of the PPO critic along model rollouts), fqe (see :class:`FQEConfig`) or
    model_return (the model's predicted rewards over ``horizon`` steps, no Q; mean - ``pessimism`` * std over
    the elite members, :func:`go1o4.offline_finetune.ope.model_return_per_start`).
    ``falls`` (AM-Q): terminal counts each step after a model-predicted fall with ``fall_value``;
    alive_only averages over alive states only (the paper's and public code's rule, which does not penalise
    falls). ``margin``: accept an update only if its score beats the best by ``margin`` times the bootstrap
    std (over start states, ``bootstrap`` resamples) of that gain; 0 is the paper's strict rule.
    """

    num_starts: int = 512
    horizon: int = 20  # Table 5: 20 steps for the quadruped
    seed: int = 0  # same start states / model draws for every evaluation (common random numbers)
    method: str = "am_q"
    falls: str = "terminal"
    fall_value: float = 0.0
    margin: float = 0.0
    bootstrap: int = 200
    pessimism: float = 1.0  # model_return: members' std subtracted from their mean (0: plain model return)
    fqe: FQEConfig = field(default_factory=FQEConfig)

    def validate(self) -> None:
        if self.num_starts < 1 or self.horizon < 1:
            raise ValueError("ope.num_starts and ope.horizon must be >= 1")
        if self.method not in OPE_METHODS:
            raise ValueError("ope.method must be one of %s, got %r" % (OPE_METHODS, self.method))
        if self.falls not in FALLS:
            raise ValueError("ope.falls must be one of %s, got %r" % (FALLS, self.falls))
        if self.margin < 0 or self.bootstrap < 2:
            raise ValueError("ope.margin must be >= 0 and ope.bootstrap >= 2")
        if self.pessimism < 0:
            raise ValueError("ope.pessimism must be >= 0, got %r" % self.pessimism)


@dataclass
class ImproveConfig:
    """Multi-step PPO policy improvement (paper Eq. 7/8/9, Eq. 25 for the pretrained-init recipe)."""

    steps: int = 10_000  # per member (all members at once)
    batch_size: int = 512
    lr: float = 1e-4
    clip: float = 0.25
    lr_decay: bool = True  # linear to 0 over ``steps`` (public code main.py: is_linear_decay, every step)
    # clip: linear decay cfg.clip * (1 - step / steps), applied only while step <= clip_decay_until (0: all steps).
    # The public code (Lei-Kun/Uni-O4 main.py, abppo.py) sets clip_ratio_now linearly but switches
    # is_clip_decay off after step 200, after which the clip stays at its step-200 value (0.245 for 0.25 and
    # 10k steps): clip_decay_until = 200 reproduces it. Our default decays it to 0 over all steps.
    clip_decay: bool = True
    clip_decay_until: int = 0
    ope_every: int = 100
    alpha: float = 0.1  # Eq. 25 disagreement term, used when init == "pretrained"
    max_grad_norm: float = 0.5
    min_log_std: float = -5.0
    snapshots: bool = False  # export every member as ONNX at each OPE evaluation into <out>/snapshots/ (Fig. 6a)

    def validate(self) -> None:
        require(self, "", ("lr", "max_grad_norm"), ("batch_size",), ("steps",))
        if not 0.0 < self.clip < 1.0:
            raise ValueError("improve.clip must be in (0, 1), got %r" % self.clip)
        if self.ope_every < 1:
            raise ValueError("improve.ope_every must be >= 1")
        if self.alpha < 0:
            raise ValueError("improve.alpha must be >= 0")
        if self.clip_decay_until < 0:
            raise ValueError("improve.clip_decay_until must be >= 0 (0: decay over all steps)")


@dataclass
class IQLPolicyConfig:
    """IQL baseline policy extraction: advantage-weighted regression (Kostrikov et al. 2021, Eq. 7)."""

    beta: float = 3.0  # inverse temperature
    max_weight: float = 100.0
    steps: int = 1_000_000  # paper A.4.5: 1M offline steps
    batch_size: int = 512
    lr: float = 3e-4
    eval_every: int = 5000  # OPE logging only

    def validate(self) -> None:
        require(self, "", ("lr",), ("batch_size", "eval_every"), ("steps",))
        if self.beta <= 0 or self.max_weight <= 0:
            raise ValueError("iql.beta and iql.max_weight must be > 0")


@dataclass
class OfflineConfig:
    algo: str = "uni_o4"  # a name in offline_finetune.algorithms: uni_o4 | iql | one_step
    init: str = "data"  # data: BC from the dataset; pretrained: all members start from a sim policy (A.4)
    pretrained: str = ""  # .pt state_dict or .onnx (+ .yaml) of the pretrained policy, for init=pretrained
    # init=pretrained: the members' initial std. behavior: the std the data were collected with (behavior_std,
    # or 0: its maximum-likelihood estimate around the pretrained mean, sqrt(mean((a - mu(s))^2)) per joint);
    # pretrained: keep the policy's own std (PPO then samples far from the data if it was collected with less noise).
    member_std: str = "behavior"
    behavior_std: float = 0.0
    seed: int = 0
    val_fraction: float = 0.1  # held-out episodes for BC log-likelihood
    torch_threads: int = 2
    device: str = "auto"  # auto | cpu | cuda[:N] (go1o4.rl.device); auto = CUDA when torch sees one
    checkpoint_every: int = 10_000  # gradient steps between resumable checkpoints within a stage
    log_every: int = 200
    bc: BCConfig = field(default_factory=BCConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    ope: OPEConfig = field(default_factory=OPEConfig)
    improve: ImproveConfig = field(default_factory=ImproveConfig)
    iql: IQLPolicyConfig = field(default_factory=IQLPolicyConfig)

    def validate(self) -> None:
        require(self, "", (), ("torch_threads", "checkpoint_every", "log_every"), ())
        if self.algo not in algorithm_names():
            raise ValueError("algo must be one of %s, got %r" % (tuple(algorithm_names()), self.algo))
        if self.init not in INITS:
            raise ValueError("init must be one of %s, got %r" % (INITS, self.init))
        if self.init == "pretrained" and not self.pretrained:
            raise ValueError("init=pretrained needs 'pretrained' (path to a .pt state_dict or .onnx policy)")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in (0, 1)")
        from go1o4.rl.device import check_device_spec
        self.device = check_device_spec(self.device)
        if self.member_std not in ("behavior", "pretrained"):
            raise ValueError("member_std must be behavior or pretrained, got %r" % self.member_std)
        if self.behavior_std < 0:
            raise ValueError("behavior_std must be >= 0 (0: estimate from the data)")
