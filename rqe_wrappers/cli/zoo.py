"""rqe zoo: list, pull, verify, build, index and push populations.

rqe zoo list [--cached]              what the remote zoo (or the cache) has
rqe zoo pull ID[@VERSION]            download into the cache and verify
rqe zoo pull hf://ORG/NAME[@VERSION] the same from the Hugging Face Hub (tag vVERSION)
rqe zoo verify [ID[@VERSION]|PATH]   re-check sha256s (everything cached when no argument)
rqe zoo build zoo/<recipe>           run a recipe, write populations/<id>/<version>/ (with its model card)
rqe zoo index [populations/]         regenerate index.json, the README table and every model card
rqe zoo push ROOT ID@VERSION --repo ORG/NAME   publish one version to the Hub as tag vVERSION
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rqe_wrappers.zoo.client import ZooClient


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="download, verify, build and index background populations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="zoo_command", required=True)

    def remote_options(p: argparse.ArgumentParser, remote: bool = True) -> None:
        if remote:
            p.add_argument(
                "--url",
                help="zoo URL (http(s)://, file:// or a directory); "
                "default $RQE_ZOO_URL, else the checkout's populations/ or those the wheel ships",
            )
            p.add_argument(
                "--offline", action="store_true", default=None, help="never use the network (same as RQE_ZOO_OFFLINE=1)"
            )
        p.add_argument("--cache-dir", help="cache directory; default $RQE_ZOO_CACHE or the user cache")

    p = sub.add_parser("list", help="list the populations the zoo (or the cache) has")
    remote_options(p)
    p.add_argument("--cached", action="store_true", help="list the cache only (no network)")
    p.set_defaults(func=_list, _prog=p.prog)

    p = sub.add_parser("pull", help="download a population into the cache and verify it")
    p.add_argument(
        "ref", metavar="ID[@VERSION]", help="e.g. tag/runners, tag/runners@1, or hf://org/name@1 (Hugging Face Hub)"
    )
    remote_options(p)
    p.set_defaults(func=_pull, _prog=p.prog)

    p = sub.add_parser("verify", help="re-check a cached or local population (all cached ones by default)")
    p.add_argument("target", nargs="?", metavar="ID[@VERSION]|PATH")
    p.add_argument("--load", action="store_true", help="also build every member's policy")
    remote_options(p, remote=False)
    p.set_defaults(func=_verify, _prog=p.prog)

    p = sub.add_parser("build", help="run a recipe (zoo/<name>/recipe.json) and publish its population")
    p.add_argument("recipe", metavar="RECIPE_DIR", help="e.g. zoo/ipd-partners")
    p.add_argument("--out", help="zoo root to write into (default: populations/ next to zoo/)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing version (published versions should not change)"
    )
    p.set_defaults(func=_build, _prog=p.prog)

    p = sub.add_parser(
        "index", help="regenerate <root>/index.json, the table in <root>/README.md and every population's model card"
    )
    p.add_argument("root", nargs="?", default=None, help="zoo root (default: ./populations)")
    p.set_defaults(func=_index, _prog=p.prog)

    p = sub.add_parser("push", help="publish one population version to the Hugging Face Hub (tag vVERSION)")
    p.add_argument("root", metavar="ROOT", help="zoo root holding <id>/<version>/, e.g. populations")
    p.add_argument("ref", metavar="ID[@VERSION]", help="e.g. tag/runners@1 (default version: the newest in ROOT)")
    p.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub model repo (created when missing)")
    p.add_argument("--endpoint", help="Hub URL (default $HF_ENDPOINT or https://huggingface.co)")
    p.add_argument("--private", action="store_true", default=None, help="create the repo private")
    p.set_defaults(func=_push, _prog=p.prog)


def _client(args: argparse.Namespace) -> ZooClient:
    from rqe_wrappers.zoo.client import ZooClient

    return ZooClient(getattr(args, "url", None), args.cache_dir, offline=getattr(args, "offline", None))


def _list(args: argparse.Namespace) -> int:
    client = _client(args)
    cached: dict[str, list[int]] = {}
    for pid, version, _ in client.cached():
        cached.setdefault(pid, []).append(version)
    if args.cached:
        if not cached:
            print(f"nothing cached in {client.cache_dir}")
        for pid in sorted(cached):
            print(f"{pid}  versions {', '.join(map(str, sorted(cached[pid])))}")
        return 0
    remote = client.remote()
    index = remote.index()
    print(f"zoo: {remote.url}")
    if not index.populations:
        print("  (no populations published)")
    for pid in sorted(index.populations):
        versions = index.versions(pid)
        entry = index.populations[pid][max(versions)]
        mark = f"  [cached: {', '.join(map(str, sorted(cached[pid])))}]" if pid in cached else ""
        desc = f"  {entry.description}" if entry.description else ""
        listed = ", ".join(map(str, versions))
        print(f"  {pid}  versions {listed}  env {entry.env}  {entry.members} members{mark}{desc}")
    for old, new in sorted(index.renamed.items()):
        print(f"  {old}  renamed to {new}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from rqe_wrappers.zoo.client import load_population

    url = None if args.ref.startswith("hf://") else args.url  # the Hub's endpoint is HF_ENDPOINT
    population = load_population(args.ref, url=url, cache_dir=args.cache_dir, offline=args.offline)
    print(f"{population.ref}: {len(population)} members, verified, in {population.path}")
    for name, member in population.items():
        metrics = ", ".join(f"{k}={v}" for k, v in member.metrics.items())
        print(f"  {name}  {member.kind}{'  ' + metrics if metrics else ''}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    client = _client(args)
    results = client.verify(args.target, load=args.load)
    if not results:
        print(f"nothing cached in {client.cache_dir}")
        return 0
    failed = 0
    for label, problem in results:
        if problem is None:
            print(f"ok      {label}")
        else:
            failed += 1
            print(f"FAILED  {label}: {problem}")
    if failed:
        print(f"{failed} of {len(results)} failed; `rqe zoo pull ID@VERSION` re-fetches corrupt files", file=sys.stderr)
    return 1 if failed else 0


def _build(args: argparse.Namespace) -> int:
    from rqe_wrappers.zoo.publish import build_recipe

    path = build_recipe(args.recipe, args.out, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def _index(args: argparse.Namespace) -> int:
    from rqe_wrappers.zoo.publish import write_index, write_model_cards, write_readme

    root = Path(args.root) if args.root else Path("populations")
    if not root.is_dir():
        from rqe_wrappers.errors import ConfigError

        raise ConfigError(f"{root} is not a directory")
    index = write_index(root)
    readme = write_readme(root)
    cards = write_model_cards(root)
    print(f"wrote {root / 'index.json'} ({index.describe()}), {readme} and {len(cards)} model cards")
    return 0


def _push(args: argparse.Namespace) -> int:
    from rqe_wrappers.errors import ConfigError
    from rqe_wrappers.zoo.population import find_population_dir
    from rqe_wrappers.zoo.publish import push_population
    from rqe_wrappers.zoo.refs import parse_ref

    root = Path(args.root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory (a zoo root such as populations/)")
    pid, version = parse_ref(args.ref)
    directory = find_population_dir(root.joinpath(*pid.split("/")), version)
    result = push_population(directory, args.repo, endpoint=args.endpoint, private=args.private)
    print(f"pushed {pid}@{result.version} to {result.repo_id} as tag {result.tag} (commit {result.commit[:10]})")
    print(f"  files: {', '.join(result.files)}")
    print(f"  load it with load_population({result.ref!r}) or `rqe zoo pull {result.ref}`")
    return 0
