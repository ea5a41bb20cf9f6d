"""Transition datasets: history stacking at episode boundaries, flags, splits, save/load, real build."""
import numpy as np
import pytest
from go1o4.data.dataset import BuildConfig, TransitionDataset, build_dataset, merge_datasets
from go1o4.data.import_uni_o4 import import_uni_o4
from go1o4.data.log_format import Episode, LogReadError
from go1o4.data.writer import SessionWriter

from go1o4 import contract as C


def synthetic_episode(k, n, end="truncation"):
    """obs = 100 k + step in every column except an upright gravity vector (inside the physical ranges: |x| <= 1e4)."""
    obs = np.zeros((n, 58), np.float32)
    obs[:, 3:] = 100 * k + np.arange(n)[:, None]
    obs[:, 0:3] = [0.0, 0.0, -1.0]
    steps = {"time": np.arange(n) * 0.02, "obs": obs, "action": np.full((n, 12), k, np.float32),
             "reward": np.arange(n, dtype=np.float32) + 0.5}
    return Episode(steps=steps, end=end, reason="fall" if end == "terminal" else "time_limit", name="ep%d" % k)


CFG = BuildConfig(reward="logged")


def test_history_matches_observation_history_and_never_leaks():
    eps = [synthetic_episode(1, 7, "terminal"), synthetic_episode(2, 2), synthetic_episode(3, 9)]
    ds = build_dataset(eps, CFG)
    assert len(ds) == 6 + 1 + 8 and ds.observations.shape == (15, 290)
    row = 0
    for ep in eps:  # reference: go1o4.contract.ObservationHistory, step by step
        hist = C.ObservationHistory()
        stacked = [hist.reset(ep["obs"][0])] + [hist.push(o) for o in ep["obs"][1:]]
        for t in range(ep.num_steps - 1):
            np.testing.assert_array_equal(ds.observations[row], stacked[t])
            np.testing.assert_array_equal(ds.next_observations[row], stacked[t + 1])
            assert ds.rewards[row] == t + 0.5 and ds.actions[row, 0] == ep["action"][0, 0]
            row += 1
    first_of_ep3 = ds.observations[7].reshape(5, 58)
    assert np.all(first_of_ep3[:, 3:] == 300)  # filled with its own first observation, oldest first
    assert np.all((ds.observations[ds.episode_ids == 2].reshape(-1, 5, 58)[:, :, 3:] // 100) == 3)
    np.testing.assert_array_equal(ds.terminals, np.eye(15)[5])  # last transition of the fall episode
    np.testing.assert_array_equal(ds.timeouts, np.eye(15)[6] + np.eye(15)[14])
    np.testing.assert_array_equal(ds.episode_ids, [0] * 6 + [1] + [2] * 8)


def test_stale_start_nonfinite_and_short_episodes():
    lying = synthetic_episode(1, 6)
    lying.steps["obs"][:2, 0:3] = [0.0, -0.7, 0.7]  # two stale rows before the robot is up
    nan = synthetic_episode(2, 10)
    nan.steps["obs"][6, 10] = np.nan
    ds = build_dataset([lying, nan, synthetic_episode(3, 1)], CFG)
    assert ds.meta["dropped_stale_steps"] == 2 and ds.meta["dropped_nonfinite_steps"] == 4
    assert ds.meta["skipped_short_episodes"] == 1
    assert len(ds) == 3 + 5 and ds.observations[0, 3] == 102  # starts at the first upright step
    assert ds.meta["episodes"][1]["reason"] == "non_finite" and ds.timeouts[-1] == 1
    kept = build_dataset([lying], BuildConfig(reward="logged", skip_stale_start=False))
    assert len(kept) == 5


def test_split_is_by_episode_deterministic_and_uses_train_stats():
    ds = build_dataset([synthetic_episode(k, 5 + k) for k in range(20)], CFG)
    train, val = ds.split(0.25, seed=3)
    train2, val2 = ds.split(0.25, seed=3)
    _, val3 = ds.split(0.25, seed=4)
    assert set(np.unique(val.episode_ids)) == set(np.unique(val2.episode_ids)) != set(np.unique(val3.episode_ids))
    assert not set(np.unique(train.episode_ids)) & set(np.unique(val.episode_ids))
    assert val.num_episodes == 5 and len(train) + len(val) == len(ds)
    for k in train.stats:
        np.testing.assert_array_equal(val.stats[k], train.stats[k])
    np.testing.assert_allclose(train.stats["obs_mean"], train.observations.mean(0), rtol=1e-5)
    assert np.all(train.stats["obs_std"] >= 1e-2)  # floor on constant features
    with pytest.raises(ValueError, match="val_fraction"):
        ds.split(1.0)


def test_save_load_round_trip_and_merge(tmp_path):
    ds = build_dataset([synthetic_episode(k, 4 + k) for k in range(4)], CFG)
    path = str(tmp_path / "d.h5")
    ds.save(path)
    back = TransitionDataset.load(path)
    for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts", "episode_ids"):
        np.testing.assert_array_equal(getattr(back, k), getattr(ds, k))
        assert getattr(back, k).dtype == getattr(ds, k).dtype
    assert back.meta["reward"] == "logged" and back.meta["episodes"][2]["name"] == "ep2"
    merged = merge_datasets([ds, back])
    assert len(merged) == 2 * len(ds) and merged.num_episodes == 8
    assert merged.meta["episodes"][ds.episode_ids.max() + 1 + 3]["name"] == "ep3"
    back.meta["reward"] = "uni_o4_world"
    with pytest.raises(ValueError, match="different reward"):
        merge_datasets([ds, back])
    w = SessionWriter(tmp_path / "logs", {}, session_id="s", fsync=False)
    e = w.start_episode()
    e.append({"time": 0.0, "obs": np.zeros(58), "action": np.zeros(12)})
    e.close()
    with pytest.raises(LogReadError, match="not a go1o4 transition dataset"):
        TransitionDataset.load(w.episodes[0])


@pytest.fixture(scope="module")
def real_dataset(real_logs_dir):
    return build_dataset(str(real_logs_dir))


def test_real_logs_build(real_dataset):
    ds = real_dataset
    assert ds.meta["steps"] == 154010 - 51 - 4  # 51 stale rows, 4 files left with one step
    assert len(ds) == ds.meta["steps"] - 166 and ds.num_episodes == 166
    assert ds.terminals.sum() == 1 and ds.timeouts.sum() == 165
    assert ds.observations.dtype == np.float32 and ds.observations.shape[1] == 290
    for k in ("observations", "next_observations", "actions", "rewards"):
        assert np.all(np.isfinite(getattr(ds, k))), k
    # the newest block of s' is the next step's observation, the older blocks shift by one
    same_ep = ds.episode_ids[1:] == ds.episode_ids[:-1]
    np.testing.assert_array_equal(ds.next_observations[:-1][same_ep], ds.observations[1:][same_ep])


def test_runtime_logs_and_raw_logs_build_the_same(real_logs_dir, tmp_path, real_dataset):
    folder = real_logs_dir / "20230808-172641"
    import_uni_o4(str(folder), str(tmp_path / "ours"), progress=False)
    from_raw = build_dataset(str(folder))
    from_ours = build_dataset(str(tmp_path / "ours"))
    assert len(from_raw) > 0
    for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(from_ours, k), getattr(from_raw, k), err_msg=k)
    n = len(from_raw)
    first = [e["name"] for e in real_dataset.meta["episodes"]].index(from_raw.meta["episodes"][0]["name"])
    start = int(np.argmax(real_dataset.episode_ids == first))
    np.testing.assert_array_equal(real_dataset.observations[start:start + n], from_raw.observations)


def test_out_of_range_steps_are_reported_and_quarantined_not_read_as_a_fall():
    """Issue 14.5: zeroed rows (a logger glitch) and 1e30 / 1e6 garbage are outside the physical ranges."""
    from go1o4.data.validate import validate_episode

    zeroed = synthetic_episode(1, 20)
    zeroed.steps["obs"][12:] = 0.0  # all-zero rows: no gravity vector, which the fall detector read as a fall
    huge = synthetic_episode(2, 10)
    huge.steps["obs"][4, 20] = 1e30
    wild = synthetic_episode(3, 10)
    wild.steps["action"][7, 3] = 1e6
    msgs = {k: " ".join(str(i) for i in validate_episode(e)) for k, e in (("z", zeroed), ("h", huge), ("w", wild))}
    assert "field 'obs' outside its physical range in 8 step(s), first at step 12" in msgs["z"]
    assert "field 'obs' outside its physical range in 1 step(s), first at step 4" in msgs["h"]
    assert "field 'action' outside its physical range in 1 step(s), first at step 7" in msgs["w"]
    ds = build_dataset([zeroed, huge, wild], CFG)
    assert ds.meta["quarantined_out_of_range_steps"] == 8 + 6 + 3
    assert [e["reason"] for e in ds.meta["episodes"]] == ["out_of_range"] * 3
    assert [e["end"] for e in ds.meta["episodes"]] == ["truncation"] * 3  # no fall
    assert np.abs(ds.observations).max() < 1e4 and np.abs(ds.actions).max() < 1e3
