"""Stage 1: PPO locomotion pretraining in MuJoCo (CPU) or Isaac Gym (GPU), exported to ONNX."""
