"""The README's Python examples run as written (training budgets cut to a few hundred steps)."""

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    code = re.sub(r"\.learn\(\d[\d_]*", ".learn(256", BLOCKS[index])
    namespace: dict = {}
    exec(compile(code, f"README.md block {index}", "exec"), namespace)
    assert "model" in namespace and namespace["model"].num_timesteps >= 256
