/*
 * test_status.c - status names and version.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "invdl.h"

static void test_pinned_values(void **state)
{
    (void)state;
    assert_int_equal(INVDL_OK, 0);
    assert_int_equal(INVDL_EINVAL, 1);
    assert_int_equal(INVDL_EDOMAIN, 2);
    assert_int_equal(INVDL_ENOMEM, 3);
    assert_int_equal(INVDL_ESINGULAR, 4);
    assert_int_equal(INVDL_EIO, 5);
    assert_int_equal(INVDL_EFORMAT, 6);
    assert_int_equal(INVDL_EDIVERGED, 7);
}

static void test_strerror_every_value(void **state)
{
    (void)state;
    const char *seen[8];
    for (int s = 0; s <= 7; s++) {
        const char *msg = invdl_strerror((invdl_status)s);
        assert_non_null(msg);
        assert_true(strlen(msg) > 0);
        assert_string_not_equal(msg, "unknown status");
        for (int t = 0; t < s; t++)
            assert_string_not_equal(msg, seen[t]);
        seen[s] = msg;
    }
    /* Values outside the enum still get a string. */
    assert_string_equal(invdl_strerror((invdl_status)8), "unknown status");
    assert_string_equal(invdl_strerror((invdl_status)-1), "unknown status");
    assert_string_equal(invdl_strerror((invdl_status)12345), "unknown status");
}

static void test_version(void **state)
{
    (void)state;
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", INVDL_VERSION_MAJOR, INVDL_VERSION_MINOR,
             INVDL_VERSION_PATCH);
    assert_string_equal(buf, INVDL_VERSION_STRING);
    assert_string_equal(invdl_version_string(), INVDL_VERSION_STRING);
    assert_int_equal(invdl_version_number(), INVDL_VERSION_NUMBER);
    assert_int_equal(INVDL_VERSION_NUMBER,
                     INVDL_VERSION_MAJOR * 10000 + INVDL_VERSION_MINOR * 100 + INVDL_VERSION_PATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned_values),
        cmocka_unit_test(test_strerror_every_value),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
