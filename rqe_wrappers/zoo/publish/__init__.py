"""The zoo's write side: make members, write populations and their model cards, index a zoo root, build
recipes, push to the Hugging Face Hub (docs/zoo.md).

Example:
    >>> from rqe_wrappers.zoo.publish import member_from_sb3, write_population   # doctest: +SKIP
    >>> write_population("populations", id="tag/runners", version=1, env="mpe2/simple_tag_v3",
    ...                  members=[member_from_sb3(model, "runner-0")])          # doctest: +SKIP

The read side (:mod:`rqe_wrappers.zoo`) never imports this package.
"""

from rqe_wrappers._compat import moved_names
from rqe_wrappers.zoo.publish.card import model_card, write_model_card, write_model_cards
from rqe_wrappers.zoo.publish.hub import PushResult, hub_files, push_population
from rqe_wrappers.zoo.publish.index import build_index, readme_table, scan_populations, write_index, write_readme
from rqe_wrappers.zoo.publish.members import NewMember, encode_policy_kwargs, member_from_sb3, member_from_scripted
from rqe_wrappers.zoo.publish.recipes import BuildResult, Recipe, build_recipe, builder_names, register_builder
from rqe_wrappers.zoo.publish.write import write_population

__all__ = [
    "BuildResult",
    "NewMember",
    "PushResult",
    "Recipe",
    "build_index",
    "build_recipe",
    "builder_names",
    "encode_policy_kwargs",
    "hub_files",
    "member_from_sb3",
    "member_from_scripted",
    "model_card",
    "push_population",
    "readme_table",
    "register_builder",
    "scan_populations",
    "write_index",
    "write_model_card",
    "write_model_cards",
    "write_population",
    "write_readme",
]

#: 0.1's module rqe_wrappers.zoo.publish also held the README markers; they are in publish.index now
__getattr__ = moved_names(
    "rqe_wrappers.zoo.publish",
    dict.fromkeys(("README_NAME", "TABLE_START", "TABLE_END"), "rqe_wrappers.zoo.publish.index"),
)
