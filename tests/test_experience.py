"""n-step windows checked against returns worked out by hand on CountEnv (rewards 1, 2, 3, ...)."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
from toy_envs import CountEnv, zero_agent

from lib import ExperienceFirstLast, ExperienceSourceFirstLast


def take(source, n):
    return list(itertools.islice(iter(source), n))


def summary(exp: ExperienceFirstLast):
    last = None if exp.last_state is None else float(exp.last_state[0])
    return float(exp.state[0]), exp.action, pytest.approx(exp.reward), last, exp.steps


def test_terminal_episode_windows_and_tail():
    # gamma 0.5, n 3, an episode of 5 steps paying 1..5, ending in a terminal state.
    source = ExperienceSourceFirstLast(CountEnv(5), zero_agent, gamma=0.5, steps_count=3)
    got = [summary(e) for e in take(source, 5)]
    assert got == [
        (0.0, 0, 1 + 0.5 * 2 + 0.25 * 3, 3.0, 3),  # 2.75, bootstrap from s3
        (1.0, 0, 2 + 0.5 * 3 + 0.25 * 4, 4.0, 3),  # 4.5
        (2.0, 0, 3 + 0.5 * 4 + 0.25 * 5, None, 3),  # 6.25, the window hits the terminal state
        (3.0, 0, 4 + 0.5 * 5, None, 2),  # the tail: shorter windows, no bootstrap
        (4.0, 0, 5.0, None, 1),
    ]
    assert source.pop_total_rewards() == [15.0]
    assert source.pop_total_rewards() == []


def test_truncated_episode_bootstraps_from_final_observation():
    source = ExperienceSourceFirstLast(
        CountEnv(5, truncate=True), zero_agent, gamma=0.5, steps_count=3
    )
    got = [summary(e) for e in take(source, 5)]
    assert got[2:] == [(2.0, 0, 6.25, 5.0, 3), (3.0, 0, 6.5, 5.0, 2), (4.0, 0, 5.0, 5.0, 1)]


def test_next_episode_starts_after_the_tail():
    source = ExperienceSourceFirstLast(CountEnv(2), zero_agent, gamma=1.0, steps_count=3)
    got = [summary(e) for e in take(source, 4)]
    # episode shorter than n: both windows are tails; then the env restarts at s0
    assert got == [(0.0, 0, 3.0, None, 2), (1.0, 0, 2.0, None, 1)] * 2
    assert source.pop_total_rewards() == [3.0, 3.0]


def test_one_step_windows():
    source = ExperienceSourceFirstLast(CountEnv(3), zero_agent, gamma=0.9, steps_count=1)
    got = [summary(e) for e in take(source, 3)]
    assert got == [(0.0, 0, 1.0, 1.0, 1), (1.0, 0, 2.0, 2.0, 1), (2.0, 0, 3.0, None, 1)]


def test_several_envs_keep_separate_windows():
    envs = [CountEnv(3, offset=0), CountEnv(4, offset=100)]
    seen_states = []

    def agent(states):
        seen_states.append(states.copy())
        return np.array([0, 1])

    source = ExperienceSourceFirstLast(envs, agent, gamma=1.0, steps_count=2)
    exps = take(source, 10)
    by_env = {0: [], 1: []}
    for e in exps:
        by_env[int(e.state[0] >= 100)].append(summary(e))
    # env 0 (length 3): windows (0: 1+2 -> s2), tail (1: 2+3), (2: 3); action 0 every time
    assert by_env[0][:3] == [(0.0, 0, 3.0, 2.0, 2), (1.0, 0, 5.0, None, 2), (2.0, 0, 3.0, None, 1)]
    # env 1 (length 4): (100: 3 -> 102), (101: 5 -> 103), tail (102: 7), (103: 4); action 1
    assert by_env[1][:4] == [
        (100.0, 1, 3.0, 102.0, 2),
        (101.0, 1, 5.0, 103.0, 2),
        (102.0, 1, 7.0, None, 2),
        (103.0, 1, 4.0, None, 1),
    ]
    # the agent sees one stacked batch per step, first axis = environment
    assert seen_states[0].shape == (2, 1)
    assert seen_states[0][:, 0].tolist() == [0.0, 100.0]
    assert set(source.pop_total_rewards()) == {6.0, 10.0}


def test_reported_score_comes_from_episode_statistics_not_the_clipped_reward():
    env = gym.wrappers.RecordEpisodeStatistics(CountEnv(3))
    env = gym.wrappers.ClipReward(env, -1.0, 1.0)
    source = ExperienceSourceFirstLast(env, zero_agent, gamma=1.0, steps_count=3)
    exps = take(source, 3)
    assert exps[0].reward == pytest.approx(3.0)  # learning signal: clipped 1 + 1 + 1
    assert source.pop_total_rewards() == [6.0]  # reported score: the real 1 + 2 + 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": 0.9, "steps_count": 0}, "steps_count"),
        ({"gamma": 1.5, "steps_count": 2}, "gamma"),
        ({"gamma": -0.1, "steps_count": 2}, "gamma"),
        ({"gamma": 0.9, "steps_count": 2.5}, "steps_count"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExperienceSourceFirstLast(CountEnv(3), zero_agent, **kwargs)


def test_empty_env_list_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        ExperienceSourceFirstLast([], zero_agent, gamma=0.9, steps_count=2)


class ValueAgent:
    """Action 0; reports V(s) = 10 * s like ObsValueNet, as PolicyAgent reports its values."""

    def __init__(self):
        self.last_values = None

    def __call__(self, states):
        self.last_values = 10.0 * states[:, 0]
        return np.zeros(len(states), dtype=np.int64)


def test_reuse_values_attaches_the_agents_value_of_the_last_state():
    source = ExperienceSourceFirstLast(
        CountEnv(5), ValueAgent(), gamma=0.5, steps_count=3, reuse_values=True
    )
    exps = take(source, 5)
    # same windows as without reuse, in the same order; live ones carry V(last) = 10 * last
    assert [summary(e) for e in exps] == [
        (0.0, 0, 2.75, 3.0, 3),
        (1.0, 0, 4.5, 4.0, 3),
        (2.0, 0, 6.25, None, 3),
        (3.0, 0, 6.5, None, 2),
        (4.0, 0, 5.0, None, 1),
    ]
    assert [e.last_value for e in exps] == [30.0, 40.0, None, None, None]


def test_reuse_values_leaves_time_limit_tails_to_the_network():
    source = ExperienceSourceFirstLast(
        CountEnv(4, truncate=True), ValueAgent(), gamma=0.5, steps_count=2, reuse_values=True
    )
    exps = take(source, 4)
    # the final observation s4 is never shown to the agent (the env resets), so no value
    assert [(float(e.state[0]), e.last_value) for e in exps] == [
        (0.0, 20.0),
        (1.0, 30.0),
        (2.0, None),
        (3.0, None),
    ]


def test_reuse_values_takes_each_windows_value_from_its_own_env():
    """Worked by hand: env A counts 0, 1, 2 (three steps), env B 10, 11 (two), stepped in
    lockstep with n = 2 and gamma = 0.5. B's first game ends at the second step: its tail
    comes out at once. A's first full window (0 -> 2) waits one step for V(2), which the agent
    computes in the same call as V(10) for B's next game: the window must carry 20 (A's slot),
    not 100 (B's). Then A's game ends, and B's second game repeats its first."""
    source = ExperienceSourceFirstLast(
        [CountEnv(3), CountEnv(2, offset=10)],
        ValueAgent(),
        gamma=0.5,
        steps_count=2,
        reuse_values=True,
    )
    exps = take(source, 7)
    assert [summary(e) for e in exps] == [
        (10.0, 0, 2.0, None, 2),  # B: 1 + 0.5 * 2, terminal
        (11.0, 0, 2.0, None, 1),
        (0.0, 0, 2.0, 2.0, 2),  # A: 1 + 0.5 * 2, bootstrapped from V(2)
        (1.0, 0, 3.5, None, 2),  # A: 2 + 0.5 * 3, terminal
        (2.0, 0, 3.0, None, 1),
        (10.0, 0, 2.0, None, 2),  # B's second game
        (11.0, 0, 2.0, None, 1),
    ]
    assert [e.last_value for e in exps] == [None, None, 20.0, None, None, None, None]
