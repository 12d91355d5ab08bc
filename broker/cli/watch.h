/* `cebroker run --watch`: inotify on the files and directories given with -f, so that a change of
 * the configuration reloads it. Main thread. */
#ifndef CEB_WATCH_H
#define CEB_WATCH_H

#include <stdbool.h>
#include <stddef.h>

struct ceb_watch;

/* Watch paths (files and directories): a directory for its YAML files, a file through its
 * directory, so that an editor's rename over it counts. 0, or -1 with a reason in errbuf. */
int ceb_watch_new(const char *const *paths, size_t npaths, struct ceb_watch **out, char *errbuf,
                  size_t errlen);
/* The descriptor to poll for reading. */
int ceb_watch_fd(const struct ceb_watch *w);
/* Read what is pending; true when a watched file changed (was written, created, renamed, removed).
 * Never blocks. */
bool ceb_watch_changed(struct ceb_watch *w);
void ceb_watch_free(struct ceb_watch *w);

#endif
