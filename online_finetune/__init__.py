"""Stage 5: online PPO fine-tuning on the (simulated) robot from the offline result."""

if __name__ != "go1o4.online_finetune":  # installed as go1o4.online_finetune (pyproject package-dir); never a bare top-level package
    raise ImportError("this folder is the package go1o4.online_finetune; import it by that name")
