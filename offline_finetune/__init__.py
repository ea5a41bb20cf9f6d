"""Stage 4: Uni-O4 offline fine-tuning (sim-free: never imports mujoco or isaacgym)."""
