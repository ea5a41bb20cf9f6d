"""Stage 3: episode logs and datasets (sim-free: never imports mujoco or isaacgym)."""
