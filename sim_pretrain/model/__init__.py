"""MuJoCo Go1 model (MJCF generated in Python) and terrains."""
from go1o4.sim_pretrain.model.go1_mjcf import FOOT_GEOMS, SENSOR_SLICES, go1_mjcf
from go1o4.sim_pretrain.model.terrain import ENV_TERRAINS, TERRAIN_KINDS, TerrainConfig, surface_height

__all__ = ["go1_mjcf", "TerrainConfig", "TERRAIN_KINDS", "ENV_TERRAINS", "surface_height", "FOOT_GEOMS", "SENSOR_SLICES"]
