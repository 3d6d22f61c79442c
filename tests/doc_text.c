/*
 * doc_text.c - reading the figures of a page of docs/ for the tests.
 */
#include "doc_text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fold_spaces(char *s)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        int space = *in == ' ' || *in == '\n' || *in == '\t' || *in == '\r';
        if (!space)
            *out++ = *in;
        else if (out > s && out[-1] != ' ')
            *out++ = ' ';
    }
    *out = 0;
}

char *doc_section(const char *path, const char *heading)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *text = malloc(cap + 1);
    while (text != NULL && (got = fread(text + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = realloc(text, 2 * cap + 1);
            if (grown == NULL)
                free(text);
            text = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (text == NULL)
        return NULL;
    text[n] = 0;
    size_t hlen = strlen(heading);
    char *start = text;
    while ((start = strstr(start, heading)) != NULL &&
           ((start != text && start[-1] != '\n') || start[hlen] != '\n'))
        start++;
    if (start == NULL) {
        free(text);
        return NULL;
    }
    char *end = strstr(start + hlen, "\n## ");
    if (end != NULL)
        *end = 0;
    memmove(text, start, strlen(start) + 1);
    fold_spaces(text);
    return text;
}

int doc_states(const char *section, const char *fact)
{
    char *folded = malloc(strlen(fact) + 1);
    if (folded == NULL)
        return 0;
    strcpy(folded, fact);
    fold_spaces(folded);
    int ok = strstr(section, folded) != NULL;
    printf("  %s: \"%s\"\n", ok ? "stated" : "NOT STATED", folded);
    free(folded);
    return ok;
}

void doc_count(char *buf, size_t size, uint64_t n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%" PRIu64, n);
    size_t at = 0;
    for (int i = 0; i < len && at + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at] = 0;
}
