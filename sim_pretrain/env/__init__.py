"""Vectorised MuJoCo Go1 locomotion environment (gymnasium VectorEnv conventions)."""
from go1o4.sim_pretrain.env.config import EnvConfig
from go1o4.sim_pretrain.env.observations import CRITIC_OBS_DIM, PRIVILEGED_NAMES
from go1o4.sim_pretrain.env.vec_env import Go1VecEnv

__all__ = ["EnvConfig", "Go1VecEnv", "CRITIC_OBS_DIM", "PRIVILEGED_NAMES"]
