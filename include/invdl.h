/*
 * invdl.h - invertible deep-learning layers in C11.
 *
 * Introduction
 * ============
 * invdl computes pairs of functions that undo each other: for every layer
 * there is a forward map y = f(x) and an inverse map x = g(y) that is a
 * function of y alone.  The pieces, in the order this header presents them:
 *
 *   1. status codes, shared by every call that can fail;
 *   2. kernels: pure elementwise functions over float arrays, in pairs
 *        signed sin   y = x*sin|x|     invertible on |x| <= INVDL_SSIN_XMAX
 *        abs-tanh     y = |x|*tanh(x)  a bijection of the real line
 *        mprelu       y = x (x >= 0), a*x (x < 0), a = max(|alpha|, alpha_min)
 *   3. layers: a kernel (or an invertible dense map: a free W, or W = P L U
 *      from its factors) with its parameters; the inverse of a layer shares
 *      the forward layer's parameters;
 *   4. models: a sequence of layers of one width, whose inverse model is the
 *      reversed sequence of inverse layers;
 *   5. flows: a model read as a normalizing flow, its log-density and
 *      samples drawn through its inverse;
 *   6. training: SGD or Adam on mean squared error, or on a flow's negative
 *      log-likelihood;
 *   7. persistence: saving and loading models.
 *
 * Accuracy of the kernels
 * -----------------------
 * Signed sin and abs-tanh are correctly rounded in both directions: the float
 * returned is the float nearest to the exact mathematical value for the float
 * given (round to nearest, ties to even).  Correct rounding makes every
 * direction monotone in float and makes the results identical on every
 * machine and code path (scalar or SIMD).  The monotonic PReLU forward is one
 * rounding of a*x; its inverse is one rounding of y/a.
 *
 * A round trip g(f(x)) returns x bit for bit only where f does not compress:
 * where several floats x share one float y, no inverse can tell them apart.
 * docs/accuracy.md states the exact round-trip sets measured over all 2^32
 * floats.
 *
 * Conventions
 * -----------
 * - Sizes come first, inputs are const, outputs come last.
 * - Kernels accept in-place use (output == input); partially overlapping
 *   arrays are not supported.
 * - A NULL array with a nonzero size, or a size whose byte count does not
 *   fit in memory, is INVDL_EINVAL and nothing is written.  Size 0 is a
 *   no-op returning INVDL_OK once the other arguments (an mprelu alpha_min,
 *   say) check out; the pointers are then not read.
 * - Results assume the default floating-point environment: round to
 *   nearest, subnormals neither flushed to zero nor read as zero.  Under
 *   FTZ/DAZ (which -ffast-math start-up code and some frameworks turn on)
 *   or another rounding mode, kernel results may be off by an ulp or, for
 *   tiny values, flushed to zero.
 * - Every function is reentrant; the library has no global mutable state.
 *   Calls on objects that share nothing may run in any threads at once;
 *   kernels and the calls that only read a model may run at once on shared
 *   objects too (the models section says exactly which).
 * - Fallible calls are marked INVDL_NODISCARD.  Define
 *   INVDL_WARN_UNUSED_RESULT before including this header (invdl's own
 *   build does) and GCC or clang warn wherever a returned status is
 *   ignored.  It is opt-in because GCC's warning cannot be silenced with a
 *   (void) cast: marking unconditionally would break -Werror builds of code
 *   that ignores a status on purpose (invdl_model_add(), say, which takes
 *   the layer even on error).
 */
#ifndef INVDL_H
#define INVDL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                   */
/* ------------------------------------------------------------------------ */

#define INVDL_VERSION_MAJOR 0
#define INVDL_VERSION_MINOR 1
#define INVDL_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH, comparable with < and >. */
#define INVDL_VERSION_NUMBER \
    (INVDL_VERSION_MAJOR * 10000 + INVDL_VERSION_MINOR * 100 + INVDL_VERSION_PATCH)
#define INVDL_VERSION_STRING "0.1.0"

/*! invdl_version_number() :
 *  @return : INVDL_VERSION_NUMBER of the library actually linked, which may
 *            differ from the header's when a program is linked against
 *            another build. */
unsigned invdl_version_number(void);

/*! invdl_version_string() :
 *  @return : INVDL_VERSION_STRING of the linked library (static storage). */
const char *invdl_version_string(void);

#if defined(INVDL_WARN_UNUSED_RESULT) && (defined(__GNUC__) || defined(__clang__))
#define INVDL_NODISCARD __attribute__((__warn_unused_result__))
#else
#define INVDL_NODISCARD
#endif

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

/* Values are pinned: they may be stored or sent elsewhere.  New values are
 * only ever added at the end. */
typedef enum invdl_status {
    INVDL_OK = 0,
    INVDL_EINVAL = 1,     /* NULL pointer, size overflow, width mismatch, bad option */
    INVDL_EDOMAIN = 2,    /* an input lies outside the invertible domain/range */
    INVDL_ENOMEM = 3,
    INVDL_ESINGULAR = 4,  /* a dense layer's matrix is numerically singular */
    INVDL_EIO = 5,
    INVDL_EFORMAT = 6,    /* a model file is corrupt, truncated or of another version */
    INVDL_EDIVERGED = 7   /* training met a non-finite loss; parameters were restored */
} invdl_status;

/*! invdl_strerror() :
 *  @return : a short English description of `status`, in static storage.
 *            Never NULL: values outside the enum give "unknown status". */
const char *invdl_strerror(invdl_status status);

/* ------------------------------------------------------------------------ */
/* Kernels                                                                   */
/* ------------------------------------------------------------------------ */

/* Signed sin: y = x*sin|x| (an odd function).
 *
 * It is strictly increasing on the branch |x| <= T, where T = 2.02875783811...
 * is the root of tan t = -t in (pi/2, pi); the branch maps onto
 * |y| <= Y = T*sin T = 1.81970574115...  Outside the branch many x share one
 * y, so the pair is defined there only as a forward computation.
 *
 * INVDL_SSIN_XMAX is T rounded down to float (0x1.03ae56p+1) and
 * INVDL_SSIN_YMAX is Y rounded down to float (0x1.d1d83cp+0): the float
 * domain and range of the invertible pair. */
#define INVDL_SSIN_XMAX 2.0287578f  /* T, float rounded */
#define INVDL_SSIN_YMAX 1.8197057f  /* Y, float rounded */

/*! invdl_ssin_forward() :
 *  y[i] = x[i]*sin|x[i]|, correctly rounded, for every finite x[i].
 *  - ±0 give ±0; subnormal x give ±0 (x*|x| is below the smallest float).
 *  - Finite |x| > INVDL_SSIN_XMAX: the value is still computed and written
 *    (outside the branch it cannot be inverted) and the call reports it.
 *  - ±inf and NaN give NaN and are reported the same way.
 *  Every x with |x| <= INVDL_SSIN_XMAX gives |y| <= INVDL_SSIN_YMAX, so
 *  invdl_ssin_inverse() accepts every y this produces from the branch.
 *  @return : INVDL_OK; INVDL_EDOMAIN if any x[i] lies outside
 *            [-INVDL_SSIN_XMAX, INVDL_SSIN_XMAX] (all n outputs written);
 *            INVDL_EINVAL for a NULL array with n > 0 or an n whose byte
 *            count overflows (nothing written). */
INVDL_NODISCARD invdl_status invdl_ssin_forward(size_t n, const float *x, float *y);

/*! invdl_ssin_inverse() :
 *  x[i] = the x in [-T, T] with x*sin|x| = y[i], correctly rounded, for
 *  |y[i]| <= INVDL_SSIN_YMAX.  The result never exceeds INVDL_SSIN_XMAX in
 *  magnitude.
 *  - ±0 give ±0.  Near 0 the inverse behaves like sign(y)*sqrt|y|, so the
 *    smallest subnormal y give x around 2^-75.
 *  - Near |y| = Y the inverse is ill-conditioned (its slope is unbounded):
 *    the floats just below and above XMAX all map to YMAX, and
 *    inverse(YMAX) is the float nearest the exact preimage of YMAX, a
 *    little below T.
 *  - |y| > INVDL_SSIN_YMAX (±inf included) and NaN give NaN.
 *  @return : INVDL_OK; INVDL_EDOMAIN if any y[i] lies outside
 *            [-INVDL_SSIN_YMAX, INVDL_SSIN_YMAX] (all n outputs written, NaN
 *            at those positions); INVDL_EINVAL as for the forward. */
INVDL_NODISCARD invdl_status invdl_ssin_inverse(size_t n, const float *y, float *x);

/*! invdl_abstanh_forward() :
 *  y[i] = |x[i]|*tanh(x[i]), correctly rounded.  Odd, strictly increasing,
 *  a bijection of the real line.
 *  - ±0 give ±0; subnormal x and |x| < 2^-75 give ±0 (x*|x| underflows).
 *  - For |x| >= 0x1.169cfep+3 (about 8.7067), y == x exactly: x*tanh x is
 *    then within half an ulp of x (tanh x itself rounds to 1 in float from
 *    about 9.01 on).  ±inf give ±inf.
 *  - NaN gives NaN (not an error: the function has no domain limit).
 *  @return : INVDL_OK, or INVDL_EINVAL as for invdl_ssin_forward(). */
INVDL_NODISCARD invdl_status invdl_abstanh_forward(size_t n, const float *x, float *y);

/*! invdl_abstanh_inverse() :
 *  x[i] = the x with |x|*tanh(x) = y[i], correctly rounded, for every y.
 *  - ±0 give ±0.  Small |y| behave like sign(y)*sqrt|y|.
 *  - For |y| >= 0x1.169cfcp+3 (about 8.7067), x == y exactly; ±inf give
 *    ±inf.
 *  - NaN gives NaN.
 *  @return : INVDL_OK, or INVDL_EINVAL as for invdl_ssin_forward(). */
INVDL_NODISCARD invdl_status invdl_abstanh_inverse(size_t n, const float *y, float *x);

/* Monotonic PReLU over a row-major [rows][cols] array with one alpha per
 * column: slope a[j] = max(|alpha[j]|, alpha_min), the same in forward,
 * inverse and gradient.  alpha_min > 0 keeps every slope invertible;
 * INVDL_MPRELU_ALPHA_MIN is the layers' default. */
#define INVDL_MPRELU_ALPHA_MIN 0.01f

/*! invdl_mprelu_forward() :
 *  y[i][j] = x[i][j] for x >= 0 (±0 included), a[j]*x[i][j] rounded once
 *  for x < 0.  NaN stays NaN; -inf gives -inf.  Underflow and overflow of
 *  a*x follow IEEE 754 (a*x may round to -0 or -inf, which the inverse
 *  cannot undo).
 *  @return : INVDL_OK; INVDL_EINVAL (nothing written) for a NULL array with
 *            rows*cols > 0, rows*cols overflowing, alpha_min not a finite
 *            number > 0, or any alpha[j] not finite. */
INVDL_NODISCARD invdl_status invdl_mprelu_forward(size_t rows, size_t cols, const float *alpha,
                                                  float alpha_min, const float *x, float *y);

/*! invdl_mprelu_inverse() :
 *  x[i][j] = y[i][j] for y >= 0, y[i][j]/a[j] correctly rounded (exactly
 *  the IEEE division) for y < 0.
 *  @return : as invdl_mprelu_forward(). */
INVDL_NODISCARD invdl_status invdl_mprelu_inverse(size_t rows, size_t cols, const float *alpha,
                                                  float alpha_min, const float *y, float *x);

/* ------------------------------------------------------------------------ */
/* Layers                                                                    */
/* ------------------------------------------------------------------------ */

/* A layer maps batches of `width` features per sample.  Layers are opaque;
 * constructors return NULL for width 0, a width above INVDL_MAX_WIDTH, or
 * when memory runs out.  A layer's parameters live in a reference-counted
 * block shared with every inverse made from it: the block lives until its
 * last user is freed, and objects may be freed in any order. */
typedef struct invdl_layer invdl_layer;

/* The widest layer or model: 2^53 - 1 features where pointers have 64
 * bits, 2^21 - 1 where they have 32.  A wider one could never allocate the
 * arrays its calls need (a sample's floats, the operations' scratch of
 * 640 bytes per feature), so the layer constructors,
 * invdl_model_create() and the loaders refuse it (NULL; INVDL_EFORMAT for
 * a file), instead of making an object every call would then refuse. */
#define INVDL_MAX_WIDTH ((size_t)PTRDIFF_MAX / 1024u)

/*! invdl_layer_ssin() / invdl_layer_abstanh() :
 *  Parameter-free elementwise layers over the kernels above.
 *  @return : a new layer the caller owns (free with invdl_layer_free()), or
 *            NULL for a bad width (0, above INVDL_MAX_WIDTH) or out of memory. */
invdl_layer *invdl_layer_ssin(size_t width);
invdl_layer *invdl_layer_abstanh(size_t width);

/*! invdl_layer_mprelu() :
 *  Monotonic PReLU with one alpha per feature, initialised glorot-uniform
 *  from `seed`: U(-sqrt(3/width), sqrt(3/width)), and alpha_min =
 *  INVDL_MPRELU_ALPHA_MIN.  The slope a = max(|alpha|, alpha_min) is flat
 *  in alpha strictly inside the floor (|alpha| < alpha_min): its gradient
 *  there is 0.  At the floor's edge (|alpha| == alpha_min) the gradient is
 *  the outside one, sign(alpha) dL/da, so a value on the edge can move
 *  back out.  Training never leaves an alpha inside the floor: after each
 *  update, |alpha| < alpha_min becomes copysign(alpha_min, alpha)
 *  (projected steps, as for dense_lu's s_i).  Otherwise an alpha that
 *  fell below alpha_min would stay there for good, its layer compressing
 *  by 1/alpha_min and the inverse model stretching errors as much.
 *  @return : a new layer the caller owns, or NULL (bad width, out of memory). */
invdl_layer *invdl_layer_mprelu(size_t width, uint64_t seed);

/*! invdl_layer_dense() :
 *  Square dense layer y = W x + b, W orthogonal from `seed`, b = 0.
 *  @return : a new layer the caller owns, or NULL (bad width, out of memory). */
invdl_layer *invdl_layer_dense(size_t width, uint64_t seed);   /* square, invertible */

/*! invdl_layer_inverse() :
 *  The inverse of `forward`, reading forward's parameters (shared, never
 *  copied).  The inverse of an inverse computes the original direction.
 *  @return : a new layer the caller owns, or NULL (forward NULL, out of
 *            memory).  `forward` is not owned by the result and may be
 *            freed first. */
invdl_layer *invdl_layer_inverse(invdl_layer *forward);        /* shares forward's parameters */

/*! invdl_layer_free() : frees the layer; NULL is fine.  A layer a model
 *  owns is freed with its model: invdl_layer_free() on it does nothing. */
void         invdl_layer_free(invdl_layer *layer);             /* NULL is fine */

/* Kinds, with the numbers model files use for them. */
typedef enum invdl_layer_kind {
    INVDL_LAYER_SSIN = 1,
    INVDL_LAYER_ABSTANH = 2,
    INVDL_LAYER_MPRELU = 3,
    INVDL_LAYER_DENSE = 4,
    INVDL_LAYER_DENSE_LU = 5,
    INVDL_LAYER_COUPLING = 6
} invdl_layer_kind;

/* Dense layer parametrised as W = P L U (as in Glow and nflows' LULinear):
 * P a fixed permutation drawn from seed, L unit lower triangular, U upper
 * triangular with diagonal u_i = s_i where |s_i| >= s_min, otherwise
 * copysign(s_min, s_i).  Training never leaves an s_i in the floor, where
 * its gradient would be 0 for good: after each update, |s_i| < s_min
 * becomes copysign(s_min, s_i) (projected steps).  Never singular, never
 * refactorised: inverse = two triangular solves, log|det W| = sum log|u_i|.
 * Parameters, in this order: L's strictly lower entries row by row
 * (width*(width-1)/2), U's strictly upper entries row by row (same count),
 * s[width], b[width].  P and s_min are fixed settings saved with the
 * layer; P is stored as exact integers in floats, which bounds the width
 * by INVDL_DENSE_LU_MAX_WIDTH.
 *
 * Choosing between dense and dense_lu: both compute y = W x + b in double
 * (one rounding per output).  dense_lu trains faster (nothing O(width^3)
 * ever) and its inverse and log-det are always ready; its parameters are
 * the factors, so the same W is reached by another path than with the
 * free W, and |s_i| >= s_min bounds how small a pivot can get.  dense
 * trains W itself, and a step that would make W numerically singular is
 * refused (INVDL_ESINGULAR). */
#define INVDL_DENSE_LU_S_MIN 1e-3f
#define INVDL_DENSE_LU_MAX_WIDTH ((size_t)1 << 24)

/*! invdl_layer_dense_lu() :
 *  The LU factors with partial pivoting of an orthogonal matrix drawn from
 *  `seed` (the one invdl_layer_dense() starts from, rounded to float: all
 *  |l_ik| <= 1, the product of the |u_i| is 1), that factorisation's
 *  permutation as P, b = 0, s_min = INVDL_DENSE_LU_S_MIN.
 *  @return : a new layer the caller owns, or NULL (width 0 or above
 *            INVDL_DENSE_LU_MAX_WIDTH, out of memory). */
invdl_layer *invdl_layer_dense_lu(size_t width, uint64_t seed);

/*! invdl_layer_dense_lu_min() :
 *  As invdl_layer_dense_lu() with the diagonal floor `s_min` (a finite
 *  number > 0), fixed for the layer's life and saved with it.
 *  @return : a new layer the caller owns, or NULL (bad width or s_min, out
 *            of memory). */
invdl_layer *invdl_layer_dense_lu_min(size_t width, uint64_t seed, float s_min);

/*! invdl_layer_permutation() :
 *  A dense_lu layer's P: perm[i] (i < width) receives the row of W that
 *  row i of L U becomes (y_perm[i] = (L U x)_i + b_perm[i]).
 *  @return : INVDL_OK; INVDL_EINVAL for other kinds or NULL arguments. */
INVDL_NODISCARD invdl_status invdl_layer_permutation(const invdl_layer *layer,
                                                     size_t *perm /* [width] */);

/*! invdl_layer_weights() :
 *  The forward map's effective y = W x + b of a dense or dense_lu layer
 *  (of its forward direction, also when `layer` is an inverse).  For
 *  dense_lu, each W_ij is formed in double from P, L and the floored U and
 *  rounded once.
 *  @return : INVDL_OK; INVDL_EINVAL for other kinds or NULL arguments. */
INVDL_NODISCARD invdl_status invdl_layer_weights(const invdl_layer *layer,
                                                 float *W /* [width*width] row-major */,
                                                 float *b /* [width] */);

/*! invdl_layer_mprelu_min() :
 *  As invdl_layer_mprelu() with the slope floor `alpha_min` (a finite
 *  number > 0) instead of INVDL_MPRELU_ALPHA_MIN.  The floor is fixed for
 *  the layer's life and saved with it.
 *  @return : a new layer the caller owns, or NULL (bad width, bad alpha_min,
 *            out of memory). */
invdl_layer *invdl_layer_mprelu_min(size_t width, uint64_t seed, float alpha_min);

/* Affine coupling (RealNVP) over width >= 2.  Features at even indices
 * (0, 2, ...) are the condition c (d1 = ceil(width/2) of them), those at odd
 * indices are transformed (d2 = floor(width/2)); INVDL_COUPLING_ODD swaps
 * the roles (c: the odd indices, d1 = floor(width/2); transformed: the even
 * ones, d2 = ceil(width/2)).  A one-hidden-layer tanh network
 *     h = tanh(W1 c + b1)                     (W1: hidden x d1)
 *     [r; t] = W2 h + b2                      (W2: 2*d2 x hidden; r: first d2 rows)
 *     s = 2 tanh(r / 2)                       (scale, soft-clamped to (-2, 2))
 * gives y_c = c, y_x = x * exp(s) + t, so x = (y_x - t) * exp(-s) and
 * log|det J| = sum(s).  INVDL_COUPLING_ADDITIVE drops r and s (W2 has d2
 * rows: t only; log|det J| = 0).  W2 and b2 start at 0 (the layer starts
 * as the identity, up to the sign of zero: -0 maps to +0), W1
 * glorot-uniform from seed, b1 = 0.
 * Parameters, in this order: W1 row-major, b1, W2 row-major, b2
 * (hidden*(d1 + 1 + rows of W2) + rows of W2 floats).
 *
 * Arithmetic: in double, each output rounded to float once; tanh and exp
 * are invdl's own (relative error about 2^-47), the same bits on every
 * code path.  The inverse sees the same c as the forward map, so it
 * recomputes the same s and t bit for bit, and a round trip is exact up
 * to the two float roundings of y_x and x:
 *     |g(f(x))_i - x_i| <= (2^-24 + 2^-44) (|y_i| exp(-s_i) + |x_i|)
 *                          + 2^-150 (1 + exp(-s_i))
 * (the last term: the two roundings where y_i or x_i is subnormal;
 * computed, |s_i| reaches 2 for |r| beyond about 37, and exp(-s_i) <=
 * e^2 (1 + 2^-47), so at most 8.4 float ulps of
 * max(|x_i|, |y_i|); backwards likewise with exp(s_i)).
 * hidden and flags are settings saved with the layer, as floats holding
 * exact integers: hidden at most INVDL_COUPLING_MAX_HIDDEN. */
#define INVDL_COUPLING_ODD      1u
#define INVDL_COUPLING_ADDITIVE 2u
#define INVDL_COUPLING_MAX_HIDDEN ((size_t)1 << 24)

/*! invdl_layer_coupling() :
 *  W1[k][j] = U(-limit, limit) in row-major order from `seed` (invdl's
 *  generator), limit = sqrt(6 / (d1 + hidden)) (Keras' glorot_uniform for a
 *  d1 -> hidden kernel); b1, W2, b2 = 0.
 *  @return : a new layer the caller owns, or NULL (width below 2 or above
 *            INVDL_MAX_WIDTH, hidden 0 or above INVDL_COUPLING_MAX_HIDDEN,
 *            a flag bit other than INVDL_COUPLING_ODD and
 *            INVDL_COUPLING_ADDITIVE, parameters too many for an array, out
 *            of memory). */
invdl_layer *invdl_layer_coupling(size_t width, size_t hidden, unsigned flags, uint64_t seed);

/*! invdl_layer_coupling_settings() :
 *  A coupling layer's hidden size and flags (as its constructor got them).
 *  @return : INVDL_OK; INVDL_EINVAL for other kinds or NULL arguments. */
INVDL_NODISCARD invdl_status invdl_layer_coupling_settings(const invdl_layer *layer,
                                                           size_t *hidden, unsigned *flags);

/*! invdl_layer_kind_of(), invdl_layer_name(), invdl_layer_width(),
 *  invdl_layer_is_inverse(), invdl_layer_alpha_min(), invdl_layer_s_min() :
 *  @return : the layer's kind (0 for NULL); its kind's name ("ssin",
 *            "abstanh", "mprelu", "dense", "dense_lu", "coupling"; static
 *            storage);
 *            its width (0 for NULL); 1 if it computes its kind's inverse
 *            map, else 0; an mprelu layer's alpha_min (0 for other kinds);
 *            a dense_lu layer's s_min (0 for other kinds). */
invdl_layer_kind invdl_layer_kind_of(const invdl_layer *layer);
const char  *invdl_layer_name(const invdl_layer *layer);
size_t       invdl_layer_width(const invdl_layer *layer);
int          invdl_layer_is_inverse(const invdl_layer *layer);
float        invdl_layer_alpha_min(const invdl_layer *layer);
float        invdl_layer_s_min(const invdl_layer *layer);

/*! invdl_layer_shares_params() :
 *  @return : 1 if a and b read the same parameter block (one was made
 *            from the other by invdl_layer_inverse(), directly or not). */
int          invdl_layer_shares_params(const invdl_layer *a, const invdl_layer *b);

/*! invdl_layer_param_count() :
 *  Trainable floats: 0 for ssin and abstanh; alpha[width] for mprelu;
 *  W[width][width] (row-major, y_i = sum_j W_ij x_j + b_i) then b[width]
 *  for dense; L, U, s, b for dense_lu (width*width + width in all, laid
 *  out as invdl_layer_dense_lu() says); W1, b1, W2, b2 for coupling (as
 *  above invdl_layer_coupling()).  A layer and its inverses report
 *  the same block.
 *  @return : the count (0 for NULL). */
size_t       invdl_layer_param_count(const invdl_layer *layer);

/*! invdl_layer_get_params() :
 *  Copies the layer's `count` parameters (see invdl_layer_param_count())
 *  to values.
 *  @return : INVDL_OK; INVDL_EINVAL (NULL layer, count mismatch, NULL
 *            values with count > 0). */
INVDL_NODISCARD invdl_status invdl_layer_get_params(const invdl_layer *layer, size_t count,
                                                    float *values);

/*! invdl_layer_set_params() :
 *  Replaces the parameters of the layer's block, which every layer
 *  sharing it sees at once.  A dense layer's LU factors are refreshed
 *  here, before the call returns.  A dense_lu layer accepts any finite
 *  values (an s_i inside the floor is floored, not moved).  Not to be
 *  called while another thread uses a layer or model sharing the block.
 *  @return : INVDL_OK; INVDL_EINVAL (as invdl_layer_get_params(), or a
 *            value not finite); INVDL_ESINGULAR (W numerically singular:
 *            its reciprocal 1-norm condition number is below FLT_EPSILON).
 *            On error the block is unchanged. */
INVDL_NODISCARD invdl_status invdl_layer_set_params(invdl_layer *layer, size_t count,
                                                    const float *values);

/*! invdl_layer_apply() :
 *  out[batch][width] = layer(in[batch][width]); in == out is allowed.
 *  @return : as invdl_model_predict(). */
INVDL_NODISCARD invdl_status invdl_layer_apply(const invdl_layer *layer, size_t batch,
                                               const float *in, float *out);

/*! invdl_layer_log_det() :
 *  log_det[s] = log|det J(in[s])| of the layer at sample s, computed in
 *  double and rounded once.  ssin and abstanh give -inf where an input is
 *  exactly 0 (their slope is 0 there), and their inverses +inf.
 *  @return : as invdl_model_predict(). */
INVDL_NODISCARD invdl_status invdl_layer_log_det(const invdl_layer *layer, size_t batch,
                                                 const float *in, float *log_det);

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct invdl_model invdl_model;

/*! invdl_model_create() :
 *  @return : an empty model of `width` features the caller owns, or NULL
 *            (width 0 or above INVDL_MAX_WIDTH, out of memory). */
invdl_model *invdl_model_create(size_t width);

/*! invdl_model_add() :
 *  Appends `layer`.  The model takes ownership, also on error (the layer
 *  is then freed) - except when `layer` already belongs to a model (this
 *  one or another): that is INVDL_EINVAL and the layer stays with its
 *  model, untouched.  A layer a model owns is freed with the model;
 *  invdl_layer_free() on it does nothing.
 *  A model being trained (from fit's on_epoch) keeps its layers: adding
 *  is refused.
 *  @return : INVDL_OK; INVDL_EINVAL (NULL model or layer, width mismatch,
 *            layer already in a model, model being trained; the model
 *            unchanged); INVDL_ENOMEM. */
INVDL_NODISCARD invdl_status invdl_model_add(invdl_model *model, invdl_layer *layer); /* takes ownership, also on error */

/*! invdl_model_inverse() :
 *  The reversed sequence of inverse layers, sharing every parameter.
 *  @return : a new model the caller owns, or NULL (NULL model, out of
 *            memory). */
invdl_model *invdl_model_inverse(invdl_model *forward);   /* reversed inverses, shared parameters */

/*! invdl_model_predict() :
 *  out[batch][width] = model(in[batch][width]).  in == out is allowed.
 *  @return : INVDL_OK; INVDL_EDOMAIN if any layer met an input outside its
 *            invertible domain (outputs still written); INVDL_EINVAL;
 *            INVDL_ENOMEM. */
INVDL_NODISCARD invdl_status invdl_model_predict(invdl_model *model, size_t batch,
                                                 const float *in, float *out);

/*! invdl_model_log_det() :
 *  log_det[s] = log|det J(in[s])|, the Jacobian of the whole model at
 *  sample s.  The inverse model's is the negative at the matching point.
 *  @return : as invdl_model_predict(). */
INVDL_NODISCARD invdl_status invdl_model_log_det(invdl_model *model, size_t batch,
                                                 const float *in, float *log_det /* [batch] */);

/*! invdl_model_free() : frees the model and its layers; NULL is fine.
 *  Called from fit's on_epoch on the model being trained, it is deferred:
 *  training stops after that epoch and invdl_model_fit() frees the model
 *  before it returns (the pointer is then gone). */
void         invdl_model_free(invdl_model *model);        /* NULL is fine */

/* Threads.  Objects that share no parameter block are independent: any
 * calls on them may run at once.  Layers and models made from one another
 * share blocks: a layer and its invdl_layer_inverse(), a model and its
 * invdl_model_inverse(), and every model holding such layers.  On objects
 * that share blocks:
 *   - these only read, and may run at once, from any number of threads:
 *     invdl_model_predict(), invdl_model_predict_inverse(),
 *     invdl_model_log_det(), invdl_model_log_prob(), invdl_model_sample(),
 *     invdl_model_roundtrip(), invdl_model_amplification(),
 *     invdl_model_gradient(), invdl_model_get_params(),
 *     invdl_model_param_count(), invdl_model_save(),
 *     invdl_model_save_memory(), invdl_layer_apply(),
 *     invdl_layer_log_det(), invdl_layer_get_params(),
 *     invdl_layer_weights(), invdl_layer_permutation() and the accessors;
 *   - these may also run alongside the readers: invdl_layer_inverse() and
 *     invdl_model_inverse() of a shared object, and freeing one object
 *     while others sharing its blocks are in use (e.g. the forward model
 *     freed while another thread predicts with its inverse model): block
 *     reference counts are C11 atomics (a compiler that defines
 *     __STDC_NO_ATOMICS__ builds plain counters, and then these need the
 *     same exclusion as the writers below);
 *   - these change blocks or a model and need every other user of those
 *     blocks to wait: invdl_model_fit(), invdl_model_set_params(),
 *     invdl_layer_set_params().  A forward model and its linked inverse
 *     share blocks, so training (or setting the parameters of) one while
 *     another thread predicts with the other is a data race;
 *   - invdl_model_add() changes its model, and no object may be used by
 *     one thread while another frees it.
 * fit's callbacks (on_epoch, on_epoch_end) run in the calling thread
 * between epochs and may read the models (predict, save, gradient,
 * amplification).  A model being trained
 * keeps its structure and its blocks belong to that fit: from the
 * callback, invdl_model_add() on it, and invdl_model_fit() on it or on any
 * model sharing its blocks (its inverse model, say), are INVDL_EINVAL and
 * change nothing; invdl_model_free() on it is deferred (see there).
 * Training other models from the callback is fine.
 * Saving one path from two threads at once leaves one whole file.  Arrays
 * given to a model call may be the same array (in == out) but must not
 * otherwise overlap. */

/*! invdl_model_width(), invdl_model_depth() :
 *  @return : features per sample; number of layers (0 for NULL). */
size_t       invdl_model_width(const invdl_model *model);
size_t       invdl_model_depth(const invdl_model *model);

/*! invdl_model_layer() :
 *  @return : layer `index` (0 = the first applied), owned by the model, or
 *            NULL (NULL model, index out of range). */
invdl_layer *invdl_model_layer(invdl_model *model, size_t index);

/*! invdl_model_predict_inverse() :
 *  out = inverse model(in) without building the inverse model.
 *  @return : as invdl_model_predict(). */
INVDL_NODISCARD invdl_status invdl_model_predict_inverse(const invdl_model *model, size_t batch,
                                                         const float *in, float *out);

/*! invdl_model_param_count() :
 *  @return : the model's trainable floats: each distinct parameter block
 *            once, in the order of the block's first use, each block laid
 *            out as invdl_layer_param_count() says (0 for NULL). */
size_t       invdl_model_param_count(const invdl_model *model);

/*! invdl_model_get_params(), invdl_model_set_params() :
 *  Copy all parameters out, or replace them all (every block or none).
 *  @return : as invdl_layer_get_params() / invdl_layer_set_params();
 *            INVDL_ENOMEM. */
INVDL_NODISCARD invdl_status invdl_model_get_params(const invdl_model *model, size_t count,
                                                    float *values);
INVDL_NODISCARD invdl_status invdl_model_set_params(invdl_model *model, size_t count,
                                                    const float *values);

/* How well a model and its inverse undo each other (the notebook's
 * delta_check, made to tell the two errors apart).
 *
 * forward_error = max|g(f(x)) - x| / max|x|: exact only as far as the
 * model's conditioning allows.  A deep chain can lose in float what its
 * inverse would need (tiny PReLU slopes, abs-tanh near 0, dense layers
 * mixing large and tiny components), and then no inverse gets x back.
 *
 * backward_error = max|f(g(y)) - y| / max|y|: whether g(y) is an input
 * the model really maps to y.  This is how an inverse is judged; invdl's
 * stays near depth times a few float ulps. */
typedef struct invdl_roundtrip {
    float forward_error;
    float backward_error;
    invdl_status forward_status;  /* of f then g on x: INVDL_OK or INVDL_EDOMAIN */
    invdl_status backward_status; /* of g then f on y */
} invdl_roundtrip;

/*! invdl_model_roundtrip() :
 *  Measures both errors on x[batch][width] and y[batch][width]; y may be
 *  NULL, meaning y = f(x).  NaN in a result means some value was lost
 *  (e.g. outside a domain).  Infinite values count like any other: one
 *  that comes back as the same infinity differs by 0, one that comes back
 *  as anything else by inf (the error is then inf).  The scales max|x| and
 *  max|y| are taken over the finite values only, so an infinity next to
 *  finite values neither hides their errors nor makes them NaN; with no
 *  finite value but 0, a difference of 0 gives 0 and any other inf.
 *  @return : INVDL_OK; INVDL_EDOMAIN (some stage met an input outside its
 *            domain; *report filled); INVDL_EINVAL (NULL model, x or
 *            report); INVDL_ENOMEM. */
INVDL_NODISCARD invdl_status invdl_model_roundtrip(invdl_model *model, size_t batch,
                                                   const float *x, const float *y,
                                                   invdl_roundtrip *report);

/* Why an inverse is off: how much the inverse model amplifies errors.
 *
 * A model f trained to fit data (x, y) leaves a fit error: y = f(x) + e.
 * Its inverse g then returns g(y) = x + about J_g(y) e, and how much J_g
 * stretches e is what decides how well inputs are recovered, not the fit
 * error alone.  In relative terms (infinity norms, per sample):
 *     |g(y + dy) - g(y)| / |g(y)|  <=  A(y) |dy| / |y|   (first order)
 * with A(y) the inverse's relative condition number |J_g(y)| |y| / |g(y)|.
 * invdl_model_amplification() bounds A by the product of the layers'
 * own: for the model's layers f_1 .. f_L with activations v_0 = x,
 * v_l = f_l(v_(l-1)), layer l's gain at a sample is
 *     G_l = |J_(f_l^-1)(v_l)| |v_l| / |v_(l-1)|
 * (1/slope for signed sin and abs-tanh: max_j 1/|f'(v_(l-1),j)|;
 * 1/max(|alpha_j|, alpha_min) for PReLU features on the negative branch,
 * else 1; |W^-1| for dense layers; each times |v_l| / |v_(l-1)|), and
 *     A  <=  G_1 G_2 ... G_L
 * because |J_g| <= product of the |J_(f_l^-1)| and the ratios of norms
 * telescope to |y| / |x|.  The bound is exact for width 1 (a product of
 * scalars) and for one layer; for wider chains it is above A by how much
 * the layers' worst directions fail to line up (measured in
 * docs/training-control.md).
 * These are the same gains memory-saving backprop weighs (max_gain).
 *
 * How to read it: recovery error ~ fit error x amplification.  A model
 * whose relative fit error is 1e-3 and whose amplification is 1e3
 * recovers inputs no better than about 100% of their size.  The layer
 * with the largest gain is the one that compresses: a PReLU whose
 * |alpha| sits at (or, before projected steps, fell below) alpha_min
 * contributes 1/alpha_min (100 by default); abs-tanh and signed sin
 * square their inputs near 0, so a feature v_j near 0 next to larger ones
 * contributes about |v| / (2 |v_j|); an ill-conditioned dense W
 * contributes |W^-1| |W x| / |x|.  What helps: a larger alpha_min
 * (invdl_layer_mprelu_min()), dense_lu layers (s_min bounds every pivot),
 * smooth layers (dense, dense_lu, or PReLU with larger slopes) next to the
 * data rather than squaring ones, and data away from 0 for abs-tanh and
 * signed sin layers. */

/*! invdl_model_amplification() :
 *  For samples x[batch][width] of the model's input: layer_gain[l] (l <
 *  depth) = max over the samples of G_l above, the gain of layer l (0 =
 *  the first applied); sample_gain[s] = G_1 ... G_L at sample s, the bound
 *  on sample s's amplification A; *total = the largest sample_gain.  Each
 *  is computed in double from the model's float activations (those of
 *  invdl_model_predict()).  Any of the three may be NULL.  A model with no
 *  layers has sample gains 1 (g is the identity).
 *  - |W^-1| is exact (to double rounding) for dense layers and for
 *    dense_lu up to width 32; wider dense_lu layers use the estimate
 *    memory-saving backprop uses (Hager's method: below the norm by a
 *    small factor at most in all but contrived cases, never above it), so
 *    there the bound may fall short by that factor.  A dense_lu layer in
 *    its inverse direction uses |L| |U| >= |W|.
 *  - A gain is +inf where an input cannot be recovered in relative terms:
 *    a layer input of 0 whose output is not 0, a slope of 0 (signed sin
 *    and abs-tanh at exactly 0, where the gain is 1/0), a value not finite
 *    (NaN gives +inf, not NaN), or a sample outside a layer's invertible
 *    domain (signed sin past INVDL_SSIN_XMAX at any depth: that layer's
 *    gain and the sample's are +inf).
 *  Reads the model only.
 *  @return : INVDL_OK; INVDL_EDOMAIN (some sample left a layer's domain;
 *            everything written); INVDL_EINVAL (NULL model, NULL x with
 *            batch > 0, batch*width overflowing; nothing written);
 *            INVDL_ENOMEM (nothing written).  batch 0 writes layer_gain
 *            (all 0) and *total (0). */
INVDL_NODISCARD invdl_status invdl_model_amplification(const invdl_model *model, size_t batch,
                                                       const float *x,
                                                       double *layer_gain /* [depth] */,
                                                       double *sample_gain /* [batch] */,
                                                       double *total);

/*! invdl_delta_check() :
 *  The notebook's delta_check: whether max|a[i] - b[i]| < epsilon.
 *  @return : 1 if every difference is below epsilon, else 0 (also for a
 *            NaN difference, or NULL arrays with n > 0). */
int          invdl_delta_check(size_t n, const float *a, const float *b, float epsilon);

/* ------------------------------------------------------------------------ */
/* Flows                                                                     */
/* ------------------------------------------------------------------------ */

/* A model read as a normalizing flow maps data x to z = model(x), whose
 * base density is the standard normal N(0, I) of `width` dimensions.  By
 * the change of variables the model's density of x is
 *     log p(x) = -0.5 |z|^2 - (width/2) log(2 pi) + log|det J(x)|
 * in nats.  Samples run the other way: z drawn from the base, x = the
 * inverse model's output.  Train a flow with loss = INVDL_LOSS_NLL (the
 * Training section).
 *
 * Bounded layers.  Signed sin is invertible only on |x| <= INVDL_SSIN_XMAX
 * (and its inverse only on |y| <= INVDL_SSIN_YMAX), so a model holding one
 * maps only part of the space, onto only part of the space:
 *   - outside the model's domain the density is 0: log_prob gives -inf
 *     there, and INVDL_EDOMAIN;
 *   - the base density restricted to the model's image integrates to
 *     P = P(z in image) < 1.  log_prob is not renormalised by P (no closed
 *     form exists); samples follow the renormalised density p(x) / P,
 *     because a z outside the image is drawn again (invdl_model_sample()).
 * Densities can also be infinite where a slope is 0 (signed sin and
 * abs-tanh at exactly 0: their inverses' log|det J| is +inf there). */

/* How many times invdl_model_sample() draws one sample's z at most before
 * it gives up on that sample.  A model whose image holds a share q of the
 * base's mass fails a sample with probability (1 - q)^100: below 1e-15
 * for q >= 0.3 (a width-16 signed-sin layer over the whole output keeps
 * q = 0.93^16 = 0.32; width 2 keeps 0.87). */
#define INVDL_SAMPLE_MAX_DRAWS 100

/*! invdl_model_log_prob() :
 *  log_prob[s] = log p(x[s]) as above, x[batch][width].  Each sample's
 *  log|det J| (every layer's in double), |z|^2 and the constant are summed
 *  in double and rounded to float once.  A sample outside a layer's
 *  invertible domain (a signed sin past INVDL_SSIN_XMAX, an inverse signed
 *  sin past INVDL_SSIN_YMAX, at any depth) has density 0: -inf, and the
 *  call says INVDL_EDOMAIN with every other sample written as usual.  NaN
 *  inputs give NaN (-inf where a bounded layer counts them outside its
 *  domain).  Reads the model only.
 *  @return : INVDL_OK; INVDL_EDOMAIN (some sample has density 0; all
 *            written); INVDL_EINVAL (NULL model or array with batch > 0,
 *            batch*width overflowing; nothing written); INVDL_ENOMEM
 *            (nothing written). */
INVDL_NODISCARD invdl_status invdl_model_log_prob(invdl_model *model, size_t batch, const float *x,
                                                  float *log_prob /* [batch] */);

/*! invdl_model_sample() :
 *  n samples of the flow into out[n][width]: for sample i, z ~ N(0, I) in
 *  double from `seed` (splitmix64 and Box-Muller), rounded to float, then
 *  the inverse model.  The rule for a z outside the model's image (an
 *  inverse layer met an input outside its range, e.g. |z_j| > YMAX under
 *  a final signed sin): that sample's z is drawn again, up to
 *  INVDL_SAMPLE_MAX_DRAWS times in all; past that the sample is NaN and
 *  the call says INVDL_EDOMAIN (it never loops for long).  Draw k of
 *  sample i depends only on (seed, i, k): the same seed gives the same
 *  bits whatever n, on every code path (with the same libm), and the
 *  first m of n samples are the m samples of a call with n = m.  Reads
 *  the model only.
 *  @return : INVDL_OK; INVDL_EDOMAIN (some sample never fell in the image:
 *            NaN there, the others written); INVDL_EINVAL (NULL model, NULL
 *            out with n > 0, n*width overflowing; nothing written);
 *            INVDL_ENOMEM (nothing written). */
INVDL_NODISCARD invdl_status invdl_model_sample(invdl_model *model, size_t n, uint64_t seed,
                                                float *out /* [n][width] */);

/* ------------------------------------------------------------------------ */
/* Training                                                                  */
/* ------------------------------------------------------------------------ */

/* SGD or Adam on mean squared error or on a flow's negative
 * log-likelihood, with Keras semantics and defaults.  Start from
 * invdl_fit_defaults() (SGD) or invdl_fit_defaults_adam() and change what
 * you need.
 *
 * Each epoch shuffles the samples (seeded: the same seed, data and model
 * give bit-identical results) and takes them batch_size at a time, the
 * last batch holding the rest.  A batch's loss is
 *   - loss = INVDL_LOSS_MSE (the default): the mean of the squared errors
 *     of model(x) against y over its samples and features;
 *   - loss = INVDL_LOSS_NLL: the mean over its samples of -log p(x), the
 *     flow's negative log-likelihood in nats per sample (Flows section);
 *     y is not read and may be NULL.  A sample outside a layer's domain
 *     has density 0 and makes the loss +inf: training stops there with
 *     INVDL_EDIVERGED.
 * Each step takes the batch's gradient g, scaled to global_clipnorm when
 * that is set and exceeded.  With learning rate lr:
 *   - optimizer = INVDL_OPTIMIZER_SGD (the default), momentum m: each
 *     variable w and its velocity v (0 at the start) step as Keras' SGD
 *     does, in float:
 *         m == 0:    w -= lr*g
 *         otherwise: v = m*v - lr*g; w += v        (nesterov: w += m*v - lr*g)
 *   - optimizer = INVDL_OPTIMIZER_ADAM: Keras 2's Adam, t counting the
 *     call's steps from 1, m and v starting at 0 in every call:
 *         m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *         lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  w -= lr_t m / (sqrt(v) + epsilon)
 *     with b1 = beta_1, b2 = beta_2; m, v and the step are computed in
 *     double and each w is rounded to float once per step.  momentum and
 *     nesterov are SGD's: nonzero with Adam is a bad option.
 * After each step, values are moved into the region training keeps them
 * in: an mprelu layer's |alpha| < alpha_min and a dense_lu layer's
 * |s_i| < s_min become copysign(alpha_min, alpha) and copysign(s_min,
 * s_i) (projected steps).  Inside such a floor the loss is flat in the
 * value (invdl_model_gradient() returns 0 there, the true derivative); at
 * its edge the gradient is the outside one-sided derivative, so a value
 * the projection left on the edge moves back out as soon as the loss
 * wants it larger, and stays on the edge while the loss wants it smaller.
 * A step of rate 0 is no step: nothing is projected then either.
 *
 * A dense layer's factorisation (LU, norms: O(width^3)) runs after every
 * step only when training reads it at every step: with memory-saving
 * backprop, with loss = INVDL_LOSS_NLL (log|det W| and its gradient), or
 * when the model holds a layer in its inverse direction.  Otherwise the
 * steps keep only W and W^T up to date and the factors are computed at the
 * end of each epoch; a W found numerically singular there sends every
 * parameter back to that epoch's start (INVDL_ESINGULAR).  Either way,
 * when fit returns (and when on_epoch runs) every layer is complete, as
 * after invdl_model_set_params().
 *
 * Memory-saving backprop (memory_saving = 1) keeps only each batch's final
 * output and rebuilds every layer's input from its output through the
 * layer's inverse during the backward pass, so activation memory does not
 * grow with depth.  Rebuilt inputs carry the rounding of every layer
 * above, amplified where a layer compresses (small PReLU slopes, abs-tanh
 * near 0, ill-conditioned W).  Safeguards keep the gradients honest: a
 * layer's input is stored instead of rebuilt when its forward pass met an
 * input outside its invertible domain, when the bound on how much
 * rebuilding amplifies errors since the last stored activation would
 * exceed max_gain, and every checkpoint_every layers; a batch whose
 * rebuilding fails anyway is redone with stored activations.
 *
 * Training well: validation, early stopping, learning-rate schedules
 * ------------------------------------------------------------------
 * All off by default (invdl_fit_defaults() trains as before); each works
 * with SGD and Adam, on squared error and on the negative log-likelihood,
 * stored or memory-saving.  Keras' semantics, Keras 3 where Keras 2
 * differs (said where it does).
 *
 * Validation (Keras' validation_data): validation_n samples
 * validation_x[validation_n][width] with targets validation_y (not read
 * with INVDL_LOSS_NLL).  After every epoch the model's mean loss on them,
 * the loss training minimises computed in the same way but with no step
 * taken (min(batch_size, n) samples at a time, n the training samples,
 * each batch weighted by its size),
 * is the epoch's val_loss: passed to on_epoch_end, kept in the report.
 * It is not checked for finiteness (an NLL validation sample outside a
 * layer's domain makes it +inf); a non-finite val_loss never improves.
 *
 * The monitored value of early stopping and of reduce-on-plateau, each
 * chosen by an invdl_monitor: the epoch's val_loss, or its training loss
 * (the mean batch loss reported for the epoch, Keras' "loss").  AUTO
 * monitors val_loss when validation data are given and the training loss
 * otherwise; VAL_LOSS without validation data is a bad option (Keras
 * would warn and do nothing).  Both are mode "min": lower is better.
 *
 * Early stopping (early_stopping = 1; Keras' EarlyStopping with monitor,
 * min_delta, patience, restore_best_weights, mode "min", no baseline, no
 * start_from_epoch).  best starts at +inf, wait at 0.  After epoch e
 * (from 1), with v its monitored value, in double:
 *     if restore_best_weights and nothing is kept yet: keep e's parameters
 *         (and best_epoch = e): so the first epoch is kept even if v is
 *         not finite;
 *     wait += 1;
 *     if v + min_delta < best: best = v, best_epoch = e, wait = 0, and
 *         with restore_best_weights keep e's parameters;
 *     else if wait >= patience and e > 1: training stops after epoch e.
 * So training stops after `patience` epochs in a row without an
 * improvement of more than min_delta (patience 0: at the first epoch that
 * does not improve), never after the first epoch.  With
 * restore_best_weights = 1, when fit returns the parameters are those kept
 * (those of best_epoch, bit for bit) whatever ended training: early
 * stopping, the epochs running out (Keras 3; Keras 2 restored only when it
 * stopped early), on_epoch or on_epoch_end asking to stop, and also
 * INVDL_EDIVERGED and INVDL_ESINGULAR, which then keep their status but
 * return best_epoch's parameters instead of the ones they would restore
 * (invdl_model_fit()).  Only INVDL_ENOMEM (model unchanged) and
 * INVDL_EINVAL (nothing done) restore nothing.  The loss a fit reports
 * (final_loss, report->loss) is always the last epoch's, as Keras'
 * history has it; report->restored says whether parameters were restored.
 * restore_best_weights without early stopping is a bad option.
 *
 * Learning-rate schedules.  The rate a step uses (learning_rate in the
 * update rules above; Adam's lr_t is formed from it) is
 *   - schedule = INVDL_SCHEDULE_CONSTANT (default): learning_rate, or the
 *     rate reduce-on-plateau has reduced it to;
 *   - schedule = INVDL_SCHEDULE_EXPONENTIAL (Keras' ExponentialDecay with
 *     initial_learning_rate = learning_rate), for the call's step k
 *     counted from 0 (the first step uses learning_rate):
 *         rate_k = learning_rate * decay_rate ^ (k / decay_steps)
 *     with k / decay_steps rounded down when staircase = 1; computed in
 *     double, rounded to float once.  Steps count from 0 in every call
 *     (as Adam's t does here).
 * Reduce-on-plateau (reduce_lr_on_plateau = 1; Keras' ReduceLROnPlateau
 * with monitor, factor, patience, min_delta, cooldown, min_lr, mode
 * "min").  best starts at +inf, wait and cooldown at 0.  After epoch e,
 * with v its monitored value, in double:
 *     if cooldown > 0: cooldown -= 1, wait = 0;
 *     if v < best - min_delta: best = v, wait = 0;
 *     else if cooldown == 0: wait += 1, and if wait >= patience and
 *         rate > min_lr: rate = max(rate * factor, min_lr) (rounded to
 *         float), cooldown = plateau_cooldown, wait = 0;
 * the new rate applies from epoch e+1's first step.  It needs the
 * constant schedule (Keras cannot set a rate that a schedule computes
 * either): reduce-on-plateau with INVDL_SCHEDULE_EXPONENTIAL is a bad
 * option.  report->learning_rate is the rate the next step would take,
 * so another fit can go on from it.
 *
 * A rate that reaches 0 (min_lr 0 and enough reductions, or a decay
 * underflowing) takes no step, exactly as learning_rate 0 does; a rate
 * that overflows (decay_rate > 1) makes a step leave a parameter
 * non-finite: INVDL_EDIVERGED.
 *
 * After each epoch, in this order: the epoch's loss; the factorisation
 * of layers whose factors wait for the epoch's end (INVDL_ESINGULAR
 * there ends training before the rest); val_loss; early stopping's
 * update; reduce-on-plateau's update; on_epoch, then on_epoch_end (both
 * are called; either returning nonzero stops training after the epoch).
 * An epoch stopped by INVDL_EDIVERGED, INVDL_ESINGULAR or INVDL_ENOMEM
 * gets none of these. */
typedef struct invdl_fit_report invdl_fit_report;

typedef enum invdl_loss { INVDL_LOSS_MSE = 0, INVDL_LOSS_NLL = 1 } invdl_loss;
typedef enum invdl_optimizer { INVDL_OPTIMIZER_SGD = 0, INVDL_OPTIMIZER_ADAM = 1 } invdl_optimizer;

/* What early stopping and reduce-on-plateau watch (above). */
typedef enum invdl_monitor {
    INVDL_MONITOR_AUTO = 0,    /* val_loss with validation data, else the training loss */
    INVDL_MONITOR_LOSS = 1,    /* the epoch's training loss (Keras' "loss") */
    INVDL_MONITOR_VAL_LOSS = 2 /* the epoch's validation loss (Keras' "val_loss") */
} invdl_monitor;

/* The rate of each step (above). */
typedef enum invdl_schedule {
    INVDL_SCHEDULE_CONSTANT = 0,   /* learning_rate (reduce-on-plateau may lower it) */
    INVDL_SCHEDULE_EXPONENTIAL = 1 /* Keras' ExponentialDecay, per step */
} invdl_schedule;

/* What on_epoch_end receives after each epoch; valid during the call only. */
typedef struct invdl_epoch_info {
    size_t epoch;             /* from 1 */
    size_t epochs;            /* options->epochs */
    size_t steps;             /* steps this call has taken so far */
    float  loss;              /* the epoch's mean training loss (on_epoch's) */
    float  val_loss;          /* the loss on the validation data after the
                                 epoch; NaN without validation data */
    float  learning_rate;     /* the rate the epoch's last step used */
    float  next_learning_rate; /* the rate the next step will use (after
                                  the schedule and reduce-on-plateau) */
    size_t best_epoch;        /* early stopping: the epoch holding the best
                                 monitored value so far (with
                                 restore_best_weights: the epoch whose
                                 parameters are kept); 0 when off or none */
    float  best;              /* early stopping's best monitored value
                                 (+inf before any improvement; NaN when off) */
    size_t wait;              /* early stopping's epochs without improvement */
    int    stopping;          /* 1: early stopping ends training after this
                                 epoch */
} invdl_epoch_info;

typedef struct invdl_fit_options {
    float    learning_rate;  /* 0.01 */
    float    momentum;       /* 0 */
    size_t   batch_size;     /* 32 */
    size_t   epochs;         /* 1 */
    uint64_t seed;           /* shuffling */
    int      nesterov;       /* 0: Nesterov momentum when 1 */
    float    global_clipnorm; /* 0 (off): scale each step's gradient to at most
                                 this L2 norm over all parameters */
    /* Called after each epoch with its mean loss (epoch counts from 1);
     * returning nonzero stops training after that epoch.  NULL: none. */
    int    (*on_epoch)(void *user, size_t epoch, size_t epochs, float loss);
    void    *user;           /* NULL: passed to on_epoch */
    int      memory_saving;  /* 0: store every layer's input; 1: rebuild them */
    size_t   checkpoint_every; /* 0 (off): with memory_saving, also store
                                  the input of every k-th layer */
    float    max_gain;       /* 1e4: with memory_saving, the largest error
                                amplification allowed between stored
                                activations; INFINITY turns the bound off */
    invdl_fit_report *report; /* NULL, or receives what the call did */
    invdl_loss loss;         /* INVDL_LOSS_MSE; INVDL_LOSS_NLL: the batch's
                                mean of -log p(x), y not read (may be NULL) */
    invdl_optimizer optimizer; /* INVDL_OPTIMIZER_SGD */
    float    beta_1;         /* 0.9: Adam's decay of the gradient's mean */
    float    beta_2;         /* 0.999: Adam's decay of its mean square */
    float    epsilon;        /* 1e-7: Adam's term added to sqrt(v) */
    /* Validation data (Keras' validation_data), not owned, read during
     * the call only. */
    size_t       validation_n; /* 0: none (the arrays are then not read) */
    const float *validation_x; /* [validation_n][width] */
    const float *validation_y; /* [validation_n][width]; not read with NLL */
    /* Early stopping (Keras' EarlyStopping, mode "min"). */
    int      early_stopping; /* 0: off; 1: on */
    invdl_monitor early_stopping_monitor; /* INVDL_MONITOR_AUTO */
    float    early_stopping_min_delta;  /* 0: improvements must exceed it */
    size_t   early_stopping_patience;   /* 0: epochs without improvement allowed */
    int      restore_best_weights;      /* 0; 1: return the best epoch's parameters */
    /* Learning-rate schedule (Keras' ExponentialDecay). */
    invdl_schedule schedule; /* INVDL_SCHEDULE_CONSTANT */
    size_t   decay_steps;    /* 0: set it (>= 1) for INVDL_SCHEDULE_EXPONENTIAL */
    float    decay_rate;     /* 0: set it (finite, > 0) for INVDL_SCHEDULE_EXPONENTIAL */
    int      staircase;      /* 0; 1: decay in whole periods of decay_steps */
    /* Reduce-on-plateau (Keras' ReduceLROnPlateau, mode "min"). */
    int      reduce_lr_on_plateau;      /* 0: off; 1: on */
    invdl_monitor plateau_monitor;      /* INVDL_MONITOR_AUTO */
    float    plateau_factor;            /* 0.1: new rate = rate * factor, in [0, 1) */
    size_t   plateau_patience;          /* 10 */
    float    plateau_min_delta;         /* 1e-4 */
    size_t   plateau_cooldown;          /* 0 */
    float    plateau_min_lr;            /* 0 */
    /* Called after each epoch, after on_epoch, with the epoch's losses,
     * rates and early-stopping state; returning nonzero stops training
     * after that epoch.  Receives `user`.  NULL: none.  What it may do
     * with the model is what on_epoch may (Threads, above). */
    int    (*on_epoch_end)(void *user, const invdl_epoch_info *info);
} invdl_fit_options;

/* What one fit (or gradient) call did. */
struct invdl_fit_report {
    size_t epochs_run;
    size_t steps;            /* batches trained on */
    float  loss;             /* mean loss of the last epoch run */
    size_t activation_bytes; /* peak bytes of activations the trainer held
                                (inputs and outputs of layers, gradients of
                                activations not included) */
    size_t stored_inputs;    /* memory saving: layer inputs stored, summed
                                over batches */
    size_t fallbacks;        /* memory saving: batches redone with stored
                                activations */
    float  val_loss;         /* validation loss after the last epoch run
                                (of the initial parameters with epochs 0);
                                NaN without validation data */
    float  learning_rate;    /* the rate the next step would use */
    size_t best_epoch;       /* early stopping: as invdl_epoch_info's, at
                                the end (0 when off or none) */
    float  best;             /* early stopping's best monitored value (NaN
                                when off) */
    size_t stopped_epoch;    /* the epoch after which early stopping ended
                                training; 0 if it did not */
    int    restored;         /* 1: the parameters returned are best_epoch's
                                (restore_best_weights) */
};

/*! invdl_fit_defaults() : @return : the Keras defaults listed above (SGD,
 *  learning rate 0.01, mean squared error; no validation, early stopping,
 *  schedule or reduce-on-plateau, with Keras' defaults in the
 *  reduce-on-plateau fields for when it is turned on). */
invdl_fit_options invdl_fit_defaults(void);

/*! invdl_fit_defaults_adam() :
 *  @return : the defaults of Keras' Adam: invdl_fit_defaults() with
 *            optimizer = INVDL_OPTIMIZER_ADAM and learning_rate 0.001
 *            (beta_1 0.9, beta_2 0.999, epsilon 1e-7 as everywhere). */
invdl_fit_options invdl_fit_defaults_adam(void);

/*! invdl_model_fit() :
 *  Trains `model` on n samples x[n][width] -> y[n][width] (with
 *  INVDL_LOSS_NLL: on x alone, y may be NULL).  Any model can be trained,
 *  an inverse model included: it trains the parameters it shares, so the
 *  forward model changes with it.  options NULL means the defaults.  Bad
 *  options: learning_rate or momentum negative or not finite, batch_size
 *  0, global_clipnorm negative or NaN, memory_saving other than 0 or 1,
 *  max_gain NaN or below 1, loss or optimizer not a value of its enum;
 *  with Adam: momentum or nesterov nonzero, beta_1 or beta_2 outside
 *  [0, 1), epsilon not a finite number > 0; validation_n > 0 with a NULL
 *  validation_x (or a NULL validation_y with INVDL_LOSS_MSE) or
 *  validation_n*width overflowing; early_stopping, restore_best_weights,
 *  staircase or reduce_lr_on_plateau other than 0 or 1;
 *  restore_best_weights without early_stopping; a monitor not of its
 *  enum, or VAL_LOSS without validation data; a min_delta negative or
 *  not finite; schedule not of its enum; with INVDL_SCHEDULE_EXPONENTIAL:
 *  decay_steps 0, decay_rate not a finite number > 0, or
 *  reduce_lr_on_plateau on; with reduce_lr_on_plateau: plateau_factor
 *  outside [0, 1), plateau_min_lr negative or not finite (Training, above,
 *  says what each does).  epochs 0 trains nothing and reports the
 *  current loss (and val_loss).  learning_rate 0 never moves a parameter,
 *  whatever the gradient (infinite or NaN included) and the optimizer:
 *  such a fit only evaluates, and only a non-finite loss makes it
 *  diverge.
 *  @return : INVDL_OK; INVDL_EINVAL (bad option or argument: NULL model or
 *            x, NULL y with INVDL_LOSS_MSE, n == 0; the model or a model
 *            sharing a block with it already being trained, from on_epoch;
 *            model unchanged);
 *            INVDL_EDIVERGED (a batch met a non-finite loss or gradient, or
 *            a step would leave a parameter non-finite, as a gradient past
 *            FLT_MAX times a learning rate above 0 does: the parameters are
 *            restored to the latest of these with a finite loss over all n
 *            samples: those of the last batch whose loss was finite, those
 *            at the start of the epoch, the initial ones; the initial ones
 *            if none is finite, e.g. with NaN data); INVDL_ESINGULAR (a
 *            dense W became numerically singular: where the factors are
 *            refreshed at every step, that step is not taken and the
 *            parameters are those of the last step; otherwise the end of
 *            the epoch found it and the parameters are those at the
 *            epoch's start, the epoch not counted in the report);
 *            INVDL_ENOMEM (model unchanged).  With early stopping's
 *            restore_best_weights and at least one epoch completed, every
 *            status but INVDL_ENOMEM and INVDL_EINVAL returns the best
 *            epoch's parameters instead (Training, above).
 *            After INVDL_ESINGULAR, what usually helps: a smaller
 *            learning rate (or a schedule that lowers it), global_clipnorm
 *            (a step too long for the model's curvature is what makes W
 *            singular), or dense_lu layers instead of dense ones (W = P L U
 *            with |s_i| >= s_min is never singular: such a fit cannot
 *            return INVDL_ESINGULAR).  invdl_model_amplification() shows
 *            which layers compress.
 *            *final_loss, if not NULL, receives the mean loss of the last
 *            epoch (each batch's loss weighted by its size, as Keras
 *            reports it); after INVDL_EDIVERGED, the non-finite loss (NaN
 *            when the loss was finite and a gradient or a step was not). */
INVDL_NODISCARD invdl_status invdl_model_fit(invdl_model *model, size_t n, const float *x,
                                             const float *y, const invdl_fit_options *options,
                                             float *final_loss /* may be NULL */);

/*! invdl_model_gradient() :
 *  The loss of one batch as options->loss selects it (mean squared error
 *  of model(x) against y over the batch and features, or the mean of
 *  -log p(x) over the batch, y then unread and may be NULL) and its
 *  gradient with respect to every parameter (laid out as
 *  invdl_model_get_params()) and, if input_grad is not NULL, to x.
 *  options (may be NULL) selects stored or memory-saving backprop as in
 *  invdl_model_fit(); its report, if any, is filled.  Reads the model only.
 *  The gradient is formed in double and rounded to float once per value,
 *  so a component can exceed FLT_MAX (e.g. mprelu's dL/dalpha = dL/dy * x
 *  with x near FLT_MAX): that, or a non-finite loss, is reported, never
 *  returned as an inf with INVDL_OK.
 *  @return : INVDL_OK; INVDL_EDOMAIN (a layer met an input outside its
 *            invertible domain; all results written; with INVDL_LOSS_NLL
 *            the loss is then +inf); INVDL_EDIVERGED (the loss or some
 *            gradient value is not finite as a float: past FLT_MAX, or from
 *            non-finite data; all results written, inf or NaN there; takes
 *            precedence over INVDL_EDOMAIN, except for the +inf NLL loss
 *            of a sample outside a domain, which is INVDL_EDOMAIN);
 *            INVDL_EINVAL; INVDL_ENOMEM. */
INVDL_NODISCARD invdl_status invdl_model_gradient(invdl_model *model, size_t batch,
                                                  const float *x, const float *y,
                                                  const invdl_fit_options *options, float *loss,
                                                  float *param_grad, float *input_grad);

/* ------------------------------------------------------------------------ */
/* Persistence                                                               */
/* ------------------------------------------------------------------------ */

/* A model file holds the layers (kind, direction) and their parameter
 * blocks, each block once: a model whose layers share a block (a layer and
 * its inverse) loads with them sharing one again.  Forward and inverse
 * models save alike.  Blocks shared with other models are saved as
 * copies: two files load as two independent models.  The format is
 * little-endian and versioned, with a CRC-32 over everything;
 * docs/file-format.md describes it byte by byte.  A loaded model computes bit-identical
 * outputs. */

/*! invdl_model_save() :
 *  Writes the model to a temporary file in path's directory, syncs it and
 *  renames it over path, so that path holds either the old file or the
 *  whole new one.  The temporary file's name is ".invdl-tmp-" and 12
 *  random characters whatever the length of path's own name, so any name
 *  the file system accepts can be saved to.
 *  Permissions: a new file gets the mode fopen() would give it, 0666 less
 *  the process's umask (or as the directory's default ACL says): the file
 *  is created with open(O_CREAT | O_EXCL, 0666) and the umask is never
 *  read or changed, so saves in several threads at once do not disturb
 *  each other or other threads creating files.  A file that is replaced
 *  keeps its permission bits (chmod'ed onto the temporary file before
 *  anything is written); being a new file, it is owned by the caller.
 *  @return : INVDL_OK; INVDL_EINVAL; INVDL_EIO (the file could not be
 *            written whole: disk full, directory missing or not writable,
 *            `path` a directory or a name the file system refuses (longer
 *            than NAME_MAX, say); an existing file at `path` is left intact
 *            and the temporary file removed); INVDL_ENOMEM. */
INVDL_NODISCARD invdl_status invdl_model_save(const invdl_model *model, const char *path);

/*! invdl_model_load() :
 *  Validates everything (size, magic, version, CRC, kinds, settings,
 *  finite values, invertible W) before returning a model.
 *  Anything but a regular file (a directory, a FIFO, a device) is
 *  INVDL_EIO at once, without waiting for a writer.
 *  @return : a new model the caller owns, or NULL with *status (if status
 *            is not NULL) set to INVDL_EIO (no such file, unreadable),
 *            INVDL_EFORMAT (truncated, corrupt, other version), INVDL_EINVAL
 *            (NULL path) or INVDL_ENOMEM. */
invdl_model *invdl_model_load(const char *path, invdl_status *status);

/*! invdl_model_save_memory() :
 *  The file's bytes, to memory.  *size receives the bytes needed; with
 *  data == NULL and capacity == 0 nothing else happens (a size query).
 *  @return : INVDL_OK; INVDL_EINVAL (NULL model or size, or capacity below
 *            the size: nothing written); INVDL_ENOMEM (nothing written). */
INVDL_NODISCARD invdl_status invdl_model_save_memory(const invdl_model *model, void *data,
                                                     size_t capacity, size_t *size);

/*! invdl_model_load_memory() :
 *  invdl_model_load() from `size` bytes at `data`, which it only reads.
 *  @return : as invdl_model_load() (INVDL_EINVAL for NULL data with
 *            size > 0). */
invdl_model *invdl_model_load_memory(const void *data, size_t size, invdl_status *status);

#ifdef __cplusplus
}
#endif

#endif /* INVDL_H */
