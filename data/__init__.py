"""Stage 3: episode logs and datasets (sim-free: never imports mujoco, isaacgym or torch).

log_format  schema, ``Episode``, errors         writer     ``SessionWriter`` / ``EpisodeWriter`` (robot)
reader      ``open_dataset`` (lazy), loading     validate   problems per file
import_uni_o4  the real Uni-O4 Go1 logs          rewards    reward registry (``compute_reward``)
dataset     ``build_dataset`` -> ``TransitionDataset``   export  D4RL / Minari    cli  ``go1o4 data``
"""

if __name__ != "go1o4.data":  # installed as go1o4.data (pyproject package-dir); never a bare top-level package
    raise ImportError("this folder is the package go1o4.data; import it by that name")
