"""Stage 1: PPO locomotion pretraining in MuJoCo (CPU) or Isaac Gym (GPU), exported to ONNX."""

if __name__ != "go1o4.sim_pretrain":  # installed as go1o4.sim_pretrain (pyproject package-dir); never a bare top-level package
    raise ImportError("this folder is the package go1o4.sim_pretrain; import it by that name")
