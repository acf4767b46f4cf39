"""The README's Python examples run as written, with training budgets cut: ``learn(N)`` becomes
``learn(256)`` and PPO's rollout length defaults to 32 steps instead of 2048."""

import re
from pathlib import Path

import pytest
import stable_baselines3
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


class ShortPPO(stable_baselines3.PPO):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("n_steps", 32)
        kwargs.setdefault("batch_size", 64)
        super().__init__(*args, **kwargs)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stable_baselines3, "PPO", ShortPPO)
    code = re.sub(r"\.learn\(\d[\d_]*", ".learn(256", BLOCKS[index])
    namespace: dict = {}
    exec(compile(code, f"README.md block {index}", "exec"), namespace)
    assert isinstance(namespace["model"], ShortPPO) and namespace["model"].num_timesteps >= 256
