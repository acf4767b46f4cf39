"""Several SB3 networks of one architecture in one forward pass (``torch.func.vmap`` over stacked weights).

A population of trained partners on the batched path acts once per member per step; with 16
members that is 16 small forward passes a step, each a few kernel launches on a GPU. Members whose
networks have one architecture (class, parameter shapes, device) are stacked here and evaluated
together: each member's rows are padded to the longest and one call gives every member's action
probabilities. Networks whose only weights are ``nn.Linear`` layers (SB3's ``MlpPolicy``,
:class:`~rqe_wrappers.sb3.role_policy.RolePolicy`) run as one copy of the network whose linear layers
multiply each member's block of rows by that member's weights (one batched matrix product per
layer; everything else acts row by row); others run through ``torch.func.vmap`` over the stacked
weights, which pays a reparametrisation per call. On CUDA the grouped path is recorded as a CUDA
graph per (rows, width), both padded to powers of two, and replayed: one launch instead of a few
dozen small kernels, fed and read through pinned host buffers, so :meth:`StackedNets.launch` only
queues the work and its reader waits. Used by
:class:`~rqe_wrappers.batched.background.BatchedBackground`; the sampling stays per member, in the
same order and from the same stream, so a stacked and an unstacked run draw alike up to the float
rounding of the batched product. Docs: docs/batched.md, "AHT on the batched path".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Sequence
from typing import Any, cast

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

#: what :meth:`Policy.stackable` returns: (observation transform, network, deterministic)
Stackable = tuple[Callable[[Any], Any], ActorCriticPolicy, bool]

#: what the grouped path must reproduce (checked on random rows when a stack is built)
_GROUPED_ATOL = 1e-5


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


class _GroupedLinear(nn.Module):
    """``n`` linear layers of one shape; rows ``(n * w, in)``: ``n`` blocks of ``w``, block ``i`` by layer ``i``."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight_t = nn.Parameter(th.stack([lin.weight.detach().t() for lin in layers]), requires_grad=False)
        bias = [lin.bias.detach() if lin.bias is not None else th.zeros_like(lin.weight[:, 0]) for lin in layers]
        self.bias = nn.Parameter(th.stack(bias).unsqueeze(1), requires_grad=False)

    def forward(self, x: th.Tensor) -> th.Tensor:
        n, _, out = self.weight_t.shape
        return th.baddbmm(self.bias, x.reshape(n, -1, x.shape[-1]), self.weight_t).reshape(-1, out)


def _grouped(wrapped: Sequence[nn.Module]) -> nn.Module | None:
    """One copy of ``wrapped[0]`` with every ``nn.Linear`` replaced by a :class:`_GroupedLinear` over all
    of ``wrapped``; ``None`` where a module other than ``nn.Linear`` holds weights or buffers."""
    for m in wrapped[0].modules():
        own = [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        if own and type(m) is not nn.Linear:
            return None
    net = copy.deepcopy(wrapped[0])
    for name, m in list(net.named_modules()):
        if type(m) is nn.Linear:
            parent, _, leaf = name.rpartition(".")
            layers = [cast(nn.Linear, w.get_submodule(name)) for w in wrapped]
            setattr(net.get_submodule(parent) if parent else net, leaf, _GroupedLinear(layers))
    return net


def _vmapped(wrapped: Sequence[nn.Module]) -> Callable[[th.Tensor], th.Tensor]:
    """``x (n, w, ...) -> logits (n, w, actions)``: ``torch.func.vmap`` over the stacked weights of ``wrapped``."""
    params, buffers = stack_module_state(list(wrapped))
    base = copy.deepcopy(wrapped[0]).to("meta")

    def logits(p: dict[str, th.Tensor], b: dict[str, th.Tensor], x: th.Tensor) -> th.Tensor:
        return functional_call(base, (p, b), (x,))

    batched = vmap(logits)
    return lambda x: batched(params, buffers, x)


class StackedNets:
    """Action probabilities of ``nets`` (one architecture: equal :func:`stack_key`) in one forward pass.

    The weights are copied when built: call again after a network's weights change. ``cuda_graphs``:
    replay the grouped forward as CUDA graphs on a CUDA device (widths padded to a power of two).
    """

    def __init__(self, nets: Sequence[ActorCriticPolicy], *, cuda_graphs: bool = True):
        keys = {stack_key(n) for n in nets}
        if len(keys) != 1:
            raise ValueError(f"StackedNets needs networks of one architecture, got {len(keys)} kinds")
        wrapped = [_Logits(n) for n in nets]
        self.device = next(wrapped[0].parameters()).device
        self.n = len(nets)
        #: the grouped network (one batched matrix product per linear layer), or ``None``: vmap
        self.grouped = _grouped(wrapped)
        if self.grouped is not None and not self._agrees(wrapped, nets[0]):
            self.grouped = None  # a module that mixes rows: only vmap keeps members apart
        self._vmapped = None if self.grouped is not None else _vmapped(wrapped)
        self.cuda_graphs = bool(cuda_graphs) and self.grouped is not None and self.device.type == "cuda"
        self._graphs: dict[tuple[int, ...], _Graph] = {}
        self._layouts: dict[tuple[int, ...], tuple[int, np.ndarray]] = {}  # counts -> (width, each row's slot)

    def _logits(self, x: th.Tensor) -> th.Tensor:
        """Logits ``(n, w, actions)`` of inputs ``(n, w, ...)``, member ``i`` on ``x[i]``."""
        if self.grouped is None:
            assert self._vmapped is not None
            return self._vmapped(x)
        n, w = x.shape[:2]
        return self.grouped(x.reshape(n * w, *x.shape[2:])).reshape(n, w, -1)

    def _agrees(self, wrapped: Sequence[nn.Module], net: ActorCriticPolicy) -> bool:
        """Whether the grouped network gives each member's own logits on random rows."""
        shape = net.observation_space.shape or ()
        x = th.rand((self.n, 3, *shape), generator=th.Generator().manual_seed(0)).to(self.device)
        with th.no_grad():
            want = th.stack([w(x[i]) for i, w in enumerate(wrapped)])
            return bool(th.allclose(self._logits(x), want, rtol=0, atol=_GROUPED_ATOL))

    def probs(self, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each net's action probabilities on its own batch (``batches[i]``: net ``i``'s rows), float64."""
        if len(batches) != self.n:
            raise ValueError(f"{self.n} nets, {len(batches)} batches")
        counts = [len(b) for b in batches]
        flat = self.probs_concat(np.concatenate([np.asarray(b, np.float32) for b in batches]), counts)
        return np.split(flat, np.cumsum(counts)[:-1])

    def probs_concat(self, x: np.ndarray, counts: Sequence[int]) -> np.ndarray:
        """Action probabilities (float64) of rows ``x`` that are net 0's ``counts[0]`` rows, then net 1's, ...

        The rows are padded into one ``(n, max(counts), ...)`` block on the nets' device, evaluated in
        one call, and returned in ``x``'s order. :meth:`launch` then its reader.
        """
        return self.launch(x, counts)()

    def launch(self, x: np.ndarray, counts: Sequence[int]) -> Callable[[], np.ndarray]:
        """Start :meth:`probs_concat` on ``x`` and return what finishes it (call it once, before the next launch).

        On CUDA with graphs the rows go to the device and the probabilities come back through pinned
        host buffers without waiting: the host waits only in the returned reader, so several stacks
        launched one after another overlap and share one wait. Elsewhere the work is done here.
        """
        key = tuple(counts)
        if key not in self._layouts:
            if len(self._layouts) > 256:
                self._layouts.clear()
            self._layouts[key] = self._layout(key)
        width, pos = self._layouts[key]
        if len(x) != len(pos):
            raise ValueError(f"{self.n} nets: need {self.n} counts summing to the {len(x)} rows, got {list(counts)}")
        if self.cuda_graphs:
            rows = 1 << max(len(x) - 1, 0).bit_length()  # the rows padded too: few shapes, few graphs
            graph_key = (rows, *np.shape(x)[1:], width)
            if graph_key not in self._graphs:
                self._graphs[graph_key] = _Graph(self, (rows, *np.shape(x)[1:]), width)
            return self._graphs[graph_key].launch(np.asarray(x), pos, key)
        with th.no_grad():
            batch = th.as_tensor(np.asarray(x, np.float32), device=self.device)
            out = self._rows_probs(batch, th.as_tensor(pos, device=self.device), width).double().cpu().numpy()
        return lambda: out

    def _layout(self, counts: tuple[int, ...]) -> tuple[int, np.ndarray]:
        """The padded width of ``counts`` and each row's slot in the ``(n, width)`` block."""
        counts_a = np.asarray(counts, np.int64)
        if len(counts_a) != self.n or (counts_a < 0).any():
            raise ValueError(f"{self.n} nets: need {self.n} counts, got {list(counts)}")
        width = int(counts_a.max(initial=0))
        if self.cuda_graphs:
            width = 1 << max(width - 1, 0).bit_length()  # few widths, few graphs
        starts = np.cumsum(counts_a) - counts_a
        pos = np.arange(int(counts_a.sum())) + np.repeat(np.arange(self.n) * width - starts, counts_a)
        return width, pos

    def _rows_probs(self, rows: th.Tensor, index: th.Tensor, width: int) -> th.Tensor:
        """Probabilities of ``rows``, row ``j`` evaluated at padded slot ``index[j]`` of ``(n, width)``; slot
        ``n * width`` (past the block) is scratch: rows sent there are padding, their output is not used."""
        slots = self.n * width
        padded = rows.new_zeros((slots + 1, *rows.shape[1:]))
        padded[index] = rows
        logits = self._logits(padded[:slots].reshape(self.n, width, *rows.shape[1:]))
        return th.softmax(logits.reshape(slots, -1)[index.clamp(max=slots - 1)], dim=-1)


class _Graph:
    """One recorded :meth:`StackedNets._rows_probs` of a (padded) rows' shape and width, with pinned host buffers."""

    def __init__(self, stacked: StackedNets, shape: tuple[int, ...], width: int):
        self.device = device = stacked.device
        self.scratch = stacked.n * width  # where the padding rows go
        with th.no_grad(), th.cuda.device(device):  # the nets' device current: its streams, its event
            self.rows = th.zeros(shape, dtype=th.float32, device=device)
            self.index = th.full((shape[0],), self.scratch, dtype=th.int64, device=device)
            side = th.cuda.Stream(device)
            side.wait_stream(th.cuda.current_stream(device))
            with th.cuda.stream(side):  # warm-up outside the capture, as torch.cuda.graphs asks
                stacked._rows_probs(self.rows, self.index, width)
            th.cuda.current_stream(device).wait_stream(side)
            self.graph = th.cuda.CUDAGraph()
            with th.cuda.graph(self.graph):
                self.out = stacked._rows_probs(self.rows, self.index, width)
        self.rows_host = th.empty(shape, dtype=th.float32, pin_memory=True)
        self.index_host = th.full((shape[0],), self.scratch, dtype=th.int64, pin_memory=True)
        self.out_host = th.empty(tuple(self.out.shape), dtype=th.float32, pin_memory=True)
        self.rows_np, self.index_np = self.rows_host.numpy(), self.index_host.numpy()
        self.out_np = self.out_host.numpy()
        self.done = th.cuda.Event()
        self.launches = 0
        self.counts: tuple[int, ...] | None = None  # the layout on the device now

    def launch(self, x: np.ndarray, pos: np.ndarray, counts: tuple[int, ...]) -> Callable[[], np.ndarray]:
        """Queue copy in, replay, copy out; the slots go in only when the layout changed."""
        self.done.synchronize()  # the last launch's copies out of the host buffers have finished
        n = len(x)
        self.rows_np[:n] = x
        with th.no_grad(), th.cuda.device(self.device):
            self.rows.copy_(self.rows_host, non_blocking=True)
            if counts != self.counts:
                self.index_np[:n], self.index_np[n:] = pos, self.scratch
                self.index.copy_(self.index_host, non_blocking=True)
                self.counts = counts
            self.graph.replay()
            self.out_host.copy_(self.out, non_blocking=True)
            self.done.record()  # on the nets' device's current stream, after the copy out
        self.launches += 1
        launch = self.launches

        def read() -> np.ndarray:
            if launch != self.launches:
                raise RuntimeError("StackedNets: a launch was read after the next launch of its shape")
            self.done.synchronize()
            return self.out_np[:n].astype(np.float64)

        return read
