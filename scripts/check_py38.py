"""Check that sim_pretrain, robot_runtime and every first-party package they import need no Python newer than 3.8.

Isaac Gym and many Go1 onboard computers run Python 3.8. Uses ``vermin`` on the import closure.
"""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"go1o4", "sim_pretrain", "robot_runtime", "offline_finetune", "online_finetune", "data"}
SEEDS = ["sim_pretrain", "robot_runtime", "go1o4"]


def imported_packages(pkg):
    found = set()
    for path in (ROOT / pkg).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(n.split(".")[0] for n in names if n.split(".")[0] in FIRST_PARTY)
    return found


def closure():
    todo, seen = list(SEEDS), set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(imported_packages(p) - seen)
    return sorted(seen)


def main():
    pkgs = closure()
    print("vermin (target 3.8) on:", " ".join(pkgs))
    vermin = str(Path(sys.executable).with_name("vermin"))
    cmd = [vermin, "--target=3.8-", "--violations", "--no-tips",
           "--eval-annotations", "--backport", "typing"] + pkgs
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode:
        print("FAILED: code above needs a Python newer than 3.8")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
