/* The YAML reader: libfyaml's event parser into a located tree per document, plus the defences that
 * libfyaml 0.7.12 (Debian 12) needs against hostile input, found by fuzzing, and a bound on what
 * aliases may expand to. */
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/config/yaml.h"

#define MAX_FILE_SIZE CEB_YAML_MAX_FILE_SIZE
#define MAX_DEPTH     CEB_YAML_MAX_DEPTH
#define MAX_DOC_NODES CEB_YAML_MAX_NODES
#define PRESCAN_DEPTH 1000 /* see prescan() */
#define CEB_STR_(x)   #x
#define CEB_STR(x)    CEB_STR_(x)

/* ------------------------------------------------------------------------------------------------
 * The tree. Nodes and strings live in an arena freed after each document.
 */

struct ceb_yaml_node {
	enum ceb_yaml_type type;
	bool plain;    /* plain scalar: may be null; quoted and block scalars are always strings */
	bool open;     /* a collection whose end has not been read yet */
	int line, col; /* 1-based */
	size_t n;      /* scalar: bytes; map: pairs; sequence: items */
	char *str;     /* scalar text, NUL-terminated */
	struct ceb_yaml_node **kids; /* map: key, value, key, value...; sequence: items */
	/* What the node costs a reader who walks it with its aliases expanded: its nodes, and how
	 * deep its collections nest (0 for a scalar). An alias is the node it names, shared, so
	 * these are what bound alias bombs. */
	size_t weight;
	int height;
	/* A literal block scalar (|): where its text starts in the file, so that YAML inside it (a
	 * ConfigMap value) is located in the file too. 0 otherwise. */
	int body_line, body_col;
};

struct chunk {
	struct chunk *next;
	size_t cap, used;
	max_align_t data[];
};

struct arena {
	struct chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	const size_t align = sizeof(max_align_t);
	struct chunk *c = a->head;
	size_t cap;
	void *p;

	n = (n + align - 1) / align * align;
	if (!c || c->cap - c->used < n) {
		cap = n > 65536 ? n : 65536;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static void arena_free(struct arena *a)
{
	struct chunk *c, *next;

	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

enum ceb_yaml_type ceb_yaml_type(const struct ceb_yaml_node *n)
{
	return n ? n->type : CEB_YAML_SCALAR;
}

int ceb_yaml_line(const struct ceb_yaml_node *n)
{
	return n ? n->line : 0;
}

int ceb_yaml_col(const struct ceb_yaml_node *n)
{
	return n ? n->col : 0;
}

bool ceb_yaml_is_null(const struct ceb_yaml_node *n)
{
	if (!n)
		return true;
	if (n->type != CEB_YAML_SCALAR || !n->plain)
		return false;
	return n->n == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
	       !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

const char *ceb_yaml_describe(const struct ceb_yaml_node *n)
{
	if (ceb_yaml_is_null(n))
		return "null";
	switch (n->type) {
	case CEB_YAML_MAP: return "a mapping";
	case CEB_YAML_SEQ: return "a list";
	default: return "a string";
	}
}

const char *ceb_yaml_str(const struct ceb_yaml_node *n)
{
	return n && n->type == CEB_YAML_SCALAR ? n->str : NULL;
}

bool ceb_yaml_plain(const struct ceb_yaml_node *n)
{
	return n && n->type == CEB_YAML_SCALAR && n->plain;
}

size_t ceb_yaml_size(const struct ceb_yaml_node *n)
{
	return n && n->type != CEB_YAML_SCALAR ? n->n : 0;
}

const struct ceb_yaml_node *ceb_yaml_map_key(const struct ceb_yaml_node *map, size_t i)
{
	return map && map->type == CEB_YAML_MAP && i < map->n ? map->kids[2 * i] : NULL;
}

const struct ceb_yaml_node *ceb_yaml_map_value(const struct ceb_yaml_node *map, size_t i)
{
	return map && map->type == CEB_YAML_MAP && i < map->n ? map->kids[2 * i + 1] : NULL;
}

const struct ceb_yaml_node *ceb_yaml_map_get(const struct ceb_yaml_node *map, const char *key)
{
	if (!map || map->type != CEB_YAML_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		const struct ceb_yaml_node *k = map->kids[2 * i];

		if (k->type == CEB_YAML_SCALAR && !strcmp(k->str, key))
			return map->kids[2 * i + 1];
	}
	return NULL;
}

const struct ceb_yaml_node *ceb_yaml_seq_item(const struct ceb_yaml_node *seq, size_t i)
{
	return seq && seq->type == CEB_YAML_SEQ && i < seq->n ? seq->kids[i] : NULL;
}

/* ------------------------------------------------------------------------------------------------
 * The reader's state for one input, and its problem reports.
 */

/* A position in the text being read to its position in the file (see struct ceb_yaml_origin). */
static void shift(const struct ceb_yaml_origin *o, int *line, int *col)
{
	if (o->line <= 0)
		return;
	if (o->exact) {
		*col += o->col - 1;
		*line += o->line - 1;
	} else {
		*line = o->line;
		*col = o->col;
	}
}

/* An anchor of the document being read: its name (in the arena) and the node it names. */
struct anchor {
	const char *name;
	size_t len;
	struct ceb_yaml_node *node;
};

struct reader {
	const struct ceb_yaml_handler *h;
	struct arena arena;          /* the document being built */
	struct ceb_yaml_node **pend; /* finished children of the open collections */
	size_t npend, cappend;
	size_t nodes; /* in the document being built, each alias counting as what it expands to */
	struct anchor *anchors; /* open addressing, power-of-two capacity; reset per document */
	size_t nanchors, capanchors;
	struct ceb_yaml_origin origin; /* where the text is in its file (an embedded document) */
	bool enomem, stop, reported;
};

__attribute__((format(printf, 4, 5))) static void rd_err(struct reader *rd, int line, int col,
                                                         const char *fmt, ...)
{
	struct ceb_buf b = CEB_BUF_INIT;
	va_list ap;

	if (rd->stop || rd->enomem)
		return;
	va_start(ap, fmt);
	ceb_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (b.failed || !b.p) {
		rd->enomem = true;
	} else {
		rd->reported = true;
		if (line > 0)
			shift(&rd->origin, &line, &col);
		if (rd->h->error(rd->h->arg, line, col, b.p))
			rd->stop = true;
	}
	ceb_buf_free(&b);
}

/* ------------------------------------------------------------------------------------------------
 * The YAML event stream to trees, one document at a time.
 */

struct frame {
	struct ceb_yaml_node *node;
	size_t base; /* where its children start in rd->pend */
};

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	/* nothing: errors are collected and handed to the caller's handler, located, instead */
}

static bool is_white(char c)
{
	return c == ' ' || c == '\t';
}

/* The value of a single-quoted scalar from its source bytes (YAML 1.2, 7.3.2): '' is a quote, and
 * line breaks fold: one break is a space, n > 1 breaks are n - 1 newlines, with the whitespace around
 * them dropped. We do this style ourselves because libfyaml 0.7.12 leaks its text iterator's chunk
 * array on runs of escaped quotes (libfyaml#233, fixed upstream after the release Debian 12 has). */
static char *single_quoted(struct arena *a, const char *src, size_t len, size_t *outlen)
{
	char *out = arena_alloc(a, len + 1), *o = out;
	size_t i = 0, empty = 0;
	bool first = true;

	if (!out)
		return NULL;
	while (i <= len) {
		size_t bol = i, eol = i, b, e;
		bool last;

		while (eol < len && src[eol] != '\n' && src[eol] != '\r')
			eol++;
		last = eol == len;
		b = bol;
		e = eol;
		if (!first)
			while (b < e && is_white(src[b]))
				b++;
		if (!last)
			while (e > b && is_white(src[e - 1]))
				e--;
		if (!first && !last && b == e) {
			empty++; /* an empty line between two others */
		} else {
			if (!first) {
				if (empty)
					for (; empty; empty--)
						*o++ = '\n';
				else
					*o++ = ' ';
			}
			for (size_t k = b; k < e; k++) {
				*o++ = src[k];
				if (src[k] == '\'' && k + 1 < e && src[k + 1] == '\'')
					k++;
			}
			first = false;
		}
		if (last)
			break;
		i = eol + (src[eol] == '\r' && eol + 1 < len && src[eol + 1] == '\n' ? 2 : 1);
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/* Fill a scalar node's text (val NULL: an empty scalar). False when out of memory. */
static bool scalar_text(struct reader *rd, struct fy_token *val, const char *data, size_t len,
                        struct ceb_yaml_node *n)
{
	const struct fy_mark *sm, *em;
	const char *text;
	size_t tlen = 0;

	if (val && fy_token_scalar_style(val) == FYSS_SINGLE_QUOTED &&
	    (sm = fy_token_start_mark(val)) && (em = fy_token_end_mark(val)) &&
	    sm->input_pos <= em->input_pos && em->input_pos <= len) {
		n->str = single_quoted(&rd->arena, data + sm->input_pos,
		                       em->input_pos - sm->input_pos, &n->n);
	} else {
		text = val ? fy_token_get_text(val, &tlen) : "";
		n->str = text ? arena_alloc(&rd->arena, tlen + 1) : NULL;
		if (n->str) {
			memcpy(n->str, text, tlen);
			n->str[tlen] = '\0';
			n->n = tlen;
		}
	}
	if (!n->str)
		rd->enomem = true;
	return n->str != NULL;
}

/* Where a literal block scalar's text is in the file: libfyaml marks the start of its first line;
 * its first line with text on it sets the indentation that every line of it loses. */
static void block_body(struct reader *rd, struct fy_token *val, const char *data, size_t len,
                       struct ceb_yaml_node *n)
{
	const struct fy_mark *m = val ? fy_token_start_mark(val) : NULL;
	size_t p, indent;

	if (!m || m->input_pos > len || (size_t)m->column > m->input_pos)
		return;
	p = m->input_pos - (size_t)m->column;
	for (;;) {
		for (indent = 0; p < len && data[p] == ' '; p++)
			indent++;
		if (p >= len || (data[p] != '\n' && data[p] != '\r'))
			break;
		p++; /* a line with no text: the next one decides */
	}
	n->body_line = m->line + 1;
	n->body_col = (int)(indent > INT_MAX - 1 ? INT_MAX - 1 : indent) + 1;
	shift(&rd->origin, &n->body_line, &n->body_col);
}

/* Report at a token (an anchor, a tag) rather than at the node it decorates. An anchor's mark is
 * its name: back is 1 to point at the '&' before it. */
static void token_err(struct reader *rd, struct fy_token *fyt, int back, int line, int col,
                      const char *msg)
{
	const struct fy_mark *m = fyt ? fy_token_start_mark(fyt) : NULL;

	if (m)
		rd_err(rd, m->line + 1, m->column + 1 - (m->column >= back ? back : 0), "%s", msg);
	else
		rd_err(rd, line, col, "%s", msg);
}

static bool pend_push(struct reader *rd, struct ceb_yaml_node *n)
{
	if (rd->npend == rd->cappend) {
		size_t cap = rd->cappend ? 2 * rd->cappend : 64;
		struct ceb_yaml_node **p = realloc(rd->pend, cap * sizeof(*p));

		if (!p) {
			rd->enomem = true;
			return false;
		}
		rd->pend = p;
		rd->cappend = cap;
	}
	rd->pend[rd->npend++] = n;
	return true;
}

/* ---- anchors: a table per document, names to the nodes they name ---- */

static size_t anchor_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return (size_t)h;
}

/* Where name is in the table, or the empty slot where it goes. The table is not full. */
static struct anchor *anchor_slot(struct anchor *tab, size_t cap, const char *name, size_t len)
{
	size_t i = anchor_hash(name, len) & (cap - 1);

	while (tab[i].name && (tab[i].len != len || memcmp(tab[i].name, name, len)))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* Name n with an anchor (a later anchor of the same name replaces it, as YAML says). False when
 * out of memory. A table of every anchor costs O(1) a lookup, so a million anchors and a million
 * aliases cost a million steps, not a million squared. */
static bool anchor_set(struct reader *rd, const char *name, size_t len, struct ceb_yaml_node *n)
{
	struct anchor *slot;

	if (2 * (rd->nanchors + 1) > rd->capanchors) {
		size_t cap = rd->capanchors ? 2 * rd->capanchors : 64;
		struct anchor *tab = calloc(cap, sizeof(*tab));

		if (!tab) {
			rd->enomem = true;
			return false;
		}
		for (size_t i = 0; i < rd->capanchors; i++)
			if (rd->anchors[i].name)
				*anchor_slot(tab, cap, rd->anchors[i].name, rd->anchors[i].len) =
				        rd->anchors[i];
		free(rd->anchors);
		rd->anchors = tab;
		rd->capanchors = cap;
	}
	slot = anchor_slot(rd->anchors, rd->capanchors, name, len);
	if (!slot->name) {
		char *copy = arena_alloc(&rd->arena, len + 1);

		if (!copy) {
			rd->enomem = true;
			return false;
		}
		memcpy(copy, name, len);
		copy[len] = '\0';
		*slot = (struct anchor){copy, len, NULL};
		rd->nanchors++;
	}
	slot->node = n;
	return true;
}

static struct ceb_yaml_node *anchor_get(struct reader *rd, const char *name, size_t len)
{
	return rd->capanchors ? anchor_slot(rd->anchors, rd->capanchors, name, len)->node : NULL;
}

/* Anchors name nodes of their own document only; the names live in its arena. */
static void anchors_reset(struct reader *rd)
{
	free(rd->anchors);
	rd->anchors = NULL;
	rd->nanchors = rd->capanchors = 0;
}

/* A + B without wrapping: weights only ever get compared with MAX_DOC_NODES. */
static size_t add_sat(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* YAML's c-printable: tab, line breaks and printable Unicode. */
static bool yaml_printable(uint32_t cp)
{
	return cp == 0x09 || cp == 0x0a || cp == 0x0d || (cp >= 0x20 && cp <= 0x7e) || cp == 0x85 ||
	       (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) ||
	       (cp >= 0x10000 && cp <= 0x10ffff);
}

/* YAML is printable Unicode, and the strings end up in URIs, headers and logs: refuse what is not
 * UTF-8 (which also refuses UTF-16 and UTF-32 files, by their byte order marks) and control
 * characters, at their position. Raw NUL bytes also crash libfyaml 0.7.12 in fy_parser_destroy(). */
static const char ctrl_msg[] = "control characters are not allowed in YAML (write them as escapes "
                               "in a double-quoted string)";

static const char *text_invalid(const char *str, size_t len, int *line, int *col)
{
	const unsigned char *s = (const unsigned char *)str;
	const char *why = "invalid UTF-8 (YAML files must be UTF-8)";
	size_t i = 0, bol = 0;
	int ln = 1;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			if (c == '\n') {
				ln++;
				bol = i + 1;
			} else if (!yaml_printable(c)) {
				why = ctrl_msg;
				goto out;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			goto out;
		if (len - i <= n)
			goto out;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto out;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto out;
		if (!yaml_printable(cp)) {
			why = ctrl_msg;
			goto out;
		}
		i += n + 1;
	}
	return NULL;
out:
	*line = ln;
	*col = (int)(i - bol) + 1;
	return why;
}

/* Two things are checked on the bytes before libfyaml sees them, skipping quoted strings and
 * comments:
 * - libfyaml keeps every open flow level of a line before it emits the first event of it, so
 *   `[[[[...` on one 16 MiB line costs gigabytes before the depth check on events can refuse it.
 *   The estimate here is loose (brackets inside block or plain scalars count too), so it only
 *   refuses what is far deeper than MAX_DEPTH, reporting where MAX_DEPTH was passed.
 * - A tab between ':' and an indicator (`? k:<TAB>-`, `? k:<TAB>:x`, `? k:<TAB>|`) crashes libfyaml
 *   0.7.12 in fy_parser_destroy() (found by fuzzing). That is invalid YAML or very rare YAML (a block
 *   scalar header after a tab, `key:<TAB>|`), so it is refused, asking for a space instead. */
static const char *prescan(const char *s, size_t len, int *line, int *col)
{
	size_t depth = 0, bol = 0;
	int ln = 1, deep_line = 0, deep_col = 0;
	char prev = '\n';

	for (size_t i = 0; i < len; i++) {
		char c = s[i], q;
		size_t j;
		bool tab = false;

		switch (c) {
		case '\n':
			ln++;
			bol = i + 1;
			break;
		case '#':
			if (prev != ' ' && prev != '\t' && prev != '\n')
				break;
			while (i + 1 < len && s[i + 1] != '\n')
				i++;
			break;
		case '"':
		case '\'':
			if (!strchr(" \t\n[{,:", prev))
				break;
			for (q = c, i++; i < len && s[i] != q; i++) {
				if (s[i] == '\\' && q == '"' && i + 1 < len && s[i + 1] != '\n')
					i++;
				else if (s[i] == '\n')
					ln++, bol = i + 1;
			}
			break;
		case ':':
			for (j = i + 1; j < len && (s[j] == ' ' || s[j] == '\t'); j++)
				tab |= s[j] == '\t';
			/* whatever follows ? : | >, but -5 after a tab is a fine number */
			if (tab && j < len && strchr("-?:|>", s[j]) &&
			    (s[j] != '-' || j + 1 == len || strchr(" \t\r\n", s[j + 1]))) {
				*line = ln;
				*col = (int)(j - bol) + 1;
				return "a tab before a block indicator is not supported; use "
				       "spaces";
			}
			break;
		case '[':
		case '{':
			if (++depth == MAX_DEPTH + 1) {
				deep_line = ln;
				deep_col = (int)(i - bol) + 1;
			}
			if (depth > PRESCAN_DEPTH) {
				*line = deep_line;
				*col = deep_col;
				return "YAML nesting deeper than " CEB_STR(MAX_DEPTH) " levels";
			}
			break;
		case ']':
		case '}':
			if (depth)
				depth--;
			break;
		}
		prev = i < len ? s[i] : '\n';
	}
	return NULL;
}

static void parse_stream(struct reader *rd, const char *data, size_t len)
{
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parse_cfg pcfg = {0};
	struct fy_parser *fyp = NULL;
	struct fy_event *fye = NULL;
	struct frame frames[MAX_DEPTH + 1];
	struct ceb_yaml_node *root = NULL;
	int depth = 0, line = 1, col = 1;
	bool skip = false, done = false;
	const char *why = text_invalid(data, len, &line, &col);

	if (!why)
		why = prescan(data, len, &line, &col);
	if (why) {
		rd_err(rd, line, col, "%s", why);
		return;
	}
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_discard;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		rd->enomem = true;
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	pcfg.flags = FYPCF_QUIET;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, data, len) != 0) {
		rd->enomem = true;
		goto out;
	}
	while (!done && !rd->enomem && !rd->stop) {
		const struct fy_mark *m;
		struct fy_token *anchor = NULL, *tag = NULL;
		struct ceb_yaml_node *n = NULL;
		size_t tlen;
		const char *text;

		fye = fy_parser_parse(fyp);
		if (!fye)
			break;
		m = fy_event_start_mark(fye);
		if (m) {
			line = m->line + 1;
			col = m->column + 1;
		}
		switch (fye->type) {
		case FYET_STREAM_END: done = true; break;
		case FYET_DOCUMENT_START:
			skip = false;
			root = NULL;
			depth = 0;
			rd->npend = 0;
			rd->nodes = 0;
			anchors_reset(rd);
			break;
		case FYET_DOCUMENT_END:
			if (!skip && root && rd->h->document(rd->h->arg, root))
				rd->stop = true;
			anchors_reset(rd);
			arena_free(&rd->arena);
			root = NULL;
			break;
		case FYET_ALIAS:
			if (skip)
				break;
			text = fy_token_get_text(fye->alias.anchor, &tlen);
			n = text ? anchor_get(rd, text, tlen) : NULL;
			col = col > 1 ? col - 1 : col; /* at the '*' */
			if (!n) {
				rd_err(rd, line, col, "YAML alias *%.*s names no anchor before it",
				       text ? (int)(tlen > 64 ? 64 : tlen) : 0, text ? text : "");
				skip = true;
				break;
			}
			if (n->open) {
				rd_err(rd, line, col, "YAML alias *%.*s is inside what it names",
				       (int)(tlen > 64 ? 64 : tlen), text);
				skip = true;
				break;
			}
			/* An alias shares its node: nothing is copied, but whoever walks the tree
			 * walks it once per alias, so it counts as all it holds, and it must not
			 * nest deeper than any other YAML (the filters recurse on it). */
			if (depth + n->height > MAX_DEPTH) {
				rd_err(rd, line, col,
				       "YAML nesting deeper than %d levels once aliases are "
				       "expanded",
				       MAX_DEPTH);
				skip = true;
				break;
			}
			rd->nodes = add_sat(rd->nodes, n->weight);
			if (rd->nodes > MAX_DOC_NODES) {
				rd_err(rd, line, col,
				       "document has more than %d YAML nodes once aliases are "
				       "expanded",
				       MAX_DOC_NODES);
				skip = true;
				break;
			}
			if (depth > 0)
				pend_push(rd, n);
			else
				root = n;
			break;
		case FYET_MAPPING_START:
		case FYET_SEQUENCE_START:
		case FYET_SCALAR:
			anchor = fy_event_get_anchor_token(fye);
			tag = fy_event_get_tag_token(fye);
			if (fye->type != FYET_SCALAR && ++depth > MAX_DEPTH) {
				/* stop reading the file: the parser's own stack grows with the nesting */
				rd_err(rd, line, col, "YAML nesting deeper than %d levels",
				       MAX_DEPTH);
				done = true;
				break;
			}
			if (skip)
				break;
			if (tag) {
				text = fy_token_get_text(tag, &tlen);
				if (!text || tlen != 21 ||
				    memcmp(text, "tag:yaml.org,2002:str", 21)) {
					token_err(rd, tag, 0, line, col,
					          "YAML tags are not supported (except !!str)");
					skip = true;
					break;
				}
			}
			if (++rd->nodes > MAX_DOC_NODES) {
				rd_err(rd, line, col, "document has more than %d YAML nodes",
				       MAX_DOC_NODES);
				skip = true;
				break;
			}
			n = arena_alloc(&rd->arena, sizeof(*n));
			if (!n) {
				rd->enomem = true;
				break;
			}
			memset(n, 0, sizeof(*n));
			n->weight = 1;
			if (fye->type == FYET_SCALAR) {
				struct fy_token *val = fye->scalar.value;
				enum fy_scalar_style style =
				        val ? fy_token_scalar_style(val) : FYSS_PLAIN;

				n->type = CEB_YAML_SCALAR;
				n->plain = !tag && style == FYSS_PLAIN;
				/* libfyaml marks a quoted scalar after its opening quote; users count from it */
				if (col > 1 &&
				    (style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED))
					col--;
				if (style == FYSS_LITERAL)
					block_body(rd, val, data, len, n);
				if (!scalar_text(rd, val, data, len, n))
					break;
				if (memchr(n->str, '\0',
				           n->n)) { /* "\0" in a double-quoted string */
					rd_err(rd, line, col,
					       "NUL characters are not allowed in strings");
					skip = true;
					break;
				}
			} else {
				n->type = fye->type == FYET_MAPPING_START ? CEB_YAML_MAP
				                                          : CEB_YAML_SEQ;
				n->open = true;
			}
			n->line = line;
			n->col = col;
			shift(&rd->origin, &n->line, &n->col);
			if (anchor) {
				text = fy_token_get_text(anchor, &tlen);
				if (!text || !anchor_set(rd, text, tlen, n))
					break;
			}
			/* depth counts the open collections, this one included */
			if (depth > (fye->type == FYET_SCALAR ? 0 : 1)) {
				if (!pend_push(rd, n))
					break;
			} else {
				root = n;
			}
			if (fye->type != FYET_SCALAR)
				frames[depth] = (struct frame){n, rd->npend};
			break;
		case FYET_MAPPING_END:
		case FYET_SEQUENCE_END:
			if (depth <= 0)
				break;
			if (!skip) {
				struct frame *f = &frames[depth];
				struct ceb_yaml_node *c = f->node;
				size_t cnt = rd->npend - f->base;

				if (cnt) {
					c->kids = arena_alloc(&rd->arena, cnt * sizeof(*c->kids));
					if (!c->kids) {
						rd->enomem = true;
						break;
					}
					memcpy(c->kids, rd->pend + f->base, cnt * sizeof(*c->kids));
				}
				c->n = c->type == CEB_YAML_MAP ? cnt / 2 : cnt;
				for (size_t i = 0; i < cnt; i++) {
					c->weight = add_sat(c->weight, c->kids[i]->weight);
					if (c->kids[i]->height + 1 > c->height)
						c->height = c->kids[i]->height + 1;
				}
				if (c->height == 0)
					c->height = 1;
				c->open = false;
				rd->npend = f->base;
			}
			depth--;
			break;
		default: break;
		}
		fy_parser_event_free(fyp, fye);
		fye = NULL;
	}
	if (!done && !rd->enomem && !rd->stop) {
		struct fy_diag_error *e;
		void *it = NULL;

		while ((e = fy_diag_errors_iterate(diag, &it)) && e->type < FYET_ERROR)
			;
		if (e && e->msg)
			rd_err(rd, e->line > 0 ? e->line : line, e->line > 0 ? e->column : col,
			       "invalid YAML: %s", e->msg);
		else
			rd_err(rd, line, col, "invalid YAML");
	}
out:
	anchors_reset(rd);
	arena_free(&rd->arena);
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
}

/* ------------------------------------------------------------------------------------------------
 * The API: a buffer or a file.
 */

void ceb_yaml_origin(const struct ceb_yaml_node *n, struct ceb_yaml_origin *o)
{
	if (n && n->body_line)
		*o = (struct ceb_yaml_origin){n->body_line, n->body_col, true};
	else
		*o = (struct ceb_yaml_origin){ceb_yaml_line(n), ceb_yaml_col(n), false};
}

int ceb_yaml_load_buffer_at(const char *data, size_t len, const struct ceb_yaml_origin *at,
                            const struct ceb_yaml_handler *h)
{
	struct reader rd = {.h = h};
	int rc;

	if (!h || !h->document || !h->error || (!data && len))
		return CEB_EINVAL;
	if (at)
		rd.origin = *at;
	if (len > MAX_FILE_SIZE)
		rd_err(&rd, 0, 0, "larger than %u MiB", MAX_FILE_SIZE >> 20);
	else
		parse_stream(&rd, data ? data : "", len);
	free(rd.pend);
	anchors_reset(&rd);
	arena_free(&rd.arena);
	if (rd.enomem)
		rc = CEB_ENOMEM;
	else if (len > MAX_FILE_SIZE)
		rc = CEB_ETOOBIG;
	else
		rc = rd.reported ? CEB_EINVAL : 0;
	return rc;
}

int ceb_yaml_load_buffer(const char *data, size_t len, const struct ceb_yaml_handler *h)
{
	return ceb_yaml_load_buffer_at(data, len, NULL, h);
}

int ceb_yaml_load_file(const char *path, const struct ceb_yaml_handler *h)
{
	struct reader rd = {.h = h};
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd, rc;

	if (!path || !h || !h->document || !h->error)
		return CEB_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rd_err(&rd, 0, 0, "cannot read: %s", strerror(errno));
		rc = CEB_EIO;
		goto out;
	}
	if (st.st_size > (off_t)MAX_FILE_SIZE) {
		rd_err(&rd, 0, 0, "larger than %u MiB", MAX_FILE_SIZE >> 20);
		rc = CEB_ETOOBIG;
		goto out;
	}
	/* read up to one byte past the limit, in case the file grew since fstat */
	data = malloc(MAX_FILE_SIZE + 1);
	if (!data) {
		rc = CEB_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, data + len, MAX_FILE_SIZE + 1 - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rd_err(&rd, 0, 0, "cannot read: %s", strerror(errno));
			rc = CEB_EIO;
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len > MAX_FILE_SIZE)
			break;
	}
	rc = ceb_yaml_load_buffer(data, len, h);
out:
	if (rd.enomem)
		rc = CEB_ENOMEM;
	free(data);
	if (fd >= 0)
		close(fd);
	return rc;
}
