/* The cebroker program: picks the subcommand; everything else lives in libcebroker. */
#include <stdio.h>
#include <string.h>

#include "autoconfig.h"
#include "broker/cli/commands.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: cebroker COMMAND [options]\n"
	        "A CloudEvents broker that runs Knative Broker and Trigger manifests.\n\n"
	        "Commands:\n"
	        "  run       run the broker:            cebroker run -f samples/quickstart.yaml\n"
	        "  validate  check configuration files: cebroker validate -f samples/\n"
	        "  send      post one CloudEvent:       cebroker send --to URL --type T --data "
	        "'{}'\n"
	        "  display   print received events:     cebroker display --listen 127.0.0.1:9099\n"
	        "  replay    deliver a Trigger's events again: cebroker replay --trigger NS/NAME "
	        "--since 24h\n"
	        "  version   print the version\n\n"
	        "'cebroker COMMAND --help' describes each.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "run") == 0)
		return ceb_cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "validate") == 0)
		return ceb_cmd_validate(argc - 1, argv + 1);
	if (strcmp(argv[1], "send") == 0)
		return ceb_cmd_send(argc - 1, argv + 1);
	if (strcmp(argv[1], "display") == 0)
		return ceb_cmd_display(argc - 1, argv + 1);
	if (strcmp(argv[1], "replay") == 0)
		return ceb_cmd_replay(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("cebroker %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cebroker: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
