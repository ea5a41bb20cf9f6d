"""Shared RL core: one actor class, PPO math, normalisers, rollout storage, ONNX export.

Used by sim pretraining, offline Uni-O4 and online fine-tuning, so the three stages optimise the
same objective with the same policy parameterisation (paper Sec. 4: one on-policy objective).
"""
