"""The SRPO paper's Hanabi (3x3, 2 and 4 players): the env, training through the turn-based path, cross-play, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch as th
from pettingzoo.test import api_test, seed_test

from rqe_wrappers.cli import main as rqe
from rqe_wrappers.core.policy import RandomPolicy
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.hanabi import (
    HanabiSweep,
    alternating_seatings,
    hanabi_config,
    hanabi_crossplay,
    hanabi_env,
    make_model,
    random_score,
    run_sweep,
    train_env,
)
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.sb3 import SRPOCallback

TINY = PPOSettings(n_copies=4, n_steps=8, batch_size=32, n_epochs=1, net_arch=(16,))


def _random_game(env, seed: int, rng: np.random.Generator) -> tuple[dict[str, float], list]:
    """One game of uniformly random legal moves: each seat's return (AEC ``last()``) and the move trace."""
    env.reset(seed=seed)
    returns = dict.fromkeys(env.possible_agents, 0.0)
    trace = []
    for seat in env.agent_iter():
        obs, reward, term, trunc, info = env.last()
        returns[seat] += reward
        if term or trunc:
            env.step(None)
            continue
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        trace.append((seat, obs.tobytes(), action))
        env.step(action)
    return returns, trace


# ---- the env ----


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"players": 1}, "players"),
        ({"players": 2, "hand_sizes": 3}, "unknown parameter"),
        ({"players": 4, "hand_size": 5}, "20 cards but a 3x3 deck has 18"),
        ({"observation_type": 1}, "observation_type"),
        ({"colors": 0}, "colors"),
    ],
)
def test_bad_game_parameters_are_typed_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        hanabi_env(**kwargs)


@pytest.mark.parametrize(("players", "obs_size", "actions"), [(2, 200, 12), (4, 344, 24)])
def test_spaces_masks_and_api(players, obs_size, actions):
    assert hanabi_config(players) == {
        "players": players,
        "colors": 3,
        "ranks": 3,
        "hand_size": 3,
        "max_information_tokens": 8,
        "max_life_tokens": 3,
        "observation_type": "card_knowledge",
    }
    env = hanabi_env(players)
    env.reset(seed=0)
    seats = [f"player_{i}" for i in range(players)]
    assert env.possible_agents == seats and env.agent_selection == "player_0"
    assert env.observation_space("player_0").shape == (obs_size,) and env.action_space("player_0").n == actions
    mask = env.last()[4]["action_mask"]
    # moves: discard card 0-2, play card 0-2, then hints; all 8 hint tokens left, so discarding is illegal
    assert mask.shape == (actions,) and not mask[:3].any() and mask[3:6].all()
    api_test(hanabi_env(players), num_cycles=50)
    seed_test(lambda: hanabi_env(players), num_cycles=50)  # fails on shimmy's own env: it reseeds no spaces


@pytest.mark.parametrize("players", [2, 4])
def test_every_seat_returns_the_score_and_seeds_reproduce(players):
    """shimmy re-hands the last rewards at dead steps; hanabi_env does not: every return is the final score."""
    env = hanabi_env(players)
    scores = []
    for seed in range(12):
        returns, trace = _random_game(env, seed, np.random.default_rng(seed))
        score = float(env.unwrapped.game_state.returns()[0])
        assert set(returns.values()) == {score}
        again, trace_again = _random_game(hanabi_env(players), seed, np.random.default_rng(seed))
        assert again == returns and trace_again == trace
        scores.append(score)
    assert any(s > 0 for s in scores) and all(0 <= s <= 9 for s in scores)
    first = [_random_game(env, s, np.random.default_rng(0))[1][0][1] for s in (0, 1)]
    assert first[0] != first[1]  # another seed, another deal


def test_random_score_is_seeded():
    assert random_score(2, episodes=8, seed=3) == random_score(2, episodes=8, seed=3)
    assert 0 <= random_score(4, episodes=8, seed=3) <= 9


# ---- training ----


def _params(model) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


@pytest.mark.parametrize("players", [2, 4])
def test_seats_shadows_and_a_real_update(players):
    model = make_model(players, 1.0, seed=0, settings=TINY)
    venv = model.get_env()
    seats = [f"player_{i}" for i in range(players)]
    # copy i learns seat i mod n; the learner's snapshot plays the other seats of every copy
    assert venv.slot_seats == [seats[i % players] for i in range(4)] and venv.uses_snapshot
    assert venv.get_attr("learning_seats", 0)[0] == seats  # one team, one shared policy for every seat
    assert venv.observation_space.shape[0] == hanabi_env(players).observation_space("player_0").shape[0] + players + 2
    shadow_seats = set()
    for _ in range(4):  # one shadow per episode, drawn among all seats
        venv.reset()
        per_copy = venv.get_attr("shadows")
        assert all(len(s) == 1 for s in per_copy)
        shadow_seats |= {next(iter(s)) for s in per_copy}
    assert len(shadow_seats) > 1
    before = _params(model)
    model.learn(64, callback=SRPOCallback())
    after = _params(model)
    assert any(not th.equal(before[k], after[k]) for k in before)
    venv.close()


def test_ippo_has_no_shadow_and_rewards_are_the_score():
    env = train_env(4, tau=0.0)
    env.reset(seed=1)
    assert env.shadows == set() and env.learning_seats == [f"player_{i}" for i in range(4)]
    returns, _ = _random_game(env, 1, np.random.default_rng(1))
    assert set(returns.values()) == {float(env.unwrapped.game_state.returns()[0])}


def test_training_is_seeded():
    runs = []
    for _ in range(2):
        model = make_model(2, 1.0, seed=7, settings=TINY)
        model.learn(64, callback=SRPOCallback())
        runs.append(_params(model))
        model.get_env().close()
    assert all(th.equal(runs[0][k], runs[1][k]) for k in runs[0])


# ---- cross-play ----


def test_alternating_seats():
    seats = [f"player_{i}" for i in range(4)]
    assert alternating_seatings(seats, "A", "B") == {
        "player_0": "A",
        "player_1": "B",
        "player_2": "A",
        "player_3": "B",
    }


@pytest.mark.parametrize("players", [2, 4])
def test_crossplay_table(players):
    model = make_model(players, 1.0, seed=0, settings=TINY)  # seat identity + role feature, untrained
    space = hanabi_env(players)
    rand = RandomPolicy(space.observation_space("player_0"), space.action_space("player_0"))
    other = RandomPolicy(space.observation_space("player_0"), space.action_space("player_0"))
    agents = {"srpo": model, "random": rand, "random-2": other}
    methods = {"srpo": "SRPO", "random": "random", "random-2": "random"}
    table = hanabi_crossplay(agents, players, methods=methods, episodes=2, seed=5)
    model.get_env().close()
    assert table.agents == ("srpo", "random", "random-2") and table.seats == ("player_0", "player_1")
    assert len(table.rows) == (3 + 3 * 2) * 2 * 2  # 3 self-play + 6 cross seatings, 2 episodes, a row per agent
    assert {k: len(v) for k, v in table.by_pairing().items()} == {(a, b): 4 for a in agents for b in agents}
    assert table.matrix().shape == (3, 3)
    for row in table.rows:  # Hanabi's reward is shared: every seat's return is the score
        assert len({row[f"return:player_{i}"] for i in range(players)}) == 1
        assert row["agent_return"] == row["partner_return"]
    again = hanabi_crossplay(agents, players, methods=methods, episodes=2, seed=5)
    assert repr(again.rows) == repr(table.rows)  # NaN costs: compare as text


def test_crossplay_rejects_unknown_methods():
    with pytest.raises(ConfigError, match="not in agents"):
        hanabi_crossplay({"a": "x"}, 4, methods={"b": "m"})


# ---- the sweep and its command ----


def test_sweep_writes_models_table_and_heatmap(tmp_path):
    sweep = HanabiSweep(players=2, tau=(0.0, 1.0), seeds=(0,), steps=32, episodes=1, out=tmp_path)
    report = run_sweep(sweep, TINY)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "crossplay.csv",
            "crossplay.json",
            "crossplay.png",
            "crossplay.svg",
            "hanabi2p-tau0-seed0.zip",
            "hanabi2p-tau1-seed0.zip",
            "results.json",
        ]
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["crossplay"]["agents"] == ["IPPO s0", "SRPO tau=1 s0"] == report["crossplay"]["agents"]
    assert [(r["tau"], r["seed"], r["steps"]) for r in saved["runs"]] == [(0.0, 0, 32), (1.0, 0, 32)]
    assert set(saved["crossplay"]["summary"]["per_method"]) == {"IPPO", "SRPO tau=1"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tau", "-1"], "tau must be finite and >= 0"),
        (["--seeds", "0", "0"], "seeds must be distinct"),
        (["--steps", "0"], "steps must be an integer >= 1"),
        (["--episodes", "0"], "episodes must be an integer >= 1"),
        (["--n-copies", "0"], "n_copies must be an integer >= 1"),
    ],
)
def test_cli_errors_are_typed(argv, message, capsys, tmp_path):
    assert rqe(["hanabi", "sweep", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_refuses_three_players(capsys):
    with pytest.raises(SystemExit) as e:
        rqe(["hanabi", "sweep", "--players", "3"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
