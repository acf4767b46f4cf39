"""Several SB3 networks of one architecture in one forward pass (``torch.func.vmap`` over stacked weights).

A population of trained partners on the batched path acts once per member per step; with 16
members that is 16 small forward passes a step, each a few kernel launches on a GPU. Members whose
networks have one architecture (class, parameter shapes, device) are stacked here and evaluated
together: each member's rows are padded to the longest, the weights stacked along a new first
axis, and one vmapped call gives every member's action probabilities. Used by
:class:`~rqe_wrappers.batched.background.BatchedBackground`; the sampling stays per member, in the
same order and from the same stream, so a stacked and an unstacked run draw alike up to the float
rounding of the batched product. Docs: docs/batched.md, "AHT on the batched path".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

#: what :meth:`Policy.stackable` returns: (observation transform, network, deterministic)
Stackable = tuple[Callable[[Any], Any], ActorCriticPolicy, bool]


def stack_key(net: nn.Module) -> Hashable:
    """Networks with equal keys can be stacked: class, device, every submodule's class (activations
    included) and every parameter's and buffer's name, shape and dtype."""
    tensors = [*net.named_parameters(), *net.named_buffers()]
    device = next((t.device for _, t in tensors), th.device("cpu"))
    modules = tuple((name, type(m)) for name, m in net.named_modules())
    return (type(net), str(device), modules, tuple((n, tuple(t.shape), str(t.dtype)) for n, t in tensors))


class _Logits(nn.Module):
    """An ``ActorCriticPolicy``'s action logits (its actor path, no sampling): what ``vmap`` evaluates."""

    def __init__(self, policy: ActorCriticPolicy):
        super().__init__()
        self.policy = policy

    def forward(self, obs: th.Tensor) -> th.Tensor:
        p = self.policy
        features = BasePolicy.extract_features(p, obs, p.pi_features_extractor)
        return p.action_net(p.mlp_extractor.forward_actor(features))


class StackedNets:
    """Action probabilities of ``nets`` (one architecture: equal :func:`stack_key`) in one forward pass.

    The weights are copied when built: call again after a network's weights change.
    """

    def __init__(self, nets: Sequence[ActorCriticPolicy]):
        keys = {stack_key(n) for n in nets}
        if len(keys) != 1:
            raise ValueError(f"StackedNets needs networks of one architecture, got {len(keys)} kinds")
        wrapped = [_Logits(n) for n in nets]
        self.params, self.buffers = stack_module_state(wrapped)
        self._base = copy.deepcopy(wrapped[0]).to("meta")
        self.device = next(iter(self.params.values())).device
        self.n = len(nets)

        def logits(params: dict[str, th.Tensor], buffers: dict[str, th.Tensor], x: th.Tensor) -> th.Tensor:
            return functional_call(self._base, (params, buffers), (x,))

        self._logits = vmap(logits)

    def probs(self, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each net's action probabilities on its own batch (``batches[i]``: net ``i``'s rows), float64."""
        if len(batches) != self.n:
            raise ValueError(f"{self.n} nets, {len(batches)} batches")
        rows = [len(b) for b in batches]
        width = max(rows)
        x = np.zeros((self.n, width, *np.shape(batches[0])[1:]), np.float32)
        for i, b in enumerate(batches):
            x[i, : len(b)] = b
        with th.no_grad():
            out = th.softmax(self._logits(self.params, self.buffers, th.as_tensor(x, device=self.device)), dim=-1)
        probs = out.double().cpu().numpy()
        return [probs[i, :r] for i, r in enumerate(rows)]
