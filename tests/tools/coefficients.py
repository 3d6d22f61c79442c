#!/usr/bin/env python3
"""Derives the polynomial coefficients used by src/ssin.c and src/abstanh.c.

Not run by the build: the coefficients are pasted into the sources.  Needs
python3-mpmath (Debian).  Each fit is a Chebyshev interpolant computed at 160
bits, rounded to double; the script prints the worst error of the rounded
polynomial, evaluated exactly, over a dense grid, so the figures quoted in
the sources can be checked.

    python3 tests/tools/coefficients.py
"""
import mpmath as mp

mp.mp.prec = 160
T = mp.findroot(lambda t: mp.tan(t) + t, 2.0)
Y = T * mp.sin(T)


def to_double(v):
    return float(v)


def fit(fn, lo, hi, deg):
    coeffs, _ = mp.chebyfit(fn, [lo, hi], deg + 1, error=True)
    # chebyfit returns highest degree first
    return [to_double(c) for c in reversed(coeffs)]


def horner(cs, t):
    acc = mp.mpf(0)
    for c in reversed(cs):
        acc = acc * t + mp.mpf(c)
    return acc


def worst(fn, approx, lo, hi, rel, n=4000):
    w = mp.mpf(0)
    for i in range(n + 1):
        t = lo + (hi - lo) * mp.mpf(i) / n
        e = abs(approx(t) - fn(t))
        if rel:
            e /= abs(fn(t))
        w = max(w, e)
    return float(mp.log(w, 2)) if w > 0 else -999


def emit(name, cs, comment):
    print("/* %s */" % comment)
    print("static const double %s[%d] = {" % (name, len(cs)))
    for c in cs:
        print("    %s," % c.hex())
    print("};")


def sinc_u(u):
    if u == 0:
        return mp.mpf(1)
    x = mp.sqrt(u)
    return mp.sin(x) / x


U = mp.mpf("4.12")
# S(u) = sin(x)/x = 1 + u R(u)
R = lambda u: (sinc_u(u) - 1) / u if u != 0 else mp.mpf(-1) / 6
cs = fit(R, 0, U, 6)
S_approx = lambda u: 1 + u * horner(cs, u)
emit("SSIN_R", cs, "sin(x)/x = 1 + u*R(u), u = x^2 in [0, 4.12]: log2 rel err %.1f"
     % worst(sinc_u, S_approx, mp.mpf(0), U, True))

# D(u) = sin(x)/x + cos(x) = f'(x)/x for f = x sin x
D = lambda u: sinc_u(u) + mp.cos(mp.sqrt(u))
cs = fit(D, 0, U, 9)
emit("SSIN_D", cs, "sin(x)/x + cos(x) in u = x^2 on [0, 4.12]: log2 abs err %.1f"
     % worst(D, lambda u: horner(cs, u), mp.mpf(0), U, False))


def ssin_inv(a):
    if a <= 0:
        return mp.mpf(0)
    if a >= Y:
        return T
    lo, hi = mp.mpf(0), T
    for _ in range(70):
        mid = (lo + hi) / 2
        if mid * mp.sin(mid) < a:
            lo = mid
        else:
            hi = mid
    x = (lo + hi) / 2
    for _ in range(6):
        fp = mp.sin(x) + x * mp.cos(x)
        if fp == 0:
            break
        x -= (x * mp.sin(x) - a) / fp
    return x


def H(s):
    a = Y * (1 - s * s)
    if a == 0:
        return mp.mpf(1)
    if s == 0:
        return T / mp.sqrt(Y)
    return ssin_inv(a) / mp.sqrt(a)


mp.mp.prec = 100
for deg, name in ((11, "SSIN_H"),):
    cs = fit(H, 0, 1, deg)
    emit(name, cs, "x/sqrt(a) for x*sin(x) = a, in s = sqrt(1 - a/Y) on [0, 1]: log2 abs err %.1f"
         % worst(H, lambda s: horner(cs, s), mp.mpf(0), mp.mpf(1), False, 400))
mp.mp.prec = 160

# expm1(r)/r = 1 + r P(r), |r| <= ln2/2
L = mp.log(2) / 2
E1 = lambda r: mp.expm1(r) / r if r != 0 else mp.mpf(1)
P = lambda r: (E1(r) - 1) / r if r != 0 else mp.mpf(1) / 2
cs = fit(P, -L, L, 8)
emit("EXPM1_P", cs, "expm1(r)/r = 1 + r*P(r), |r| <= ln2/2: log2 rel err %.1f"
     % worst(E1, lambda r: 1 + r * horner(cs, r), -L, L, True))

# The AVX-512 path's exponential reduces by ln2/16 and looks 2^(j/16) up in
# a table, which leaves |r| <= ln2/32 and a shorter polynomial.  The table
# holds the bits of the double nearest 2^(j/16) less j << 48: adding N << 48
# for N = 16k + j then multiplies by 2^k too.
L16 = mp.log(2) / 32
cs = fit(P, -L16, L16, 4)
emit("EXPM1_P16", cs, "expm1(r)/r = 1 + r*P(r), |r| <= ln2/32: log2 rel err %.1f"
     % worst(E1, lambda r: 1 + r * horner(cs, r), -L16, L16, True))
print("static const uint64_t EXP2_16[16] = {")
for j in range(16):
    import struct
    bits = struct.unpack('<Q', struct.pack('<d', float(mp.power(2, mp.mpf(j) / 16))))[0]
    print("    0x%016xu, /* 2^(%d/16) */" % (bits - (j << 48), j))
print("};")

# abs-tanh inverse: x/t for x*tanh(x) = t^2, 8 pieces on [0, 2.96]
mp.mp.prec = 80


def tanh_inv(a):
    if a <= 0:
        return mp.mpf(0)
    x0 = mp.sqrt(a) if a < 1 else a
    return mp.findroot(lambda x: x * mp.tanh(x) - a, x0)


h = lambda t: tanh_inv(t * t) / t if t != 0 else mp.mpf(1)
TOP = mp.mpf("2.96")
print("/* x/t for x*tanh(x) = t^2: 8 pieces of width %s/8, degree 6 in the offset"
      " from the piece's start */" % TOP)
print("static const double ABSTANH_H[8][7] = {")
wall = -999
for i in range(8):
    lo = TOP * i / 8
    hi = TOP * (i + 1) / 8
    cs = fit(lambda d: h(lo + d), 0, hi - lo, 6)
    w = worst(lambda d: h(lo + d), lambda d: horner(cs, d), mp.mpf(0), hi - lo, False, 200)
    wall = max(wall, w)
    print("    {" + ", ".join(c.hex() for c in cs) + "},")
print("};")
print("/* log2 abs err %.1f */" % wall)


def short_hex(f):
    """A float's hex literal with the mantissa's trailing zeros trimmed."""
    h = float(f).hex()
    mant, exp = h.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return mant + "p" + exp


# Float versions for the SIMD paths' starting points (evaluated in float,
# refined by a Newton step in double, so 2^-22 or so is all they need).
def emit_float(name, cs, comment):
    print("/* %s */" % comment)
    print("static const float %s[%d] = {" % (name, len(cs)))
    for c in cs:
        f = float(mp.mpf(c))
        import struct
        f = struct.unpack('f', struct.pack('f', f))[0]
        print("    %sf," % short_hex(f))
    print("};")


def to_float(c):
    import struct
    return struct.unpack('f', struct.pack('f', float(c)))[0]


mp.mp.prec = 100
cs = [to_float(c) for c in fit(H, 0, 1, 8)]
emit_float("SSIN_H_F", cs, "SSIN_H for float evaluation, degree 8: log2 abs err %.1f"
           % worst(H, lambda s: horner(cs, s), mp.mpf(0), mp.mpf(1), False, 400))
mp.mp.prec = 160
cs = [to_float(c) for c in fit(D, 0, U, 8)]
emit_float("SSIN_D_F", cs, "SSIN_D for float evaluation, degree 8: log2 abs err %.1f"
           % worst(D, lambda u: horner(cs, u), mp.mpf(0), U, False))
mp.mp.prec = 80
print("/* ABSTANH_H for float evaluation, transposed: [coefficient][piece] */")
rows = [[0.0] * 8 for _ in range(7)]
wall = -999
for i in range(8):
    lo = TOP * i / 8
    hi = TOP * (i + 1) / 8
    cs = [to_float(c) for c in fit(lambda d: h(lo + d), 0, hi - lo, 6)]
    w = worst(lambda d: h(lo + d), lambda d: horner(cs, d), mp.mpf(0), hi - lo, False, 200)
    wall = max(wall, w)
    for j in range(7):
        rows[j][i] = cs[j]
print("static const float ABSTANH_H_F[7][8] = {")
for j in range(7):
    print("    {" + ", ".join("%sf" % short_hex(v) for v in rows[j]) + "},")
print("};")
print("/* log2 abs err %.1f */" % wall)


# 1/f'(x) at the root, for the signed sin inverse's Newton step without a
# division: s*sqrt(a)/f'(x(a)) is analytic on s in [0, 1] (f' has a simple
# zero at the top of the branch, where s does too, and f'/sqrt(a) tends to 2
# at a = 0).
mp.mp.prec = 100


def ginv(s):
    a = Y * (1 - s * s)
    if s == 0:
        # f' ~ -f''(T) (T - x) and T - x ~ s sqrt(2Y/|f''(T)|)
        f2 = 2 * mp.cos(T) - T * mp.sin(T)
        return mp.sqrt(Y) / (-f2 * mp.sqrt(2 * Y / -f2))
    if a == 0:
        return mp.mpf(1) / 2
    x = ssin_inv(a)
    return s * mp.sqrt(a) / (mp.sin(x) + x * mp.cos(x))


cs = [to_float(c) for c in fit(ginv, 0, 1, 6)]
emit_float("SSIN_G_F", cs, "s*sqrt(a)/f'(x) in s on [0, 1], float, degree 6: log2 abs err %.1f"
           % worst(ginv, lambda s: horner(cs, s), mp.mpf(0), mp.mpf(1), False, 400))


# 2t/(f'(x) D(x)), D(x) = 1 + e^(-2x), for x*tanh(x) = t^2, on ABSTANH_H's
# pieces: g = 1/(f' D) = that/(2t) is the factor of the abs-tanh inverse's
# Newton step, whose residual is computed times D (the denominator of
# tanh x = -expm1(-2x)/D), so the step needs no division.  The error is
# relative, over the pieces (they end at 2.96, past t = 2.9507 where the
# inverse's identity threshold takes over).
mp.mp.prec = 80


def g2t(t):
    if t == 0:
        return mp.mpf(1) / 2
    x = tanh_inv(t * t)
    th = mp.tanh(x)
    return 2 * t / ((th + x * (1 - th * th)) * (1 + mp.exp(-2 * x)))


rows = [[0.0] * 8 for _ in range(7)]
wall = -999
for i in range(8):
    lo = TOP * i / 8
    hi = TOP * (i + 1) / 8
    cs = [to_float(c) for c in fit(lambda d: g2t(lo + d), 0, hi - lo, 6)]
    w = worst(lambda d: g2t(lo + d), lambda d: horner(cs, d), mp.mpf(0), hi - lo, True, 200)
    wall = max(wall, w)
    for j in range(7):
        rows[j][i] = cs[j]
print("/* 2t/(f' D) for x*tanh(x) = t^2, float, transposed: [coefficient][piece] */")
print("static const float ABSTANH_G_F[7][8] = {")
for j in range(7):
    print("    {" + ", ".join("%sf" % short_hex(v) for v in rows[j]) + "},")
print("};")
print("/* log2 rel err %.1f */" % wall)
