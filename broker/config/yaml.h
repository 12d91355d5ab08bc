/* The YAML reader under the resource loader: libfyaml's event parser into a small tree that keeps
 * each node's line and column, a document at a time; hostile input refused before it costs much. */
#ifndef CEB_YAML_H
#define CEB_YAML_H

#include <stdbool.h>
#include <stddef.h>

/* What the reader refuses, each as a located error: a file over CEB_YAML_MAX_FILE_SIZE bytes,
 * collections nested deeper than CEB_YAML_MAX_DEPTH (real manifests stay under 10), a document of
 * more than CEB_YAML_MAX_NODES nodes (so that a 16 MiB file cannot build a huge tree), text that is
 * not UTF-8 or holds control characters or NUL, and tags (but !!str). Anchors and aliases are read
 * (Knative's samples use them): an alias is the very node its anchor names, shared, never copied,
 * and it counts as every node it holds, so a document whose aliases would expand past
 * CEB_YAML_MAX_NODES nodes or CEB_YAML_MAX_DEPTH levels (an alias bomb) is refused at the alias
 * that crosses the line. Merge keys (<<) are not expanded: they stay an ordinary key. */
#define CEB_YAML_MAX_FILE_SIZE (16u << 20)
#define CEB_YAML_MAX_DEPTH     64
#define CEB_YAML_MAX_NODES     1000000

enum ceb_yaml_type {
	CEB_YAML_SCALAR,
	CEB_YAML_MAP,
	CEB_YAML_SEQ
};

/* A node of a document's tree. The reader owns every node and every string in it; they stay valid
 * until the document callback that received the root returns, so keep copies, not pointers. */
struct ceb_yaml_node;

/* Which thread: the accessors only read, any thread that holds a node may call them. Each accepts
 * NULL (an absent node) and then answers as for a null scalar, except where said. */

enum ceb_yaml_type ceb_yaml_type(const struct ceb_yaml_node *n);
/* 1-based line and column where the node starts: a quoted scalar at its opening quote, a
 * collection at its first indicator or entry. 0 for NULL. */
int ceb_yaml_line(const struct ceb_yaml_node *n);
int ceb_yaml_col(const struct ceb_yaml_node *n);
/* YAML 1.2 core schema null (empty, ~, null, Null, NULL as a plain scalar), or NULL itself: what
 * Kubernetes treats as an absent field. */
bool ceb_yaml_is_null(const struct ceb_yaml_node *n);
/* "null", "a mapping", "a list" or "a string", for messages ("expected a list, got a mapping").
 * Static text, never NULL. */
const char *ceb_yaml_describe(const struct ceb_yaml_node *n);

/* A scalar's text, NUL-terminated and holding no NUL (the reader refuses those); NULL for a
 * collection or NULL. Owned by the reader, see above. */
const char *ceb_yaml_str(const struct ceb_yaml_node *n);
/* True for a plain (unquoted, untagged) scalar: only those can be null or a number; quoted, block
 * and !!str scalars are always strings. False for collections and NULL. */
bool ceb_yaml_plain(const struct ceb_yaml_node *n);

/* Where the text of a scalar is in the file, for reading YAML held in it (a ConfigMap value such as
 * config-br-defaults' default-br-config) with positions in the file: exact for a literal block
 * scalar (|), whose line k is file line line + k - 1 from column col on; otherwise every position
 * is the scalar's own (line, col). */
struct ceb_yaml_origin {
	int line, col;
	bool exact;
};
void ceb_yaml_origin(const struct ceb_yaml_node *n, struct ceb_yaml_origin *o);

/* A mapping's pairs or a list's items, in document order (duplicate keys kept: the caller decides
 * what a duplicate means); 0 for a scalar or NULL. An aliased node appears wherever its aliases
 * are, with the position of its anchor. */
size_t ceb_yaml_size(const struct ceb_yaml_node *n);
/* The key and the value of pair i (i < ceb_yaml_size) of a mapping; NULL when out of range or not a
 * mapping. Keys may be any node, not only scalars. */
const struct ceb_yaml_node *ceb_yaml_map_key(const struct ceb_yaml_node *map, size_t i);
const struct ceb_yaml_node *ceb_yaml_map_value(const struct ceb_yaml_node *map, size_t i);
/* The value of the first pair whose key is the scalar `key`, or NULL (absent, or map is not a
 * mapping). Linear in the number of pairs. */
const struct ceb_yaml_node *ceb_yaml_map_get(const struct ceb_yaml_node *map, const char *key);
/* Item i of a list; NULL when out of range or not a list. */
const struct ceb_yaml_node *ceb_yaml_seq_item(const struct ceb_yaml_node *seq, size_t i);

/* Called with each document's root, in order, once the document is complete. A document with an
 * error in it (an anchor, a tag, too many nodes...) is reported and not delivered; the next ones
 * are. An empty document arrives as a null scalar. Return nonzero to stop reading. */
typedef int ceb_yaml_document_f(void *arg, const struct ceb_yaml_node *root);
/* Called with each problem, in the order found, between the documents around it. line and col are
 * 1-based, or both 0 for the input as a whole (unreadable, too large). msg is the message without
 * the position, owned by the reader for the call. Return nonzero to stop reading. */
typedef int ceb_yaml_error_f(void *arg, int line, int col, const char *msg);

struct ceb_yaml_handler {
	ceb_yaml_document_f *document;
	ceb_yaml_error_f *error;
	void *arg; /* passed to both, untouched */
};

/* Read a multi-document YAML stream from memory (len bytes; need not be NUL-terminated) and hand
 * each document and each problem to h, as they come. Reading stops at the first syntax error or
 * nesting deeper than CEB_YAML_MAX_DEPTH (libfyaml cannot go on past them), or when a callback
 * says so. Input over CEB_YAML_MAX_FILE_SIZE is one problem at line 0 ("larger than 16 MiB").
 * Returns 0 when nothing was reported, CEB_EINVAL when a problem was (or h is incomplete),
 * CEB_ETOOBIG for input over the limit, CEB_ENOMEM when memory ran out (reading stopped there;
 * what was reported before stands). data stays the caller's and is only read during the call; the
 * trees are the reader's (see struct ceb_yaml_node), all freed before it returns. Any thread: h is
 * called on the caller's. */
int ceb_yaml_load_buffer(const char *data, size_t len, const struct ceb_yaml_handler *h);
/* The same for text that sits in a file at `at` (from ceb_yaml_origin): nodes and problems are
 * located in that file. It may run inside a document callback of another read. */
int ceb_yaml_load_buffer_at(const char *data, size_t len, const struct ceb_yaml_origin *at,
                            const struct ceb_yaml_handler *h);
/* The same from a file, read whole first. A file that cannot be opened or read is one problem at
 * line 0 ("cannot read: <strerror>") and CEB_EIO; one over CEB_YAML_MAX_FILE_SIZE, CEB_ETOOBIG. */
int ceb_yaml_load_file(const char *path, const struct ceb_yaml_handler *h);

#endif
