# Makefile - builds warrend and warren-init, runs unit (cmocka) and
# end-to-end (pytest + real OpenSSH clients) tests, and the demo.
CC       ?= gcc
BUILD    ?= build
PKGS     := libssh libcap inih libseccomp json-c openssl
CFLAGS   ?= -O2 -g
INIT_CFLAGS ?= -O2 -g
WERROR   ?= -Werror
WARN     := -Wall -Wextra $(WERROR) -Wformat=2 -Wshadow -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -D_FORTIFY_SOURCE=2
BASEFLAGS = -std=gnu11 $(WARN) -fstack-protector-strong -fPIE -fvisibility=hidden
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpam -pthread
PYTHON   ?= /usr/bin/python3

# sshd-frontend/: the daemon's processes (README: Layout says who runs which)
FRONTEND := $(addprefix sshd-frontend/, \
            main.c master.c accept.c children.c confcheck.c admit.c status.c hostkey.c \
            warm.c tunables.c conn.c monauth.c monitor.c moncheck.c chanspawn.c handover.c \
            slots.c tenant.c usage.c reserve.c preauth.c privdrop.c session.c channel.c chanreq.c \
            chanpump.c chanfwd.c reattach.c monitor_wrap.c envd_wrap.c record.c confine.c \
            envmon.c envproc.c config.c authkeys.c authpolicy.c audit.c log.c evfd.c \
            procinfo.c notify.c spawncheck.c) pam/pam.c
# egress/: the egress proxy, ssh -L/-D/-W's destinations and the API gateway
EGRESS   := $(addprefix egress/, \
            rules.c decide.c request.c proxy.c forward.c relay.c httpframe.c apigw.c \
            apigw_monitor.c apireq.c apimeter.c gwcheck.c)
SANDBOX  := $(addprefix sandbox/, \
            policy.c env.c spawn.c workspace.c strv.c seccomp.c cgroup.c profile.c fdpass.c \
            hostport.c fmt.c disk.c ring.c strblob.c lockfile.c initcheck.c fork.c)
HEADERS  := $(wildcard sshd-frontend/*.h sandbox/*.h egress/*.h pam/*.h)

UNIT_TESTS := test_config test_request test_protocols test_fork test_reserve test_log test_policy test_env test_uid test_authkeys test_seccomp test_cgroup test_authpolicy test_egress test_httpframe test_fmt test_admit test_api test_ring test_monitor test_confine test_tunables
# pure modules the unit tests link against, built with sanitizers
UNIT_SRCS := sshd-frontend/admit.c sshd-frontend/authpolicy.c sshd-frontend/config.c \
             sshd-frontend/tenant.c sshd-frontend/authkeys.c sshd-frontend/log.c \
             sshd-frontend/moncheck.c sshd-frontend/confine.c sshd-frontend/tunables.c \
             sshd-frontend/notify.c sshd-frontend/handover.c sshd-frontend/spawncheck.c \
             sshd-frontend/reserve.c \
             sandbox/fdpass.c sandbox/strblob.c \
             sandbox/policy.c sandbox/env.c sandbox/strv.c sandbox/workspace.c sandbox/spawn.c \
             sandbox/seccomp.c sandbox/cgroup.c sandbox/profile.c sandbox/hostport.c \
             sandbox/fmt.c sandbox/ring.c sandbox/lockfile.c sandbox/initcheck.c sandbox/fork.c \
             egress/rules.c egress/decide.c egress/request.c egress/httpframe.c egress/relay.c \
             egress/apireq.c egress/apimeter.c egress/gwcheck.c
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all deps profiles check unit e2e demo bench clean format format-check install fuzz symbols asan e2e-asan clean-tree-check fresh-check

all: $(BUILD)/warrend $(BUILD)/warren-init

deps:
	@tools/deps.sh

# pinned downloads of the profiles the tests use (claude-code), built once
profiles: deps
	@tools/profiles.sh

$(BUILD)/warrend: $(FRONTEND) $(EGRESS) $(SANDBOX) $(HEADERS) | $(BUILD)
	$(CC) $(BASEFLAGS) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(FRONTEND) $(EGRESS) $(SANDBOX) \
		-pie -Wl,-z,relro,-z,now $(PKG_LIBS)

# Static: it runs inside sandboxes whose /usr may differ from the host's.
INIT_SRCS := sandbox/init.c sandbox/initenv.c sandbox/initdetach.c sandbox/fdpass.c sandbox/ring.c \
             sandbox/strblob.c sandbox/initcheck.c sandbox/fork.c
$(BUILD)/warren-init: $(INIT_SRCS) sandbox/initenv.h sandbox/initproto.h sandbox/fdpass.h sandbox/ring.h sandbox/initdetach.h | $(BUILD)
	$(CC) -std=gnu11 $(WARN) $(CPPFLAGS) $(INIT_CFLAGS) -static -o $@ $(INIT_SRCS)

$(BUILD):
	mkdir -p $(BUILD)

# the pure modules compiled once (with sanitizers), linked into every test
UNIT_OBJS = $(patsubst %.c,$(BUILD)/unit/obj/%.o,$(UNIT_SRCS))
.SECONDARY: $(UNIT_OBJS)
$(BUILD)/unit/obj/%.o: %.c $(HEADERS) | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CPPFLAGS) -O1 -g $(SANFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(UNIT_OBJS) $(HEADERS) | $(BUILD)
	@mkdir -p $(BUILD)/unit
	$(CC) $(BASEFLAGS) $(CPPFLAGS) -O1 -g $(SANFLAGS) $(PKG_CFLAGS) $(shell pkg-config --cflags cmocka) \
		-o $@ $< $(UNIT_OBJS) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

unit: $(addprefix $(BUILD)/unit/,$(UNIT_TESTS))
	@set -e; for t in $^; do echo "== $$t"; $$t; done

$(BUILD)/escape-probe: tests/escape/probe.c | $(BUILD)
	$(CC) -std=gnu11 -O1 -Wall -static -o $@ $<

# test-only PAM module (second factor, expired accounts); never installed
$(BUILD)/pam_otp_test.so: tests/pam/pam_otp_test.c | $(BUILD)
	$(CC) -std=gnu11 -O1 -Wall -Wextra $(WERROR) -shared -fPIC -o $@ $< -lpam

# pytest's exit 5 ("no tests ran") is a failure here too
e2e: all $(BUILD)/escape-probe $(BUILD)/pam_otp_test.so
	cd tests && WARREN_BUILD=$(abspath $(E2E_BUILD)) $(PYTHON) -m pytest -q -ra e2e escape pam $(PYTEST_ARGS)
E2E_BUILD ?= $(BUILD)

# Nothing of warren's is exported: a symbol of ours must never interpose one
# of a library's (libpam once called warren's audit_open instead of libaudit's).
symbols: $(BUILD)/warrend
	@bad=$$(nm -D --defined-only $< | awk '$$3 !~ /@/ {print $$3}'); \
	if [ -n "$$bad" ]; then echo "warrend exports: $$bad" >&2; exit 1; fi; \
	echo "symbols: warrend exports nothing of its own"

# warrend with ASan+UBSan in build-asan/ (warren-init stays static, as shipped);
# `make e2e-asan` runs the whole e2e suite against it.
ASAN_BUILD := build-asan
asan:
	$(MAKE) BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g $(SANFLAGS)" all $(ASAN_BUILD)/escape-probe $(ASAN_BUILD)/pam_otp_test.so

e2e-asan: asan
	$(MAKE) BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g $(SANFLAGS)" e2e

# The tree is as clean after the tests as before them.
clean-tree-check:
	@dirty=$$(git status --porcelain --untracked-files=all 2>/dev/null | grep -v '^?? build' || true); \
	if [ -n "$$dirty" ] && [ "$$dirty" != "$$(cat $(BUILD)/.tree-before 2>/dev/null)" ]; then \
		echo "the tests left changes in the tree:" >&2; echo "$$dirty" >&2; exit 1; fi; \
	echo "tree: clean after the tests"

check: deps profiles
	$(MAKE) all
	@mkdir -p $(BUILD) && (git status --porcelain --untracked-files=all 2>/dev/null | grep -v '^?? build' || true) > $(BUILD)/.tree-before
	$(MAKE) format-check
	$(MAKE) symbols
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) clean-tree-check

demo: deps
	$(MAKE) all
	tools/demo.sh $(BUILD)

bench: deps
	$(MAKE) all
	bench/run.sh $(BENCH_ARGS)

# libFuzzer targets for parsers of untrusted input (clang, libclang-rt-14-dev);
# not part of `make check`: FUZZ_SECONDS each, corpus-less.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := fuzz_authkeys fuzz_egress fuzz_config fuzz_proxy fuzz_httpframe fuzz_apigw fuzz_monitor \
                fuzz_initproto fuzz_gateway fuzz_notify fuzz_handover fuzz_spawn
$(BUILD)/fuzz/%: tests/fuzz/%.c $(UNIT_SRCS) $(HEADERS) | $(BUILD)
	@mkdir -p $(BUILD)/fuzz
	clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
		-o $@ $< $(UNIT_SRCS) sshd-frontend/audit.c sshd-frontend/evfd.c $(PKG_LIBS)

fuzz: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
	@set -e; for t in $^; do echo "== $$t"; $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096; done

# Every C file of the tree, formatted by the committed .clang-format;
# `make check` fails on any difference (format-check).
C_FILES = $(sort $(wildcard sshd-frontend/*.[ch] sandbox/*.[ch] egress/*.[ch] pam/*.[ch] \
	tests/*/*.[ch] bench/*.c))
format:
	clang-format -i $(C_FILES)

format-check:
	@bad=$$(for f in $(C_FILES); do clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "not formatted (make format): $$bad" >&2; exit 1; fi; \
	echo "format: every C file matches .clang-format"

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/warren \
		$(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/warren \
		$(DESTDIR)/etc/pam.d $(DESTDIR)/etc/warren/tenants.d $(DESTDIR)/etc/warren/profiles \
		$(DESTDIR)/var/log/warren
	install -m 0755 $(BUILD)/warrend $(DESTDIR)$(PREFIX)/lib/warren/warrend
	install -m 0755 $(BUILD)/warren-init $(DESTDIR)$(PREFIX)/lib/warren/warren-init
	ln -sf ../lib/warren/warrend $(DESTDIR)$(PREFIX)/sbin/warrend
	install -m 0644 dist/warrend.service $(DESTDIR)$(PREFIX)/lib/systemd/system/warrend.service
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/warren/README.md
	test -e $(DESTDIR)/etc/pam.d/warren || install -m 0644 pam/warren $(DESTDIR)/etc/pam.d/warren
	test -e $(DESTDIR)/etc/warren/warrend.conf || \
		install -m 0644 dist/warrend.conf $(DESTDIR)/etc/warren/warrend.conf
	for p in nix-profiles/*/; do n=$$(basename $$p); \
		test -e $(DESTDIR)/etc/warren/profiles/$$n || cp -r $$p $(DESTDIR)/etc/warren/profiles/$$n; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# A bare Debian 12 root (debootstrap) where `make demo`, a login with the
# printed ssh command and `make check` must pass; minutes, so not in check.
fresh-check:
	tools/fresh-check.sh
