/* fuzz_proxy.c - libFuzzer target: the egress proxy's request parsing (HTTP
 * head and SOCKS5), the one parser that sandboxed code feeds into a process
 * outside the sandbox. proxy.c is included for its static functions; with no
 * allow rule every request ends in a refusal, so nothing touches the network. */
#include "../../sshd-frontend/proxy.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct egress_rules none;
	static struct proxy px;
	static bool init;
	if (!init) {
		log_set_level(LOG_ERR_);
		init = true;
	}
	px.rules = &none;
	px.tenant = "fuzz";
	struct pconn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return 0;
	c->px = &px;
	c->cfd = c->ufd = -1;
	if (relay_init(&c->c2u, PBUF) < 0 || relay_init(&c->u2c, PBUF) < 0)
		abort();
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	/* feed in two pieces, as recv() may */
	size_t half = size / 2;
	const uint8_t *parts[2] = {data, data + half};
	size_t lens[2] = {half, size - half};
	for (int i = 0; i < 2 && c->state == P_HEAD; i++) {
		size_t n = lens[i];
		if (n > HEAD_MAX - c->headlen)
			n = HEAD_MAX - c->headlen;
		memcpy(c->head + c->headlen, parts[i], n);
		c->headlen += n;
		c->head[c->headlen] = '\0';
		if (c->head[0] == 5)
			socks_step(c);
		else if (strstr(c->head, "\r\n\r\n"))
			handle_head(c);
	}
	if (c->ai)
		freeaddrinfo(c->ai);
	relay_free(&c->c2u);
	relay_free(&c->u2c);
	free(c);
	return 0;
}
