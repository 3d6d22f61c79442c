/*
 * simd_paths.h - instantiates a kernel's SIMD paths: the file named by
 * INVDL_SIMD_BODIES (written with the generic names of simd_x86.h), once
 * for each instruction set the build has paths for, after the shared
 * pieces of simd_each.h.  A kernel source defines INVDL_SIMD_BODIES and
 * includes this header where its tables are in scope; the paths it then
 * defines are those kernels.h declares.
 */
#include "kernels/simd_x86.h"

#if INVDL_HAVE_AVX2
#define INVDL_ISA avx2
#include "kernels/simd_each.h"
#include INVDL_SIMD_BODIES
#undef INVDL_ISA
#endif

#if INVDL_HAVE_AVX512
#define INVDL_ISA avx512
#include "kernels/simd_each.h"
#include INVDL_SIMD_BODIES
#undef INVDL_ISA
#endif

#undef INVDL_SIMD_BODIES
