"""Model cards: ``README.md`` beside a population's manifest, in the Hugging Face model-card format.

A card is generated from the manifest alone (front matter: ``library_name``, ``tags``, the population,
the env id and version; body: the recipe, the members and their metrics, how to load it), so it is
deterministic and can be regenerated at any time. It is documentation: the manifest does not list it,
so writing or regenerating it changes no verified content (no sha256 in a manifest or the index).
``write_population`` writes one; ``rqe zoo index`` (re)writes them for every population of a root;
``rqe zoo push`` puts one at the root of the Hub repo. docs/zoo.md ("Model cards").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym

from rqe_wrappers.zoo.manifest import Manifest, MemberEntry
from rqe_wrappers.zoo.population import read_manifest
from rqe_wrappers.zoo.publish.index import _atomic_write_text, scan_populations

CARD_NAME = "README.md"
LIBRARY_NAME = "rqe-wrappers"
REPOSITORY = "the rqe-wrappers repository"


def _yaml(value: Any) -> str:
    """One YAML scalar or flow collection: JSON is valid YAML, and quotes every string."""
    return json.dumps(value, sort_keys=True)


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return json.dumps(x) if not isinstance(x, str) else x


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _space(space: Any) -> str:
    """A space for a card cell: a Box whose bounds vary by entry shows their ranges (its repr lists every entry)."""
    if isinstance(space, gym.spaces.Box) and space.low.size > 1:
        low, high = space.low, space.high
        if not ((low == low.flat[0]).all() and (high == high.flat[0]).all()):
            return (
                f"Box(low in [{low.min():g}, {low.max():g}], high in [{high.min():g}, {high.max():g}], "
                f"{space.shape}, {space.dtype})"
            )
    return str(space)


def _policy(entry: MemberEntry) -> str:
    if entry.sb3 is not None:
        net = entry.sb3.get("policy_kwargs", {}).get("net_arch")
        return f"{entry.sb3['algo']} {entry.sb3['policy']}" + (f", net_arch {net}" if net is not None else "")
    spec = entry.scripted or {}  # a validated manifest's member is sb3 or scripted
    kwargs = spec.get("kwargs") or {}
    return f"scripted `{spec.get('name')}`" + (f" {kwargs}" if kwargs else "")


def _tags(manifest: Manifest) -> list[str]:
    tags = [LIBRARY_NAME, "reinforcement-learning", "multi-agent-reinforcement-learning", "pettingzoo", "population"]
    if any(m.kind == "sb3" for m in manifest.members):
        tags += ["stable-baselines3", "deep-reinforcement-learning"]
    package = manifest.env.id.split("/", 1)[0]
    if package and package.replace("_", "-") not in tags:
        tags.append(package)
    return tags


def _recipes(manifest: Manifest) -> list[str]:
    refs = sorted({(m.recipe.path, m.recipe.commit, m.recipe.dirty) for m in manifest.members if m.recipe}, key=str)
    lines = []
    for path, commit, dirty in refs:
        at = f" at commit `{commit}`" if commit else " (commit not recorded)"
        lines.append(f"- `{path}` of {REPOSITORY}{at}{', with uncommitted changes' if dirty else ''}")
    return lines or ["- no recipe recorded (written directly with `write_population`)"]


def model_card(manifest: Manifest, *, hub_repo: str | None = None) -> str:
    """The model card of a population (markdown with YAML front matter); ``hub_repo`` adds its ``hf://`` ref."""
    env = manifest.env
    front = [
        "---",
        f"library_name: {LIBRARY_NAME}",
        "license: mit",
        "tags:",
        *(f"- {_yaml(t)}" for t in _tags(manifest)),
        f"rqe_population: {_yaml(manifest.id)}",
        f"rqe_population_version: {manifest.version}",
        f"env_id: {_yaml(env.id)}",
        f"env_version: {_yaml(env.version)}",
        f"env_kwargs: {_yaml(env.kwargs)}",
        f"members: {len(manifest.members)}",
        "---",
    ]
    kinds = sorted({_policy(m).split(",")[0] if m.kind == "sb3" else "scripted" for m in manifest.members})
    about = [
        f"# {manifest.ref}",
        "",
        manifest.description or "A background population for rqe-wrappers.",
        "",
        "A versioned, checksummed population of fixed partner policies for "
        "rqe-wrappers (SRPO and minimax-Bayes ad hoc teamwork on PettingZoo with "
        "Stable-Baselines3): background seats, scenario partners, evaluation opponents.",
        "",
        "| | |",
        "|---|---|",
        f"| population | `{manifest.id}` version {manifest.version} |",
        f"| environment | `{env.id}`" + (f" ({env.version})" if env.version else "") + " |",
        f"| env kwargs | `{_cell(json.dumps(env.kwargs, sort_keys=True))}` |",
        f"| seats | {', '.join(f'`{s}`' for s in env.seats) or 'every seat'} |",
        f"| observation space | `{_cell(_space(manifest.observation_space))}` |",
        f"| action space | `{_cell(_space(manifest.action_space))}` |",
        f"| members | {len(manifest.members)} ({', '.join(kinds)}) |",
        f"| written by | rqe-wrappers {manifest.library_version} |",
        "",
        "## Recipe",
        "",
        *_recipes(manifest),
        "",
        "## Members",
        "",
        "| name | policy | seed | metrics (measured at build time) |",
        "|---|---|---|---|",
    ]
    for m in manifest.members:
        metrics = ", ".join(f"{k}={_num(v)}" for k, v in m.metrics.items()) or "-"
        seed = "-" if m.seed is None else str(m.seed)
        about.append(f"| `{m.name}` | {_cell(_policy(m))} | {seed} | {_cell(metrics)} |")
    if manifest.best_responses:
        about += ["", "## Best responses", "", "| scenario | best achievable utility |", "|---|---|"]
        about += [f"| `{k}` | {_cell(_num(v))} |" for k, v in manifest.best_responses.items()]
    first = manifest.members[0].name
    loads = [f'pop = load_population("{manifest.ref}")  # from the zoo (published ones ship in the wheel)']
    if hub_repo:
        loads.append(f'pop = load_population("hf://{hub_repo}@{manifest.version}")  # from this Hub repo')
    usage = [
        "",
        "## How to load",
        "",
        "```python",
        "from rqe_wrappers.zoo import load_population",
        "",
        *loads,
        f'policy = pop["{first}"].policy()  # a rqe_wrappers Policy',
    ]
    if manifest.members[0].kind == "sb3":
        usage.append(f'model = pop["{first}"].to_sb3()  # a stock SB3 model')
    usage += [
        "partners = pop.policies()  # {name: Policy}, e.g. for aht_wrap",
        "```",
        "",
        "`pip install 'rqe-wrappers[zoo]'` (add `[sb3]` for SB3 members). Every file's sha256 is checked "
        "against `manifest.json` on every load (and `manifest.json` against `SHA256SUMS` on the Hub); "
        "weights are safetensors, nothing is unpickled.",
        "",
    ]
    return "\n".join([*front, "", *about, *usage])


def write_model_card(directory: str | Path, *, hub_repo: str | None = None) -> Path:
    """Write ``<directory>/README.md`` from the population's manifest; returns its path."""
    path = Path(directory) / CARD_NAME
    _atomic_write_text(path, model_card(read_manifest(directory), hub_repo=hub_repo))
    return path


def write_model_cards(root: str | Path) -> list[Path]:
    """(Re)write the card of every population under a zoo root (deterministic: unchanged manifests, same cards)."""
    return [write_model_card(directory) for directory, _ in scan_populations(root)]
