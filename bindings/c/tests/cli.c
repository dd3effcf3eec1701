/*
 * The `devaddr` command rebuilt on libdevaddr, the way a C consumer calls it:
 *   cli plan FILE [FORMAT]          devaddr plan FILE [--format FORMAT]
 *   cli plan-domain FILE [new]      devaddr plan FILE [--new-domain] (a libvirt domain)
 *   cli capacity FILE [BAR64]       devaddr capacity FILE --format json [--bar64 BAR64]
 *   cli check FILE                  devaddr check FILE
 * It writes the output on stdout, warnings and the error text on stderr, and exits as
 * the CLI does (0 ok, 2 bad input, 1 infeasible or check findings), so a test compares
 * the two byte for byte.
 */
#include "devaddr.h"
#include "read_file.h"
#include <stdio.h>
#include <string.h>

static int finish(DevaddrResult *r) {
  for (size_t i = 0; i < devaddr_result_move_count(r); i++)
    fprintf(stderr, "%s\n", devaddr_result_move(r, i));
  for (size_t i = 0; i < devaddr_result_warning_count(r); i++)
    fprintf(stderr, "warning: %s\n", devaddr_result_warning(r, i));
  DevaddrStatus status = devaddr_result_status(r);
  const char *out = devaddr_result_output(r);
  if (out && status == DEVADDR_OK)
    fputs(out, stdout);
  if (status == DEVADDR_CHECK) {
    /* `devaddr check` prints the findings as `FILE: finding` lines, without a prefix. */
    const char *text = devaddr_result_error_text(r);
    fputs(text + strlen("error: "), stderr);
  } else if (status != DEVADDR_OK) {
    fputs(devaddr_result_error_text(r), stderr);
  }
  devaddr_result_free(r);
  switch (status) {
  case DEVADDR_OK:
    return 0;
  case DEVADDR_INPUT:
    return 2;
  default:
    return 1;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fputs("usage: cli plan|plan-domain|capacity|check FILE [ARG]\n", stderr);
    return 3;
  }
  const char *cmd = argv[1], *file = argv[2], *arg = argc > 3 ? argv[3] : NULL;
  char *text = read_file(file);
  DevaddrOptions opts = {0};
  opts.name = file;
  DevaddrResult *r;
  if (strcmp(cmd, "plan") == 0)
    r = devaddr_plan(text, arg, NULL, &opts);
  else if (strcmp(cmd, "plan-domain") == 0)
    r = devaddr_plan_domain(text, arg && strcmp(arg, "new") == 0, NULL, &opts);
  else if (strcmp(cmd, "capacity") == 0)
    r = devaddr_capacity(text, NULL, 0, -1, arg, false, "json", &opts);
  else if (strcmp(cmd, "check") == 0)
    r = devaddr_check(text, NULL, &opts);
  else {
    fprintf(stderr, "unknown command %s\n", cmd);
    return 3;
  }
  free(text);
  return finish(r);
}
