/* The subcommands of the cebroker program besides the daemon: each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status. */
#ifndef CEB_COMMANDS_H
#define CEB_COMMANDS_H

/* cebroker send: post one CloudEvent, like `kn event send`. */
int ceb_cmd_send(int argc, char **argv);
/* cebroker display: a subscriber that prints every event it receives, like Knative's event_display. */
int ceb_cmd_display(int argc, char **argv);
/* cebroker run: the daemon. */
int ceb_cmd_run(int argc, char **argv);
/* cebroker validate: check configuration files and report every error. */
int ceb_cmd_validate(int argc, char **argv);

/* cebroker replay: rewind a Trigger on a durable channel of a running daemon. */
int ceb_cmd_replay(int argc, char **argv);

#endif
