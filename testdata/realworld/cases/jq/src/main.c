#include <stdio.h>
#include <string.h>
#include "jv.h"

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    puts(jv_version());
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], ".") != 0) {
    fprintf(stderr, "jq: only the filter . is supported by this stand-in\n");
    return 2;
  }
  if (jv_pretty(stdin, stdout) != 0) {
    fprintf(stderr, "jq: error: unbalanced brackets\n");
    return 2;
  }
  return 0;
}
