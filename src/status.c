/*
 * status.c - status names and the library's version.
 */
#include "invdl_private.h"

const char *invdl_strerror(invdl_status status)
{
    switch (status) {
    case INVDL_OK:
        return "success";
    case INVDL_EINVAL:
        return "invalid argument (NULL pointer, size overflow, width mismatch or bad option)";
    case INVDL_EDOMAIN:
        return "an input lies outside the invertible domain or range";
    case INVDL_ENOMEM:
        return "out of memory";
    case INVDL_ESINGULAR:
        return "a dense layer's matrix is numerically singular";
    case INVDL_EIO:
        return "input/output error";
    case INVDL_EFORMAT:
        return "model file is corrupt, truncated or of another version";
    case INVDL_EDIVERGED:
        return "training met a non-finite loss; parameters were restored";
    }
    return "unknown status";
}

unsigned invdl_version_number(void)
{
    return INVDL_VERSION_NUMBER;
}

const char *invdl_version_string(void)
{
    return INVDL_VERSION_STRING;
}
