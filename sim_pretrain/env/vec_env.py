"""Go1VecEnv: N robots split over worker processes, gymnasium VectorEnv conventions.

``reset(seed) -> obs, info`` and ``step(actions) -> obs, rewards, terminated, truncated, info`` on
batched numpy arrays. Finished robots are reset within the same step (autoreset); the observation
they reached is in ``info["final_obs"]`` (mask ``info["_final_obs"]``) with its critic counterpart
``info["final_critic_obs"]``, so PPO bootstraps truncations. ``info["critic_obs"]`` is the
asymmetric critic's input; ``info["episode"]`` (mask ``info["_episode"]``) holds finished episodes'
statistics. Workers exchange arrays through shared memory; the pipes carry one short message per step.
"""
import multiprocessing as mp
from typing import Dict, List, Optional

import numpy as np
from go1o4.sim_pretrain.env import observations as O
from go1o4.sim_pretrain.env.config import EnvConfig
from go1o4.sim_pretrain.env.group import Go1EnvGroup, episode_stat_names

from go1o4 import contract as C


def terrain_assignment(cfg: EnvConfig) -> List[str]:
    """Terrain of each robot: all rigid, all mattress, or "mixed" (every k-th robot on a mattress)."""
    if cfg.terrain != "mixed":
        return [cfg.terrain] * cfg.num_envs
    n_soft = int(round(cfg.mattress_fraction * cfg.num_envs))
    soft = set(np.linspace(0, cfg.num_envs, n_soft, endpoint=False).astype(int).tolist()) if n_soft else set()
    return ["mattress" if i in soft else "rigid" for i in range(cfg.num_envs)]


def _split(n: int, k: int) -> List[slice]:
    bounds = np.linspace(0, n, k + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class _Buffers:
    """Shared arrays (one row per robot); ``np.frombuffer`` views in every process."""

    def __init__(self, n: int, n_stats: int, raw: Optional[Dict] = None):
        shapes = {"actions": (n, C.NUM_ACTIONS), "obs": (n, C.POLICY_INPUT_DIM), "critic_obs": (n, O.CRITIC_OBS_DIM),
                  "reward": (n,), "terminated": (n,), "truncated": (n,), "final_obs": (n, C.POLICY_INPUT_DIM),
                  "final_critic_obs": (n, O.CRITIC_OBS_DIM), "stats": (n, n_stats), "commands": (n, 15),
                  "cur_commands": (n, 15), "gait": (n,)}
        self.raw = raw or {k: mp.get_context("spawn").RawArray("d", int(np.prod(s))) for k, s in shapes.items()}
        self.a = {k: np.frombuffer(self.raw[k], dtype=np.float64).reshape(s) for k, s in shapes.items()}


def _write_task(buf: _Buffers, sl: slice, group: Go1EnvGroup) -> None:
    buf.a["cur_commands"][sl], buf.a["gait"][sl] = group.commands, group.gait_index


def _write(buf: _Buffers, sl: slice, obs, reward, terminated, truncated, info) -> None:
    a = buf.a
    a["obs"][sl], a["critic_obs"][sl] = obs, info["critic_obs"]
    a["reward"][sl], a["terminated"][sl], a["truncated"][sl] = reward, terminated, truncated
    if "final_obs" in info:
        m = info["_final_obs"]
        a["final_obs"][sl][m] = info["final_obs"][m]
        a["final_critic_obs"][sl][m] = info["final_critic_obs"][m]
        a["stats"][sl][m] = np.stack([info["episode"][k] for k in info["episode"]], axis=1)[m]


def _worker(conn, cfg: EnvConfig, terrains, seed: int, raw, sl: slice, n_total: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it saves, then closes us)
    group = Go1EnvGroup(cfg, terrains, seed)
    buf = _Buffers(n_total, len(group.stat_names), raw)
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "step":
                out = group.step(buf.a["actions"][sl])
                _write(buf, sl, *out)
                _write_task(buf, sl, group)
                conn.send(None)
            elif cmd == "reset":
                seed_i, random_step = arg
                buf.a["obs"][sl] = group.reset(seed_i, random_step)
                buf.a["critic_obs"][sl] = group.critic_obs
                _write_task(buf, sl, group)
                conn.send(None)
            elif cmd == "fixed_commands":
                group.set_fixed_commands(None if arg is None else buf.a["commands"][sl])
                conn.send(None)
            elif cmd == "bare":
                import time
                t0 = time.perf_counter()
                group.robots.step_bare(arg)
                conn.send(time.perf_counter() - t0)
            elif cmd == "close":
                break
    except (KeyboardInterrupt, EOFError, BrokenPipeError):  # the parent went away
        pass
    finally:
        conn.close()


class Go1VecEnv:
    """The vectorised Go1 environment. ``num_workers = 0`` runs everything in this process."""

    def __init__(self, cfg: EnvConfig, robots=None):
        """``robots``: a RobotBatch-like physics backend for all robots, run in this process."""
        self.cfg, self.num_envs = cfg, cfg.num_envs
        self.single_observation_dim, self.single_action_dim = C.POLICY_INPUT_DIM, C.NUM_ACTIONS
        self.critic_obs_dim = O.CRITIC_OBS_DIM
        self.stat_names = episode_stat_names(cfg)
        self.terrains = terrain_assignment(cfg)
        k = 0 if robots is not None else min(cfg.num_workers, cfg.num_envs)
        self.slices = _split(cfg.num_envs, max(k, 1))
        self.buf = _Buffers(cfg.num_envs, len(self.stat_names))
        self._procs, self._conns, self.group = [], [], None
        if k == 0:
            self.group = Go1EnvGroup(cfg, self.terrains, cfg.seed, robots)
        else:
            ctx = mp.get_context("spawn")
            for w, sl in enumerate(self.slices):
                parent, child = ctx.Pipe()
                p = ctx.Process(target=_worker, args=(child, cfg, self.terrains[sl], cfg.seed * 1000 + w,
                                                      self.buf.raw, sl, cfg.num_envs), daemon=True)
                p.start()
                child.close()
                self._procs.append(p)
                self._conns.append(parent)
        self.closed = False

    def _call(self, cmd: str, args=None) -> list:
        for i, c in enumerate(self._conns):
            c.send((cmd, args[i] if isinstance(args, list) else args))
        out = []
        for c in self._conns:
            try:
                out.append(c.recv())
            except EOFError:
                raise RuntimeError("a Go1VecEnv worker died (see its traceback above)")
        return out

    def reset(self, seed: Optional[int] = None, options: Optional[Dict] = None):
        random_step = bool((options or {}).get("random_episode_step", False))
        a = self.buf.a
        if self.group is not None:
            a["obs"][:] = self.group.reset(seed, random_step)
            a["critic_obs"][:] = self.group.critic_obs
        else:
            seeds = [None if seed is None else seed * 1000 + w for w in range(len(self._conns))]
            self._call("reset", [(s, random_step) for s in seeds])
        return a["obs"].copy(), {"critic_obs": a["critic_obs"].copy()}

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, C.NUM_ACTIONS):
            raise ValueError("actions must have shape (%d, %d), got %s" % (self.num_envs, C.NUM_ACTIONS, actions.shape))
        a = self.buf.a
        a["terminated"][:] = 0.0
        a["truncated"][:] = 0.0
        if self.group is not None:
            _write(self.buf, slice(None), *self.group.step(actions))
        else:
            a["actions"][:] = actions
            self._call("step")
        terminated, truncated = a["terminated"] > 0.5, a["truncated"] > 0.5
        info: Dict[str, object] = {"critic_obs": a["critic_obs"].copy()}
        done = terminated | truncated
        if done.any():
            info["final_obs"], info["final_critic_obs"] = a["final_obs"].copy(), a["final_critic_obs"].copy()
            info["_final_obs"] = done
            info["episode"] = {k: a["stats"][:, j].copy() for j, k in enumerate(self.stat_names)}
            info["_episode"] = done
        return a["obs"].copy(), a["reward"].copy(), terminated, truncated, info

    def commands_and_gait(self):
        """Current raw commands (N, 15) and gait clock indices (N,) after the last step/reset."""
        if self.group is not None:
            return self.group.commands.copy(), self.group.gait_index.copy()
        return self.buf.a["cur_commands"].copy(), self.buf.a["gait"].copy()

    def set_fixed_commands(self, commands: Optional[np.ndarray]) -> None:
        """Hold (N, 15) raw commands for every episode (evaluation); None resumes sampling."""
        if self.group is not None:
            self.group.set_fixed_commands(commands)
            return
        if commands is not None:
            self.buf.a["commands"][:] = np.broadcast_to(commands, (self.num_envs, 15))
        self._call("fixed_commands", commands is not None or None)

    def bare_step_time(self, nsteps: int) -> float:
        """Wall time of ``nsteps`` physics-only policy steps of all robots (workers in parallel)."""
        import time
        if self.group is not None:
            t0 = time.perf_counter()
            self.group.robots.step_bare(nsteps)
            return time.perf_counter() - t0
        t0 = time.perf_counter()
        self._call("bare", nsteps)
        return time.perf_counter() - t0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for c in self._conns:
            try:
                c.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
