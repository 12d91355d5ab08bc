/* CESQL parser: recursive descent over the precedence levels of CESQLParser.g4, building the tree that
 * eval.c walks. Enforces the length and depth limits, reports errors with a 1-based column. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "filters/cesql/cesql.h"

const struct ceb_cesql_limits ceb_cesql_limits_default = {
        .max_length = 4096,
        .max_depth = 64,
};

struct parser {
	struct ceb_cesql_lexer lx;
	struct ceb_cesql_token tok;
	const struct ceb_cesql_limits *lim;
	size_t depth; /* current recursion into nested expressions */
	int err;      /* first error: CEB_EINVAL or CEB_ENOMEM */
	struct ceb_cesql *q;
};

static struct ceb_cesql_node *parse_logic(struct parser *p);
static struct ceb_cesql_node *parse_unary(struct parser *p);

__attribute__((format(printf, 3, 4))) static void perr(struct parser *p, size_t pos,
                                                       const char *fmt, ...)
{
	char what[160];
	va_list ap;

	if (p->err)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p->err = CEB_EINVAL;
	p->lx.errpos = pos;
	snprintf(p->lx.errbuf, p->lx.errlen, "%s at column %d", what,
	         ceb_cesql_column(p->lx.src, pos));
}

static void nomem(struct parser *p)
{
	if (!p->err) {
		p->err = CEB_ENOMEM;
		snprintf(p->lx.errbuf, p->lx.errlen, "out of memory");
	}
}

static void unexpected(struct parser *p)
{
	char desc[64];

	ceb_cesql_tok_describe(&p->lx, &p->tok, desc, sizeof(desc));
	perr(p, p->tok.pos, "unexpected %s", desc);
}

static void advance(struct parser *p)
{
	if (p->err)
		return;
	if (ceb_cesql_lex_next(&p->lx, &p->tok) != 0) {
		p->err = CEB_EINVAL;
		p->tok.kind = CEB_CESQL_T_EOF;
	}
}

static bool enter(struct parser *p)
{
	if (++p->depth > p->lim->max_depth) {
		perr(p, p->tok.pos, "expression nested deeper than %zu levels", p->lim->max_depth);
		return false;
	}
	return true;
}

void ceb_cesql_node_free(struct ceb_cesql_node *node)
{
	if (!node)
		return;
	for (size_t i = 0; i < node->nkids; i++)
		ceb_cesql_node_free(node->kids[i]);
	free(node->kids);
	free(node->ops);
	free(node->name);
	free(node->pattern);
	free(node);
}

static struct ceb_cesql_node *node_new(struct parser *p, enum ceb_cesql_node_kind kind, size_t pos)
{
	struct ceb_cesql_node *node;

	if (p->err)
		return NULL;
	node = calloc(1, sizeof(*node));
	if (!node) {
		nomem(p);
		return NULL;
	}
	node->kind = kind;
	node->type = CEB_CESQL_BOOLEAN;
	node->pos = pos;
	node->depth = 1;
	return node;
}

/* Appends kid (taking it, also on failure) and keeps the height up to date against the limit. */
static bool add_kid(struct parser *p, struct ceb_cesql_node *node, struct ceb_cesql_node *kid)
{
	struct ceb_cesql_node **kids;

	if (!kid)
		return false;
	kids = realloc(node->kids, (node->nkids + 1) * sizeof(*kids));
	if (!kids) {
		ceb_cesql_node_free(kid);
		nomem(p);
		return false;
	}
	node->kids = kids;
	node->kids[node->nkids++] = kid;
	if (kid->depth + 1 > node->depth)
		node->depth = kid->depth + 1;
	if (node->depth > p->lim->max_depth) {
		perr(p, node->pos, "expression nested deeper than %zu levels", p->lim->max_depth);
		return false;
	}
	return true;
}

static struct ceb_cesql_node *binary(struct parser *p, enum ceb_cesql_node_kind kind,
                                     struct ceb_cesql_token op, struct ceb_cesql_node *left,
                                     struct ceb_cesql_node *right)
{
	struct ceb_cesql_node *node = node_new(p, kind, op.pos);

	if (!node || !left || !right) {
		ceb_cesql_node_free(left);
		ceb_cesql_node_free(right);
		ceb_cesql_node_free(node);
		return NULL;
	}
	node->op = op.kind;
	node->type = kind == CEB_CESQL_N_ARITH ? CEB_CESQL_INTEGER : CEB_CESQL_BOOLEAN;
	node->negate = kind == CEB_CESQL_N_EQUAL && op.kind == CEB_CESQL_T_NE;
	if (!add_kid(p, node, left)) {
		ceb_cesql_node_free(right);
		ceb_cesql_node_free(node);
		return NULL;
	}
	if (!add_kid(p, node, right)) {
		ceb_cesql_node_free(node);
		return NULL;
	}
	return node;
}

/* Compiles a LIKE pattern: \% and \_ are literal, any other backslash is itself. */
static bool compile_pattern(struct parser *p, struct ceb_cesql_node *node, const char *s, size_t n)
{
	int16_t *pat = malloc((n ? n : 1) * sizeof(*pat));
	size_t m = 0;

	if (!pat) {
		nomem(p);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '%' || s[i + 1] == '_')) {
			pat[m++] = (unsigned char)s[++i];
		} else if (s[i] == '%') {
			/* Runs of % are one wildcard; keeps the matcher's backtracking points few. */
			if (m == 0 || pat[m - 1] != CEB_CESQL_LIKE_ANY)
				pat[m++] = CEB_CESQL_LIKE_ANY;
		} else if (s[i] == '_') {
			pat[m++] = CEB_CESQL_LIKE_ONE;
		} else {
			pat[m++] = (unsigned char)s[i];
		}
	}
	node->pattern = pat;
	node->npattern = m;
	return true;
}

static struct ceb_cesql_node *parse_string(struct parser *p)
{
	struct ceb_cesql_node *node = node_new(p, CEB_CESQL_N_LITERAL, p->tok.pos);

	if (!node)
		return NULL;
	node->name = malloc(p->tok.len + 1);
	if (!node->name) {
		nomem(p);
		ceb_cesql_node_free(node);
		return NULL;
	}
	node->lit.len = ceb_cesql_lex_unquote(&p->lx, &p->tok, node->name);
	node->name[node->lit.len] = '\0';
	node->lit.type = CEB_CESQL_STRING;
	node->lit.s = node->name;
	node->type = CEB_CESQL_STRING;
	advance(p);
	return node;
}

static struct ceb_cesql_node *parse_int(struct parser *p, bool negative, size_t pos)
{
	struct ceb_cesql_node *node;
	uint32_t limit = negative ? 2147483648u : 2147483647u;

	if (p->tok.ovf || p->tok.ival > limit) {
		perr(p, pos, "integer literal out of range");
		return NULL;
	}
	node = node_new(p, CEB_CESQL_N_LITERAL, pos);
	if (!node)
		return NULL;
	node->lit.type = CEB_CESQL_INTEGER;
	/* Two's complement negation in unsigned arithmetic: 2147483648 becomes INT32_MIN. */
	node->lit.i = (int32_t)(negative ? 0u - p->tok.ival : p->tok.ival);
	node->type = CEB_CESQL_INTEGER;
	advance(p);
	return node;
}

static char *lower_name(const char *s, size_t n)
{
	char *name = malloc(n + 1);

	if (!name)
		return NULL;
	for (size_t i = 0; i < n; i++)
		name[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	name[n] = '\0';
	return name;
}

/* An attribute name; the grammar says [a-z0-9]+ but the TCK expects EXISTS SOURCE to find `source`,
 * so names are lower-cased (as sdk-go does). */
static struct ceb_cesql_node *parse_attr(struct parser *p, enum ceb_cesql_node_kind kind,
                                         size_t pos)
{
	struct ceb_cesql_node *node = node_new(p, kind, pos);

	if (!node)
		return NULL;
	node->name = lower_name(p->lx.src + p->tok.pos, p->tok.len);
	if (!node->name) {
		nomem(p);
		ceb_cesql_node_free(node);
		return NULL;
	}
	advance(p);
	return node;
}

static struct ceb_cesql_node *parse_call(struct parser *p)
{
	struct ceb_cesql_node *node = node_new(p, CEB_CESQL_N_CALL, p->tok.pos);
	size_t namepos = p->tok.pos, namelen = p->tok.len;

	if (!node)
		return NULL;
	node->name = malloc(namelen + 1);
	if (!node->name) {
		nomem(p);
		ceb_cesql_node_free(node);
		return NULL;
	}
	memcpy(node->name, p->lx.src + namepos, namelen);
	node->name[namelen] = '\0';
	advance(p); /* the name */
	advance(p); /* '(' (the lexer only makes FUNC tokens before one) */
	if (p->err)
		goto out;
	while (p->tok.kind != CEB_CESQL_T_RPAREN) {
		if (!add_kid(p, node, parse_logic(p)))
			goto out;
		if (p->tok.kind == CEB_CESQL_T_RPAREN)
			break;
		if (p->tok.kind != CEB_CESQL_T_COMMA) {
			unexpected(p);
			goto out;
		}
		advance(p);
		/* A comma must be followed by an argument: f(a,) is an error. */
		if (!p->err && p->tok.kind == CEB_CESQL_T_RPAREN)
			unexpected(p);
		if (p->err)
			goto out;
	}
	advance(p); /* ')' */
	if (p->err)
		goto out;
	node->fn = ceb_cesql_func_find(node->name, namelen, node->nkids);
	node->type = node->fn ? node->fn->ret : CEB_CESQL_BOOLEAN;
	if (!node->fn && !p->q->unresolved) {
		char buf[80];

		snprintf(buf, sizeof(buf), "%.40s/%zu", node->name, node->nkids);
		p->q->unresolved = strdup(buf);
		if (!p->q->unresolved) {
			nomem(p);
			goto out;
		}
		p->q->unresolved_col = ceb_cesql_column(p->lx.src, node->pos);
	}
out:
	if (p->err) {
		ceb_cesql_node_free(node);
		return NULL;
	}
	return node;
}

static struct ceb_cesql_node *parse_primary(struct parser *p)
{
	struct ceb_cesql_node *node = NULL;
	size_t pos = p->tok.pos;

	if (p->err)
		return NULL;
	switch (p->tok.kind) {
	case CEB_CESQL_T_INT: return parse_int(p, false, pos);
	case CEB_CESQL_T_STR: return parse_string(p);
	case CEB_CESQL_T_TRUE:
	case CEB_CESQL_T_FALSE:
		node = node_new(p, CEB_CESQL_N_LITERAL, pos);
		if (!node)
			return NULL;
		node->lit.type = CEB_CESQL_BOOLEAN;
		node->lit.b = p->tok.kind == CEB_CESQL_T_TRUE;
		advance(p);
		return node;
	case CEB_CESQL_T_IDENT: return parse_attr(p, CEB_CESQL_N_ATTR, pos);
	case CEB_CESQL_T_EXISTS:
		advance(p);
		if (p->err)
			return NULL;
		if (p->tok.kind != CEB_CESQL_T_IDENT) {
			char desc[64];

			ceb_cesql_tok_describe(&p->lx, &p->tok, desc, sizeof(desc));
			perr(p, p->tok.pos, "expected an attribute name after EXISTS, got %s",
			     desc);
			return NULL;
		}
		return parse_attr(p, CEB_CESQL_N_EXISTS, pos);
	case CEB_CESQL_T_FUNC:
		if (!enter(p))
			return NULL;
		node = parse_call(p);
		p->depth--;
		return node;
	case CEB_CESQL_T_LPAREN:
		if (!enter(p))
			return NULL;
		advance(p);
		node = parse_logic(p);
		p->depth--;
		if (node && p->tok.kind != CEB_CESQL_T_RPAREN) {
			unexpected(p);
			ceb_cesql_node_free(node);
			return NULL;
		}
		advance(p);
		return node;
	default: unexpected(p); return NULL;
	}
}

static struct ceb_cesql_node *parse_unary(struct parser *p)
{
	struct ceb_cesql_node *node, *kid;
	struct ceb_cesql_token op = p->tok;

	if (p->err)
		return NULL;
	if (op.kind != CEB_CESQL_T_NOT && op.kind != CEB_CESQL_T_MINUS)
		return parse_primary(p);
	advance(p);
	/* `-` directly before digits is a negative literal, so that -2147483648 fits in 32 bits. */
	if (op.kind == CEB_CESQL_T_MINUS && p->tok.kind == CEB_CESQL_T_INT)
		return parse_int(p, true, op.pos);
	if (!enter(p))
		return NULL;
	kid = parse_unary(p);
	p->depth--;
	node = node_new(p, op.kind == CEB_CESQL_T_NOT ? CEB_CESQL_N_NOT : CEB_CESQL_N_NEG, op.pos);
	if (!node) {
		ceb_cesql_node_free(kid);
		return NULL;
	}
	node->type = op.kind == CEB_CESQL_T_NOT ? CEB_CESQL_BOOLEAN : CEB_CESQL_INTEGER;
	if (!add_kid(p, node, kid)) {
		ceb_cesql_node_free(node);
		return NULL;
	}
	return node;
}

/* LIKE and IN bind tighter than every binary operator and loosely than NOT and unary minus. */
static struct ceb_cesql_node *parse_postfix(struct parser *p)
{
	struct ceb_cesql_node *left = parse_unary(p), *node;

	while (left && !p->err) {
		struct ceb_cesql_token first = p->tok;
		bool negate = false;

		if (p->tok.kind == CEB_CESQL_T_NOT) {
			advance(p);
			negate = true;
			if (!p->err && p->tok.kind != CEB_CESQL_T_LIKE &&
			    p->tok.kind != CEB_CESQL_T_IN) {
				unexpected(p);
				break;
			}
		} else if (p->tok.kind != CEB_CESQL_T_LIKE && p->tok.kind != CEB_CESQL_T_IN) {
			return left;
		}
		if (p->err)
			break;
		if (p->tok.kind == CEB_CESQL_T_LIKE) {
			advance(p);
			if (p->err)
				break;
			if (p->tok.kind != CEB_CESQL_T_STR) {
				char desc[64];

				ceb_cesql_tok_describe(&p->lx, &p->tok, desc, sizeof(desc));
				perr(p, p->tok.pos, "expected a string literal after LIKE, got %s",
				     desc);
				break;
			}
			node = node_new(p, CEB_CESQL_N_LIKE, first.pos);
			if (!node)
				break;
			node->negate = negate;
			{
				char *text = malloc(p->tok.len);
				size_t n;

				if (!text) {
					nomem(p);
					ceb_cesql_node_free(node);
					break;
				}
				n = ceb_cesql_lex_unquote(&p->lx, &p->tok, text);
				if (!compile_pattern(p, node, text, n)) {
					free(text);
					ceb_cesql_node_free(node);
					break;
				}
				free(text);
			}
			advance(p);
			if (!add_kid(p, node, left)) {
				left = NULL;
				ceb_cesql_node_free(node);
				break;
			}
			left = node;
			continue;
		}
		/* IN ( expr, ... ) with at least one element */
		advance(p);
		if (p->err)
			break;
		if (p->tok.kind != CEB_CESQL_T_LPAREN) {
			unexpected(p);
			break;
		}
		node = node_new(p, CEB_CESQL_N_IN, first.pos);
		if (!node)
			break;
		node->negate = negate;
		if (!add_kid(p, node, left)) {
			left = NULL;
			ceb_cesql_node_free(node);
			break;
		}
		left = node;
		if (!enter(p))
			break;
		advance(p);
		for (;;) {
			if (!add_kid(p, node, parse_logic(p)))
				break;
			if (p->tok.kind == CEB_CESQL_T_COMMA) {
				advance(p);
				continue;
			}
			if (p->tok.kind != CEB_CESQL_T_RPAREN)
				unexpected(p);
			break;
		}
		p->depth--;
		advance(p);
	}
	ceb_cesql_node_free(left);
	return NULL;
}

typedef struct ceb_cesql_node *parse_level_f(struct parser *p);

/* One left-associative binary level: the operators in ops[0..n) over operands from next. */
static struct ceb_cesql_node *parse_binary(struct parser *p, parse_level_f *next,
                                           enum ceb_cesql_node_kind kind,
                                           const enum ceb_cesql_tok *ops, size_t nops)
{
	struct ceb_cesql_node *left = next(p);

	while (left && !p->err) {
		struct ceb_cesql_token op = p->tok;
		bool match = false;

		for (size_t i = 0; i < nops; i++)
			match = match || op.kind == ops[i];
		if (!match)
			return left;
		advance(p);
		left = binary(p, kind, op, left, next(p));
	}
	ceb_cesql_node_free(left);
	return NULL;
}

static struct ceb_cesql_node *parse_mul(struct parser *p)
{
	static const enum ceb_cesql_tok ops[] = {CEB_CESQL_T_STAR, CEB_CESQL_T_SLASH,
	                                         CEB_CESQL_T_PERCENT};

	return parse_binary(p, parse_postfix, CEB_CESQL_N_ARITH, ops, 3);
}

static struct ceb_cesql_node *parse_add(struct parser *p)
{
	static const enum ceb_cesql_tok ops[] = {CEB_CESQL_T_PLUS, CEB_CESQL_T_MINUS};

	return parse_binary(p, parse_mul, CEB_CESQL_N_ARITH, ops, 2);
}

/* The grammar puts = != <> one level above < <= > >=. */
static struct ceb_cesql_node *parse_eq(struct parser *p)
{
	static const enum ceb_cesql_tok ops[] = {CEB_CESQL_T_EQ, CEB_CESQL_T_NE};

	return parse_binary(p, parse_add, CEB_CESQL_N_EQUAL, ops, 2);
}

static struct ceb_cesql_node *parse_order(struct parser *p)
{
	static const enum ceb_cesql_tok ops[] = {CEB_CESQL_T_LT, CEB_CESQL_T_LE, CEB_CESQL_T_GT,
	                                         CEB_CESQL_T_GE};

	return parse_binary(p, parse_eq, CEB_CESQL_N_ORDER, ops, 4);
}

static bool is_logic(enum ceb_cesql_tok kind)
{
	return kind == CEB_CESQL_T_AND || kind == CEB_CESQL_T_OR || kind == CEB_CESQL_T_XOR;
}

/* AND, OR and XOR share one level and associate to the right (the grammar's <assoc=right>, as in
 * sdk-go and sdk-java). A whole chain becomes one n-ary node, so long conjunctions do not count
 * against the depth limit. */
static struct ceb_cesql_node *parse_logic(struct parser *p)
{
	struct ceb_cesql_node *first = parse_order(p), *node;
	enum ceb_cesql_tok *ops;

	if (!first || p->err || !is_logic(p->tok.kind)) {
		if (p->err) {
			ceb_cesql_node_free(first);
			return NULL;
		}
		return first;
	}
	node = node_new(p, CEB_CESQL_N_LOGIC, p->tok.pos);
	if (!node || !add_kid(p, node, first)) {
		if (!node)
			ceb_cesql_node_free(first);
		ceb_cesql_node_free(node);
		return NULL;
	}
	while (is_logic(p->tok.kind) && !p->err) {
		ops = realloc(node->ops, node->nkids * sizeof(*ops));
		if (!ops) {
			nomem(p);
			break;
		}
		node->ops = ops;
		node->ops[node->nkids - 1] = p->tok.kind;
		advance(p);
		if (!add_kid(p, node, parse_order(p)))
			break;
	}
	if (p->err) {
		ceb_cesql_node_free(node);
		return NULL;
	}
	return node;
}

int ceb_cesql_compile(const char *expr, size_t len, const struct ceb_cesql_limits *lim,
                      struct ceb_cesql **out, char *errbuf, size_t errlen, int *errcol)
{
	char dummy[1];
	struct parser p = {0};
	struct ceb_cesql *q = NULL;
	int rc;

	if (!errbuf || errlen == 0) {
		errbuf = dummy;
		errlen = sizeof(dummy);
	}
	errbuf[0] = '\0';
	p.lim = lim ? lim : &ceb_cesql_limits_default;
	p.lx.src = expr;
	p.lx.len = len;
	p.lx.errbuf = errbuf;
	p.lx.errlen = errlen;
	if (len > p.lim->max_length) {
		snprintf(errbuf, errlen, "expression longer than %zu bytes", p.lim->max_length);
		p.lx.errpos = p.lim->max_length;
		rc = CEB_EINVAL;
		goto out;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(errbuf, errlen, "out of memory");
		rc = CEB_ENOMEM;
		goto out;
	}
	p.q = q;
	advance(&p);
	q->root = parse_logic(&p);
	if (!p.err && p.tok.kind != CEB_CESQL_T_EOF)
		unexpected(&p);
	rc = p.err;
out:
	if (rc) {
		if (errcol)
			*errcol = rc == CEB_EINVAL ? ceb_cesql_column(expr, p.lx.errpos) : 0;
		ceb_cesql_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

const char *ceb_cesql_unresolved_call(const struct ceb_cesql *q, int *col)
{
	if (col)
		*col = q->unresolved ? q->unresolved_col : 0;
	return q->unresolved;
}

void ceb_cesql_free(struct ceb_cesql *q)
{
	if (!q)
		return;
	ceb_cesql_node_free(q->root);
	free(q->unresolved);
	free(q);
}
