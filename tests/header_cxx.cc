// The public header must compile from C++ under -pedantic -Werror.
#include "invdl.h"

unsigned header_cxx_probe();
unsigned header_cxx_probe()
{
    return invdl_status(INVDL_OK) == INVDL_OK && INVDL_MAX_WIDTH > 0 ? INVDL_VERSION_NUMBER : 0u;
}
