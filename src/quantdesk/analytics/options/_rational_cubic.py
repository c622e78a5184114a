"""Shape-preserving rational cubic interpolation, as used by "Let's be rational".

R. Delbourgo and J. A. Gregory, "Shape preserving piecewise rational interpolation",
SIAM J. Sci. Stat. Comput. 6 (1985) 967-976; ported from P. Jäckel's reference code
(see ``_lets_be_rational`` for the notice).  Every call in LBR prefers shape preservation
over smoothness, so that choice is fixed here.
"""

from __future__ import annotations

import math
import sys

from quantdesk.analytics._jit import jit

DBL_EPSILON = sys.float_info.epsilon
DBL_MIN = sys.float_info.min
DBL_MAX = sys.float_info.max

# Rational cubic control-parameter limits (Delbourgo & Gregory 1985, as in the reference).
_MIN_RATIONAL_CUBIC_R = -(1.0 - math.sqrt(DBL_EPSILON))
_MAX_RATIONAL_CUBIC_R = 2.0 / (DBL_EPSILON * DBL_EPSILON)


@jit
def rational_cubic_interpolation(
    x: float, x_l: float, x_r: float, y_l: float, y_r: float, d_l: float, d_r: float, r: float
) -> float:
    h = x_r - x_l
    if abs(h) <= 0.0:
        return 0.5 * (y_l + y_r)
    t = (x - x_l) / h
    if not r >= _MAX_RATIONAL_CUBIC_R:
        omt = 1.0 - t
        t2 = t * t
        omt2 = omt * omt
        # Formula (2.4) divided by formula (2.5) of Delbourgo & Gregory.
        return (
            y_r * t2 * t
            + (r * y_r - h * d_r) * t2 * omt
            + (r * y_l + h * d_l) * t * omt2
            + y_l * omt2 * omt
        ) / (1.0 + (r - 3.0) * t * omt)
    return y_r * t + y_l * (1.0 - t)  # linear, free of over- or underflow


@jit
def _minimum_rational_cubic_control_parameter(d_l: float, d_r: float, s: float) -> float:
    # Always with "prefer shape preservation over smoothness", as every call in LBR does.
    monotonic = d_l * s >= 0.0 and d_r * s >= 0.0
    convex = d_l <= s <= d_r
    concave = d_l >= s >= d_r
    if not monotonic and not convex and not concave:
        return _MIN_RATIONAL_CUBIC_R
    d_r_m_d_l = d_r - d_l
    d_r_m_s = d_r - s
    s_m_d_l = s - d_l
    r1 = -DBL_MAX
    r2 = -DBL_MAX
    if monotonic:
        r1 = (d_r + d_l) / s if abs(s) >= DBL_MIN else _MAX_RATIONAL_CUBIC_R  # (3.8)
    if convex or concave:
        if abs(s_m_d_l) >= DBL_MIN and abs(d_r_m_s) >= DBL_MIN:  # (3.18)
            r2 = max(abs(d_r_m_d_l / d_r_m_s), abs(d_r_m_d_l / s_m_d_l))
        else:
            r2 = _MAX_RATIONAL_CUBIC_R
    elif monotonic:
        r2 = _MAX_RATIONAL_CUBIC_R
    return max(_MIN_RATIONAL_CUBIC_R, max(r1, r2))


@jit
def convex_control_parameter_right(
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    d_l: float,
    d_r: float,
    second_derivative_r: float,
) -> float:
    h = x_r - x_l
    numerator = 0.5 * h * second_derivative_r + (d_r - d_l)
    if abs(numerator) < DBL_MIN:
        r = 0.0
    else:
        denominator = d_r - (y_r - y_l) / h
        if abs(denominator) < DBL_MIN:
            r = _MAX_RATIONAL_CUBIC_R if numerator > 0.0 else _MIN_RATIONAL_CUBIC_R
        else:
            r = numerator / denominator
    return max(r, _minimum_rational_cubic_control_parameter(d_l, d_r, (y_r - y_l) / h))


@jit
def convex_control_parameter_left(
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    d_l: float,
    d_r: float,
    second_derivative_l: float,
) -> float:
    h = x_r - x_l
    numerator = 0.5 * h * second_derivative_l + (d_r - d_l)
    if abs(numerator) < DBL_MIN:
        r = 0.0
    else:
        denominator = (y_r - y_l) / h - d_l
        if abs(denominator) < DBL_MIN:
            r = _MAX_RATIONAL_CUBIC_R if numerator > 0.0 else _MIN_RATIONAL_CUBIC_R
        else:
            r = numerator / denominator
    return max(r, _minimum_rational_cubic_control_parameter(d_l, d_r, (y_r - y_l) / h))
