"""The library's scripted policies; importing this registers them with :func:`make_scripted`."""
from rqe_wrappers.policies import ipd  # noqa: F401  (registers "ipd/...")
from rqe_wrappers.policies import tag  # noqa: F401  (registers "tag/...")
