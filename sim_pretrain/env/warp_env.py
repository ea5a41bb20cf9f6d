"""``Go1VecEnv`` on MuJoCo Warp (``go1o4 pretrain --backend warp``): the same task on batched GPU physics.

All robots are Warp worlds stepped in this process (no worker processes); the task (observations,
rewards, commands, domain randomisation, terminations, autoreset) is the CPU env's own
:class:`~go1o4.sim_pretrain.env.group.Go1EnvGroup`, so both backends train the same policy input/output.
Needs the ``warp`` extra (``mujoco-warp``, ``warp-lang``).
"""
from typing import Optional

from go1o4.sim_pretrain.env.config import EnvConfig
from go1o4.sim_pretrain.env.vec_env import Go1VecEnv, terrain_assignment


class WarpGo1VecEnv(Go1VecEnv):
    """``device``: a Warp device (``cuda:0``, ``cpu``; None = CUDA when present); ``torque_fn``: motor model
    (see :mod:`go1o4.sim_pretrain.env.warp_robots`; None = the MJCF's PD actuators, as on the CPU)."""

    backend = "warp"

    def __init__(self, cfg: EnvConfig, device: Optional[str] = None, torque_fn=None):
        try:
            from go1o4.sim_pretrain.env.warp_robots import WarpRobotBatch
        except ImportError as e:
            raise RuntimeError("the warp backend needs mujoco-warp and warp-lang (pip install -e '.[warp]'): %s" % e)
        if cfg.motor_model != "ideal_pd" and torque_fn is None:
            raise RuntimeError("the warp backend runs motor_model ideal_pd (or a torque_fn); got %r"
                               % cfg.motor_model)
        robots = WarpRobotBatch(terrain_assignment(cfg), cfg.sim_dt, cfg.decimation, cfg.solver_iterations,
                                device=device, torque_fn=torque_fn, ground=cfg.ground)
        super().__init__(cfg, robots=robots)
        self.device = robots.device
