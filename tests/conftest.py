"""Shared test fixtures."""
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "uni_o4_go1_mattress_2023_08"
AUTHORS_POLICY = REPO.parent / "shared" / "data" / "uni_o4_go1_policies" / "ac_weights_000300.pt"
ACTUATOR_NET = REPO.parent / "shared" / "data" / "walk_these_ways_go1_actuator_net" / "unitree_go1_actuator_net.npz"


def free_udp_port() -> int:
    """A free UDP port on 127.0.0.1 (tests never talk to anything else)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def udp_port() -> int:
    return free_udp_port()


@pytest.fixture(scope="session")
def real_logs_dir() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail("real Go1 logs not found at %s (shared/ must sit beside the repo)" % SHARED_DATA)
    return SHARED_DATA


@pytest.fixture(scope="session")
def authors_policy_ckpt() -> Path:
    """The Uni-O4 authors' sim-pretrained actor (shared/data/uni_o4_go1_policies)."""
    if not AUTHORS_POLICY.exists():
        pytest.fail("authors' policy not found at %s (shared/ must sit beside the repo)" % AUTHORS_POLICY)
    return AUTHORS_POLICY


@pytest.fixture(scope="session")
def actuator_net_npz() -> Path:
    """walk-these-ways' Go1 actuator network as plain arrays (shared/data/walk_these_ways_go1_actuator_net)."""
    if not ACTUATOR_NET.exists():
        pytest.fail("actuator network not found at %s (shared/ must sit beside the repo)" % ACTUATOR_NET)
    return ACTUATOR_NET


os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def torch_one_thread():
    """Small networks on a shared 2-core machine run far faster on one thread; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
