"""The three seams of docs/extending.md (terrain, offline algorithm, robot) are values the rest derives from."""
import ast
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from go1o4.offline_finetune.algorithms import ALGORITHMS, algorithm_names, get_algorithm, register_algorithm
from go1o4.offline_finetune.config import OfflineConfig

from go1o4 import contract as C
from go1o4.policy_contract import runtime_contract

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("go1o4", "data", "sim_pretrain", "robot_runtime", "offline_finetune", "online_finetune")


def test_the_module_constants_are_the_go1_spec():
    assert C.ROBOTS["unitree_go1"] is C.GO1
    assert C.DEFAULT_Q is C.GO1.default_q and C.KP == C.GO1.kp and C.TORQUE_LIMIT is C.GO1.torque_limit
    assert C.JOINT_NAMES_SIM == C.GO1.joint_names_sim and C.NUM_ACTIONS == C.GO1.num_joints == 12
    assert C.POLICY_DT == pytest.approx(0.02)
    np.testing.assert_array_equal(C.SDK_TO_SIM[C.SIM_TO_SDK], np.arange(12))
    assert runtime_contract()["robot"] == C.GO1.name


def test_another_spec_changes_the_policy_contract():
    import dataclasses

    go2 = dataclasses.replace(C.GO1, name="unitree_go2", kp=25.0)
    c = runtime_contract(go2)
    assert c["robot"] == "unitree_go2" and c["control"]["kp"] == 25.0
    assert runtime_contract()["control"]["kp"] == C.KP  # GO1 untouched


def test_the_go1_model_refuses_another_robot():
    pytest.importorskip("mujoco")
    import dataclasses

    from go1o4.sim_pretrain.model import go1_mjcf

    with pytest.raises(ValueError, match="needs its own model"):
        go1_mjcf(spec=dataclasses.replace(C.GO1, name="unitree_go2"))


def test_offline_algorithms_come_from_the_registry():
    assert algorithm_names()[:3] == ["uni_o4", "iql", "one_step"]
    assert get_algorithm("iql").bc_from_data is False and get_algorithm("uni_o4").online == "ppo"
    with pytest.raises(ValueError, match="unknown offline algorithm"):
        get_algorithm("cql")
    OfflineConfig(algo="one_step").validate()
    with pytest.raises(ValueError, match="algo must be one of"):
        OfflineConfig(algo="cql").validate()


def test_a_registered_algorithm_reaches_config_pipeline_and_evidence():
    from go1o4.experiments import evidence
    from go1o4.experiments.config import PipelineConfig, pipeline_methods

    ran = []
    register_algorithm("toy", "toy offline", bc_from_data=False, online="ppo")(ran.append)
    try:
        OfflineConfig(algo="toy").validate()
        assert "toy_offline" in pipeline_methods() and "toy_online" in pipeline_methods()
        PipelineConfig(methods=["toy_offline"]).validate()
        get_algorithm("toy").improve("run")
        assert ran == ["run"]
        assert "toy" not in evidence.METHODS  # evidence took its list at import: the three shipped ones
    finally:
        del ALGORITHMS["toy"]
    with pytest.raises(ValueError, match="unknown method"):
        PipelineConfig(methods=["toy_offline"]).validate()


def test_one_terrain_list():
    from go1o4.sim_pretrain.env.config import TERRAIN_CHOICES
    from go1o4.sim_pretrain.model.terrain import ENV_TERRAINS, TERRAIN_KINDS, TerrainConfig

    assert TERRAIN_CHOICES is ENV_TERRAINS and set(TERRAIN_KINDS) < set(ENV_TERRAINS)
    assert "mixed" not in TERRAIN_KINDS  # "mixed" means one thing: the env's share of robots on a mattress
    with pytest.raises(ValueError, match="kind must be one of"):
        TerrainConfig(kind="mixed").validate()


def test_the_sdk_link_is_a_link():
    pytest.importorskip("unitree_legged_sdk")
    from go1o4.robot_runtime.link import Link
    from go1o4.robot_runtime.sdk_link import SdkLink

    link = SdkLink("127.0.0.1", 9, local_port=0)
    try:
        assert isinstance(link, Link)
    finally:
        link.close()
    assert not isinstance(object(), Link)


def test_config_class_names_mean_one_thing():
    where = defaultdict(list)
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Config"):
                    where[node.name].append(str(path.relative_to(ROOT)))
    twice = {k: v for k, v in where.items() if len(v) > 1}
    assert not twice, twice
