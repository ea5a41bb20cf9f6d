"""Stage 5: online PPO fine-tuning on the (simulated) robot from the offline result."""
