"""The zoo: published, versioned, checksummed background populations (docs/zoo.md).

Example:
    >>> from rqe_wrappers.zoo import load_population          # doctest: +SKIP
    >>> pop = load_population("tag/runners")                  # downloads once, verifies, caches
    >>> model = pop["runner-3"].to_sb3()                      # a stock SB3 model
    >>> policy = pop["runner-3"].policy()                     # a rqe_wrappers Policy
    >>> pop.check_env(env, seats=["agent_0"])                 # spaces checked before training

Reading and verifying populations never imports training code or unpickles anything; torch and
SB3 load only when an sb3 member is turned into a policy or model.
"""

from rqe_wrappers.zoo.client import PopulationWarning, ZooClient, ZooUnreachableError, load_population
from rqe_wrappers.zoo.manifest import EnvInfo, Index, Manifest, MemberEntry, RecipeRef, parse_ref
from rqe_wrappers.zoo.members import Member, NewMember, member_from_sb3, member_from_scripted
from rqe_wrappers.zoo.population import Population, check_population_spaces, open_population
from rqe_wrappers.zoo.publish.write import write_index, write_population, write_readme
from rqe_wrappers.zoo.publish.recipes import BuildResult, Recipe, build_recipe, register_builder
from rqe_wrappers.zoo.spaces import space_from_json, space_to_json

__all__ = [
    "BuildResult",
    "EnvInfo",
    "Index",
    "Manifest",
    "Member",
    "MemberEntry",
    "NewMember",
    "Population",
    "PopulationWarning",
    "Recipe",
    "RecipeRef",
    "ZooClient",
    "ZooUnreachableError",
    "build_recipe",
    "check_population_spaces",
    "load_population",
    "member_from_sb3",
    "member_from_scripted",
    "open_population",
    "parse_ref",
    "register_builder",
    "space_from_json",
    "space_to_json",
    "write_index",
    "write_population",
    "write_readme",
]
