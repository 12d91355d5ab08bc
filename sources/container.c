/* ContainerSource: each container runs as a local process (command and args; the image is noted,
 * not pulled) with Knative's contract in its environment (K_SINK, K_CE_OVERRIDES, NAME, NAMESPACE)
 * and posts its events to K_SINK itself. One supervisor thread per source restarts a process that
 * exits (with backoff), logs its output lines under the source's name, and stops it with SIGTERM
 * then SIGKILL. No process outlives the daemon, even a daemon killed with SIGKILL:
 *
 *   daemon (supervisor thread) --fork--> guard --fork, exec--> the command (and what it runs)
 *
 * The guard, a fork of the daemon that only waits, leads a process group of its own that the
 * command and its children share; it asks the kernel for SIGHUP when the supervisor thread dies
 * (PR_SET_PDEATHSIG) and then kills its whole group. A shutdown signals the group: the command gets
 * SIGTERM (the guard ignores it and reports the command's exit), and SIGKILL after the grace. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/log.h"
#include "sources/container.h"
#include "sources/source.h"

#define BACKOFF_FIRST_MS 500   /* before the first restart, doubling... */
#define BACKOFF_MAX_MS   30000 /* ...up to this */
#define BACKOFF_RESET_MS 30000 /* a process that ran this long starts again from the first */
#define TICK_MS          100   /* how often exits are looked for */
#define LINE_MAX         4096  /* a longer output line is logged in pieces */

/* What a container gets from the daemon's own environment: what a program needs to run at all.
 * Everything else is the contract's and the container's env. */
static const char *const inherited[] = {"PATH",   "HOME", "USER",   "LOGNAME", "LANG",
                                        "LC_ALL", "TZ",   "TMPDIR", "SHELL",   NULL};

struct proc {
	const struct ceb_container *ct;
	char *path;  /* the command resolved in PATH, or NULL: not found */
	char **envp; /* NULL-terminated */
	pid_t pid;   /* the guard, which leads process group pid; 0 when not running */
	int out;     /* read end of the command's stdout and stderr, or -1 */
	char line[LINE_MAX];
	size_t linelen;
	int64_t started_ms, restart_at_ms;
	int backoff_ms;
	unsigned starts;
};

struct csrc {
	const struct ceb_container_source_cfg *cs;
	const struct ceb_source_env *env;
	struct proc *procs;
	size_t nprocs;
	int wake[2]; /* written to stop the supervisor */
	pthread_t thread;
	bool started;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the environment and the command ---- */

/* K_CE_OVERRIDES as Knative writes it: {"extensions":{"k":"v"}}, or "" without overrides. */
static void ce_overrides_json(const struct ceb_container_source_cfg *cs, struct ceb_buf *b)
{
	if (!cs->nce_ext)
		return;
	ceb_buf_printf(b, "{\"extensions\":{");
	for (size_t i = 0; i < cs->nce_ext; i++) {
		ceb_buf_printf(b, "%s\"%s\":\"", i ? "," : "", cs->ce_ext_keys[i]);
		for (const char *p = cs->ce_ext_values[i]; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '"' || c == '\\')
				ceb_buf_printf(b, "\\%c", c);
			else if (c < 0x20)
				ceb_buf_printf(b, "\\u%04x", c);
			else
				ceb_buf_printf(b, "%c", c);
		}
		ceb_buf_printf(b, "\"");
	}
	ceb_buf_printf(b, "}}");
}

/* Add "name=value" to v (n entries, room for it), replacing an entry of the same name. */
static int env_put(char **v, size_t *n, const char *name, size_t nlen, const char *value)
{
	struct ceb_buf b = CEB_BUF_INIT;
	char *s;

	ceb_buf_printf(&b, "%.*s=%s", (int)nlen, name, value);
	if (!(s = ceb_buf_steal(&b, NULL))) {
		ceb_buf_free(&b);
		return CEB_ENOMEM;
	}
	for (size_t i = 0; i < *n; i++) {
		if (strncmp(v[i], name, nlen) == 0 && v[i][nlen] == '=') {
			free(v[i]);
			v[i] = s;
			return 0;
		}
	}
	v[(*n)++] = s;
	return 0;
}

/* The environment of one container: inherited basics, the contract, then its own env. */
static char **build_env(const struct csrc *cx, const struct ceb_container *ct)
{
	const struct ceb_container_source_cfg *cs = cx->cs;
	size_t cap = sizeof(inherited) / sizeof(inherited[0]) + 4 + ct->nenv + 1, n = 0;
	char **v = calloc(cap, sizeof(*v));
	struct ceb_buf ov = CEB_BUF_INIT;
	const char *val;
	int rc = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; inherited[i] && !rc; i++)
		if ((val = getenv(inherited[i])))
			rc = env_put(v, &n, inherited[i], strlen(inherited[i]), val);
	if (!getenv("PATH") && !rc)
		rc = env_put(v, &n, "PATH", 4, "/usr/local/bin:/usr/bin:/bin");
	ce_overrides_json(cs, &ov);
	if (!rc)
		rc = env_put(v, &n, "K_SINK", 6, cx->env->sink_url ? cx->env->sink_url : "");
	if (!rc)
		rc = env_put(v, &n, "K_CE_OVERRIDES", 14, ov.p ? ov.p : "");
	if (!rc)
		rc = env_put(v, &n, "NAME", 4, cs->name);
	if (!rc)
		rc = env_put(v, &n, "NAMESPACE", 9, cs->ns);
	for (size_t i = 0; i < ct->nenv && !rc; i++) {
		const struct ceb_container_env *e = &ct->env[i];
		const char *ev = e->from_secret ? e->secret.value : e->value;
		if (!e->name || (e->from_secret && !ev)) /* an optional key that is absent */
			continue;
		rc = env_put(v, &n, e->name, strlen(e->name), ev ? ev : "");
	}
	ceb_buf_free(&ov);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return NULL;
	}
	return v;
}

/* The command's path: as given when it has a '/', else found in the container's PATH. */
static char *resolve(const struct ceb_container *ct, char **envp)
{
	const char *cmd = ct->argv[0], *path = "/usr/local/bin:/usr/bin:/bin";
	struct ceb_buf b = CEB_BUF_INIT;

	if (strchr(cmd, '/'))
		return strdup(cmd);
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	for (const char *p = path;;) {
		size_t l = strcspn(p, ":");
		b.len = 0;
		ceb_buf_printf(&b, "%.*s/%s", (int)(l ? l : 1), l ? p : ".", cmd);
		if (b.p && access(b.p, X_OK) == 0)
			return ceb_buf_steal(&b, NULL);
		if (!p[l])
			break;
		p += l + 1;
	}
	ceb_buf_free(&b);
	return NULL;
}

/* ---- the guard and the command (after fork: async-signal-safe calls only) ---- */

static void guard_on_parent_death(int sig)
{
	(void)sig;
	kill(0, SIGKILL); /* the guard's whole group, itself included */
}

static void write_err(const char *a, const char *b)
{
	ssize_t rc = write(2, a, strlen(a));
	rc = write(2, b, strlen(b));
	rc = write(2, "\n", 1);
	(void)rc;
}

static void run_command(const struct proc *pr, int out, int devnull)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGHUP, &dfl, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	sigaction(SIGINT, &dfl, NULL);
	if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	if (pr->ct->workdir && chdir(pr->ct->workdir) < 0) {
		write_err("cannot change to workingDir ", pr->ct->workdir);
		_exit(127);
	}
	execve(pr->path, pr->ct->argv, pr->envp);
	write_err("cannot run ", pr->path);
	_exit(127);
}

static void run_guard(const struct proc *pr, pid_t daemon, int rd, int out, int devnull)
{
	struct sigaction on_death = {.sa_handler = guard_on_parent_death};
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigset_t none;
	pid_t cmd;
	int st;

	setpgid(0, 0);
	close(rd);
	sigaction(SIGHUP, &on_death, NULL);
	sigaction(SIGTERM, &ign, NULL); /* the group's SIGTERM is for the command */
	sigaction(SIGINT, &ign, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGHUP);
	if (getppid() != daemon) /* the daemon died before the request took */
		kill(0, SIGKILL);
	cmd = fork();
	if (cmd < 0)
		_exit(126);
	if (cmd == 0)
		run_command(pr, out, devnull);
	close(out);
	close(devnull);
	while (waitpid(cmd, &st, 0) < 0)
		if (errno != EINTR)
			_exit(126);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* ---- the supervisor ---- */

static void log_line(struct csrc *cx, struct proc *pr)
{
	CEB_LOG_INFO(cx->env->label, "%s: %.*s", pr->ct->name, (int)pr->linelen, pr->line);
	pr->linelen = 0;
}

/* Read what the command wrote and log it a line at a time; close at end of file. */
static void read_output(struct csrc *cx, struct proc *pr)
{
	char buf[4096];
	ssize_t n;

	while (pr->out >= 0) {
		n = read(pr->out, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (pr->linelen)
				log_line(cx, pr);
			close(pr->out);
			pr->out = -1;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				log_line(cx, pr);
				continue;
			}
			if (buf[i] != '\r')
				pr->line[pr->linelen++] = buf[i];
			if (pr->linelen == sizeof(pr->line))
				log_line(cx, pr);
		}
	}
}

static void start_proc(struct csrc *cx, struct proc *pr)
{
	int fds[2], devnull;
	pid_t pid, self = getpid();

	pr->starts++;
	if (!pr->path) {
		CEB_LOG_ERR(cx->env->label, "%s: command %s not found in PATH", pr->ct->name,
		            pr->ct->argv[0]);
		goto failed;
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		goto sys;
	if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		close(fds[0]);
		close(fds[1]);
		goto sys;
	}
	pid = fork();
	if (pid == 0)
		run_guard(pr, self, fds[0], fds[1], devnull);
	close(fds[1]);
	close(devnull);
	if (pid < 0) {
		close(fds[0]);
		goto sys;
	}
	setpgid(pid, pid); /* also here: no race with a kill of the group */
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	pr->pid = pid;
	pr->out = fds[0];
	pr->started_ms = now_ms();
	CEB_LOG_INFO(cx->env->label, "%s: started %s (process group %d)%s", pr->ct->name, pr->path,
	             (int)pid, pr->starts > 1 ? ", again" : "");
	return;
sys:
	CEB_LOG_ERR(cx->env->label, "%s: cannot start: %s", pr->ct->name, strerror(errno));
failed:
	pr->restart_at_ms = now_ms() + pr->backoff_ms;
	pr->backoff_ms = pr->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pr->backoff_ms * 2;
}

/* Whether the guard exited (reaped, its group killed, output drained); the restart planned. */
static bool reap(struct csrc *cx, struct proc *pr, bool stopping)
{
	int st;
	int64_t now = now_ms();

	if (!pr->pid || waitpid(pr->pid, &st, WNOHANG) != pr->pid)
		return false;
	kill(-pr->pid, SIGKILL); /* what the command left running in its group */
	read_output(cx, pr);
	if (pr->out >= 0) {
		close(pr->out);
		pr->out = -1;
	}
	pr->pid = 0;
	if (now - pr->started_ms >= BACKOFF_RESET_MS)
		pr->backoff_ms = BACKOFF_FIRST_MS;
	if (stopping) {
		CEB_LOG_INFO(cx->env->label, "%s: stopped (status %d)", pr->ct->name,
		             WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		return true;
	}
	pr->restart_at_ms = now + pr->backoff_ms;
	CEB_LOG_WARN(cx->env->label, "%s: exited with status %d; restarting in %d ms", pr->ct->name,
	             WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), pr->backoff_ms);
	pr->backoff_ms = pr->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pr->backoff_ms * 2;
	return true;
}

/* Wait for output or for ms, whichever comes first. */
static void wait_io(struct csrc *cx, int ms)
{
	struct pollfd pfd[1 + 64];
	size_t n = 0;

	pfd[n++] = (struct pollfd){.fd = cx->wake[0], .events = POLLIN};
	for (size_t i = 0; i < cx->nprocs && n < 65; i++)
		if (cx->procs[i].out >= 0)
			pfd[n++] = (struct pollfd){.fd = cx->procs[i].out, .events = POLLIN};
	poll(pfd, n, ms);
	for (size_t i = 0; i < cx->nprocs; i++)
		read_output(cx, &cx->procs[i]);
}

/* SIGTERM to every group, SIGKILL to what is left after the grace. */
static void stop_all(struct csrc *cx)
{
	int64_t deadline = now_ms() + (int64_t)cx->cs->grace_s * 1000;
	bool left = false;

	for (size_t i = 0; i < cx->nprocs; i++)
		if (cx->procs[i].pid)
			kill(-cx->procs[i].pid, SIGTERM);
	do {
		left = false;
		for (size_t i = 0; i < cx->nprocs; i++) {
			reap(cx, &cx->procs[i], true);
			left |= cx->procs[i].pid != 0;
		}
		if (left)
			wait_io(cx, 20);
	} while (left && now_ms() < deadline);
	for (size_t i = 0; i < cx->nprocs; i++) {
		struct proc *pr = &cx->procs[i];
		if (!pr->pid)
			continue;
		CEB_LOG_WARN(cx->env->label, "%s: still running %d s after SIGTERM: SIGKILL",
		             pr->ct->name, cx->cs->grace_s);
		kill(-pr->pid, SIGKILL);
		while (!reap(cx, pr, true))
			wait_io(cx, 20);
	}
}

static void *supervise(void *arg)
{
	struct csrc *cx = arg;
	char c;

	for (;;) {
		int64_t now = now_ms(), wait = TICK_MS;

		if (read(cx->wake[0], &c, 1) == 1)
			break;
		for (size_t i = 0; i < cx->nprocs; i++) {
			struct proc *pr = &cx->procs[i];
			reap(cx, pr, false);
			if (!pr->pid && now >= pr->restart_at_ms)
				start_proc(cx, pr);
			if (!pr->pid && pr->restart_at_ms - now < wait)
				wait = pr->restart_at_ms - now;
		}
		wait_io(cx, (int)(wait > 0 ? wait : 0));
	}
	stop_all(cx);
	return NULL;
}

/* ---- the operations ---- */

static void container_stop(void *ctx)
{
	struct csrc *cx = ctx;
	ssize_t rc;

	if (!cx || !cx->started)
		return;
	rc = write(cx->wake[1], "x", 1);
	(void)rc;
	pthread_join(cx->thread, NULL);
	cx->started = false;
}

static void container_destroy(void *ctx)
{
	struct csrc *cx = ctx;

	if (!cx)
		return;
	container_stop(cx);
	for (size_t i = 0; i < cx->nprocs; i++) {
		struct proc *pr = &cx->procs[i];
		for (char **e = pr->envp; e && *e; e++)
			free(*e);
		free(pr->envp);
		free(pr->path);
		if (pr->out >= 0)
			close(pr->out);
	}
	free(cx->procs);
	if (cx->wake[0] >= 0)
		close(cx->wake[0]);
	if (cx->wake[1] >= 0)
		close(cx->wake[1]);
	free(cx);
}

static int container_create(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env,
                            void **ctx, char *errbuf, size_t errlen)
{
	struct csrc *cx = calloc(1, sizeof(*cx));

	if (!cx)
		goto nomem;
	cx->wake[0] = cx->wake[1] = -1;
	cx->cs = cfg->own;
	cx->env = env;
	if (cx->cs->nctrs > 64) {
		snprintf(errbuf, errlen, "ContainerSource %s/%s: more than 64 containers", cfg->ns,
		         cfg->name);
		container_destroy(cx);
		return CEB_ECONFIG;
	}
	if (!(cx->procs = calloc(cx->cs->nctrs ? cx->cs->nctrs : 1, sizeof(*cx->procs))))
		goto nomem;
	cx->nprocs = cx->cs->nctrs;
	for (size_t i = 0; i < cx->nprocs; i++) {
		cx->procs[i].ct = &cx->cs->ctrs[i];
		cx->procs[i].out = -1;
		cx->procs[i].backoff_ms = BACKOFF_FIRST_MS;
	}
	if (pipe2(cx->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(errbuf, errlen, "cannot make a pipe: %s", strerror(errno));
		container_destroy(cx);
		return CEB_EIO;
	}
	*ctx = cx;
	return 0;
nomem:
	container_destroy(cx);
	snprintf(errbuf, errlen, "out of memory");
	return CEB_ENOMEM;
}

/* The environment is made here: K_SINK (env->sink_url) is known once the daemon listens. */
static int container_start(void *ctx, char *errbuf, size_t errlen)
{
	struct csrc *cx = ctx;
	int rc;

	for (size_t i = 0; i < cx->nprocs; i++) {
		struct proc *pr = &cx->procs[i];
		if (!(pr->envp = build_env(cx, pr->ct))) {
			snprintf(errbuf, errlen, "out of memory");
			return CEB_ENOMEM;
		}
		pr->path = resolve(pr->ct, pr->envp);
		if (pr->ct->image)
			CEB_LOG_DEBUG(cx->env->label,
			              "%s: image %s is not used: the command runs "
			              "here",
			              pr->ct->name, pr->ct->image);
	}
	CEB_LOG_INFO(cx->env->label, "K_SINK=%s", cx->env->sink_url ? cx->env->sink_url : "");
	rc = pthread_create(&cx->thread, NULL, supervise, cx);
	if (rc) {
		snprintf(errbuf, errlen, "cannot start the ContainerSource thread: %s",
		         strerror(rc));
		return CEB_EIO;
	}
	cx->started = true;
	return 0;
}

const struct source_ops ceb_source_container = {
        .kind = CONTAINER_KIND,
        .label = "containersource",
        .create = container_create,
        .start = container_start,
        .stop = container_stop,
        .destroy = container_destroy,
};
