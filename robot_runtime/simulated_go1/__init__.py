"""The simulated Go1 behind Unitree's SDK protocol (server.py), its wire format (wire.py, no mujoco),
the simulated T265 (t265.py) and the scriptable remote (remote.py). Import submodules directly:
this package imports nothing, so the robot-side runtime can use ``wire`` without MuJoCo."""
