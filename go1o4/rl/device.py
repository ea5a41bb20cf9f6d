"""Where the trainers run: ``--device auto|cpu|cuda[:N]`` (and the ``device`` config key).

``auto`` is CUDA when torch sees a GPU, else the CPU. Asking for CUDA where there is none is a clear
:class:`DeviceError` (the CLIs turn it into exit code 2), never a deep traceback from the first tensor.
Random draws use a seeded :class:`torch.Generator` on the same device as the data, so sampling never
copies through the host; on the CPU the generator is the same as ``torch.Generator().manual_seed(seed)``
(CPU results are unchanged).
"""
import re
from typing import Union

import torch

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceError(ValueError):
    pass


def check_device_spec(spec: str) -> str:
    """Validate the spelling only (config validation runs before any device is touched)."""
    spec = str(spec).strip().lower()
    if not _PATTERN.match(spec):
        raise DeviceError("device must be %s, got %r" % (DEVICE_CHOICES, spec))
    return spec


def resolve_device(spec: Union[str, torch.device, None] = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda[:N]`` checked to exist."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = check_device_spec(spec or "auto")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError("device %r requested but torch sees no CUDA GPU (torch %s%s); use --device cpu or auto"
                          % (spec, torch.__version__, "" if torch.version.cuda else ", a CPU-only build"))
    dev = torch.device(spec)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError("device %r requested but only %d CUDA device(s) are visible"
                          % (spec, torch.cuda.device_count()))
    return dev


def make_generator(device: Union[str, torch.device], seed: int) -> torch.Generator:
    """A seeded generator on ``device`` (draws stay on the device: no host round-trip per sample)."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def on_cpu(tree):
    """A copy of a (nested dict/list of) tensors on the CPU: checkpoints and exports that load anywhere."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: on_cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(on_cpu(v) for v in tree)
    return tree


def to_floats(scalars):
    """Training statistics (0-dim tensors, possibly on the GPU, or numbers) -> floats: the one host sync,
    done when they are logged rather than every gradient step."""
    return {k: float(v) for k, v in scalars.items()}


def finite_check_due(step: int, every: int) -> bool:
    """Finite-loss checks cost a host sync on a GPU: trainers do them every ``every`` steps (1 = each step).

    A non-finite loss makes the weights non-finite, so a later check still catches it (naming the step)."""
    return every <= 1 or step % every == 0
