"""Runs in `.venv-lerobot` (see `make lerobot-venv`), not in the project's venv: loads an export with LeRobot's own
``LeRobotDataset`` (local folder only, HF_HUB_OFFLINE=1) and prints what it read as one JSON line.

Usage: python tests/lerobot_load.py ROOT REPO_ID FRAME[,FRAME...]
"""
import json
import sys

from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main() -> None:
    root, repo_id, frames = sys.argv[1], sys.argv[2], [int(f) for f in sys.argv[3].split(",")]
    ds = LeRobotDataset(repo_id, root=root)
    items = [ds[f] for f in frames]
    out = {
        "fps": ds.fps, "num_episodes": ds.num_episodes, "num_frames": ds.num_frames, "len": len(ds),
        "features": sorted(ds.features), "item_keys": sorted(items[0]),
        "items": [{k: v.tolist() for k, v in it.items() if hasattr(v, "tolist")} for it in items],
        "episode_lengths": [int(x) for x in ds.meta.episodes["length"]],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
