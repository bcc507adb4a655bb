"""Presets and validation: bad settings fail with a message that names the field and the fix."""

import dataclasses
import pickle
import re

import pytest

from lib import CARTPOLE, PONG, ConfigError, get_preset
from lib.config import A3CConfig, override, validate


def test_pong_preset_is_the_seed():
    assert (PONG.gamma, PONG.learning_rate, PONG.adam_eps, PONG.entropy_beta) == (
        0.99,
        0.001,
        1e-3,
        0.01,
    )
    assert (PONG.batch_size, PONG.reward_steps, PONG.clip_grad) == (128, 4, 0.1)
    assert (PONG.processes, PONG.envs_per_process, PONG.micro_batch_size) == (4, 8, 32)
    assert (PONG.env_id, PONG.stop_score) == ("PongNoFrameskip-v4", 18.0)
    assert get_preset("breakout").stop_score == 400.0


def test_pong_fast_uses_the_n_step_with_the_fewer_frames_to_solve():
    """pong-fast departs from the seed's n = 4 on the evidence of learning_pong_fast_nstep.json:
    the median frames to solve of its seeds, an unsolved run counted as never solving."""
    from benchmarks.common import load
    from benchmarks.pong_runs import median_frames_to_solve

    runs = load("learning_pong_fast_nstep")["runs"]
    by_n = {n: [r for r in runs if r["config"]["reward_steps"] == n] for n in (4, 8)}
    assert (get_preset("pong-fast").reward_steps, PONG.reward_steps) == (8, 4)
    assert all(r["config"].get("value_loss_coef", 1.0) == 1.0 for r in runs)  # older: no field
    assert len(by_n[4]) >= 3 and len(by_n[8]) >= 3
    assert median_frames_to_solve(by_n[8]) < median_frames_to_solve(by_n[4])


def test_pong_fast_uses_the_value_weight_with_the_fewer_frames_to_solve():
    """With eight-step returns, halving the value term's weight solved Pong in fewer frames on
    the seeds both weights ran (learning_pong_fast_n8_vlc0.5.json), and over all its seeds its
    median, an unsolved run counted as never solving, is within 6M frames."""
    from benchmarks.common import load
    from benchmarks.pong_runs import median_frames_to_solve

    runs = load("learning_pong_fast_n8_vlc0.5")["runs"]
    by_coef = {
        c: {r["config"]["seed"]: r for r in runs if r["config"]["value_loss_coef"] == c}
        for c in (0.5, 1.0)
    }
    assert (get_preset("pong-fast").value_loss_coef, PONG.value_loss_coef) == (0.5, 1.0)
    assert all(r["config"]["reward_steps"] == 8 for r in runs)
    both = sorted(by_coef[0.5].keys() & by_coef[1.0].keys())
    assert both == [1, 2, 3, 4] and len(runs) == len(by_coef[0.5]) + len(by_coef[1.0])
    medians = [median_frames_to_solve([by_coef[c][s] for s in both]) for c in (0.5, 1.0)]
    assert medians[0] < medians[1]
    assert median_frames_to_solve(list(by_coef[0.5].values())) <= 6_000_000


def test_presets_are_frozen_and_pickle():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PONG.gamma = 0.5
    assert pickle.loads(pickle.dumps(CARTPOLE)) == CARTPOLE


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"batch_size": 16}, "batch_size"),
        ({"processes": 0}, "processes"),
        ({"envs_per_process": 0}, "envs_per_process"),
        ({"gamma": 1.2}, "gamma"),
        ({"reward_steps": 0}, "reward_steps"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"max_frames": -1}, "max_frames"),
        ({"net": "resnet"}, "net"),
        ({"worker_device": "gpu"}, "worker_device"),
        ({"lr_anneal": True}, "lr_anneal.*--max-frames"),  # pong has no max_frames
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        get_preset("pong", **overrides)


def test_batch_smaller_than_micro_batch_says_what_to_change():
    with pytest.raises(ConfigError, match="micro_batch_size"):
        validate(dataclasses.replace(PONG, batch_size=8, micro_batch_size=32))


def test_unknown_preset_suggests_a_close_name():
    with pytest.raises(ConfigError, match="pong"):
        get_preset("pnog")


def test_none_override_keeps_the_preset_value():
    assert get_preset("pong", processes=None, seed=3) == dataclasses.replace(PONG, seed=3)


def test_every_config_field_is_a_command_line_option_with_its_docstring():
    from dataclasses import fields

    from lib.config import A3CConfig, field_docs
    from lib.train import build_parser

    parser = build_parser()
    options = {o for action in parser._actions for o in action.option_strings}
    for f in fields(A3CConfig):
        if f.name != "preset":
            assert "--" + f.name.replace("_", "-") in options, f.name
    assert field_docs()["adam_eps"].startswith("Adam epsilon")
    args = parser.parse_args(["--adam-eps", "1e-5", "--no-reuse-values", "--net", "atari-small"])
    assert (args.adam_eps, args.reuse_values, args.net) == (1e-5, False, "atari-small")
    assert parser.parse_args(["--lr", "0.003", "--envs", "3"]).learning_rate == 0.003
    assert parser.parse_args([]).gamma is None  # unset: the preset's value stays


def test_a_config_shows_in_a_notebook_as_a_table_with_the_reference_codes_changes_in_bold():
    config = get_preset("cartpole")
    table = config._repr_html_()
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert [name for name, _, _ in rows] == [f.name for f in dataclasses.fields(A3CConfig)]
    cells = {name: value for name, value, _ in rows}
    assert cells["learning_rate"] == "<b>0.002</b>"  # the reference code's is 0.001
    assert cells["gamma"] == "0.99"  # the same as the reference code's
    assert cells["env_id"] == "<b>&#x27;CartPole-v1&#x27;</b>"  # escaped, not raw quotes
    docs = {name: doc for name, _, doc in rows}
    assert docs["gamma"] == "Discount factor"
    assert "bold = differs from preset pong</caption>" in table
    # preset pong itself has nothing to set in bold, so its caption does not promise any
    pong = get_preset("pong")._repr_html_()
    assert "<caption" in pong and "bold" not in pong


def test_the_layout_rule_keeps_the_preset_on_2_cores_and_scales_it_to_the_machine():
    from lib.config import fit_layout

    fast = get_preset("pong-fast")
    two = fit_layout(fast, cores=2)
    assert (two.processes, two.envs_per_process, two.learner_threads) == (2, 16, 0)  # measured
    assert "own layout" in two.reason
    # a CPU of 8 and 16 cores: a quarter of them for the learner, the rest play
    eight, sixteen = fit_layout(fast, cores=8), fit_layout(fast, cores=16)
    assert (eight.processes, eight.learner_threads) == (6, 2)
    assert (sixteen.processes, sixteen.learner_threads, sixteen.envs_per_process) == (12, 4, 16)
    # a CUDA learner on 16 cores: what solved Pong on the H100 machine
    gpu = fit_layout(fast, cores=16, cuda=True)
    assert (gpu.processes, gpu.envs_per_process, gpu.worker_device) == (14, 8, "cpu")
    # ale-py's vector env where it was measured faster: 2 cores, not the GPU's 16
    assert two.vector_env and not gpu.vector_env and not sixteen.vector_env
    hosted = fit_layout(fast, cores=2, cuda=True)  # a hosted GPU runtime: the preset's own
    assert (hosted.processes, hosted.envs_per_process) == (2, 16)
    # Hogwild's main process does not train: every core plays and learns
    assert fit_layout(override(fast, variant="hogwild"), cores=8).processes == 8
    # CartPole keeps its own layout on any machine
    assert fit_layout(get_preset("cartpole"), cores=16, cuda=True).processes == 2
    # every layout makes a valid config
    for layout in (two, eight, sixteen, gpu):
        assert override(fast, **layout.overrides()).processes == layout.processes


def test_usable_cores_follow_the_cpu_affinity():
    import subprocess
    import sys

    code = "from lib.config import usable_cores; print(usable_cores())"
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


def test_changed_shows_only_the_fields_that_differ_from_the_preset():
    config = get_preset("cartpole", reuse_values=False, learning_rate=0.004)
    table = config.changed()
    assert table.names == ["learning_rate", "reuse_values"]  # in the dataclass's order
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td>(.*?)</td>", table._repr_html_())
    assert rows == [("learning_rate", "<b>0.004</b>"), ("reuse_values", "<b>False</b>")]
    assert get_preset("pong-fast").changed().names == []
    assert get_preset("pong-fast").changed(get_preset("pong")).names[:2] == ["preset", "net"]
