"""A torch network of the Wav2Lip contract made fast for inference: batch norm folded, fp16, channels_last, compiled.

Two file kinds load here (``runner`` tells them apart by suffix):

* ``.pt2``, a ``torch.export`` program: it becomes an FX graph module, so its batch
  norms are folded into the convolutions before them by ``fold_batch_norm`` and the
  module can be compiled with ``torch.compile`` (inductor, with freezing);
* TorchScript (``.pt`` …): ``torch.jit.freeze`` folds its batch norms; TorchScript
  cannot be compiled, so it runs as frozen.

``optimize`` then casts to float16 (CUDA only), lays the weights out channels_last
(the cuDNN kernels for fp16 convolutions on tensor cores want NHWC), and compiles
when asked. Compiling needs a working inductor (Triton on CUDA, a C++ compiler on
the CPU); when it fails, the network runs uncompiled and the reason is logged, so
a worker never fails to start because of the compiler. Compilation happens at the
first call of each batch shape; ``warm_up`` makes those calls at load time.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

import torch
from torch import fx

log = logging.getLogger(__name__)

CompileMode = Literal["auto", "on", "off"]
Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# A convolution's weight is (out, in, kh, kw); a transposed one's (in, out, kh, kw).
_CONVS = (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default, torch.ops.aten.conv_transpose2d.input)


@dataclass(frozen=True)
class NetworkOptions:
    """How the network runs: its device, float16 on CUDA, channels_last, compiled or not."""

    device: str = "cpu"
    half: bool = True
    channels_last: bool = True
    compile: CompileMode = "auto"  # auto: on CUDA


@dataclass
class PreparedNetwork:
    """The runnable network and what was done to it (for logs and benchmarks)."""

    forward: Network
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    compiled: bool
    folded: int  # batch norms folded into convolutions


def load_exported(path: str, device: torch.device) -> fx.GraphModule:
    """The graph module of a ``torch.export`` program saved with ``torch.export.save``."""
    program = torch.export.load(path)
    module = program.module()
    return module.to(device)


def _attr(module: fx.GraphModule, node: Any) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node names, None for anything else."""
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        return None
    value: Any = module
    for part in str(node.target).split("."):
        value = getattr(value, part)
    return value if isinstance(value, torch.Tensor) else None


def _batch_norm_parts(node: fx.Node) -> tuple[fx.Node, list[Any], float] | None:
    """(input, [weight, bias, mean, var], eps) of a batch-norm node in eval mode, else None."""
    if node.target == torch.ops.aten.batch_norm.default:
        x, weight, bias, mean, var, training, _, eps = node.args[:8]
        if training:
            return None
    elif node.target == torch.ops.aten._native_batch_norm_legit_no_training.default:
        x, weight, bias, mean, var, _, eps = node.args[:7]
    else:
        return None
    return (x, [weight, bias, mean, var], float(eps)) if isinstance(x, fx.Node) else None  # type: ignore[arg-type]


def _transposed_groups(conv: fx.Node) -> tuple[bool, int]:
    """Whether a convolution node is transposed, and its groups."""
    args = conv.args
    if conv.target == torch.ops.aten.convolution.default:
        return bool(args[6]), int(args[8])  # type: ignore[arg-type]
    if conv.target == torch.ops.aten.conv_transpose2d.input:
        return True, int(args[6]) if len(args) > 6 else 1  # type: ignore[arg-type]
    return False, int(args[6]) if len(args) > 6 else 1  # type: ignore[arg-type]


def fold_batch_norm(module: fx.GraphModule) -> int:
    """Fold every eval-mode batch norm that follows a convolution into that convolution's weights.

    ``y = (conv(x, w) + b - mean) * gamma / sqrt(var + eps) + beta`` becomes one convolution
    with ``w * s`` and ``(b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)`` (per output
    channel: dimension 0 of a convolution's weight, 1 of a transposed one's). Only a batch
    norm whose input is a convolution used by nothing else is folded. Returns how many were.
    """
    graph = module.graph
    folded = 0
    for node in list(graph.nodes):
        parts = _batch_norm_parts(node) if node.op == "call_function" else None
        if parts is None:
            continue
        conv, stats, eps = parts
        if conv.op != "call_function" or conv.target not in _CONVS or len(conv.users) != 1:
            continue
        transposed, groups = _transposed_groups(conv)
        if transposed and groups != 1:  # the output channels are then not one weight dimension
            continue
        weight = _attr(module, conv.args[1])
        bias_node = conv.args[2] if len(conv.args) > 2 else None
        bias = _attr(module, bias_node) if bias_node is not None else None
        gamma, beta, mean, var = (_attr(module, s) if s is not None else None for s in stats)
        if weight is None or mean is None or var is None or (bias_node is not None and bias is None):
            continue
        with torch.no_grad():
            scale = torch.rsqrt(var.double() + eps)
            if gamma is not None:
                scale = scale * gamma.double()
            shape = [1, -1, 1, 1] if transposed else [-1, 1, 1, 1]
            new_weight = (weight.double() * scale.reshape(shape)).to(weight.dtype)
            base = bias.double() if bias is not None else torch.zeros_like(mean, dtype=torch.float64)
            new_bias = (base - mean.double()) * scale
            if beta is not None:
                new_bias = new_bias + beta.double()
            new_bias = new_bias.to(weight.dtype)
        name = f"_folded_conv_{folded}"
        module.register_parameter(f"{name}_weight", torch.nn.Parameter(new_weight, requires_grad=False))
        module.register_parameter(f"{name}_bias", torch.nn.Parameter(new_bias, requires_grad=False))
        with graph.inserting_before(conv):
            weight_node = graph.get_attr(f"{name}_weight")
            bias_attr = graph.get_attr(f"{name}_bias")
        args = list(conv.args)
        args[1], args[2] = weight_node, bias_attr
        conv.args = tuple(args)
        if node.target == torch.ops.aten.batch_norm.default:
            node.replace_all_uses_with(conv)
        else:  # a tuple (out, save_mean, save_invstd): only element 0 may be used
            users = list(node.users)
            if not all(u.target is operator.getitem and u.args[1] == 0 for u in users):
                continue
            for user in users:
                user.replace_all_uses_with(conv)
                graph.erase_node(user)
        graph.erase_node(node)
        folded += 1
    if folded:
        graph.eliminate_dead_code()
        graph.lint()
        module.delete_all_unused_submodules()
        module.recompile()
    return folded


def _compile_wanted(mode: CompileMode, device: torch.device) -> bool:
    return mode == "on" or (mode == "auto" and device.type == "cuda")


def optimize(module: Any, options: NetworkOptions) -> PreparedNetwork:
    """Fold, cast, lay out and (maybe) compile ``module``: an FX graph module or TorchScript."""
    device = torch.device(options.device)
    dtype = torch.float16 if options.half and device.type == "cuda" else torch.float32
    if isinstance(module, torch.jit.ScriptModule):
        module = module.eval()  # an exported graph module refuses eval(): it is already in eval mode
    module = module.to(device)
    folded = 0
    scripted = isinstance(module, torch.jit.ScriptModule)
    if scripted:
        # Cast first: freezing inlines the weights as constants, which a later .to() leaves alone.
        module = torch.jit.freeze(module.to(dtype))  # also folds conv + batch norm
    elif isinstance(module, fx.GraphModule):
        folded = fold_batch_norm(module)
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    module = module.to(dtype)
    if options.channels_last and not scripted:
        module = module.to(memory_format=torch.channels_last)
    forward: Network = module
    compiled = False
    if _compile_wanted(options.compile, device):
        if scripted:
            log.info("TorchScript networks cannot be compiled; export the network to .pt2 (torch.export) "
                     "to compile it")
        else:
            forward, compiled = _compiled(module), True
    return PreparedNetwork(forward=forward, device=device, dtype=dtype, channels_last=options.channels_last,
                           compiled=compiled, folded=folded)


def _compiled(module: torch.nn.Module) -> Network:
    """``torch.compile`` with inductor's freezing (weights as constants) for every call."""
    compiled = torch.compile(module, dynamic=False)

    def forward(mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        from torch._inductor import config

        with config.patch(freezing=True):
            out: torch.Tensor = compiled(mel, face)
        return out

    return forward


def warm_up(network: PreparedNetwork, face_size: int, batches: Iterable[int],
            fallback: Callable[[], PreparedNetwork] | None = None) -> PreparedNetwork:
    """Run each batch size once (compiling it); if compiling fails, return ``fallback()`` warmed up instead."""
    try:
        for batch in sorted(set(batches)):
            mel, face = example_batch(network, batch, face_size)
            with torch.inference_mode():
                network.forward(mel, face)
        if network.device.type == "cuda":
            torch.cuda.synchronize(network.device)
        return network
    except Exception as e:  # inductor and Triton raise many types; compiling is an optimisation
        if not network.compiled or fallback is None:
            raise
        log.warning("compiling the wav2lip network failed (%s: %s); running it uncompiled",
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return warm_up(fallback(), face_size, batches)


def example_batch(network: PreparedNetwork, batch: int, face_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs of the contract in the network's dtype and layout (never zeros: they hide errors)."""
    generator = torch.Generator(device="cpu").manual_seed(batch)
    mel = (torch.rand((batch, 1, 80, 16), generator=generator) * 8 - 4).to(network.device, network.dtype)
    face = torch.rand((batch, 6, face_size, face_size), generator=generator).to(network.device, network.dtype)
    if network.channels_last:
        mel, face = mel.contiguous(memory_format=torch.channels_last), face.contiguous(
            memory_format=torch.channels_last)
    return mel, face
