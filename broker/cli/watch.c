/* inotify on the configuration's files and directories (see watch.h). A file is watched through
 * its directory: editors and `kubectl`-style tools replace a file by renaming another over it,
 * which a watch on the file itself would lose. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/cli/watch.h"

#define EVENTS                                                                              \
	(IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
	 IN_ATTRIB)

struct watched {
	int wd;
	char *name; /* the file's name in the directory, or NULL: every YAML file of it */
};

struct ceb_watch {
	int fd;
	struct watched *w;
	size_t n;
};

/* What the loader reads from a directory: *.yaml and *.yml, not hidden; and Kubernetes' ..data
 * link, which a mounted ConfigMap swaps on each update. */
static bool yaml_name(const char *name)
{
	size_t n = strlen(name);

	if (!strcmp(name, "..data"))
		return true;
	if (name[0] == '.')
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int add(struct ceb_watch *w, const char *dir, const char *name, char *errbuf, size_t errlen)
{
	struct watched *grown = realloc(w->w, (w->n + 1) * sizeof(*grown));
	int wd;

	if (!grown) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	w->w = grown;
	wd = inotify_add_watch(w->fd, dir, EVENTS);
	if (wd < 0) {
		snprintf(errbuf, errlen, "--watch: cannot watch %s: %s", dir, strerror(errno));
		return -1;
	}
	w->w[w->n].wd = wd;
	w->w[w->n].name = name ? strdup(name) : NULL;
	if (name && !w->w[w->n].name) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	w->n++;
	return 0;
}

int ceb_watch_new(const char *const *paths, size_t npaths, struct ceb_watch **out, char *errbuf,
                  size_t errlen)
{
	struct ceb_watch *w = calloc(1, sizeof(*w));
	int rc = -1;

	if (!w) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		snprintf(errbuf, errlen, "--watch: inotify: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < npaths; i++) {
		struct stat st;
		char *d = strdup(paths[i]), *b = strdup(paths[i]);

		if (!d || !b) {
			free(d);
			free(b);
			snprintf(errbuf, errlen, "out of memory");
			rc = -1; /* rc is 0 after a first path was added */
			goto out;
		}
		if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
			rc = add(w, paths[i], NULL, errbuf, errlen);
		else
			rc = add(w, dirname(d), basename(b), errbuf, errlen);
		free(d);
		free(b);
		if (rc < 0)
			goto out;
	}
	rc = 0;
	*out = w;
out:
	if (rc < 0)
		ceb_watch_free(w);
	return rc;
}

int ceb_watch_fd(const struct ceb_watch *w)
{
	return w->fd;
}

static bool concerns(const struct ceb_watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW)
		return true; /* events were lost: reload to be sure */
	for (size_t i = 0; i < w->n; i++) {
		if (w->w[i].wd != ev->wd)
			continue;
		if (!ev->len)
			continue;
		if (w->w[i].name ? !strcmp(w->w[i].name, ev->name) : yaml_name(ev->name))
			return true;
	}
	return false;
}

bool ceb_watch_changed(struct ceb_watch *w)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			changed = changed || concerns(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	return changed;
}

void ceb_watch_free(struct ceb_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->n; i++)
		free(w->w[i].name);
	free(w->w);
	free(w);
}
