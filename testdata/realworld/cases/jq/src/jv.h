#ifndef JV_H
#define JV_H
#include <stdio.h>

/* Copies one JSON text from `in` to `out`, re-indented by two spaces per level
 * (strings are copied verbatim). Returns 0, or -1 on unbalanced brackets. */
int jv_pretty(FILE *in, FILE *out);

/* The version string: "jq-" VERSION. */
const char *jv_version(void);
#endif
