"""Safety limits that no config can switch off (issue 14.1): hard bands always, normal bands unless the operator
passes ``--unsafe-override``; the training configs refuse nonsense sizes and learning rates."""
import glob
import os

import pytest
import yaml
from go1o4.robot_runtime.safety import BANDS, SafetyLimits
from go1o4.robot_runtime.session_config import load_session_config
from runtime_helpers import export_random_policy, world_readable_dir

from go1o4.config import ConfigError, load_config

BAD = [
    ("safety.state_timeout=nan", "state_timeout"),  # "nan" was a float: NaN passes every <= check
    ("safety.state_timeout=.nan", "state_timeout"),
    ("safety.state_timeout=inf", "state_timeout"),
    ("safety.state_timeout=1e9", "state_timeout = 1000000000.0 is outside its allowed range [0.01, 0.5] s"),
    ("safety.state_timeout=0", "state_timeout = 0.0 is outside"),
    ("safety.crc_window=-1", "crc_window = -1.0 is outside its allowed range [0.1, 10] s"),
    ("safety.crc_failures_max=0", "crc_failures_max = 0 is outside"),
    ("safety.stale_target_periods=nan", "stale_target_periods"),
    ("safety.motor_temp_max=nan", "motor_temp_max"),
    ("safety.motor_temp_max=1e6", "motor_temp_max = 1000000.0 is outside its allowed range [40, 85] C"),
    ("safety.max_roll_pitch=3", "max_roll_pitch = 3.0 is outside"),
    ("safety.ramp_step=1e-9", "ramp_step"),
    ("safety.deadman_timeout=5", "deadman_timeout = 5.0 is outside"),
    ("remote.estop=[]", "at least one e-stop button combination"),
    ("runtime.calibrate_kp=1e9", "calibrate_kp"),
    ("commands.vx=[-1e9, 1e9]", "vx must be"),
]


@pytest.mark.parametrize("override, message", BAD)
def test_out_of_band_safety_values_are_refused_with_field_value_and_range(override, message):
    with pytest.raises(ConfigError) as e:
        load_session_config(None, [override])
    assert message in str(e.value)


def test_normal_band_needs_an_explicit_override():
    cfg = load_session_config(None, ["safety.state_timeout=0.3"])  # Python API: hard bands only
    assert cfg.safety.state_timeout == 0.3
    with pytest.raises(ConfigError, match=r"safety.state_timeout = 0.3 is outside the normal range \[0.05, 0.2\] s "
                                          r"\(hard limits \[0.01, 0.5\]\): pass --unsafe-override safety.state_timeout"):
        load_session_config(None, ["safety.state_timeout=0.3"], unsafe_override=[])
    cfg = load_session_config(None, ["safety.state_timeout=0.3"], unsafe_override=["safety.state_timeout"])
    assert cfg.safety.state_timeout == 0.3
    with pytest.raises(ConfigError, match="allowed range"):  # the override never opens the hard band
        load_session_config(None, ["safety.state_timeout=0.9"], unsafe_override=["safety.state_timeout"])
    with pytest.raises(ConfigError, match="not a safety field"):
        load_session_config(None, [], unsafe_override=["runtime.status_hz"])


def test_defaults_and_shipped_configs_are_inside_the_normal_bands():
    limits = SafetyLimits()
    for name, band in BANDS.items():
        assert band.hard[0] <= band.normal[0] <= getattr(limits, name) <= band.normal[1] <= band.hard[1], name
    for path in glob.glob(os.path.join(os.path.dirname(__file__), "..", "deploy", "config", "*.yaml")):
        load_session_config(path, unsafe_override=[])


def test_session_cli_refuses_then_runs_with_the_override_in_red_and_in_the_metadata(tmp_path, capsys):
    from go1o4.cli import main
    policy = export_random_policy(world_readable_dir("go1o4_bands_"))
    assert main(["session", "--policy", policy, "--set", "safety.state_timeout=nan", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "safety.state_timeout: expected a finite number, got nan" in err and "Traceback" not in err
    assert main(["session", "--policy", policy, "--set", "safety.motor_temp_max=82", "--quiet"]) == 2
    assert "--unsafe-override safety.motor_temp_max" in capsys.readouterr().err
    logs = tmp_path / "logs"
    argv = ["session", "--policy", policy, "--set", "safety.motor_temp_max=82", "--unsafe-override",
            "safety.motor_temp_max", "--sim-mode", "lockstep", "--sim-robot", "thread", "--no-t265", "--quiet",
            "--log", "--log-dir", str(logs), "--duration", "0.2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "\033[1;31mUNSAFE OVERRIDE: safety.motor_temp_max = 82.0" in err
    meta = yaml.safe_load(open(glob.glob(str(logs / "*" / "session.yaml"))[0]))
    assert meta["unsafe_override"] == {"safety.motor_temp_max": 82.0}


@pytest.mark.parametrize("override, message", [
    ("bc.batch_size=0", "batch_size = 0: must be >= 1"),
    ("bc.steps=-100", "steps = -100: must be >= 0"),
    ("improve.lr=-1e-4", "lr = -0.0001: must be > 0"),
    ("value.lr=nan", "expected a finite number"),
    ("iql.batch_size=0", "batch_size = 0"),
    ("dynamics.lr=0", "lr = 0.0: must be > 0"),
])
def test_offline_config_refuses_nonsense(override, message):
    from go1o4.offline_finetune.config import OfflineConfig
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(OfflineConfig, None, [override])


@pytest.mark.parametrize("override, message", [
    ("ppo.actor_lr=-1", "actor_lr = -1.0: must be > 0"),
    ("ppo.critic_lr=0", "critic_lr = 0.0: must be > 0"),
    ("minibatch_size=0", "minibatch_size"),
])
def test_online_config_refuses_nonsense(override, message):
    from go1o4.online_finetune.config import OnlineConfig
    with pytest.raises(ConfigError, match=message):
        load_config(OnlineConfig, None, [override])
