"""A fused multiply-add (``a*b + c`` rounded once) usable inside numba kernels.

TA-Lib 0.8 builds its recursive indicators (EMA and everything made of EMAs, Wilder's ATR,
KAMA, SAR, ...) with a hardware-FMA variant selected at load time on x86-64, so each
``(x - prev) * k + prev`` step is rounded once, not twice.  Doing the same keeps us
bit-identical to TA-Lib on such machines, which matters where an indicator amplifies
last-bit differences (a stochastic of an RSI that has stopped moving).  On a CPU without
FMA the LLVM intrinsic falls back to a correctly rounded software routine, so results stay
deterministic everywhere.

Why an LLVM intrinsic: Python 3.11's ``math`` has no ``fma`` and numba does not expose one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.extending import intrinsic

from quantdesk.analytics._jit import jit


@intrinsic
def _llvm_fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    signature = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        double = ir.DoubleType()
        function = builder.module.declare_intrinsic(
            "llvm.fma", [double], ir.FunctionType(double, [double, double, double])
        )
        return builder.call(function, args)

    return signature, codegen


# numba calls an intrinsic without its typing-context argument; say so to the type checker.
_fused_multiply_add = cast(Callable[[float, float, float], float], _llvm_fma)


@jit
def fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` with a single rounding."""
    return _fused_multiply_add(a, b, c)
