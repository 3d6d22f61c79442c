/*
 * readme_text.h - what the tests need to compare README.md's figures with
 * the values they compute, so that the text cannot drift from the code.
 */
#ifndef INVDL_TEST_README_TEXT_H
#define INVDL_TEST_README_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The section whose every figure is checked. */
#define README_LIMITS "## Float limits, exactly"

/* The section of the README at path that starts with the line `heading`,
 * up to the next "## " heading, with every run of white space folded to
 * one space (the README wraps its lines anywhere).  A new string the
 * caller frees, or NULL if the file or the section is missing. */
char *readme_section(const char *path, const char *heading);

/* 1 if section states `fact` word for word (white space folded alike);
 * prints the verdict either way. */
int readme_states(const char *section, const char *fact);

/* n with thousands separators, as the README writes counts: 2,085,694. */
void readme_count(char *buf, size_t size, uint64_t n);

#endif /* INVDL_TEST_README_TEXT_H */
