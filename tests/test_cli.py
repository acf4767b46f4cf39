"""The rqe command line: options built from settings dataclasses, --config, one error handler, aliases."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rqe_wrappers.cli import build_parser, main
from rqe_wrappers.cli.settings import add_config_option, add_settings, read_config, settings_from_args
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.settings import setting


@dataclass(frozen=True)
class Toy:
    name: str = field(metadata={"help": "a required name"})
    steps: int = setting(10, "how many steps")
    rate: float = setting(0.5, "a rate")
    sizes: tuple[int, ...] = setting((64, 64), "layer sizes")
    plots: bool = setting(True, "draw the plots")
    out: Path = setting(Path("runs/x"), "where to write")  # noqa: RUF009 (a field)
    pick: int | None = setting(None, "an optional choice")
    mode: str = setting("a", "the mode", choices=("a", "b"))


def parse(argv, defaults=None):
    p = argparse.ArgumentParser(prog="toy")
    add_config_option(p)
    add_settings(p, Toy, defaults=defaults)
    args = p.parse_args(argv)
    read_config(args, Toy)
    return settings_from_args(Toy, args, defaults=defaults), p


def test_flags_types_and_defaults():
    toy, parser = parse(["--name", "n", "--sizes", "8", "--no-plots", "--out", "o", "--pick", "3", "--mode", "b"])
    assert toy == Toy(name="n", sizes=(8,), plots=False, out=Path("o"), pick=3, mode="b")
    assert parse(["--name", "n"])[0] == Toy(name="n")
    text = parser.format_help()
    for fragment in (
        "--steps STEPS",
        "how many steps (default: 10)",
        "--sizes SIZES [SIZES ...]",
        "(default: 64 64)",
        "--plots, --no-plots",
        "draw the plots (default: true)",
        "a required name (required)",
        "(default: none)",
        "{a,b}",
    ):
        assert fragment in " ".join(text.split()), fragment
    with pytest.raises(SystemExit):
        parse(["--name", "n", "--mode", "c"])


def test_defaults_from_an_instance():
    base = Toy(name="base", steps=99)
    toy, parser = parse([], defaults=base)
    assert toy == base
    assert "(default: 99)" in parser.format_help()


def test_required_fields_come_from_flags_or_config(tmp_path):
    with pytest.raises(ConfigError, match="--name is required"):
        parse([])
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"name": "from-file"}))
    assert parse(["--config", str(cfg)])[0].name == "from-file"


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_values_lose_to_explicit_flags(tmp_path, suffix):
    cfg = tmp_path / f"c{suffix}"
    if suffix == ".json":
        cfg.write_text(json.dumps({"name": "f", "steps": 5, "rate": 1, "sizes": [1, 2], "plots": False, "out": "o"}))
    else:
        cfg.write_text('name = "f"\nsteps = 5\nrate = 1\nsizes = [1, 2]\nplots = false\nout = "o"\n')
    toy = parse(["--config", str(cfg), "--steps", "7"])[0]
    assert toy == Toy(name="f", steps=7, rate=1.0, sizes=(1, 2), plots=False, out=Path("o"))
    assert isinstance(toy.rate, float) and isinstance(toy.out, Path)


def test_bad_config_files(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"name": "f", "stepz": 5}))
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['stepz'\]"):
        parse(["--config", str(cfg)])
    cfg.write_text(json.dumps({"name": "f", "steps": "many"}))
    with pytest.raises(ConfigError, match="steps = 'many' must be of type int"):
        parse(["--config", str(cfg)])
    cfg.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse(["--config", str(cfg)])
    with pytest.raises(ConfigError, match="cannot read"):
        parse(["--config", str(tmp_path / "missing.toml")])


def test_a_field_without_help_is_a_programming_error():
    @dataclass(frozen=True)
    class NoHelp:
        x: int = 1

    with pytest.raises(TypeError, match="no help text"):
        add_settings(argparse.ArgumentParser(), NoHelp)


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize(
    "command",
    [
        ("coordination",),
        ("train",),
        ("ipd",),
        ("tag", "train-runners"),
        ("tag", "srpo"),
        ("bifurcation",),
        ("beta-plot",),
    ],
)
def test_every_option_has_help_and_shows_its_default(command):
    parser = _subparser(build_parser(), *command)
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        assert action.help and ("default:" in action.help or "(required)" in action.help), action.option_strings


def test_errors_print_one_line_and_exit_2(capsys):
    assert main(["ipd", "--priors", "XX"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rqe ipd: error: unknown prior 'XX'") and "Traceback" not in err
    assert main(["bifurcation", "--points", "1"]) == 2
    assert capsys.readouterr().err.startswith("rqe bifurcation: error: need --points >= 2")


def test_other_exceptions_propagate(monkeypatch):
    from rqe_wrappers.experiments.ipd import driver

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(driver, "run_experiment", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["ipd", "--priors", "MU", "--seeds", "0"])


def test_ipd_options_reach_run_experiment(monkeypatch, capsys, tmp_path):
    from rqe_wrappers.experiments.ipd import driver

    calls = []
    monkeypatch.setattr(driver, "run_experiment", lambda **kw: calls.append(kw))
    cfg = tmp_path / "ipd.toml"
    cfg.write_text('priors = ["MU", "SP"]\nn_copies = 4\nnature_lr = 0.5\n')
    assert (
        main(
            [
                "ipd",
                "--config",
                str(cfg),
                "--seeds",
                "3",
                "--workers",
                "2",
                "--lr",
                "0.1",
                "--no-plots",
                "--net-arch",
                "8",
                "8",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "--workers is deprecated, use --jobs" in err and "--lr is deprecated, use --learning-rate" in err
    (kw,) = calls
    assert kw["priors"] == ("MU", "SP") and kw["seeds"] == (3,) and kw["jobs"] == 2 and kw["plots"] is False
    s = kw["settings"]
    assert (s.n_copies, s.nature_lr, s.learning_rate, s.net_arch) == (4, 0.5, 0.1, (8, 8))
    assert s.n_steps == 64  # IPDSettings' own default


def test_train_is_a_deprecated_alias_of_coordination(monkeypatch, capsys):
    from rqe_wrappers.experiments import coordination

    calls = []
    monkeypatch.setattr(coordination, "run_coordination", lambda *a, **kw: calls.append((a, kw)))
    argv = ["--tau", "1", "3", "--steps", "4096", "--n-copies", "8", "--seed", "2"]
    assert main(["coordination", *argv]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["train", *argv, "--env", "coordination"]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "rqe train: deprecated, use `rqe coordination` (same options); `rqe train` goes away in 0.3"
    assert calls[0] == calls[1]
    (taus, out), kw = calls[0]
    assert taus == (1.0, 3.0) and out == Path("runs/coordination")
    assert kw["steps"] == 4096 and kw["n_copies"] == 8 and kw["seed"] == 2 and kw["eps"] == 0.2
    assert main(["coordination", "--steps", "10"]) == 2  # CoordinationRun's check, before any training
    assert "rqe coordination: error: steps must cover at least one rollout" in capsys.readouterr().err


def test_beta_plot_command(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    csv = tmp_path / "progress.csv"
    csv.write_text("time/total_timesteps,aht/beta/a,aht/beta/b\n64,0.5,0.5\n128,0.2,0.8\n")
    assert main(["beta-plot", str(csv), "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").stat().st_size > 1000
    csv.write_text("time/total_timesteps\n64\n")
    assert main(["beta-plot", str(csv), "--out", str(tmp_path / "c.png")]) == 2
    assert capsys.readouterr().err.startswith("rqe beta-plot: error: ")


def test_moved_add_parsers_warn():
    import rqe_wrappers.cli.ipd
    import rqe_wrappers.srpo.bifurcation as bifurcation
    from rqe_wrappers.experiments import ipd

    with pytest.warns(DeprecationWarning, match="from rqe_wrappers.cli.ipd import add_parser"):
        assert ipd.add_parser is rqe_wrappers.cli.ipd.add_parser
    with pytest.warns(DeprecationWarning, match="from rqe_wrappers.cli.srpo import add_parser"):
        assert callable(bifurcation.add_parser)
