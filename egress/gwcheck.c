/* gwcheck.c - the checkers of the gateway's two protocols (apigw.h): what
 * the gateway (api_uid, it parses bytes a tenant controls) tells the root
 * monitor, and what a session or env process hands the gateway. Pure. */
#include "apigw.h"

const char *gw_msg_check(struct gw_msg *m, size_t n, int napis, unsigned mask)
{
	if (n != sizeof *m)
		return "bad length";
	if (m->api < 0 || m->api >= napis || m->api >= 32 || !(mask & (1u << m->api)))
		return "not one of the tenant's apis";
	if (m->type != GW_BUDGET && m->type != GW_USAGE)
		return "unknown type";
	/* strings from the gateway: terminated here, escaped by the audit's JSON */
	m->model[sizeof m->model - 1] = m->method[sizeof m->method - 1] =
	    m->path[sizeof m->path - 1] = '\0';
	return NULL;
}

const char *gw_fdmsg_check(const struct gw_fdmsg *m, size_t n, bool has_fd, unsigned mask)
{
	if (n != sizeof *m)
		return "bad length";
	if (m->type == GW_CLOSE)
		return NULL;
	if (m->type != GW_LISTEN)
		return "unknown type";
	if (!has_fd)
		return "a descriptor is missing";
	return m->api >= 0 && m->api < SANDBOX_MAX_APIS && (mask & (1u << m->api))
	           ? NULL
	           : "not one of the tenant's apis";
}
