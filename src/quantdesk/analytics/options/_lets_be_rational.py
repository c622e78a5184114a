"""Peter Jäckel's "Let's be rational" implied-volatility algorithm, compiled with numba.

Reference: P. Jäckel, "Let's be rational", Wilmott (2015) 40-53, and the reference C++
code at www.jaeckel.org (2013-2014 version).  A four-segment rational initial guess in a
transformed variable, then at most two third-order Householder steps, gives the implied
total volatility s = σ√t to machine precision for every price inside the no-arbitrage
bounds, including far out-of-the-money options whose prices are as small as 1e-300.

Hand-written because the pure-Python ports (``py_lets_be_rational``) are test-only
reference dependencies and run at ~20 µs per option; this kernel runs at well under 1 µs.
The port follows the C++ reference (which fixes a few slips of the Python port in the
upper-segment iteration).

Everything here works on *normalised* Black call prices b(x, s) = B/√(F·K) with x = ln(F/K)
and x <= 0 (out of the money); the caller maps puts and in-the-money options onto that.

Copyright © 2013-2014 Peter Jäckel.
Permission to use, copy, modify, and distribute this software is freely granted,
provided that this notice is preserved.
WARRANTY DISCLAIMER: The Software is provided "as is" without warranty of any kind, either
express or implied, including without limitation any implied warranties of condition,
uninterrupted use, merchantability, fitness for a particular purpose, or non-infringement.
"""

from __future__ import annotations

import math
import sys

from quantdesk.analytics._jit import jit
from quantdesk.analytics.options._normal import (
    ONE_OVER_SQRT_TWO,
    ONE_OVER_SQRT_TWO_PI,
    erfcx,
    inverse_norm_cdf,
    norm_cdf,
)
from quantdesk.analytics.options._rational_cubic import (
    convex_control_parameter_left,
    convex_control_parameter_right,
    rational_cubic_interpolation,
)

DBL_EPSILON = sys.float_info.epsilon
DBL_MIN = sys.float_info.min
DBL_MAX = sys.float_info.max
SQRT_DBL_MIN = math.sqrt(DBL_MIN)
SQRT_DBL_MAX = math.sqrt(DBL_MAX)
_FOURTH_ROOT_DBL_EPSILON = DBL_EPSILON**0.25
_SIXTEENTH_ROOT_DBL_EPSILON = DBL_EPSILON**0.0625

_SQRT_TWO_PI = math.sqrt(2.0 * math.pi)
_TWO_PI = 2.0 * math.pi
_SQRT_PI_OVER_TWO = math.sqrt(math.pi / 2.0)
_SQRT_THREE = math.sqrt(3.0)
_SQRT_ONE_OVER_THREE = math.sqrt(1.0 / 3.0)
_TWO_PI_OVER_SQRT_TWENTY_SEVEN = 2.0 * math.pi / math.sqrt(27.0)
_PI_OVER_SIX = math.pi / 6.0

MAX_ITERATIONS = 2
_ASYMPTOTIC_THRESHOLD = -10.0  # η: h below it uses the asymptotic expansion
_SMALL_T_THRESHOLD = 2.0 * _SIXTEENTH_ROOT_DBL_EPSILON  # τ: t below it uses the small-t series

# --- the normalised Black function, accurate in every region ---------------------------------


@jit
def normalised_intrinsic_call(x: float) -> float:
    """Normalised intrinsic value of a call, exp(x/2) - exp(-x/2) for x > 0, else 0."""
    if x <= 0.0:
        return 0.0
    x2 = x * x
    if x2 < 98.0 * _FOURTH_ROOT_DBL_EPSILON:
        # Taylor series of 2·sinh(x/2): avoids cancellation for tiny x.
        return x * (
            1.0 + x2 * (1.0 / 24.0 + x2 * (1.0 / 1920.0 + x2 * (1.0 / 322560.0 + x2 / 92897280.0)))
        )
    b_max = math.exp(0.5 * x)
    return b_max - 1.0 / b_max


@jit
def _asymptotic_expansion(h: float, t: float) -> float:
    """b(h, t) for h < η = -10 by Abramowitz & Stegun 26.2.12 (17th order, as the reference)."""
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    asymptotic_expansion_sum = (2.0+q*(-6.0E0-2.0*e+3.0*q*(1.0E1+e*(2.0E1+2.0*e)+5.0*q*(-1.4E1+e*(-7.0E1+e*(-4.2E1-2.0*e))+7.0*q*(1.8E1+e*(1.68E2+e*(2.52E2+e*(7.2E1+2.0*e)))+9.0*q*(-2.2E1+e*(-3.3E2+e*(-9.24E2+e*(-6.6E2+e*(-1.1E2-2.0*e))))+1.1E1*q*(2.6E1+e*(5.72E2+e*(2.574E3+e*(3.432E3+e*(1.43E3+e*(1.56E2+2.0*e)))))+1.3E1*q*(-3.0E1+e*(-9.1E2+e*(-6.006E3+e*(-1.287E4+e*(-1.001E4+e*(-2.73E3+e*(-2.1E2-2.0*e))))))+1.5E1*q*(3.4E1+e*(1.36E3+e*(1.2376E4+e*(3.8896E4+e*(4.862E4+e*(2.4752E4+e*(4.76E3+e*(2.72E2+2.0*e)))))))+1.7E1*q*(-3.8E1+e*(-1.938E3+e*(-2.3256E4+e*(-1.00776E5+e*(-1.84756E5+e*(-1.51164E5+e*(-5.4264E4+e*(-7.752E3+e*(-3.42E2-2.0*e))))))))+1.9E1*q*(4.2E1+e*(2.66E3+e*(4.0698E4+e*(2.3256E5+e*(5.8786E5+e*(7.05432E5+e*(4.0698E5+e*(1.08528E5+e*(1.197E4+e*(4.2E2+2.0*e)))))))))+2.1E1*q*(-4.6E1+e*(-3.542E3+e*(-6.7298E4+e*(-4.90314E5+e*(-1.63438E6+e*(-2.704156E6+e*(-2.288132E6+e*(-9.80628E5+e*(-2.01894E5+e*(-1.771E4+e*(-5.06E2-2.0*e))))))))))+2.3E1*q*(5.0E1+e*(4.6E3+e*(1.0626E5+e*(9.614E5+e*(4.08595E6+e*(8.9148E6+e*(1.04006E7+e*(6.53752E6+e*(2.16315E6+e*(3.542E5+e*(2.53E4+e*(6.0E2+2.0*e)))))))))))+2.5E1*q*(-5.4E1+e*(-5.85E3+e*(-1.6146E5+e*(-1.77606E6+e*(-9.37365E6+e*(-2.607579E7+e*(-4.01166E7+e*(-3.476772E7+e*(-1.687257E7+e*(-4.44015E6+e*(-5.9202E5+e*(-3.51E4+e*(-7.02E2-2.0*e))))))))))))+2.7E1*q*(5.8E1+e*(7.308E3+e*(2.3751E5+e*(3.12156E6+e*(2.003001E7+e*(6.919458E7+e*(1.3572783E8+e*(1.5511752E8+e*(1.0379187E8+e*(4.006002E7+e*(8.58429E6+e*(9.5004E5+e*(4.7502E4+e*(8.12E2+2.0*e)))))))))))))+2.9E1*q*(-6.2E1+e*(-8.99E3+e*(-3.39822E5+e*(-5.25915E6+e*(-4.032015E7+e*(-1.6934463E8+e*(-4.1250615E8+e*(-6.0108039E8+e*(-5.3036505E8+e*(-2.8224105E8+e*(-8.870433E7+e*(-1.577745E7+e*(-1.472562E6+e*(-6.293E4+e*(-9.3E2-2.0*e))))))))))))))+3.1E1*q*(6.6E1+e*(1.0912E4+e*(4.74672E5+e*(8.544096E6+e*(7.71342E7+e*(3.8707344E8+e*(1.14633288E9+e*(2.07431664E9+e*(2.33360622E9+e*(1.6376184E9+e*(7.0963464E8+e*(1.8512208E8+e*(2.7768312E7+e*(2.215136E6+e*(8.184E4+e*(1.056E3+2.0*e)))))))))))))))+3.3E1*(-7.0E1+e*(-1.309E4+e*(-6.49264E5+e*(-1.344904E7+e*(-1.4121492E8+e*(-8.344518E8+e*(-2.9526756E9+e*(-6.49588632E9+e*(-9.0751353E9+e*(-8.1198579E9+e*(-4.6399188E9+e*(-1.6689036E9+e*(-3.67158792E8+e*(-4.707164E7+e*(-3.24632E6+e*(-1.0472E5+e*(-1.19E3-2.0*e)))))))))))))))))*q)))))))))))))))))  # noqa: E501  # fmt: skip
    b = ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * (t / r) * asymptotic_expansion_sum
    return abs(max(b, 0.0))


@jit
def _small_t_expansion(h: float, t: float) -> float:
    """b(h, t) for t < τ ≈ 0.21 by a 12th-order series in t of Y(h+t) - Y(h-t), Y = Φ/φ."""
    a = 1.0 + h * (0.5 * _SQRT_TWO_PI) * erfcx(-ONE_OVER_SQRT_TWO * h)
    w = t * t
    h2 = h * h
    expansion = 2*t*(a+w*((-1+3*a+a*h2)/6+w*((-7+15*a+h2*(-1+10*a+a*h2))/120+w*((-57+105*a+h2*(-18+105*a+h2*(-1+21*a+a*h2)))/5040+w*((-561+945*a+h2*(-285+1260*a+h2*(-33+378*a+h2*(-1+36*a+a*h2))))/362880+w*((-6555+10395*a+h2*(-4680+17325*a+h2*(-840+6930*a+h2*(-52+990*a+h2*(-1+55*a+a*h2)))))/39916800+((-89055+135135*a+h2*(-82845+270270*a+h2*(-20370+135135*a+h2*(-1926+25740*a+h2*(-75+2145*a+h2*(-1+78*a+a*h2))))))*w)/6227020800.0))))))  # noqa: E501  # fmt: skip
    b = ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + t * t)) * expansion
    return abs(max(b, 0.0))


@jit
def _black_using_norm_cdf(x: float, s: float) -> float:
    h = x / s
    t = 0.5 * s
    b_max = math.exp(0.5 * x)
    b = norm_cdf(h + t) * b_max - norm_cdf(h - t) / b_max
    return abs(max(b, 0.0))


@jit
def _black_using_erfcx(h: float, t: float) -> float:
    # b = ½·exp(-½(h²+t²))·[erfcx(-(h+t)/√2) - erfcx(-(h-t)/√2)]: one exponential, not three.
    b = (
        0.5
        * math.exp(-0.5 * (h * h + t * t))
        * (erfcx(-ONE_OVER_SQRT_TWO * (h + t)) - erfcx(-ONE_OVER_SQRT_TWO * (h - t)))
    )
    return abs(max(b, 0.0))


@jit
def normalised_black_call(x: float, s: float) -> float:
    """b(x, s) = Φ(x/s + s/2)·e^{x/2} - Φ(x/s - s/2)·e^{-x/2}, to full relative accuracy."""
    if x > 0.0:
        return normalised_intrinsic_call(x) + normalised_black_call(-x, s)  # put-call parity
    if s <= 0.0:
        return normalised_intrinsic_call(x)
    # Regions of the reference implementation, tested without dividing by s.
    if x < s * _ASYMPTOTIC_THRESHOLD and 0.5 * s * s + x < s * (
        _SMALL_T_THRESHOLD + _ASYMPTOTIC_THRESHOLD
    ):
        return _asymptotic_expansion(x / s, 0.5 * s)
    if 0.5 * s < _SMALL_T_THRESHOLD:
        return _small_t_expansion(x / s, 0.5 * s)
    if x + 0.5 * s * s > s * 0.85:
        return _black_using_norm_cdf(x, s)
    return _black_using_erfcx(x / s, 0.5 * s)


@jit
def normalised_vega(x: float, s: float) -> float:
    """∂b/∂s."""
    ax = abs(x)
    if ax <= 0.0:
        return ONE_OVER_SQRT_TWO_PI * math.exp(-0.125 * s * s)
    if s <= 0.0 or s <= ax * SQRT_DBL_MIN:
        return 0.0
    h = x / s
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * (h * h + 0.25 * s * s))


# --- the transformed rational initial guess ---------------------------------------------------


@jit
def _householder_factor(newton: float, halley: float, hh3: float) -> float:
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


@jit
def _f_lower_map(x: float, s: float) -> tuple[float, float, float]:
    """The lower-segment map f(b) and its first two derivatives at s (reference eq. 4.x)."""
    ax = abs(x)
    z = _SQRT_ONE_OVER_THREE * ax / s
    y = z * z
    s2 = s * s
    big_phi = norm_cdf(-z)
    phi = ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * z * z)
    fpp = (
        _PI_OVER_SIX
        * y
        / (s2 * s)
        * big_phi
        * (8.0 * _SQRT_THREE * s * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * x * x) * big_phi / phi)
        * math.exp(2.0 * y + 0.25 * s2)
    )
    phi2 = big_phi * big_phi
    fp = _TWO_PI * y * phi2 * math.exp(y + 0.125 * s * s)
    f = 0.0 if ax == 0.0 else _TWO_PI_OVER_SQRT_TWENTY_SEVEN * ax * (phi2 * big_phi)
    return f, fp, fpp


@jit
def _inverse_f_lower_map(x: float, f: float) -> float:
    if f == 0.0:
        return 0.0
    return abs(
        x
        / (
            _SQRT_THREE
            * inverse_norm_cdf((f / (_TWO_PI_OVER_SQRT_TWENTY_SEVEN * abs(x))) ** (1.0 / 3.0))
        )
    )


@jit
def _f_upper_map(x: float, s: float) -> tuple[float, float, float]:
    f = norm_cdf(-0.5 * s)
    if x == 0.0:
        return f, -0.5, 0.0
    w = (x / s) * (x / s)
    fp = -0.5 * math.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_TWO * math.exp(w + 0.125 * s * s) * w / s
    return f, fp, fpp


@jit
def normalised_implied_total_vol(beta: float, x: float, max_iterations: int) -> float:
    """Implied s = σ√t of an out-of-the-money normalised call: x <= 0, 0 <= beta < e^{x/2}.

    Returns 0 for beta <= 0 and +inf for beta >= e^{x/2} (the caller screens both).
    """
    if beta <= 0.0:
        return 0.0
    b_max = math.exp(0.5 * x)
    if beta >= b_max:
        return math.inf
    iterations = 0
    direction_reversal_count = 0
    f = -DBL_MAX
    s = -DBL_MAX
    ds = s
    ds_previous = 0.0
    s_left = DBL_MIN
    s_right = DBL_MAX
    # The point of inflexion s_c = √(2|x|) splits the price curve into the four segments.
    s_c = math.sqrt(abs(2.0 * x))
    b_c = normalised_black_call(x, s_c)
    v_c = normalised_vega(x, s_c)
    if beta < b_c:
        s_l = s_c - b_c / v_c
        b_l = normalised_black_call(x, s_l)
        if beta < b_l:
            # Lowest segment: rational guess in the f-transformed variable, then Householder on
            # g(s) = 1/ln b(s) - 1/ln beta, which is nearly linear for tiny prices.
            f_l, d_f_l, d2_f_l = _f_lower_map(x, s_l)
            r_ll = convex_control_parameter_right(0.0, b_l, 0.0, f_l, 1.0, d_f_l, d2_f_l)
            f = rational_cubic_interpolation(beta, 0.0, b_l, 0.0, f_l, 1.0, d_f_l, r_ll)
            if not f > 0.0:
                # Round-off for extreme |x|: quadratic through f(0)=0, f'(0)=1 and f(b_l).
                t = beta / b_l
                f = (f_l * t + b_l * (1.0 - t)) * t
            s = _inverse_f_lower_map(x, f)
            s_right = s_l
            while iterations < max_iterations and abs(ds) > DBL_EPSILON * s:
                if ds * ds_previous < 0.0:
                    direction_reversal_count += 1
                if iterations > 0 and (direction_reversal_count == 3 or not (s_left < s < s_right)):
                    # Looping or stepping out of the bracket: one bisection step instead.
                    s = 0.5 * (s_left + s_right)
                    if s_right - s_left <= DBL_EPSILON * s:
                        break
                    direction_reversal_count = 0
                    ds = 0.0
                ds_previous = ds
                b = normalised_black_call(x, s)
                bp = normalised_vega(x, s)
                if b > beta and s < s_right:
                    s_right = s
                elif b < beta and s > s_left:
                    s_left = s
                if b <= 0.0 or bp <= 0.0:
                    ds = 0.5 * (s_left + s_right) - s  # underflow: bisect
                else:
                    ln_b = math.log(b)
                    ln_beta = math.log(beta)
                    bpob = bp / b
                    h = x / s
                    b_halley = h * h / s - s / 4.0
                    newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
                    halley = b_halley - bpob * (1.0 + 2.0 / ln_b)
                    b_hh3 = b_halley * b_halley - 3.0 * (h / s) * (h / s) - 0.25
                    hh3 = (
                        b_hh3
                        + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
                        - 3.0 * b_halley * bpob * (1.0 + 2.0 / ln_b)
                    )
                    ds = newton * _householder_factor(newton, halley, hh3)
                ds = max(-0.5 * s, ds)
                s += ds
                iterations += 1
            return s
        v_l = normalised_vega(x, s_l)
        r_lm = convex_control_parameter_right(b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, 0.0)
        s = rational_cubic_interpolation(beta, b_l, b_c, s_l, s_c, 1.0 / v_l, 1.0 / v_c, r_lm)
        s_left = s_l
        s_right = s_c
    else:
        s_h = s_c + (b_max - b_c) / v_c if v_c > DBL_MIN else s_c
        b_h = normalised_black_call(x, s_h)
        if beta <= b_h:
            v_h = normalised_vega(x, s_h)
            r_hm = convex_control_parameter_left(b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, 0.0)
            s = rational_cubic_interpolation(beta, b_c, b_h, s_c, s_h, 1.0 / v_c, 1.0 / v_h, r_hm)
            s_left = s_c
            s_right = s_h
        else:
            # Highest segment: guess in the f-transformed variable near b_max.
            f_h, d_f_h, d2_f_h = _f_upper_map(x, s_h)
            if -SQRT_DBL_MAX < d2_f_h < SQRT_DBL_MAX:
                r_hh = convex_control_parameter_left(b_h, b_max, f_h, 0.0, d_f_h, -0.5, d2_f_h)
                f = rational_cubic_interpolation(beta, b_h, b_max, f_h, 0.0, d_f_h, -0.5, r_hh)
            if f <= 0.0:
                # Quadratic through f(b_h), f(b_max)=0 and f'(b_max)=-1/2.
                h = b_max - b_h
                t = (beta - b_h) / h
                f = (f_h * (1.0 - t) + 0.5 * h * t) * (1.0 - t)
            s = -2.0 * inverse_norm_cdf(f)
            s_left = s_h
            if beta > 0.5 * b_max:
                # Householder on g(s) = ln((b_max - beta)/(b_max - b(s))), well-conditioned
                # as the price approaches its upper bound.
                while iterations < max_iterations and abs(ds) > DBL_EPSILON * s:
                    if ds * ds_previous < 0.0:
                        direction_reversal_count += 1
                    if iterations > 0 and (
                        direction_reversal_count == 3 or not (s_left < s < s_right)
                    ):
                        s = 0.5 * (s_left + s_right)
                        if s_right - s_left <= DBL_EPSILON * s:
                            break
                        direction_reversal_count = 0
                        ds = 0.0
                    ds_previous = ds
                    b = normalised_black_call(x, s)
                    bp = normalised_vega(x, s)
                    if b > beta and s < s_right:
                        s_right = s
                    elif b < beta and s > s_left:
                        s_left = s
                    if b >= b_max or bp <= DBL_MIN:
                        ds = 0.5 * (s_left + s_right) - s
                    else:
                        b_max_minus_b = b_max - b
                        g = math.log((b_max - beta) / b_max_minus_b)
                        gp = bp / b_max_minus_b
                        b_halley = (x / s) * (x / s) / s - s / 4.0
                        b_hh3 = b_halley * b_halley - 3.0 * (x / (s * s)) * (x / (s * s)) - 0.25
                        newton = -g / gp
                        halley = b_halley + gp
                        hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley)
                        ds = newton * _householder_factor(newton, halley, hh3)
                    ds = max(-0.5 * s, ds)
                    s += ds
                    iterations += 1
                return s
    # The two middle segments: Householder on g(s) = b(s) - beta, with
    # b''/b' = x²/s³ - s/4 and b'''/b' = (b''/b')² - 3(x/s²)² - 1/4.
    while iterations < max_iterations and abs(ds) > DBL_EPSILON * s:
        if ds * ds_previous < 0.0:
            direction_reversal_count += 1
        if iterations > 0 and (direction_reversal_count == 3 or not (s_left < s < s_right)):
            s = 0.5 * (s_left + s_right)
            if s_right - s_left <= DBL_EPSILON * s:
                break
            direction_reversal_count = 0
            ds = 0.0
        ds_previous = ds
        b = normalised_black_call(x, s)
        bp = normalised_vega(x, s)
        if b > beta and s < s_right:
            s_right = s
        elif b < beta and s > s_left:
            s_left = s
        newton = (beta - b) / bp
        halley = (x / s) * (x / s) / s - s / 4.0
        hh3 = halley * halley - 3.0 * (x / (s * s)) * (x / (s * s)) - 0.25
        ds = max(-0.5 * s, newton * _householder_factor(newton, halley, hh3))
        s += ds
        iterations += 1
    return s
