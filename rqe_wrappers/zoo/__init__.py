"""The zoo: published, versioned, checksummed background populations (docs/zoo.md).

Example::

    from rqe_wrappers.zoo import load_population
    pop = load_population("tag/runners")          # downloads once, verifies, caches
    pop = load_population("hf://org/name@1")      # or from a Hugging Face Hub repo (tag v1)
    model = pop["runner-3"].to_sb3()              # a stock SB3 model
    policy = pop["runner-3"].policy()             # a rqe_wrappers Policy
    pop.check_env(env, seats=["agent_0"])         # spaces checked before training

This package is the read side: reading and verifying populations never imports training code or
unpickles anything; torch and SB3 load only when an sb3 member is turned into a policy or model.
Writing populations and building recipes is :mod:`rqe_wrappers.zoo.publish`.
"""

from rqe_wrappers._compat import moved_names
from rqe_wrappers.zoo.client import PopulationWarning, ZooClient, load_population
from rqe_wrappers.zoo.index import Index, IndexEntry
from rqe_wrappers.zoo.manifest import EnvInfo, Manifest, MemberEntry, RecipeRef
from rqe_wrappers.zoo.members import Member
from rqe_wrappers.zoo.population import Population, check_population_spaces, open_population
from rqe_wrappers.zoo.refs import format_ref, parse_ref
from rqe_wrappers.zoo.remotes import ZooUnreachableError
from rqe_wrappers.zoo.spaces import space_from_json, space_to_json

__all__ = [
    "EnvInfo",
    "Index",
    "IndexEntry",
    "Manifest",
    "Member",
    "MemberEntry",
    "Population",
    "PopulationWarning",
    "RecipeRef",
    "ZooClient",
    "ZooUnreachableError",
    "check_population_spaces",
    "format_ref",
    "load_population",
    "open_population",
    "parse_ref",
    "space_from_json",
    "space_to_json",
]

#: the write API lived here in 0.1; it is rqe_wrappers.zoo.publish now
__getattr__ = moved_names(
    "rqe_wrappers.zoo",
    dict.fromkeys(
        (
            "BuildResult",
            "NewMember",
            "Recipe",
            "build_recipe",
            "member_from_sb3",
            "member_from_scripted",
            "register_builder",
            "write_index",
            "write_population",
            "write_readme",
        ),
        "rqe_wrappers.zoo.publish",
    ),
)
