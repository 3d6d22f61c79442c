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
 *   3. layers: a kernel (or an invertible dense map) with its parameters; the
 *      inverse of a layer shares the forward layer's parameters;
 *   4. models: a sequence of layers of one width, whose inverse model is the
 *      reversed sequence of inverse layers;
 *   5. training: stochastic gradient descent on mean squared error;
 *   6. persistence: saving and loading models.
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
 * README.md states the exact round-trip sets measured over all 2^32 floats.
 *
 * Conventions
 * -----------
 * - Sizes come first, inputs are const, outputs come last.
 * - Kernels accept in-place use (output == input); partially overlapping
 *   arrays are not supported.
 * - A NULL array with a nonzero size, or a size whose byte count does not
 *   fit in memory, is INVDL_EINVAL and nothing is written.  Size 0 is a
 *   no-op returning INVDL_OK; the pointers are then not read.
 * - Every function is reentrant; the library has no global mutable state.
 *   Kernels and read-only model calls may run concurrently (see the models
 *   section for exactly what may run at once).
 * - Fallible calls are marked INVDL_NODISCARD; define INVDL_NO_NODISCARD
 *   before including this header to turn the marking off.
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

#if defined(INVDL_NO_NODISCARD)
#define INVDL_NODISCARD
#elif defined(__GNUC__) || defined(__clang__)
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
 * constructors return NULL for width 0 or when memory runs out.  A layer's
 * parameters live in a reference-counted block shared with every inverse
 * made from it: the block lives until its last user is freed, and objects
 * may be freed in any order. */
typedef struct invdl_layer invdl_layer;

/*! invdl_layer_ssin() / invdl_layer_abstanh() :
 *  Parameter-free elementwise layers over the kernels above.
 *  @return : a new layer the caller owns (free with invdl_layer_free()), or
 *            NULL for width 0 or out of memory. */
invdl_layer *invdl_layer_ssin(size_t width);
invdl_layer *invdl_layer_abstanh(size_t width);

/*! invdl_layer_mprelu() :
 *  Monotonic PReLU with one alpha per feature, initialised glorot-uniform
 *  from `seed`: U(-sqrt(3/width), sqrt(3/width)), and alpha_min =
 *  INVDL_MPRELU_ALPHA_MIN.
 *  @return : a new layer the caller owns, or NULL (width 0, out of memory). */
invdl_layer *invdl_layer_mprelu(size_t width, uint64_t seed);

/*! invdl_layer_dense() :
 *  Square dense layer y = W x + b, W orthogonal from `seed`, b = 0.
 *  @return : a new layer the caller owns, or NULL (width 0, out of memory). */
invdl_layer *invdl_layer_dense(size_t width, uint64_t seed);   /* square, invertible */

/*! invdl_layer_inverse() :
 *  The inverse of `forward`, reading forward's parameters (shared, never
 *  copied).  The inverse of an inverse computes the original direction.
 *  @return : a new layer the caller owns, or NULL (forward NULL, out of
 *            memory).  `forward` is not owned by the result and may be
 *            freed first. */
invdl_layer *invdl_layer_inverse(invdl_layer *forward);        /* shares forward's parameters */

/*! invdl_layer_free() : frees the layer; NULL is fine. */
void         invdl_layer_free(invdl_layer *layer);             /* NULL is fine */

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct invdl_model invdl_model;

/*! invdl_model_create() :
 *  @return : an empty model of `width` features the caller owns, or NULL
 *            (width 0, out of memory). */
invdl_model *invdl_model_create(size_t width);

/*! invdl_model_add() :
 *  Appends `layer`.  The model takes ownership, also on error (the layer
 *  is then freed).
 *  @return : INVDL_OK; INVDL_EINVAL (NULL model or layer, width mismatch);
 *            INVDL_ENOMEM. */
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

/*! invdl_model_free() : frees the model and its layers; NULL is fine. */
void         invdl_model_free(invdl_model *model);        /* NULL is fine */

/* ------------------------------------------------------------------------ */
/* Training                                                                  */
/* ------------------------------------------------------------------------ */

/* SGD on mean squared error with Keras semantics and defaults.  Start from
 * invdl_fit_defaults() and change what you need. */
typedef struct invdl_fit_options {
    float    learning_rate;  /* 0.01 */
    float    momentum;       /* 0 */
    size_t   batch_size;     /* 32 */
    size_t   epochs;         /* 1 */
    uint64_t seed;           /* shuffling */
} invdl_fit_options;

/*! invdl_fit_defaults() : @return : the Keras defaults listed above. */
invdl_fit_options invdl_fit_defaults(void);

/*! invdl_model_fit() :
 *  Trains `model` on n samples x[n][width] -> y[n][width].
 *  @return : INVDL_OK; INVDL_EINVAL (bad option or argument, model
 *            unchanged); INVDL_EDIVERGED (non-finite loss, parameters
 *            restored); INVDL_ENOMEM.  *final_loss, if not NULL, receives
 *            the mean loss of the last epoch. */
INVDL_NODISCARD invdl_status invdl_model_fit(invdl_model *model, size_t n, const float *x,
                                             const float *y, const invdl_fit_options *options,
                                             float *final_loss /* may be NULL */);

/* ------------------------------------------------------------------------ */
/* Persistence                                                               */
/* ------------------------------------------------------------------------ */

/*! invdl_model_save() :
 *  @return : INVDL_OK; INVDL_EINVAL; INVDL_EIO (an existing file at `path`
 *            is left intact). */
INVDL_NODISCARD invdl_status invdl_model_save(const invdl_model *model, const char *path);

/*! invdl_model_load() :
 *  @return : a new model the caller owns, or NULL with *status (if status
 *            is not NULL) set to INVDL_EIO, INVDL_EFORMAT, INVDL_EINVAL or
 *            INVDL_ENOMEM. */
invdl_model *invdl_model_load(const char *path, invdl_status *status);

#ifdef __cplusplus
}
#endif

#endif /* INVDL_H */
