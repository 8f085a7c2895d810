"""A training batch's forward, loss and backward, captured once in a CUDA graph (``--cuda-graph``
of experiments/mnist/main.py and experiments/copying/main.py).

On a GPU at batch 64 the RIM is bound by kernel launches, not arithmetic: ~180 small
kernels per time step, ~35k per MNIST batch. Replaying them from a graph skips the launch
overhead (9x faster on an H200, see docs/performance.md) and computes bit-identical values.

The optimiser step stays outside the graph. Each replay writes the gradients into the
same ``.grad`` tensors, so nothing may set them to ``None`` afterwards: eager batches
(a smaller last batch) use ``zero_grad(set_to_none=False)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


class GraphedForwardBackward:
    """``outputs, masks, loss = step(inputs, targets)`` for batches of exactly ``inputs``' shape.

    ``model(inputs, return_masks=True)`` returns ``(outputs, masks)`` and ``loss_fn(outputs,
    targets)`` the scalar loss; ``inputs`` and ``targets`` are a batch on the GPU (only their
    shapes and dtypes matter).

    Capturing runs two warm-up batches (graphs need cuBLAS and the allocator warmed up);
    the CUDA RNG is restored afterwards, so capturing uses up none of the run's random
    numbers. Each replay draws its dropout noise from the CUDA RNG like an eager step.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], inputs: Tensor,
                 targets: Tensor) -> None:
        self.model = model.train()  # dropout on: the graph keeps the mode it was captured in
        self.loss_fn = loss_fn
        self.inputs, self.targets = inputs.clone(), targets.clone()  # the graph reads these
        rng = torch.cuda.get_rng_state()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._forward_backward()
        torch.cuda.current_stream().wait_stream(side)
        model.zero_grad(set_to_none=True)  # backward in the capture allocates the graph's .grad
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = self._forward_backward()
        torch.cuda.set_rng_state(rng)

    def _forward_backward(self) -> tuple[Tensor, Tensor | None, Tensor]:
        outputs, masks = self.model(self.inputs, return_masks=True)
        loss = self.loss_fn(outputs, self.targets)
        loss.backward()
        return outputs.detach(), masks, loss.detach()

    def matches(self, inputs: Tensor) -> bool:
        return inputs.shape == self.inputs.shape

    def __call__(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Outputs live in the graph's memory: the next call overwrites them."""
        self.inputs.copy_(inputs)
        self.targets.copy_(targets)
        self.graph.replay()
        return self.outputs
