"""Normal-distribution special functions callable from numba kernels.

numba lowers ``math.erfc``/``math.exp`` to libm, but has no scaled complementary error
function ``erfcx`` nor an inverse normal CDF.  SciPy has both, yet calling them from numba
needs ctypes function pointers, which numba refuses to cache on disk (every process would
recompile the implied-volatility kernel).  So the two are written out here, exactly as the
reference implementation of "Let's be rational" ships them:

* ``erfcx``: W. J. Cody, "Rational Chebyshev approximations for the error function",
  Math. Comp. 23 (1969) 631-638 (CALERF, jint = 2), ~18 significant digits, and free of
  ``exp`` for x > 4 where exp(x²)·erfc(x) would underflow/overflow.
* ``inverse_norm_cdf``: M. J. Wichura, Algorithm AS241, Appl. Statist. 37 (1988) 477-484
  (PPND16), relative accuracy ~1e-16.
"""

from __future__ import annotations

import math

from quantdesk.analytics._jit import jit

ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649

# Cody's coefficients (CALERF).
_A0, _A1, _A2, _A3, _A4 = (
    3.1611237438705656,
    113.864154151050156,
    377.485237685302021,
    3209.37758913846947,
    0.185777706184603153,
)
_B0, _B1, _B2, _B3 = (
    23.6012909523441209,
    244.024637934444173,
    1282.61652607737228,
    2844.23683343917062,
)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8 = (
    0.564188496988670089,
    8.88314979438837594,
    66.1191906371416295,
    298.635138197400131,
    881.95222124176909,
    1712.04761263407058,
    2051.07837782607147,
    1230.33935479799725,
    2.15311535474403846e-8,
)
_D0, _D1, _D2, _D3, _D4, _D5, _D6, _D7 = (
    15.7449261107098347,
    117.693950891312499,
    537.181101862009858,
    1621.38957456669019,
    3290.79923573345963,
    4362.61909014324716,
    3439.36767414372164,
    1230.33935480374942,
)
_P0, _P1, _P2, _P3, _P4, _P5 = (
    0.305326634961232344,
    0.360344899949804439,
    0.125781726111229246,
    0.0160837851487422766,
    6.58749161529837803e-4,
    0.0163153871373020978,
)
_Q0, _Q1, _Q2, _Q3, _Q4 = (
    2.56852019228982242,
    1.87295284992346047,
    0.527905102951428412,
    0.0605183413124413191,
    0.00233520497626869185,
)
_SQRPI = 0.56418958354775628695  # 1/√π
_XNEG = -26.628  # below this erfcx(x) overflows
_XSMALL = 1.11e-16
_XHUGE = 6.71e7
_XMAX = 2.53e307


@jit
def _exp_x_squared(x: float) -> float:
    """exp(x²) computed as exp(a²)·exp((x-a)(x+a)) with a = x rounded to 1/16 (Cody's trick
    against the error amplification of exp for large arguments)."""
    a = math.trunc(x * 16.0) / 16.0
    return math.exp(a * a) * math.exp((x - a) * (x + a))


@jit
def erfcx(x: float) -> float:
    """Scaled complementary error function exp(x²)·erfc(x) (Cody's CALERF, jint = 2)."""
    y = abs(x)
    if y <= 0.46875:
        ysq = y * y if y > _XSMALL else 0.0
        xnum = _A4 * ysq
        xden = ysq
        xnum = (xnum + _A0) * ysq
        xden = (xden + _B0) * ysq
        xnum = (xnum + _A1) * ysq
        xden = (xden + _B1) * ysq
        xnum = (xnum + _A2) * ysq
        xden = (xden + _B2) * ysq
        erf_x = x * (xnum + _A3) / (xden + _B3)
        return (1.0 - erf_x) * math.exp(ysq)
    if y <= 4.0:
        xnum = _C8 * y
        xden = y
        xnum = (xnum + _C0) * y
        xden = (xden + _D0) * y
        xnum = (xnum + _C1) * y
        xden = (xden + _D1) * y
        xnum = (xnum + _C2) * y
        xden = (xden + _D2) * y
        xnum = (xnum + _C3) * y
        xden = (xden + _D3) * y
        xnum = (xnum + _C4) * y
        xden = (xden + _D4) * y
        xnum = (xnum + _C5) * y
        xden = (xden + _D5) * y
        xnum = (xnum + _C6) * y
        xden = (xden + _D6) * y
        result = (xnum + _C7) / (xden + _D7)
    elif y >= _XMAX:
        result = 0.0
    elif y >= _XHUGE:
        result = _SQRPI / y
    else:
        ysq = 1.0 / (y * y)
        xnum = _P5 * ysq
        xden = ysq
        xnum = (xnum + _P0) * ysq
        xden = (xden + _Q0) * ysq
        xnum = (xnum + _P1) * ysq
        xden = (xden + _Q1) * ysq
        xnum = (xnum + _P2) * ysq
        xden = (xden + _Q2) * ysq
        xnum = (xnum + _P3) * ysq
        xden = (xden + _Q3) * ysq
        result = ysq * (xnum + _P4) / (xden + _Q4)
        result = (_SQRPI - result) / y
    if x < 0.0:
        # erfcx(-y) = 2·exp(y²) - erfcx(y)
        if x < _XNEG:
            return math.inf
        e = _exp_x_squared(x)
        result = e + e - result
    return result


@jit
def norm_cdf(z: float) -> float:
    """Standard normal CDF Φ(z) with full relative accuracy in the left tail."""
    return 0.5 * math.erfc(-z * ONE_OVER_SQRT_TWO)


@jit
def norm_pdf(z: float) -> float:
    """Standard normal density φ(z)."""
    return ONE_OVER_SQRT_TWO_PI * math.exp(-0.5 * z * z)


# AS241 coefficients, highest power first: numerator and denominator for the central
# region |u - 1/2| <= 0.425, the intermediate tail r < 5 and the far tail.
_AS241_A = (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
            4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
            1.3314166789178437745e2, 3.3871328727963666080e0)  # fmt: skip
_AS241_B = (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
            2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
            4.2313330701600911252e1, 1.0)  # fmt: skip
_AS241_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
            1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
            4.63033784615654529590e0, 1.42343711074968357734e0)  # fmt: skip
_AS241_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
            1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
            2.05319162663775882187e0, 1.0)  # fmt: skip
_AS241_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
            5.46378491116411436990e0, 6.65790464350110377720e0)  # fmt: skip
_AS241_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)  # fmt: skip


@jit
def _horner(r: float, c: tuple[float, ...]) -> float:
    acc = 0.0
    for coefficient in c:
        acc = acc * r + coefficient
    return acc


@jit
def inverse_norm_cdf(u: float) -> float:
    """Φ⁻¹(u) by Wichura's AS241 (PPND16); -inf/+inf at u = 0/1, NaN outside [0, 1]."""
    if u <= 0.0:
        return -math.inf if u == 0.0 else math.nan
    if u >= 1.0:
        return math.inf if u == 1.0 else math.nan
    q = u - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _horner(r, _AS241_A) / _horner(r, _AS241_B)
    r = math.sqrt(-math.log(u if q < 0.0 else 1.0 - u))
    if r < 5.0:
        r -= 1.6
        ret = _horner(r, _AS241_C) / _horner(r, _AS241_D)
    else:
        r -= 5.0
        ret = _horner(r, _AS241_E) / _horner(r, _AS241_F)
    return -ret if q < 0.0 else ret
