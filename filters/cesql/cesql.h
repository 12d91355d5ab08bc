/* CloudEvents SQL (CESQL) v1.0.0: the lexer, parser and typed evaluator behind the `cesql` filter
 * dialect and the conformance runner. An expression compiles once into an immutable tree. */
#ifndef CEB_CESQL_H
#define CEB_CESQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/ce/event.h"

/* Limits on CESQL expressions (untrusted-ish configuration). */
struct ceb_cesql_limits {
	size_t max_length; /* bytes of the expression; default 4096 */
	size_t max_depth;  /* nesting of the syntax tree; default 64 */
};
extern const struct ceb_cesql_limits ceb_cesql_limits_default;

/* The three value types of CESQL v1 (§2.1). */
enum ceb_cesql_type {
	CEB_CESQL_BOOLEAN = 0,
	CEB_CESQL_INTEGER,
	CEB_CESQL_STRING,
};

/* The error kinds of §3.3, named as the TCK names them (ceb_cesql_error_name). */
enum ceb_cesql_error {
	CEB_CESQL_OK = 0,
	CEB_CESQL_EPARSE,
	CEB_CESQL_EMATH,
	CEB_CESQL_ECAST,
	CEB_CESQL_EMISSING_ATTRIBUTE,
	CEB_CESQL_EMISSING_FUNCTION,
	CEB_CESQL_EFUNCTION_EVALUATION,
	CEB_CESQL_EGENERIC,
};

/* "parse", "math", "cast", "missingAttribute", "missingFunction", "functionEvaluation", "generic";
 * "" for CEB_CESQL_OK. Never NULL. */
const char *ceb_cesql_error_name(enum ceb_cesql_error err);

/* A result handed out by ceb_cesql_eval. A String is a NUL-terminated copy owned by the value. */
struct ceb_cesql_value {
	enum ceb_cesql_type type;
	bool b;
	int32_t i;
	char *s; /* String only; NULL otherwise */
	size_t len;
};

/* Frees the string of a value and resets it to Boolean false. Accepts NULL. */
void ceb_cesql_value_clear(struct ceb_cesql_value *val);

struct ceb_cesql;

/* Compiles len bytes of expr (not necessarily NUL-terminated) into an immutable tree. lim may be NULL
 * (ceb_cesql_limits_default). On a syntax error or a limit returns CEB_EINVAL, writes
 * "unexpected token ')' at column 14" style reasons to errbuf and the 1-based column (in characters)
 * to *errcol (when not NULL). CEB_ENOMEM when out of memory. The caller owns *out. */
int ceb_cesql_compile(const char *expr, size_t len, const struct ceb_cesql_limits *lim,
                      struct ceb_cesql **out, char *errbuf, size_t errlen, int *errcol);

/* Evaluates the expression against ev and returns the error kind (CEB_CESQL_OK when none); *out gets
 * the value that goes with it (the zero value of the failing node's type on error), to be released
 * with ceb_cesql_value_clear. Running out of memory is reported as CEB_CESQL_EGENERIC. Thread-safe. */
enum ceb_cesql_error ceb_cesql_eval(const struct ceb_cesql *q, const struct ceb_event *ev,
                                    struct ceb_cesql_value *out);

/* The filter verdict: true only for Boolean TRUE with no error. Allocates only for string functions
 * whose results outgrow a small stack buffer. Thread-safe. */
bool ceb_cesql_match(const struct ceb_cesql *q, const struct ceb_event *ev);

/* The first call that no built-in function matches by name and arity (it evaluates to false plus a
 * missingFunction error), as "NAME/arity", with its column in *col; NULL when every call resolves.
 * Lets configuration loading reject such filters early. Owned by q. */
const char *ceb_cesql_unresolved_call(const struct ceb_cesql *q, int *col);

void ceb_cesql_free(struct ceb_cesql *q);

/* ---- Internal to filters/cesql: shared by lexer.c, parser.c and eval.c. ---- */

enum ceb_cesql_tok {
	CEB_CESQL_T_EOF = 0,
	CEB_CESQL_T_INT,   /* digits; value in ival (saturates above 2^31, see ovf) */
	CEB_CESQL_T_STR,   /* quoted literal; raw text including the quotes */
	CEB_CESQL_T_IDENT, /* attribute name */
	CEB_CESQL_T_FUNC,  /* a name directly followed (blanks allowed) by '(' */
	CEB_CESQL_T_TRUE,
	CEB_CESQL_T_FALSE,
	CEB_CESQL_T_AND,
	CEB_CESQL_T_OR,
	CEB_CESQL_T_XOR,
	CEB_CESQL_T_NOT,
	CEB_CESQL_T_LIKE,
	CEB_CESQL_T_EXISTS,
	CEB_CESQL_T_IN,
	CEB_CESQL_T_LPAREN,
	CEB_CESQL_T_RPAREN,
	CEB_CESQL_T_COMMA,
	CEB_CESQL_T_PLUS,
	CEB_CESQL_T_MINUS,
	CEB_CESQL_T_STAR,
	CEB_CESQL_T_SLASH,
	CEB_CESQL_T_PERCENT,
	CEB_CESQL_T_EQ,
	CEB_CESQL_T_NE, /* != and <> */
	CEB_CESQL_T_LT,
	CEB_CESQL_T_LE,
	CEB_CESQL_T_GT,
	CEB_CESQL_T_GE,
};

struct ceb_cesql_token {
	enum ceb_cesql_tok kind;
	size_t pos; /* byte offset in the expression */
	size_t len; /* bytes of the token's text */
	uint32_t ival;
	bool ovf; /* an integer literal above 2147483648 */
};

struct ceb_cesql_lexer {
	const char *src;
	size_t len;
	size_t pos;
	char *errbuf;
	size_t errlen;
	size_t errpos; /* byte offset of the error */
};

/* The 1-based column (in characters) of byte offset pos. */
int ceb_cesql_column(const char *src, size_t pos);
/* Scans the next token. 0, or CEB_EINVAL with the reason in lx->errbuf and lx->errpos. */
int ceb_cesql_lex_next(struct ceb_cesql_lexer *lx, struct ceb_cesql_token *tok);
/* A short printable name of a token for messages ("')'", "end of expression", "identifier 'foo'"). */
void ceb_cesql_tok_describe(const struct ceb_cesql_lexer *lx, const struct ceb_cesql_token *tok,
                            char *buf, size_t len);
/* The value of a string literal token: the text between the quotes with \' (or \") unescaped and every
 * other backslash kept. dst must hold tok->len bytes; returns the length written. */
size_t ceb_cesql_lex_unquote(const struct ceb_cesql_lexer *lx, const struct ceb_cesql_token *tok,
                             char *dst);

enum ceb_cesql_node_kind {
	CEB_CESQL_N_LITERAL,
	CEB_CESQL_N_ATTR,
	CEB_CESQL_N_NOT,
	CEB_CESQL_N_NEG,
	CEB_CESQL_N_ARITH, /* op: + - * / % */
	CEB_CESQL_N_ORDER, /* op: < <= > >= (Integer only) */
	CEB_CESQL_N_EQUAL, /* op: = or != (right operand picks the type) */
	CEB_CESQL_N_LOGIC, /* n-ary chain of AND/OR/XOR, right-associative */
	CEB_CESQL_N_LIKE,
	CEB_CESQL_N_EXISTS,
	CEB_CESQL_N_IN,
	CEB_CESQL_N_CALL,
};

/* LIKE patterns compile to one element per byte; wildcards are out of the byte range. */
enum {
	CEB_CESQL_LIKE_ONE = -1, /* _ : exactly one character */
	CEB_CESQL_LIKE_ANY = -2, /* % : any run of characters */
};

struct ceb_cesql_node;
struct ceb_cesql_ctx;
struct ceb_cesql_val {
	enum ceb_cesql_type type;
	bool b;
	int32_t i;
	const char *s;
	size_t len;
};

typedef enum ceb_cesql_error ceb_cesql_fn(struct ceb_cesql_ctx *ctx, struct ceb_cesql_val *args,
                                          size_t n, struct ceb_cesql_val *out);

struct ceb_cesql_func {
	const char *name; /* upper case */
	size_t nfixed;    /* fixed parameters */
	bool variadic;    /* then any number more Strings */
	enum ceb_cesql_type params[3];
	enum ceb_cesql_type ret;
	ceb_cesql_fn *fn;
};

/* The built-in function for a name (any case) and arity, or NULL. */
const struct ceb_cesql_func *ceb_cesql_func_find(const char *name, size_t namelen, size_t nargs);

struct ceb_cesql_node {
	enum ceb_cesql_node_kind kind;
	enum ceb_cesql_tok op;    /* ARITH/ORDER/EQUAL: the operator token */
	enum ceb_cesql_type type; /* the static return type (zero value on error) */
	bool negate;              /* NOT LIKE, NOT IN, != */
	size_t pos;               /* byte offset in the expression, for messages */
	size_t depth;             /* height of the subtree, for the depth limit */
	struct ceb_cesql_val lit; /* LITERAL */
	char *name;               /* ATTR/EXISTS: lower-cased name; CALL: the name as written */
	int16_t *pattern;         /* LIKE */
	size_t npattern;
	enum ceb_cesql_tok *ops;         /* LOGIC: nkids - 1 operators */
	const struct ceb_cesql_func *fn; /* CALL: NULL when unresolved */
	struct ceb_cesql_node **kids;
	size_t nkids;
};

struct ceb_cesql {
	struct ceb_cesql_node *root;
	char *unresolved; /* "NAME/n" of the first unresolved call, or NULL */
	int unresolved_col;
};

void ceb_cesql_node_free(struct ceb_cesql_node *node);

/* The built-in case-mapping table that LOWER and UPPER fall back on when the C.UTF-8 locale is
 * missing: ASCII, Latin-1, Latin Extended-A, basic Greek and Cyrillic. Other code points map to
 * themselves. */
uint32_t ceb_cesql_case_table(uint32_t cp, bool upper);

#endif
