#include "jv.h"
#include <config.h>

const char *jv_version(void) { return "jq-" PACKAGE_VERSION; }

static void newline(FILE *out, int depth) {
  fputc('\n', out);
  for (int i = 0; i < depth; i++)
    fputs("  ", out);
}

int jv_pretty(FILE *in, FILE *out) {
  int c, depth = 0, in_string = 0, escaped = 0, empty = 0;
  while ((c = fgetc(in)) != EOF) {
    if (in_string) {
      fputc(c, out);
      if (escaped)
        escaped = 0;
      else if (c == '\\')
        escaped = 1;
      else if (c == '"')
        in_string = 0;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
      continue;
    if (empty && c != '}' && c != ']') {
      newline(out, depth);
      empty = 0;
    }
    switch (c) {
    case '{':
    case '[':
      fputc(c, out);
      depth++;
      empty = 1;
      break;
    case '}':
    case ']':
      if (--depth < 0)
        return -1;
      if (!empty)
        newline(out, depth);
      empty = 0;
      fputc(c, out);
      break;
    case ',':
      fputc(c, out);
      newline(out, depth);
      break;
    case ':':
      fputs(": ", out);
      break;
    case '"':
      in_string = 1;
      fputc(c, out);
      break;
    default:
      fputc(c, out);
    }
  }
  fputc('\n', out);
  return depth == 0 ? 0 : -1;
}
