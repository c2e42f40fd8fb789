/* httpframe.c - header lookup and body framing for HTTP/1.1 (see httpframe.h). */
#include "httpframe.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool http_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* one field line (without its CRLF): NULL, or why not */
static const char *field_line(const char *l, size_t n)
{
	if (l[0] == ' ' || l[0] == '\t')
		return "obsolete line folding";
	size_t nl = 0;
	while (nl < n && http_tchar(l[nl]))
		nl++;
	if (nl == 0 || nl == n || l[nl] != ':')
		return "a header field name is invalid";
	for (size_t i = nl + 1; i < n; i++) {
		unsigned char ch = (unsigned char)l[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return ch == '\r' || ch == '\n' ? "a bare CR or LF in a header"
			                                : "a control character in a header";
	}
	return NULL;
}

static bool name_is(const char *l, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k && l[k] == ':' && !strncasecmp(l, name, k);
}

/* the framing fields, once each and not together */
static const char *framing(int cl, int te, const char *te_val, size_t te_len, bool request)
{
	if (cl > 1)
		return "more than one Content-Length";
	if (te > 1)
		return "more than one Transfer-Encoding";
	if (cl && te)
		return "both Content-Length and Transfer-Encoding";
	if (te && request && !(te_len == 7 && !strncasecmp(te_val, "chunked", 7)))
		return "a Transfer-Encoding other than chunked";
	return NULL;
}

const char *http_head_check(const char *head, size_t len, bool request)
{
	int cl = 0, te = 0, host = 0;
	const char *te_val = "";
	size_t te_len = 0;
	for (size_t off = 0, lineno = 0; off < len; lineno++) {
		const char *l = head + off;
		const char *lf = memchr(l, '\n', len - off);
		if (lf == NULL || lf == l || lf[-1] != '\r')
			return "a line does not end in CRLF";
		size_t n = (size_t)(lf - 1 - l);
		off = (size_t)(lf + 1 - head);
		if (n == 0)
			return off == len ? framing(cl, te, te_val, te_len, request)
			                  : "bytes after the head's end";
		if (memchr(l, '\r', n) || memchr(l, '\0', n))
			return "a bare CR or NUL in the head";
		if (lineno == 0)
			continue; /* the request or status line: its own parser's */
		const char *why = field_line(l, n);
		if (why)
			return why;
		if (request && name_is(l, n, "Host") && ++host > 1)
			return "more than one Host";
		if (name_is(l, n, "Content-Length")) {
			cl++;
		} else if (name_is(l, n, "Transfer-Encoding")) {
			te++;
			te_val = l + 18;
			te_len = n - 18;
			while (te_len && (*te_val == ' ' || *te_val == '\t'))
				te_val++, te_len--;
			while (te_len && (te_val[te_len - 1] == ' ' || te_val[te_len - 1] == '\t'))
				te_len--;
		}
	}
	return "the head has no end";
}

bool http_header(const char *head, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end = head + len;
	const char *line = memchr(head, '\n', len); /* skip the start line */
	while (line && ++line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		size_t ll = (size_t)(eol - line);
		if (ll <= 1)
			break; /* the empty line */
		if (ll > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
			const char *v = line + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*val = v;
			*vlen = (size_t)(ve - v);
			return true;
		}
		line = eol;
	}
	return false;
}

/* true when the last coding in a Transfer-Encoding value is chunked */
static bool last_coding_chunked(const char *v, size_t n)
{
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n >= 7 && !strncasecmp(v + n - 7, "chunked", 7) &&
	       (n == 7 || v[n - 8] == ',' || v[n - 8] == ' ');
}

int http_body_init(struct body_scan *b, const char *head, size_t len, int status, bool no_body)
{
	memset(b, 0, sizeof *b);
	if (no_body || (status >= 100 && status < 200) || status == 204 || status == 304) {
		b->kind = BODY_NONE;
		b->done = true;
		return 0;
	}
	const char *v;
	size_t vl;
	if (http_header(head, len, "Transfer-Encoding", &v, &vl)) {
		if (!last_coding_chunked(v, vl))
			return status ? (b->kind = BODY_UNTIL_CLOSE, 0) : -1;
		b->kind = BODY_CHUNKED;
		return 0;
	}
	if (http_header(head, len, "Content-Length", &v, &vl)) {
		uint64_t n = 0;
		if (vl == 0 || vl > 18)
			return -1;
		for (size_t i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -1; /* also "5, 5": ambiguous lists are refused */
			n = n * 10 + (uint64_t)(v[i] - '0');
		}
		b->kind = BODY_LENGTH;
		b->left = n;
		b->done = n == 0;
		return 0;
	}
	b->kind = status ? BODY_UNTIL_CLOSE : BODY_NONE; /* a request without: no body */
	b->done = b->kind == BODY_NONE;
	return 0;
}

enum {
	C_SIZE,
	C_SIZE_ANY,
	C_EXT,
	C_SIZE_LF,
	C_DATA,
	C_DATA_CR,
	C_DATA_LF,
	C_TR_START,
	C_TR_LINE,
	C_TR_LINE_LF,
	C_TR_END_LF
};

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* one byte of chunked syntax outside chunk data; -1 when malformed */
static int chunk_byte(struct body_scan *b, char ch)
{
	switch (b->cstate) {
	case C_SIZE:
	case C_SIZE_ANY:
		if (hexval(ch) >= 0) {
			if (b->left >> 59)
				return -1; /* absurd chunk size */
			b->left = b->left * 16 + (uint64_t)hexval(ch);
			b->cstate = C_SIZE_ANY;
		} else if (b->cstate == C_SIZE_ANY && (ch == ';' || ch == ' ' || ch == '\t')) {
			b->cstate = C_EXT;
		} else if (b->cstate == C_SIZE_ANY && ch == '\r') {
			b->cstate = C_SIZE_LF;
		} else {
			return -1;
		}
		return 0;
	case C_EXT:
		if (ch == '\r')
			b->cstate = C_SIZE_LF;
		else if (((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -1; /* a bare LF or a control character in an extension */
		return 0;
	case C_SIZE_LF:
		if (ch != '\n')
			return -1;
		b->cstate = b->left ? C_DATA : C_TR_START;
		return 0;
	case C_DATA_CR:
		if (ch != '\r')
			return -1;
		b->cstate = C_DATA_LF;
		return 0;
	case C_DATA_LF:
		if (ch != '\n')
			return -1;
		b->cstate = C_SIZE;
		return 0;
	case C_TR_START:
		b->cstate = ch == '\r' ? C_TR_END_LF : C_TR_LINE;
		return 0;
	case C_TR_LINE:
		if (ch == '\r')
			b->cstate = C_TR_LINE_LF;
		else if (ch == '\n' || ch == '\0')
			return -1; /* a trailer line ends CRLF, nothing else */
		return 0;
	case C_TR_LINE_LF:
		if (ch != '\n')
			return -1;
		b->cstate = C_TR_START;
		return 0;
	case C_TR_END_LF:
		if (ch != '\n')
			return -1;
		b->done = true;
		return 0;
	}
	return -1;
}

long http_body_feed(struct body_scan *b, const char *p, size_t len)
{
	if (b->done)
		return 0;
	if (b->kind == BODY_UNTIL_CLOSE) {
		if (b->on_data && len)
			b->on_data(b->ud, p, len);
		return (long)len;
	}
	if (b->kind == BODY_LENGTH) {
		size_t n = b->left < len ? (size_t)b->left : len;
		if (b->on_data && n)
			b->on_data(b->ud, p, n);
		b->left -= n;
		b->done = b->left == 0;
		return (long)n;
	}
	if (b->kind != BODY_CHUNKED)
		return 0;
	size_t i = 0;
	while (i < len && !b->done) {
		if (b->cstate == C_DATA) {
			size_t n = b->left < len - i ? (size_t)b->left : len - i;
			if (b->on_data && n)
				b->on_data(b->ud, p + i, n);
			i += n;
			b->left -= n;
			if (b->left == 0)
				b->cstate = C_DATA_CR;
			continue;
		}
		if (chunk_byte(b, p[i++]) < 0)
			return -1;
	}
	return (long)i;
}
