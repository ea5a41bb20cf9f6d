"""Stage 2: the on-robot runtime (50 Hz policy, 500 Hz SDK link, safety, T265, logging) and the simulated Go1."""
