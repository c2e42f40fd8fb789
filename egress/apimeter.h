/* apimeter.h - token usage read from a model API's response as it streams
 * by: the JSON body's `usage`, or the SSE events that carry it (Anthropic's
 * message_start/message_delta, OpenAI's final chunk and response.completed,
 * Gemini's usageMetadata). Pure; fed the de-chunked body in any pieces. */
#ifndef WARREN_APIMETER_H
#define WARREN_APIMETER_H

#include <stdbool.h>
#include <stddef.h>

struct api_usage {
	char model[64];
	long long input, output, cache_read, cache_creation;
	bool seen; /* some usage was reported */
};

enum meter_mode { METER_NONE, METER_JSON, METER_SSE };

struct api_meter {
	enum meter_mode mode;
	char *buf; /* JSON: the body so far; SSE: the current line */
	size_t len, cap, max;
	bool overflow; /* JSON body or SSE line larger than max: not parsed */
	struct api_usage u;
};

/* mode from the response's Content-Type (NULL: none) */
void apimeter_init(struct api_meter *m, const char *ctype, size_t ctlen);
void apimeter_feed(struct api_meter *m, const char *p, size_t n);
/* parses what is left (a JSON body); m->u holds the result */
void apimeter_finish(struct api_meter *m);
void apimeter_free(struct api_meter *m);

/* the usage fields of one JSON object (a body or an SSE event's data) */
void apimeter_json(struct api_usage *u, const char *json, size_t len);

#endif
