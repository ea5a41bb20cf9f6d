"""go1o4: Unitree Go1 from simulation to real-world Uni-O4 fine-tuning."""
__version__ = "0.1.0"
