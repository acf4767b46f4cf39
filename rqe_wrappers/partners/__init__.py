"""Scripted partners for the library's environments, registered by name in :mod:`rqe_wrappers.core.registry`."""
