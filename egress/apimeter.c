/* apimeter.c - usage extraction from model API responses (see apimeter.h);
 * json-c parses, we only pick fields. */
#include "apimeter.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define METER_MAX (16u << 20) /* a JSON body or one SSE line we still parse */

void apimeter_init(struct api_meter *m, const char *ctype, size_t ctlen)
{
	memset(m, 0, sizeof *m);
	m->max = METER_MAX;
	if (ctype == NULL)
		return;
	if (ctlen >= 17 && !strncasecmp(ctype, "text/event-stream", 17))
		m->mode = METER_SSE;
	else if (ctlen >= 16 && !strncasecmp(ctype, "application/json", 16))
		m->mode = METER_JSON;
}

static bool take(struct api_meter *m, const char *p, size_t n)
{
	if (m->overflow)
		return false;
	if (m->len + n > m->max) {
		m->overflow = true;
		return false;
	}
	if (m->len + n + 1 > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + n + 1)
			cap *= 2;
		char *b = realloc(m->buf, cap);
		if (b == NULL) {
			m->overflow = true;
			return false;
		}
		m->buf = b;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
	m->buf[m->len] = '\0';
	return true;
}

static json_object *field(json_object *o, const char *k)
{
	json_object *v = NULL;
	return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
	           ? v
	           : NULL;
}

/* sets *dst when o has an integer k */
static void count(json_object *o, const char *k, long long *dst, bool *seen)
{
	json_object *v = field(o, k);
	if (v && json_object_is_type(v, json_type_int)) {
		long long n = json_object_get_int64(v);
		*dst = n < 0 ? 0 : n;
		*seen = true;
	}
}

static void model_of(struct api_usage *u, json_object *o, const char *k)
{
	json_object *v = field(o, k);
	if (v && json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
		snprintf(u->model, sizeof u->model, "%s", json_object_get_string(v));
}

/* one usage object in any of the APIs' spellings; counts are cumulative
 * where an API repeats them (message_delta), so a later value replaces */
static void usage_fields(struct api_usage *u, json_object *us)
{
	if (us == NULL)
		return;
	count(us, "input_tokens", &u->input, &u->seen); /* Anthropic, OpenAI Responses */
	count(us, "output_tokens", &u->output, &u->seen);
	count(us, "cache_read_input_tokens", &u->cache_read, &u->seen);
	count(us, "cache_creation_input_tokens", &u->cache_creation, &u->seen);
	count(us, "prompt_tokens", &u->input, &u->seen); /* OpenAI Chat Completions */
	count(us, "completion_tokens", &u->output, &u->seen);
	count(field(us, "prompt_tokens_details"), "cached_tokens", &u->cache_read, &u->seen);
	count(field(us, "input_tokens_details"), "cached_tokens", &u->cache_read, &u->seen);
	count(us, "promptTokenCount", &u->input, &u->seen); /* Gemini */
	count(us, "candidatesTokenCount", &u->output, &u->seen);
	count(us, "cachedContentTokenCount", &u->cache_read, &u->seen);
}

void apimeter_json(struct api_usage *u, const char *json, size_t len)
{
	json_tokener *tok = json_tokener_new();
	if (tok == NULL)
		return;
	json_object *o = json_tokener_parse_ex(tok, json, (int)len);
	json_tokener_free(tok);
	if (o == NULL)
		return;
	/* the object itself, or the message/response it wraps (SSE events) */
	json_object *inner[] = {o, field(o, "message"), field(o, "response")};
	for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
		if (inner[i] == NULL)
			continue;
		model_of(u, inner[i], "model");
		model_of(u, inner[i], "modelVersion");
		usage_fields(u, field(inner[i], "usage"));
		usage_fields(u, field(inner[i], "usageMetadata"));
	}
	json_object_put(o);
}

/* one SSE line: "data: {...}" carries an event's JSON */
static void sse_line(struct api_meter *m, const char *line, size_t n)
{
	if (n && line[n - 1] == '\r')
		n--;
	if (n < 5 || strncmp(line, "data:", 5) != 0)
		return;
	line += 5;
	n -= 5;
	while (n && *line == ' ') {
		line++;
		n--;
	}
	if (n && line[0] == '{')
		apimeter_json(&m->u, line, n);
}

void apimeter_feed(struct api_meter *m, const char *p, size_t n)
{
	if (m->mode == METER_JSON) {
		take(m, p, n);
		return;
	}
	if (m->mode != METER_SSE)
		return;
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) : n;
		if (m->len == 0 && nl && !m->overflow) {
			sse_line(m, p, k); /* a whole line in this piece: no copy */
		} else {
			take(m, p, k);
			if (nl) {
				if (!m->overflow)
					sse_line(m, m->buf, m->len);
				m->len = 0;
				m->overflow = false;
			}
		}
		if (nl == NULL)
			break;
		p += k + 1;
		n -= k + 1;
	}
}

void apimeter_finish(struct api_meter *m)
{
	if (m->mode == METER_JSON && !m->overflow && m->len)
		apimeter_json(&m->u, m->buf, m->len);
	else if (m->mode == METER_SSE && !m->overflow && m->len)
		sse_line(m, m->buf, m->len);
	m->len = 0;
}

void apimeter_free(struct api_meter *m)
{
	free(m->buf);
	m->buf = NULL;
	m->len = m->cap = 0;
}
