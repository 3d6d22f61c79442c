/*
 * doc_text.h - what the tests need to compare the figures of a page of
 * docs/ with the values they compute, so that the text cannot drift from
 * the code.
 */
#ifndef INVDL_TEST_DOC_TEXT_H
#define INVDL_TEST_DOC_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The page and the section of it whose every figure is checked. */
#define LIMITS_PAGE "docs/accuracy.md"
#define LIMITS_HEADING "## Float limits, exactly"

/* The section of the Markdown page at path that starts with the line
 * `heading`, up to the next "## " heading, with every run of white space
 * folded to one space (the pages wrap their lines anywhere).  A new string
 * the caller frees, or NULL if the file or the section is missing. */
char *doc_section(const char *path, const char *heading);

/* 1 if section states `fact` word for word (white space folded alike);
 * prints the verdict either way. */
int doc_states(const char *section, const char *fact);

/* n with thousands separators, as the docs write counts: 2,085,694. */
void doc_count(char *buf, size_t size, uint64_t n);

#endif /* INVDL_TEST_DOC_TEXT_H */
