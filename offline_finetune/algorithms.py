"""Offline algorithms by name, registered like the rewards (``data.rewards.register_reward``).

An algorithm is its policy-improvement stage on an :class:`offline_finetune.train.OfflineRun` (the BC
ensemble, the IQL-style Q/V and the dynamics/OPE stages before it are shared) plus two facts about it:
whether BC pre-trains the ensemble on the data (``init: data``) and which online fine-tuning continues
it in ``go1o4 pipeline``. The config's ``algo`` choices, ``go1o4 offline --algo``, the pipeline's
method list and ``go1o4 offline-evidence``'s methods all come from here. A new algorithm (e.g. Cal-QL) is
its trainer file, one ``@register_algorithm`` below and its config section (docs/extending.md).
Imports nothing heavy: the config and the CLI read it without torch.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

ONLINE_KINDS = ("", "ppo", "iql")  # "": not continued online in the pipeline


@dataclass(frozen=True)
class Algorithm:
    name: str
    label: str  # for tables and plots
    improve: Callable[[Any], None]  # the policy-improvement stage, given the OfflineRun
    bc_from_data: bool = True  # init=data: BC pre-trains the ensemble this algorithm improves
    online: str = ""  # the online fine-tuning that continues it in ``go1o4 pipeline``


ALGORITHMS: Dict[str, Algorithm] = {}


def register_algorithm(name: str, label: str, bc_from_data: bool = True,
                       online: str = "") -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    if online not in ONLINE_KINDS:
        raise ValueError("online must be one of %s, got %r" % (ONLINE_KINDS, online))

    def deco(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        ALGORITHMS[name] = Algorithm(name, label, fn, bc_from_data, online)
        return fn
    return deco


def algorithm_names() -> List[str]:
    """Registered names, in registration order."""
    return list(ALGORITHMS)


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise ValueError("unknown offline algorithm %r; choose from %s" % (name, ", ".join(ALGORITHMS)))
    return ALGORITHMS[name]


@register_algorithm("uni_o4", "Uni-O4 offline (multi-step, OPE-gated)", online="ppo")
def _uni_o4(run) -> None:
    """Multi-step PPO per ensemble member, each update kept only if AM-Q accepts it (Eq. 7-9, 25)."""
    run.improve_ppo()


@register_algorithm("iql", "IQL offline", bc_from_data=False, online="iql")
def _iql(run) -> None:
    """The AWR policy of IQL on the same Q/V (offline_finetune.iql); its actor starts untrained."""
    run.improve_iql()


@register_algorithm("one_step", "one-step PPO offline (no pi_old update)")
def _one_step(run) -> None:
    """Uni-O4's objective with the behaviour policy never replaced (the paper's one-step baseline)."""
    run.improve_ppo()
