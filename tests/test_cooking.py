"""The cooking gridworld (cooking_v0): PettingZoo's API and seed tests, each rule on a set-up state,
the observation layout, rendering, seeding and typed errors."""

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from rqe_wrappers import ConfigError
from rqe_wrappers.envs import cooking
from rqe_wrappers.envs.cooking import (
    DOWN,
    LEFT,
    MAX_STEPS,
    RIGHT,
    STAY,
    UP,
    BatchedCooking,
    cooking_env,
    get_layout,
    obs_size,
    parse_layout,
)

CELLS = 25  # both layouts are 5 x 5


def cell(row, col):
    return row * 5 + col


@pytest.mark.parametrize("layout", ["train", "test"])
def test_pettingzoo_api_and_seed_tests(layout):
    parallel_api_test(cooking_env(layout, max_steps=40), num_cycles=100)
    parallel_seed_test(lambda: cooking_env(layout))


def test_spaces_match_across_layouts_so_a_trained_policy_plays_the_held_out_one():
    env, held_out = cooking_env("train"), cooking_env("test")
    assert env.metadata["name"] == "cooking_v0"
    assert env.observation_space("player_0") == held_out.observation_space("player_1")
    assert env.observation_space("player_0").shape == (obs_size(),) == (2 * CELLS + 2 + 2,)
    assert env.action_space("player_0").n == 5
    assert get_layout("train").onions == (cell(4, 0), cell(4, 4))
    assert get_layout("test").onions == (cell(2, 0), cell(2, 4))
    assert get_layout("train").pots == (cell(2, 2),) == get_layout("test").pots


def _core(pos, carry=(False, False), onions=(True, True), layout="train", n=1):
    """A one-copy core in a set-up state (respawns as drawn unless the test switches them off)."""
    core = BatchedCooking(n_copies=n, layout=layout)
    core.reset(seeds=0)
    core.pos[:] = pos
    core.carry[:] = carry
    core.onions[:] = onions
    return core


def _step(core, a0, a1):
    out = core.step(np.array([[a0, a1]] * core.n_copies))
    return out.rewards[0].tolist(), out.costs[0].tolist()


@pytest.fixture
def no_respawn(monkeypatch):
    monkeypatch.setattr(cooking, "RESPAWN_PROB", 0.0)


def test_moving_costs_0_2_staying_is_free_and_an_edge_blocks(no_respawn):
    core = _core([cell(1, 1), cell(3, 3)])
    assert _step(core, DOWN, STAY) == ([-0.2, 0.0], [0.2, 0.0])
    assert core.pos[0].tolist() == [cell(2, 1), cell(3, 3)]
    core.pos[0] = [cell(0, 0), cell(3, 3)]
    assert _step(core, UP, LEFT) == ([-0.2, -0.2], [0.2, 0.2])  # the edge blocks, the move still costs
    assert core.pos[0].tolist() == [cell(0, 0), cell(3, 2)]


def test_a_collision_is_blocked_and_costs_the_mover_2(no_respawn):
    core = _core([cell(0, 0), cell(0, 1)])
    assert _step(core, RIGHT, STAY) == ([-2.2, 0.0], [2.2, 0.0])
    assert core.pos[0].tolist() == [cell(0, 0), cell(0, 1)]


def test_agents_are_updated_in_random_order():
    """Both step into one free cell: whoever goes first gets it, the other collides; both orders occur."""
    core = BatchedCooking(n_copies=2000)
    core.reset(seeds=0)
    core.pos[:] = [cell(1, 0), cell(1, 2)]
    out = core.step(np.tile([RIGHT, LEFT], (2000, 1)))
    seat0_first = core.pos[:, 0] == cell(1, 1)
    assert np.array_equal(core.pos[:, 1] == cell(1, 1), ~seat0_first)
    assert np.allclose(out.costs[seat0_first], [0.2, 2.2]) and np.allclose(out.costs[~seat0_first], [2.2, 0.2])
    assert 0.45 < seat0_first.mean() < 0.55


def test_stepping_on_an_onion_pays_1_to_both_and_removes_it(no_respawn):
    core = _core([cell(3, 0), cell(0, 4)])
    assert _step(core, DOWN, STAY) == ([0.8, 1.0], [0.2, 0.0])
    assert core.carry[0].tolist() == [True, False] and core.onions[0].tolist() == [False, True]
    assert _step(core, UP, STAY) == ([-0.2, 0.0], [0.2, 0.0])  # leaving pays nothing
    assert _step(core, DOWN, STAY) == ([-0.2, 0.0], [0.2, 0.0])  # the source is empty now


def test_a_carrying_agent_leaves_an_onion_where_it_is(no_respawn):
    core = _core([cell(3, 4), cell(0, 0)], carry=(True, False))
    assert _step(core, DOWN, STAY) == ([-0.2, 0.0], [0.2, 0.0])
    assert core.onions[0].tolist() == [True, True] and core.carry[0].tolist() == [True, False]


def test_pushing_into_the_pot_while_carrying_delivers_10(no_respawn):
    core = _core([cell(1, 2), cell(2, 3)], carry=(True, True))
    assert _step(core, DOWN, LEFT) == ([19.8, 19.8], [0.2, 0.2])  # both deliver in one step
    assert core.pos[0].tolist() == [cell(1, 2), cell(2, 3)] and not core.carry.any()
    assert _step(core, DOWN, STAY) == ([-0.2, 0.0], [0.2, 0.0])  # empty-handed: the pot is a wall


def test_the_held_out_layout_has_counters_beside_the_pot(no_respawn):
    core = _core([cell(2, 1), cell(0, 4)], carry=(True, False), layout="test")
    assert core.layout.solid[cell(2, 1)] and core.layout.solid[cell(2, 3)]
    core.pos[0] = [cell(1, 1), cell(0, 4)]
    assert _step(core, DOWN, STAY) == ([-0.2, 0.0], [0.2, 0.0])  # a counter blocks
    assert core.pos[0, 0] == cell(1, 1)


def test_onions_respawn_with_probability_0_2_per_step():
    core = BatchedCooking(n_copies=5000)
    core.reset(seeds=10)
    core.pos[:] = [cell(0, 0), cell(0, 1)]
    core.onions[:] = False
    core.step(np.full((5000, 2), STAY))
    assert 0.18 < core.onions.mean() < 0.22
    assert abs(np.corrcoef(core.onions[:, 0], core.onions[:, 1])[0, 1]) < 0.05  # independent sources


def test_two_symmetric_starts_drawn_from_the_seed():
    starts = {tuple(BatchedCooking().reset(seeds=[s])[0, 0, :CELLS].nonzero()[0]) for s in range(20)}
    assert starts == {(cell(0, 0),), (cell(0, 1),)}
    env = cooking_env()
    obs, _ = env.reset(seed=0)
    again, _ = env.reset(seed=0)
    assert all(np.array_equal(obs[a], again[a]) for a in obs)


def test_observation_layout_and_partner_perspective(no_respawn):
    core = _core([cell(3, 1), cell(0, 4)], carry=(True, False), onions=(False, True))
    obs = core.observe()[0]
    own = np.zeros(obs_size(), np.float32)
    own[cell(3, 1)] = own[CELLS + cell(0, 4)] = own[2 * CELLS] = own[2 * CELLS + 3] = 1.0
    assert np.array_equal(obs[0], own)
    other = np.zeros(obs_size(), np.float32)
    other[cell(0, 4)] = other[CELLS + cell(3, 1)] = other[2 * CELLS + 1] = other[2 * CELLS + 3] = 1.0
    assert np.array_equal(obs[1], other)


def test_episode_is_truncated_after_max_steps_and_infos_carry_costs():
    env = cooking_env(max_steps=MAX_STEPS)
    env.reset(seed=3)
    for t in range(MAX_STEPS):
        _, _, terms, truncs, infos = env.step({"player_0": STAY, "player_1": DOWN})
        assert infos == {"player_0": {"cost": 0.0}, "player_1": {"cost": 0.2}}
        assert not any(terms.values()) and all(truncs.values()) == (t == MAX_STEPS - 1)
    assert env.agents == []
    with pytest.raises(ConfigError, match="reset"):
        env.step({"player_0": STAY, "player_1": STAY})


def test_reset_without_a_seed_continues_the_seeded_stream():
    def trace():
        env, rng = cooking_env(), np.random.default_rng(0)
        env.reset(seed=7)
        out = []
        for _ in range(3):
            obs, _ = env.reset()
            out.append(obs["player_0"])
            for _ in range(40):
                obs, rewards, *_ = env.step({a: int(rng.integers(5)) for a in env.agents})
                out += [obs["player_0"], np.array(list(rewards.values()))]
        return out

    first, second = trace(), trace()
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))


def test_render_ansi_and_rgb():
    env = cooking_env(render_mode="ansi")
    env.reset(seed=0)
    start = env.core.pos[0].tolist()
    board = "ab..." if start == [cell(0, 0), cell(0, 1)] else "ba..."
    assert env.render() == f"{board}\n.....\n..P..\n.....\no...o\nstep 0/100\n"
    rgb = cooking_env(render_mode="rgb_array")
    rgb.reset(seed=0)
    img = rgb.render()
    assert img.shape == (120, 120, 3) and img.dtype == np.uint8
    r, c = divmod(int(rgb.core.pos[0, 0]), 5)
    assert img[r * 24 + 12, c * 24 + 12].tolist() == [200, 50, 50]  # player_0 in red
    assert img[2 * 24 + 12, 2 * 24 + 12].tolist() == [70, 45, 30]  # the pot
    with pytest.warns(UserWarning, match="render_mode"):
        assert cooking_env().render() is None


def test_typed_errors():
    with pytest.raises(ConfigError, match="unknown cooking layout 'kitchen'"):
        cooking_env("kitchen")
    with pytest.raises(ConfigError, match="max_steps"):
        cooking_env(max_steps=0)
    with pytest.raises(ConfigError, match="render_mode"):
        cooking_env(render_mode="human")
    with pytest.raises(ConfigError, match="exactly one A"):
        parse_layout("bad", ("A..", ".P.", "..O"))
    with pytest.raises(ConfigError, match="unknown characters"):
        parse_layout("bad", ("AB.", ".P.", "..X"))
    env = cooking_env()
    env.reset(seed=0)
    for bad in (5, -1, 1.0, "up", True, np.array([1, 2])):
        with pytest.raises(ConfigError, match=r"player_0: action must be an integer in 0\.\.4"):
            env.step({"player_0": bad, "player_1": STAY})
    with pytest.raises(ConfigError, match="missing"):
        env.step({"player_0": STAY})
    env.step({"player_0": np.int64(STAY), "player_1": np.array(STAY)})  # numpy ints are fine
    with pytest.raises(ConfigError, match="reset"):
        BatchedCooking().step(np.zeros((1, 2), np.int64))
    with pytest.raises(ConfigError, match="render mode"):
        env.core.render(0, "human")


def test_srpo_wrap_plays_cooking_and_keeps_the_private_costs():
    from rqe_wrappers import srpo_wrap

    parallel_seed_test(lambda: srpo_wrap(cooking_env(max_steps=20), tau=1.0))
    env = srpo_wrap(cooking_env(max_steps=20), tau=1.0)
    env.srpo_callback_attached = True  # no KL callback here: silence the reminder
    parallel_api_test(env, num_cycles=30)
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"player_0": DOWN, "player_1": DOWN})
    assert infos["player_0"]["cost"] == infos["player_1"]["cost"] == 0.2
    assert infos["player_0"]["raw_rewards"] == {"player_0": -0.2, "player_1": -0.2}


def test_docs_example_runs_and_drawings_match_the_layouts():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cooking.md").read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(block, "docs/cooking.md", "exec"), {})
    drawing = text.split("train          test (held out)\n", 1)[1].split("```", 1)[0].splitlines()
    for row, (train, test) in enumerate(zip(cooking.LAYOUT_ROWS["train"], cooking.LAYOUT_ROWS["test"], strict=True)):
        assert drawing[row] == " ".join(train) + "      " + " ".join(test)


def _distances(lay, goals):
    """Steps from every cell to the nearest goal cell (breadth first over the layout's moves)."""
    dist = np.full(lay.height * lay.width, 10**6)
    dist[goals] = 0
    frontier = list(goals)
    while frontier:
        nxt = []
        for c in frontier:
            for n in lay.target[c, :4]:
                if dist[n] > dist[c] + 1:
                    dist[n] = dist[c] + 1
                    nxt.append(int(n))
        frontier = nxt
    return dist


def _greedy(lay, cell, carrying, onions):
    """Carry to the pot; else walk to the nearest available onion (or wait beside a source)."""
    if carrying:
        into = np.flatnonzero(lay.into_pot[cell, :4])
        if into.size:
            return int(into[0])
        goals = [c for c in range(lay.height * lay.width) if lay.into_pot[c, :4].any() and not lay.solid[c]]
    else:
        goals = [s for s, ok in zip(lay.onions, onions, strict=True) if ok] or list(lay.onions)
    dist = _distances(lay, goals)
    if not carrying and not any(onions) and dist[cell] == 1:
        return STAY  # wait beside an empty source
    best = min(range(5), key=lambda a: (dist[lay.target[cell, a]], a))
    return best if dist[lay.target[cell, best]] < dist[cell] else STAY


def _play(layout, workers, seeds):
    """Mean episode return and cost per seat: greedy workers, the other seat always stays."""
    returns, costs = np.zeros(2), np.zeros(2)
    for seed in seeds:
        env = cooking_env(layout)
        env.reset(seed=seed)
        while env.agents:
            core = env.core
            acts = {
                a: _greedy(core.layout, int(core.pos[0, i]), bool(core.carry[0, i]), core.onions[0])
                if workers[i]
                else STAY
                for i, a in enumerate(env.possible_agents)
            }
            _, rewards, _, _, infos = env.step(acts)
            returns += [rewards["player_0"], rewards["player_1"]]
            costs += [infos["player_0"]["cost"], infos["player_1"]["cost"]]
    return (returns / len(seeds)).round(6).tolist(), (costs / len(seeds)).round(6).tolist()


def test_scripted_greedy_pairs_show_the_free_riding_dilemma():
    """Seeded reference returns (docs/cooking.md): a free-rider earns the team reward without the
    cost; two greedy workers double it on the training layout and jam each other on the held-out one."""
    assert _play("train", (True, False), range(5)) == ([119.32, 139.2], [19.88, 0.0])
    assert _play("train", (True, True), range(5)) == ([238.2, 234.96], [20.2, 23.44])
    assert _play("test", (True, True), range(5)) == ([-172.0, -172.76], [197.2, 197.96])
