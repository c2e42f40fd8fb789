/* main.c - warrend's entry: the command-line modes (serve, -t check,
 * --status, --kill, --usage, and the re-executed --api-gateway), each
 * handed to its file; serving is master.c's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../egress/apigw.h"
#include "config.h"
#include "log.h"
#include "master.h"
#include "status.h"
#include "usage.h"
#include "warm.h"

static void usage(void)
{
	fprintf(stderr, "usage: warrend [-t] [-d] -f CONFIG\n"
	                "       warrend -f CONFIG --status | --kill ID | --usage[=YYYY-MM-DD]\n"
	                "  -f CONFIG  server configuration file (INI)\n"
	                "  -t         check the configuration and tenant files, then exit\n"
	                "  -d         debug logging\n");
}

struct opts {
	const char *cfgpath;
	bool check, debug;
	const char *status_req; /* warrend --status, --kill ID */
	char killreq[64];
	bool usage_req; /* warrend --usage[=DAY] */
	const char *usage_date;
};

/* -1: go on; else the exit code */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {{"status", no_argument, NULL, 'S'},
	                                         {"kill", required_argument, NULL, 'K'},
	                                         {"usage", optional_argument, NULL, 'U'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "f:tdh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			o->cfgpath = optarg;
			break;
		case 't':
			o->check = true;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'S':
			o->status_req = "list\n";
			break;
		case 'U':
			o->usage_req = true;
			o->usage_date = optarg;
			break;
		case 'K':
			snprintf(o->killreq, sizeof o->killreq, "kill %ld\n",
			         strtol(optarg, NULL, 10));
			o->status_req = o->killreq;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (o->cfgpath == NULL || optind != argc) {
		usage();
		return 2;
	}
	return -1;
}

/* nothing inherited beyond 0-2 (a launching shell's or service manager's
 * descriptors would reach every process warrend starts, the tenants'
 * included), fds 0-2 exist (so no socket or pipe lands on them), the
 * configuration's path is absolute (SIGHUP re-reads it after the chdir),
 * and no working directory pins a mount or a tenant's path */
static int settle(const char *cfgpath, char cfgabs[PATH_MAX])
{
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	int nullfd;
	while ((nullfd = open("/dev/null", O_RDWR)) >= 0 && nullfd <= 2)
		;
	if (nullfd > 2)
		close(nullfd);
	if (realpath(cfgpath, cfgabs) == NULL) {
		fprintf(stderr, "warrend: %s: %s\n", cfgpath, strerror(errno));
		return -1;
	}
	if (chdir("/") < 0) {
		fprintf(stderr, "warrend: chdir /: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* the modes that read the configuration and exit: the exit code */
static int run_mode(const struct opts *o, const struct server_conf *srv, const char *cfgpath)
{
	if (o->usage_req) {
		int rc = usage_print(srv->state_dir, o->usage_date, stdout);
		if (rc == -EINVAL)
			fprintf(stderr,
			        "warrend: --usage: expected a UTC day as YYYY-MM-DD, got '%s'\n",
			        o->usage_date);
		else if (rc < 0)
			fprintf(stderr, "warrend: usage: %s\n", strerror(-rc));
		return rc < 0;
	}
	if (o->status_req)
		return status_client(srv->state_dir, o->status_req);
	return confcheck_run(srv, cfgpath);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--api-gateway") == 0)
		return apigw_exec_main(argc, argv);
	warm_exec_tuned(argv);
	struct opts o = {0};
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	static char cfgabs[PATH_MAX];
	if (settle(o.cfgpath, cfgabs) < 0)
		return 1;
	struct server_conf srv;
	struct cfg_error err;
	if (config_load_server(cfgabs, &srv, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	log_set_level(o.debug ? LOG_DEBUG_ : srv.log_level);
	if (o.usage_req || o.status_req || o.check) {
		rc = run_mode(&o, &srv, cfgabs);
		config_free_server(&srv);
		return rc;
	}
	return master_run(&srv);
}
