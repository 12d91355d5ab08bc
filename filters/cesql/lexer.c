/* CESQL lexer: turns an expression into tokens (CESQLLexer.g4 of CESQL v1.0.0), keywords
 * case-insensitive, with the byte offset of every token so that errors can name a column. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "broker/error.h"
#include "filters/cesql/cesql.h"

static const struct {
	const char *word;
	enum ceb_cesql_tok kind;
} keywords[] = {
        {"AND", CEB_CESQL_T_AND}, {"OR", CEB_CESQL_T_OR},     {"XOR", CEB_CESQL_T_XOR},
        {"NOT", CEB_CESQL_T_NOT}, {"LIKE", CEB_CESQL_T_LIKE}, {"EXISTS", CEB_CESQL_T_EXISTS},
        {"IN", CEB_CESQL_T_IN},   {"TRUE", CEB_CESQL_T_TRUE}, {"FALSE", CEB_CESQL_T_FALSE},
};

int ceb_cesql_column(const char *src, size_t pos)
{
	int col = 1;

	/* Count characters, not bytes: every byte that is not a UTF-8 continuation byte starts one. */
	for (size_t i = 0; i < pos; i++)
		if (((unsigned char)src[i] & 0xC0) != 0x80)
			col++;
	return col;
}

static int lex_error(struct ceb_cesql_lexer *lx, size_t pos, const char *what)
{
	lx->errpos = pos;
	snprintf(lx->errbuf, lx->errlen, "%s at column %d", what, ceb_cesql_column(lx->src, pos));
	return CEB_EINVAL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A run of [A-Za-z0-9_]: an integer, a keyword, a function name or an attribute name. */
static int lex_word(struct ceb_cesql_lexer *lx, struct ceb_cesql_token *tok)
{
	const char *s = lx->src + tok->pos;
	size_t n = 0, after;
	bool digits = true, underscore = false;
	char msg[128];

	while (tok->pos + n < lx->len && is_word(s[n])) {
		digits = digits && is_digit(s[n]);
		underscore = underscore || s[n] == '_';
		n++;
	}
	tok->len = n;
	lx->pos = tok->pos + n;
	if (digits) {
		uint64_t v = 0;

		/* Keep the value up to 2^31 (the magnitude of INT32_MIN); anything above overflows. */
		for (size_t i = 0; i < n; i++) {
			v = v * 10 + (uint64_t)(s[i] - '0');
			if (v > 2147483648u) {
				tok->ovf = true;
				v = 2147483648u;
			}
		}
		tok->kind = CEB_CESQL_T_INT;
		tok->ival = (uint32_t)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i].word) == n && strncasecmp(s, keywords[i].word, n) == 0) {
			tok->kind = keywords[i].kind;
			return 0;
		}
	}
	after = lx->pos;
	while (after < lx->len && is_blank(lx->src[after]))
		after++;
	if (after < lx->len && lx->src[after] == '(') {
		/* Function names are [A-Za-z][A-Za-z_]* in the grammar. */
		bool ok = is_alpha(s[0]);

		for (size_t i = 1; i < n && ok; i++)
			ok = is_alpha(s[i]) || s[i] == '_';
		if (!ok) {
			snprintf(msg, sizeof(msg), "invalid function name '%.*s'",
			         (int)(n > 40 ? 40 : n), s);
			return lex_error(lx, tok->pos, msg);
		}
		tok->kind = CEB_CESQL_T_FUNC;
		return 0;
	}
	if (underscore) {
		snprintf(msg, sizeof(msg), "invalid attribute name '%.*s'", (int)(n > 40 ? 40 : n),
		         s);
		return lex_error(lx, tok->pos, msg);
	}
	tok->kind = CEB_CESQL_T_IDENT;
	return 0;
}

/* A quoted literal; a backslash always takes the next byte with it (as in the ANTLR lexer), so that
 * \' and \" do not end the literal. */
static int lex_string(struct ceb_cesql_lexer *lx, struct ceb_cesql_token *tok)
{
	char quote = lx->src[tok->pos];
	size_t i = tok->pos + 1;

	while (i < lx->len) {
		if (lx->src[i] == '\\' && i + 1 < lx->len) {
			i += 2;
		} else if (lx->src[i] == quote) {
			tok->kind = CEB_CESQL_T_STR;
			tok->len = i + 1 - tok->pos;
			lx->pos = i + 1;
			return 0;
		} else {
			i++;
		}
	}
	return lex_error(lx, tok->pos, "unterminated string literal");
}

int ceb_cesql_lex_next(struct ceb_cesql_lexer *lx, struct ceb_cesql_token *tok)
{
	const char *s;
	char c, n, msg[64];

	while (lx->pos < lx->len && is_blank(lx->src[lx->pos]))
		lx->pos++;
	memset(tok, 0, sizeof(*tok));
	tok->pos = lx->pos;
	if (lx->pos >= lx->len) {
		tok->kind = CEB_CESQL_T_EOF;
		return 0;
	}
	s = lx->src + lx->pos;
	c = s[0];
	n = lx->pos + 1 < lx->len ? s[1] : '\0';
	if (is_word(c))
		return lex_word(lx, tok);
	if (c == '\'' || c == '"')
		return lex_string(lx, tok);
	tok->len = 1;
	switch (c) {
	case '(': tok->kind = CEB_CESQL_T_LPAREN; break;
	case ')': tok->kind = CEB_CESQL_T_RPAREN; break;
	case ',': tok->kind = CEB_CESQL_T_COMMA; break;
	case '+': tok->kind = CEB_CESQL_T_PLUS; break;
	case '-': tok->kind = CEB_CESQL_T_MINUS; break;
	case '*': tok->kind = CEB_CESQL_T_STAR; break;
	case '/': tok->kind = CEB_CESQL_T_SLASH; break;
	case '%': tok->kind = CEB_CESQL_T_PERCENT; break;
	case '=': tok->kind = CEB_CESQL_T_EQ; break;
	case '!':
		if (n != '=')
			return lex_error(lx, tok->pos, "unexpected character '!'");
		tok->kind = CEB_CESQL_T_NE;
		tok->len = 2;
		break;
	case '<':
		if (n == '>') {
			tok->kind = CEB_CESQL_T_NE;
			tok->len = 2;
		} else if (n == '=') {
			tok->kind = CEB_CESQL_T_LE;
			tok->len = 2;
		} else {
			tok->kind = CEB_CESQL_T_LT;
		}
		break;
	case '>':
		if (n == '=') {
			tok->kind = CEB_CESQL_T_GE;
			tok->len = 2;
		} else {
			tok->kind = CEB_CESQL_T_GT;
		}
		break;
	default:
		if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
			snprintf(msg, sizeof(msg), "unexpected character '%c'", c);
		else
			snprintf(msg, sizeof(msg), "unexpected byte 0x%02X",
			         (unsigned)(unsigned char)c);
		return lex_error(lx, tok->pos, msg);
	}
	lx->pos += tok->len;
	return 0;
}

void ceb_cesql_tok_describe(const struct ceb_cesql_lexer *lx, const struct ceb_cesql_token *tok,
                            char *buf, size_t len)
{
	size_t n = tok->len > 32 ? 32 : tok->len;

	if (tok->kind == CEB_CESQL_T_EOF)
		snprintf(buf, len, "end of expression");
	else
		snprintf(buf, len, "token '%.*s%s'", (int)n, lx->src + tok->pos,
		         n < tok->len ? "..." : "");
}

size_t ceb_cesql_lex_unquote(const struct ceb_cesql_lexer *lx, const struct ceb_cesql_token *tok,
                             char *dst)
{
	const char *s = lx->src + tok->pos;
	char quote = s[0];
	size_t out = 0;

	/* Only the escaped quote of the literal's own kind is unescaped (CESQL EBNF); every other
	 * backslash stays, so LIKE still sees \% and \_. */
	for (size_t i = 1; i + 1 < tok->len; i++) {
		if (s[i] == '\\' && i + 2 < tok->len) {
			if (s[i + 1] == quote) {
				dst[out++] = quote;
			} else {
				dst[out++] = s[i];
				dst[out++] = s[i + 1];
			}
			i++;
		} else {
			dst[out++] = s[i];
		}
	}
	return out;
}
