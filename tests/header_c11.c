/* The public header must compile alone under -std=c11 -pedantic -Werror. */
#include "invdl.h"

unsigned header_c11_probe(void);
unsigned header_c11_probe(void)
{
    return INVDL_VERSION_NUMBER;
}
