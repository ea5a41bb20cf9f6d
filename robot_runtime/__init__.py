"""Stage 2: the on-robot runtime (50 Hz policy, 500 Hz SDK link, safety, T265, logging) and the simulated Go1."""

if __name__ != "go1o4.robot_runtime":  # installed as go1o4.robot_runtime (pyproject package-dir); never a bare top-level package
    raise ImportError("this folder is the package go1o4.robot_runtime; import it by that name")
