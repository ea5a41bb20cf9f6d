"""Online episodes as PPO / replay data: segments from runtime logs, batches, transitions (pure numpy + HDF5 read).

Every online step is an episode step logged by the runtime, so the logs are the source of truth: the
trainer re-reads an episode from its HDF5 file both live and after a crash. A *segment* is the usable
part of one episode: steps up to the first non-finite value (a T265 glitch gives a NaN reward), ending
``terminal`` (a fall: no bootstrap) or truncated (bootstrap from ``final_obs``, the state where the
episode was cut). The runtime hands the final state of a time-limit cut to the trainer, which writes it
to the ledger (``episodes.jsonl``); without it (a crash before the ledger line, a crashed log) the last
logged step becomes the bootstrap state and its action is not used.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from go1o4 import contract as C

LEDGER = "episodes.jsonl"


@dataclass
class Segment:
    key: str  # episode file relative to the log root: "<session>/episode_00003.h5"
    obs: np.ndarray  # (T, 290) policy inputs
    actions: np.ndarray  # (T, 12) executed (sampled) actions
    log_probs: np.ndarray  # (T,) behaviour log pi(a|s); NaN if the episode was deterministic
    rewards: np.ndarray  # (T,)
    terminal: bool  # ended by a fall after the last step
    final_obs: Optional[np.ndarray]  # (290,) bootstrap state of a truncated segment
    reason: str = ""
    logged_steps: int = 0  # steps in the log (>= len(self))
    meta: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.rewards))

    @property
    def ret(self) -> float:
        return float(np.sum(self.rewards))


def _first_bad_row(arrays: Sequence[np.ndarray], n: int) -> int:
    ok = np.ones(n, dtype=bool)
    for a in arrays:
        ok &= np.isfinite(np.asarray(a, dtype=np.float64).reshape(n, -1)).all(axis=1)
    return n if ok.all() else int(np.argmin(ok))


def make_segment(key: str, obs, actions, log_probs, rewards, end: str, final_obs=None, reason: str = "",
                 meta: Optional[Dict[str, Any]] = None, need_log_probs: bool = True) -> Optional[Segment]:
    """Cut an episode at its first non-finite row and pick its bootstrap state; None if nothing is usable."""
    obs = np.asarray(obs, dtype=np.float32)
    actions = np.asarray(actions, dtype=np.float32)
    rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
    n = len(rewards)
    log_probs = np.full(n, np.nan, np.float32) if log_probs is None else np.asarray(log_probs, np.float32).reshape(-1)
    if obs.shape != (n, C.POLICY_INPUT_DIM) or actions.shape != (n, C.NUM_ACTIONS) or log_probs.shape != (n,):
        raise ValueError("episode %s: inconsistent shapes obs %s, actions %s, log_probs %s, rewards %s"
                         % (key, obs.shape, actions.shape, log_probs.shape, rewards.shape))
    checked = [obs, actions, rewards] + ([log_probs] if need_log_probs else [])
    cut = _first_bad_row(checked, n)
    terminal = end == "terminal" and cut == n
    if terminal:
        use, final = n, None
    elif cut == n and final_obs is not None and np.all(np.isfinite(final_obs)):
        use, final = n, np.asarray(final_obs, dtype=np.float32).reshape(C.POLICY_INPUT_DIM)
    else:  # bootstrap from the last usable logged state (its action is not used)
        if cut < n and np.all(np.isfinite(obs[cut])):
            use, final = cut, obs[cut]
        else:
            use = cut - 1
            final = obs[use] if use >= 0 else None
        reason = reason if cut == n else "non_finite"
    if use < 1:
        return None
    return Segment(key, obs[:use], actions[:use], log_probs[:use], rewards[:use], terminal, final, reason, n,
                   dict(meta or {}))


def segment_from_result(key: str, res, meta: Optional[Dict[str, Any]] = None) -> Optional[Segment]:
    """A segment straight from a runtime EpisodeResult (requested episode: its arrays are kept)."""
    if res.steps == 0:
        return None
    return make_segment(key, res.policy_input, res.action, res.log_prob, res.reward, res.end,
                        res.final_policy_input, res.reason, meta, need_log_probs=False)


def load_segment(root: str, key: str, final_obs=None, need_log_probs: bool = True) -> Optional[Segment]:
    """Read one logged episode (complete or crashed) as a segment; LogReadError names a broken file."""
    from go1o4.data.reader import load_episode

    ep = load_episode(os.path.join(root, key))
    if ep.num_steps == 0:
        return None
    for name in ("policy_input", "action", "reward") + (("log_prob",) if need_log_probs else ()):
        if name not in ep.steps:
            raise ValueError("episode %s has no %r field (not an online PPO episode?)" % (ep.source, name))
    lp = ep.steps.get("log_prob")
    return make_segment(key, ep.steps["policy_input"], ep.steps["action"], lp, ep.steps["reward"],
                        "terminal" if ep.terminal and not ep.crashed else "truncation", final_obs, ep.reason,
                        dict(ep.meta, status=ep.status), need_log_probs)


def episode_keys(root: str) -> List[str]:
    """Relative paths of every runtime episode file under ``root``, in collection order."""
    out = []
    if not os.path.isdir(root):
        return out
    for session in sorted(os.listdir(root)):
        folder = os.path.join(root, session)
        if os.path.isdir(folder):
            out += ["%s/%s" % (session, n) for n in sorted(os.listdir(folder))
                    if n.startswith("episode_") and n.endswith(".h5")]
    return out


def unconsumed_segments(log_root: str, run_dir: str, done, need_log_probs: bool = True, say=print):
    """Every logged episode under ``log_root`` whose key is not in ``done`` (incl. one cut by a crash), read back
    with its ledger's final state: (segments in collection order, keys with nothing usable or an unreadable log)."""
    from go1o4.data.log_format import LogReadError

    ledger, segments, skipped = read_ledger(run_dir), [], []
    for key in episode_keys(log_root):
        if key in done:
            continue
        try:
            seg = load_segment(log_root, key, (ledger.get(key) or {}).get("final_obs"), need_log_probs)
        except (LogReadError, ValueError) as e:
            say("online: skipping unreadable episode %s: %s" % (key, e))
            seg = None
        if seg is None:
            skipped.append(key)
        else:
            segments.append(seg)
    return segments, skipped


# ----------------------------------------------------------------------------- the ledger
def append_ledger(run_dir: str, doc: Dict[str, Any]) -> None:
    """One JSON line per finished episode (fsync'd): its key, end, steps and final state."""
    path = os.path.join(run_dir, LEDGER)
    torn = False
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"  # a line cut by a crash: start a fresh one
    with open(path, "a") as f:
        f.write(("\n" if torn else "") + json.dumps(doc) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_ledger(run_dir: str) -> Dict[str, Dict[str, Any]]:
    """key -> ledger entry; a line torn by a crash is ignored."""
    out: Dict[str, Dict[str, Any]] = {}
    path = os.path.join(run_dir, LEDGER)
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "key" in doc:
                out[doc["key"]] = doc
    return out


# ----------------------------------------------------------------------------- batches
def ppo_batch(segments: Sequence[Segment]) -> Dict[str, np.ndarray]:
    """Concatenate segments: obs, actions, log_probs, rewards, terminals, timeouts (T,), final_obs (T, 290).

    ``final_obs`` rows are only meaningful where ``timeouts`` is 1 (the bootstrap state of a cut).
    """
    if not segments:
        raise ValueError("no segments")
    cat = {k: np.concatenate([getattr(s, k) for s in segments]) for k in ("obs", "actions", "log_probs", "rewards")}
    n = len(cat["rewards"])
    terminals, timeouts = np.zeros(n, np.float32), np.zeros(n, np.float32)
    final_obs = np.zeros((n, C.POLICY_INPUT_DIM), np.float32)
    end = 0
    for s in segments:
        end += len(s)
        if s.terminal:
            terminals[end - 1] = 1.0
        else:
            timeouts[end - 1] = 1.0
            final_obs[end - 1] = s.final_obs
    cat.update(terminals=terminals, timeouts=timeouts, final_obs=final_obs)
    return cat


def transitions(segments: Sequence[Segment]) -> Dict[str, np.ndarray]:
    """(s, a, r, s', terminal, timeout) transitions of the segments, as in data.dataset.TransitionDataset."""
    parts = []
    for s in segments:
        nxt = np.concatenate([s.obs[1:], (s.obs[-1:] if s.terminal else s.final_obs[None])], axis=0)
        term = np.zeros(len(s), np.float32)
        tout = np.zeros(len(s), np.float32)
        (term if s.terminal else tout)[-1] = 1.0
        parts.append((s.obs, s.actions, s.rewards, nxt, term, tout))
    names = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    return {k: np.concatenate([p[i] for p in parts]).astype(np.float32) for i, k in enumerate(names)}


def episode_stats(segments: Sequence[Segment]) -> Dict[str, float]:
    """Training-episode summary: mean return, length and fall fraction (stochastic actions)."""
    if not segments:
        return {}
    return {"train/episode_return": float(np.mean([s.ret for s in segments])),
            "train/episode_length": float(np.mean([s.logged_steps for s in segments])),
            "train/fall_fraction": float(np.mean([s.terminal for s in segments])),
            "train/reward_per_step": float(np.sum([s.ret for s in segments]) / max(1, sum(len(s) for s in segments)))}
