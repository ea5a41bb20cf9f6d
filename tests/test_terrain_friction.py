"""Terrain parameters mean the same in every simulator path: the contact friction MuJoCo actually uses
(``data.contact[i].friction``) under the feet in the vector env (pretraining, ``go1o4 evaluate``) and in
the simulated robot behind the SDK; domain randomisation multiplies the terrain's friction."""
import mujoco
import numpy as np
import pytest
from go1o4.robot_runtime.simulated_go1.config import SimRobotConfig
from go1o4.robot_runtime.simulated_go1.server import SimulatedGo1
from go1o4.sim_pretrain.cli_evaluate import evaluation_env_config
from go1o4.sim_pretrain.env.config import EnvConfig
from go1o4.sim_pretrain.env.group import Go1EnvGroup
from go1o4.sim_pretrain.model.terrain import LEGACY_MATTRESS, TerrainConfig


def foot_contact_friction(model, data):
    """Sliding friction of every foot-terrain contact (terrain geoms belong to the world body)."""
    mujoco.mj_forward(model, data)
    out = []
    for c in data.contact[:data.ncon]:
        names = {model.geom(c.geom1).name, model.geom(c.geom2).name}
        world = model.geom_bodyid[c.geom1] == 0 or model.geom_bodyid[c.geom2] == 0
        if world and any(n.endswith("_foot") for n in names):
            out.append(float(c.friction[0]))
    assert out, "no foot on the ground"
    return np.array(out)


def vec_env_friction(terrain, ground, dr_friction=None):
    cfg = EnvConfig()
    cfg.ground = ground
    cfg = evaluation_env_config(cfg, 2, terrain, dr=dr_friction is not None, noise=False, workers=0, seed=0)
    if dr_friction is not None:
        cfg.domain_rand.friction = [dr_friction, dr_friction]
    group = Go1EnvGroup(cfg, [terrain] * 2, seed=0)
    group.reset(0)
    for _ in range(25):
        group.step(np.zeros((2, 12)))
    r = group.robots
    return foot_contact_friction(r.models[0], r.datas[0]), group


def sim_robot_friction(terrain):
    robot = SimulatedGo1(SimRobotConfig(port=0, terrain=terrain, mode="lockstep"))
    try:
        robot.reset("standing")
        return foot_contact_friction(robot.physics.model, robot.physics.data)
    finally:
        robot.kill()
        robot.sock.close()


@pytest.mark.parametrize("kind, ground, expected", [
    ("mattress", TerrainConfig(), TerrainConfig().mattress_friction),
    ("mattress", TerrainConfig(mattress_friction=0.55), 0.55),
    ("mattress_soft_legacy", TerrainConfig(), LEGACY_MATTRESS["mattress_friction"]),
    ("rigid", TerrainConfig(friction=0.7), 0.7),
])
def test_vector_env_and_simulated_robot_use_the_terrain_friction(kind, ground, expected):
    vec, _ = vec_env_friction(kind, ground)
    import dataclasses
    sim = sim_robot_friction(dataclasses.replace(ground, kind=kind))
    np.testing.assert_allclose(vec, expected, rtol=1e-9)
    np.testing.assert_allclose(sim, expected, rtol=1e-9)


def test_friction_randomisation_multiplies_the_terrain_friction():
    vec, group = vec_env_friction("mattress", TerrainConfig(mattress_friction=0.8), dr_friction=0.5)
    np.testing.assert_allclose(vec, 0.4, rtol=1e-9)
    np.testing.assert_allclose(group.friction, 0.4)  # what the privileged critic observes
    rigid, group = vec_env_friction("rigid", TerrainConfig(), dr_friction=1.25)
    np.testing.assert_allclose(rigid, 1.25, rtol=1e-9)


def test_legacy_mattress_keeps_the_old_parameters_and_overrides_win():
    legacy = TerrainConfig(kind="mattress_soft_legacy")
    for name, value in LEGACY_MATTRESS.items():
        assert getattr(legacy, name) == value
    assert TerrainConfig(kind="mattress_soft_legacy", mattress_stiffness=900.0).mattress_stiffness == 900.0
    assert legacy.is_soft
