"""The Atari pipeline on the real ALE: shapes, stacking order, FIRE/no-op starts, real scores."""

import numpy as np
import pytest

from lib import FireResetEnv, make_env
from lib.envs import is_atari


def wrappers_of(env):
    names = []
    while hasattr(env, "env"):
        names.append(type(env).__name__)
        env = env.env
    return names


@pytest.mark.parametrize("env_id", ["PongNoFrameskip-v4", "BreakoutNoFrameskip-v4", "ALE/Pong-v5"])
def test_observation_is_four_stacked_84x84_uint8_frames(env_id):
    env = make_env(env_id, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.shape == (4, 84, 84)
    obs, reward, *_ = env.step(0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert reward in (-1.0, 0.0, 1.0)
    env.close()


def test_frames_are_stacked_oldest_first():
    env = make_env("PongNoFrameskip-v4", seed=1)
    obs, _ = env.reset(seed=1)
    prev = obs
    changed = False
    for _ in range(30):
        obs, *_ = env.step(env.action_space.sample())
        # a step shifts the stack left by one frame and appends the newest on the right
        np.testing.assert_array_equal(obs[:3], prev[1:])
        changed = changed or not np.array_equal(obs[3], prev[3])
        prev = obs
    assert changed, "the newest frame never changed: the game is not running"
    env.close()


def test_pong_presses_fire_on_reset_and_starts_with_random_noops():
    env = make_env("PongNoFrameskip-v4", noop_max=0)
    assert "FireResetEnv" in wrappers_of(env)
    _, info = env.reset(seed=0)
    # no no-ops: FIRE then one move, each repeated for 4 emulator frames
    assert info["episode_frame_number"] == 2 * 4
    starts = set()
    env = make_env("PongNoFrameskip-v4", noop_max=30)
    for seed in range(8):
        _, info = env.reset(seed=seed)
        starts.add(info["episode_frame_number"])
    assert len(starts) > 1, "no-op starts should vary the first frame between seeds"
    assert all(8 <= f <= (30 + 2) * 4 for f in starts)


def test_fire_reset_refuses_games_without_fire():
    import gymnasium as gym

    with pytest.raises(ValueError, match="FIRE"):
        FireResetEnv(gym.make("FreewayNoFrameskip-v4"))


def test_pong_score_is_the_whole_game():
    env = make_env("PongNoFrameskip-v4", seed=3)
    env.reset(seed=3)
    points = {-1.0: 0, 1.0: 0}
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        if reward:
            points[reward] += 1
        if terminated or truncated:
            break
    assert terminated and not truncated
    # the game ends when one side reaches 21; the score is ours minus theirs over the game
    assert max(points.values()) == 21
    assert info["episode"]["r"] == points[1.0] - points[-1.0]


def test_reported_score_is_unclipped_while_learning_reward_is_clipped():
    # Space Invaders pays 5-30 points per alien: clipping makes a visible difference.
    env = make_env("SpaceInvadersNoFrameskip-v4", seed=0)
    env.reset(seed=0)
    clipped = 0.0
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward in (-1.0, 0.0, 1.0)
        clipped += reward
        if terminated or truncated:
            break
    assert info["episode"]["r"] > clipped > 0


def test_cartpole_is_a_plain_vector_env():
    env = make_env("CartPole-v1", seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and obs.dtype == np.float32
    assert not is_atari("CartPole-v1") and is_atari("PongNoFrameskip-v4")


def test_unknown_env_id_lists_close_names():
    with pytest.raises(ValueError, match="PongNoFrameskip-v4") as err:
        make_env("PongNoFramskip-v4")
    assert "unknown environment id" in str(err.value)


def test_the_vector_env_sees_what_make_env_sees_on_the_same_seed():
    """ale-py's C++ pipeline and the gymnasium wrappers, with the vector env's two conventions
    (no FIRE on reset, an episode's stack starting blank): the same observation at every step
    of a whole game of Pong, its last one included, and the same real score."""
    import numpy as np

    from lib.envs import make_vector_env

    env = make_env(
        "PongNoFrameskip-v4", noop_max=0, clip_rewards=False, fire_reset=False, stack_padding="zero"
    )
    vec = make_vector_env("PongNoFrameskip-v4", 1, noop_max=0, fire_reset=False)
    obs, _ = env.reset(seed=3)
    vec_obs, _ = vec.reset(seed=3)
    np.testing.assert_array_equal(obs, vec_obs[0])
    rng = np.random.default_rng(0)
    steps, score = 0, 0.0
    while True:
        action = int(rng.integers(0, 6))
        obs, reward, terminated, truncated, info = env.step(action)
        vec_obs, vec_reward, vec_terminated, _, vec_info = vec.step(np.array([action]))
        steps, score = steps + 1, score + float(vec_reward[0])
        assert reward == vec_reward[0] and terminated == vec_terminated[0], steps
        if terminated or truncated:
            np.testing.assert_array_equal(obs, vec_info["final_obs"][0])  # the game's last frame
            break
        np.testing.assert_array_equal(obs, vec_obs[0], err_msg=f"step {steps}")
    assert steps > 700 and score == info["episode"]["r"]  # a whole game, its real score
    vec.close()


def test_a_vector_env_worker_sends_the_real_score_and_clipped_rewards():
    """The experience source over a vector env: rewards clipped for learning, the score of a
    finished game the real one (Pong: -21 to 21), windows as with gymnasium's envs."""
    import numpy as np

    from lib import ExperienceSourceFirstLast, RandomAgent
    from lib.envs import make_vector_env

    vec = make_vector_env("PongNoFrameskip-v4", 2, seed=1)
    source = ExperienceSourceFirstLast(vec, RandomAgent(6, seed=0), gamma=0.99, steps_count=4)
    scores = []
    for exp in source:
        assert exp.state.shape == (4, 84, 84) and exp.state.dtype == np.uint8
        assert -4.0 <= exp.reward <= 4.0  # four clipped rewards at most
        scores += source.pop_total_rewards()
        if scores:
            break
    assert -21 <= scores[0] <= 21 and scores[0] == int(scores[0])
    vec.close()
