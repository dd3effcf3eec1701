/*
 * Every function of libdevaddr once, as a C consumer uses it, with the errors as data:
 * statuses, the JSON report's fields, warnings, hotplug's device files, the ABI
 * version. Prints `ok` and exits 0, or names the first check that failed and exits 1.
 * Usage: api VERSION  (the version `devaddr --version` reports)
 */
#include "devaddr.h"
#include <stdio.h>
#include <string.h>

static int failures = 0;

#define EXPECT(cond, what)                                                             \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "FAILED: %s (%s:%d)\n", what, __FILE__, __LINE__);               \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)

static int has(const char *text, const char *part) { return text && strstr(text, part); }

static const char *SPEC = "machine: q35\n"
                          "policy: {hotplug_reserve: 2}\n"
                          "devices:\n"
                          "  - {id: net0, kind: virtio-net}\n"
                          "  - {id: disk0, kind: virtio-blk}\n";

int main(int argc, char **argv) {
  EXPECT(argc == 2 && strcmp(devaddr_version(), argv[1]) == 0, "version is the CLI's");
  EXPECT(devaddr_abi_version() == DEVADDR_ABI_VERSION, "ABI version is the header's");

  /* A plan, as YAML (the default) and JSON; NULL options are the defaults. */
  DevaddrResult *plan = devaddr_plan(SPEC, NULL, NULL, NULL);
  EXPECT(devaddr_result_status(plan) == DEVADDR_OK, "plan succeeds");
  EXPECT(has(devaddr_result_output(plan), "id: net0"), "plan holds net0");
  EXPECT(devaddr_result_error_json(plan) == NULL, "no error report on success");
  EXPECT(devaddr_result_warning(plan, 0) == NULL, "no warning, index out of range is NULL");
  DevaddrResult *json = devaddr_plan(SPEC, "json", "hotplug-ready", NULL);
  EXPECT(has(devaddr_result_output(json), "\"policy\": \"hotplug-ready\""), "preset override");
  devaddr_result_free(json);

  /* Hotplug into the running guest: the device XML to attach, one file per device. */
  DevaddrOptions named = {0};
  named.name = "running.yaml";
  named.other_name = "nics.yaml";
  DevaddrResult *hot = devaddr_hotplug(devaddr_result_output(plan),
                                       "- {id: net1, kind: virtio-net}\n", "libvirt", &named);
  EXPECT(devaddr_result_status(hot) == DEVADDR_OK, "hotplug succeeds");
  EXPECT(devaddr_result_file_count(hot) == 1, "one device to attach");
  EXPECT(devaddr_result_file_id(hot, 0) && strcmp(devaddr_result_file_id(hot, 0), "net1") == 0,
         "its id is net1");
  EXPECT(has(devaddr_result_file_text(hot, 0), "<address type='pci'"), "it has an address");
  devaddr_result_free(hot);

  /* An unknown kind among the devices to add: bad input naming that document. */
  DevaddrResult *bad_add = devaddr_hotplug(devaddr_result_output(plan),
                                           "- {id: x, kind: virtio-nett}\n", NULL, &named);
  EXPECT(devaddr_result_status(bad_add) == DEVADDR_INPUT, "bad device is bad input");
  EXPECT(has(devaddr_result_error_json(bad_add), "\"file\":\"nics.yaml\""), "names nics.yaml");
  EXPECT(has(devaddr_result_message(bad_add), "did you mean virtio-net?"), "suggests a name");
  devaddr_result_free(bad_add);

  /* Replan: the kept devices stay; nothing moves. */
  DevaddrResult *re = devaddr_replan("machine: q35\ndevices:\n  - {id: net0, kind: virtio-net}\n",
                                     devaddr_result_output(plan), false, NULL, NULL);
  EXPECT(devaddr_result_status(re) == DEVADDR_OK, "replan succeeds");
  EXPECT(devaddr_result_move_count(re) == 0, "nothing moved");
  devaddr_result_free(re);

  /* Capacity of two kinds on node -1 (all), as JSON rows. */
  const char *kinds[] = {"virtio-net", "nvme"};
  DevaddrResult *cap = devaddr_capacity(devaddr_result_output(plan), kinds, 2, -1, NULL, true, "json", NULL);
  EXPECT(devaddr_result_status(cap) == DEVADDR_OK, "capacity succeeds");
  EXPECT(has(devaddr_result_output(cap), "\"kind\": \"nvme\""), "capacity has an nvme row");
  EXPECT(devaddr_result_warning_count(cap) == 1 && has(devaddr_result_warning(cap, 0), "--live"),
         "--live with json warns");
  devaddr_result_free(cap);

  /* Check: the plan is valid; two devices at one address are findings. */
  DevaddrResult *ok = devaddr_check(devaddr_result_output(plan), NULL, &named);
  EXPECT(devaddr_result_status(ok) == DEVADDR_OK, "the plan checks");
  EXPECT(devaddr_result_output(ok) && strcmp(devaddr_result_output(ok), "running.yaml: ok\n") == 0,
         "check says NAME: ok");
  devaddr_result_free(ok);
  DevaddrResult *clash = devaddr_check(
      "machine: q35\ndevices:\n"
      "- {id: a, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n"
      "- {id: b, kind: virtio-net, address: {type: pci, bus: 0, slot: 3, function: 0}}\n",
      "json", NULL);
  EXPECT(devaddr_result_status(clash) == DEVADDR_CHECK, "two at one address: check status");
  EXPECT(has(devaddr_result_error_json(clash), "\"rule\":\"unique-address\""), "the finding's rule");
  EXPECT(has(devaddr_result_output(clash), "\"ok\": false"), "json check output says not ok");
  devaddr_result_free(clash);
  devaddr_result_free(plan);

  /* Infeasible: the binding requirement and the fix come as data. */
  char big[2048] = "machine: q35\ndevices:\n";
  for (int i = 0; i < 16; i++) {
    char line[64];
    snprintf(line, sizeof line, "  - {id: n%d, kind: e1000e}\n", i);
    strcat(big, line);
  }
  DevaddrResult *inf = devaddr_plan(big, NULL, NULL, NULL);
  EXPECT(devaddr_result_status(inf) == DEVADDR_INFEASIBLE, "16 e1000e are infeasible");
  EXPECT(has(devaddr_result_error_json(inf), "\"binding\":\"io-windows\""), "binding io-windows");
  EXPECT(has(devaddr_result_error_json(inf), "\"fix\":"), "a fix");
  EXPECT(devaddr_result_output(inf) == NULL, "no output when infeasible");
  devaddr_result_free(inf);

  /* Bad input: located, with a code; NULL and unknown option values too. */
  DevaddrOptions vm = {0};
  vm.name = "vm.yaml";
  DevaddrResult *typo = devaddr_plan("machine: q35\ndevices:\n- {id: a, kind: virtio-net, colour: red}\n",
                                     NULL, NULL, &vm);
  EXPECT(devaddr_result_status(typo) == DEVADDR_INPUT, "unknown field is bad input");
  EXPECT(has(devaddr_result_error_json(typo), "\"path\":\"devices[0].colour\""), "YAML path");
  EXPECT(has(devaddr_result_error_json(typo), "\"line\":3"), "line");
  EXPECT(has(devaddr_result_error_text(typo), "error: vm.yaml: line 3"), "text form with file:line");
  devaddr_result_free(typo);
  DevaddrResult *null_spec = devaddr_plan(NULL, NULL, NULL, NULL);
  EXPECT(devaddr_result_status(null_spec) == DEVADDR_INPUT, "NULL spec is bad input");
  devaddr_result_free(null_spec);
  DevaddrResult *fmt = devaddr_plan(SPEC, "xml", NULL, NULL);
  EXPECT(devaddr_result_status(fmt) == DEVADDR_INPUT, "unknown format is bad input");
  EXPECT(has(devaddr_result_message(fmt), "expected yaml, json"), "lists the formats");
  devaddr_result_free(fmt);
  DevaddrResult *xml = devaddr_plan_domain("<domain><devices>", false, NULL, NULL);
  EXPECT(devaddr_result_status(xml) == DEVADDR_INPUT, "broken XML is bad input");
  devaddr_result_free(xml);
  DevaddrResult *utf = devaddr_plan("machine: q35\n\xff\n", NULL, NULL, NULL);
  EXPECT(has(devaddr_result_error_json(utf), "\"code\":\"encoding\""), "invalid UTF-8");
  devaddr_result_free(utf);

  /* The catalog. */
  DevaddrResult *models = devaddr_models("q35", "json", NULL);
  EXPECT(devaddr_result_status(models) == DEVADDR_OK, "models q35");
  EXPECT(has(devaddr_result_output(models), "pcie-root"), "q35 has a pcie-root");
  devaddr_result_free(models);
  DevaddrResult *nomodel = devaddr_models("q36", NULL, NULL);
  EXPECT(devaddr_result_status(nomodel) == DEVADDR_INPUT, "unknown model");
  devaddr_result_free(nomodel);

  devaddr_result_free(NULL); /* allowed */
  EXPECT(devaddr_result_status(NULL) == DEVADDR_INTERNAL, "NULL result reads as internal");
  if (failures)
    return 1;
  puts("ok");
  return 0;
}
