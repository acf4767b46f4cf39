"""Collection settings of the doctest run over ``rqe_wrappers/``: the RLlib package needs ray (the ``[rllib]``
extra, docs/rllib.md); without it that package's modules are not collected (tests/test_rllib.py skips)."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("ray") else ["rqe_wrappers/rllib/*"]
