/* The public header must compile alone under -std=c11 -pedantic -Werror. */
#include "invdl.h"

unsigned header_c11_probe(void);
unsigned header_c11_probe(void)
{
    /* Macros that expand to expressions must compile too. */
    return INVDL_MAX_WIDTH > 0 ? INVDL_VERSION_NUMBER : 0u;
}
