# Postern - outbound submission relay.
#
#   make          build ./postern and build/man/postern.conf.5 (installs
#                 missing Debian packages first)
#   make check    build and run every test suite, then again under
#                 AddressSanitizer + UBSan (build-san/)
#   make check-san  only the sanitized build and run
#   make check-layers  only the include-order check (tests/check-layers:
#                 the order of ARCHITECTURE.md's layers block)
#   make run      development instance on 127.0.0.1 (see README)
#   make bench    tests/bench/run.sh: W1-W3 against the load harness kept
#                 outside the repository (BENCH_DIR; see README)
#   make bench-sessions  tests/bench/sessions.sh: RSS with 10,000
#                 authenticated TLS sessions held, a new client's latency
#   make bench-bigmsg    tests/bench/bigmsg.sh: RSS before, at the peak and
#                 after one 25 MB message; it arrives whole and verifies
#   make bench-backlog   tests/bench/backlog.sh: 200,000 messages queued with
#                 the next hop down (needs ~2.5 GB of disk; N=5000 for a
#                 quick check), restart, idle CPU, drain
#                 (settings of each: tests/bench/README)
#
# Sources are found by folder: every .c file under common/, config/, keys/,
# queue/, submit/, relay/ and daemon/ goes into build/libpostern.a, which
# main.c and each tests/unit/test_*.c link against (ARCHITECTURE.md: the
# folders and the order they may include each other in).
#
# The man pages are in man/: postern(8) and the sendmail, mailq and
# newaliases pages are written by hand; postern.conf(5) is made at build
# time, by $(BUILD)/man/mkconf5 (man/mkconf5.c, linked against the
# library), from man/postern.conf.5.in and the settings table, into
# $(BUILD)/man/postern.conf.5. `make man` makes only that.

CC       ?= cc
PKGS      = libevent libevent_openssl libevent_pthreads openssl libsasl2 \
            libconfig opendkim libunbound jansson
# Evaluated once, on first use, after the deps target has run.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
            -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing
CPPFLAGS += -I. -D_GNU_SOURCE
LDLIBS   += -lpthread

BUILD     = build
# The daemon binary: ./postern for the normal build, $(BUILD)/postern for
# any other build tree (make BUILD=build-san SAN=1: the sanitized one).
BIN       = $(if $(filter build,$(BUILD)),postern,$(BUILD)/postern)
SAN_TREE  = build-san
# SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer; a UBSan finding
# aborts (no recovery), so it fails the test that hit it.
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all
ifeq ($(SAN),1)
CFLAGS   += $(SAN_FLAGS)
LDFLAGS  += $(SAN_FLAGS)
endif
SRCS      = $(sort $(wildcard common/*.c config/*.c keys/*.c queue/*.c \
            submit/*.c relay/*.c daemon/*.c))
OBJS      = $(SRCS:%.c=$(BUILD)/%.o)
LIB       = $(BUILD)/libpostern.a
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
MAN_GEN   = $(BUILD)/man/mkconf5
MAN_CONF  = $(BUILD)/man/postern.conf.5

PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: all deps check check-san check-layers san-build unit e2e run bench \
        bench-sessions bench-bigmsg bench-backlog clean man

all: deps
	@$(MAKE) --no-print-directory postern man

deps:
	@contrib/install-deps.sh --if-missing

$(BIN): $(BUILD)/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

man: $(MAN_CONF)

$(MAN_GEN): $(BUILD)/man/mkconf5.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(MAN_CONF): $(MAN_GEN) man/postern.conf.5.in
	$(MAN_GEN) man/postern.conf.5.in > $@.tmp || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

$(LIB): $(OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) \
	    $(PKG_LIBS) -lcmocka $(LDLIBS)

unit-build: $(UNIT_BINS)

# The same sources in $(SAN_TREE)/ with the sanitizers: $(SAN_TREE)/postern
# and $(SAN_TREE)/tests/test_*.
san-build:
	@$(MAKE) --no-print-directory BUILD=$(SAN_TREE) SAN=1 \
	    $(SAN_TREE)/postern unit-build

check: deps
	@$(MAKE) --no-print-directory postern man unit-build
	@$(MAKE) --no-print-directory san-build
	@tests/run-all --san

# Needs nothing built: reads ARCHITECTURE.md and the sources.
check-layers:
	@tests/check-layers

check-san: deps
	@$(MAKE) --no-print-directory san-build
	@tests/run-all --san-only

unit: deps
	@$(MAKE) --no-print-directory unit-build
	@tests/run-all --unit-only

e2e: deps
	@$(MAKE) --no-print-directory postern
	@tests/run-all --e2e-only

# The benchmark against the load harness that lives outside the repository
# (tests/bench/run.sh says where it looks, and what to do without it).
bench: deps
	@$(MAKE) --no-print-directory postern
	@tests/bench/run.sh

# The other measurements of the performance issue, each on its own
# scratch instance (tests/bench/README); settings from the environment,
# e.g. make bench-backlog N=5000.
bench-sessions bench-bigmsg bench-backlog: bench-%: deps
	@$(MAKE) --no-print-directory postern
	@tests/bench/$*.sh

run: deps
	@$(MAKE) --no-print-directory postern
	@contrib/dev-run.sh

clean:
	rm -rf $(BUILD) $(SAN_TREE) postern

-include $(OBJS:.o=.d) $(BUILD)/main.d $(BUILD)/man/mkconf5.d

# ---------------------------------------------------------------------------
# Fuzzing (libFuzzer; needs clang: apt-get install clang libclang-rt-14-dev)
#
#   make fuzz                  build every tests/fuzz/fuzz_NAME.c and run each
#                              for FUZZ_SECONDS (default 60), one at a time
#   make fuzz FUZZ_TARGETS=dns FUZZ_SECONDS=600
#   make fuzz-build            only build build/fuzz/fuzz_NAME
#
# The project sources are compiled again with clang and ASan/UBSan into
# build/fuzz/ (the gcc-built libpostern.a is not used). Each run starts
# from the seeds in tests/fuzz/corpus/NAME/ (kept small, by hand), adds
# what it finds to build/fuzz/corpus/NAME/ (promote an input by copying
# it into the seeds), and writes crashing inputs to
# tests/fuzz/crashes/NAME/. make check replays seeds and crashes
# (tests/unit/test_fuzz_corpus.c).

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(sort $(patsubst tests/fuzz/fuzz_%.c,%,\
                $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BUILD    = $(BUILD)/fuzz
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -g -O1 -std=gnu11 -Wall -Wextra -fno-strict-aliasing \
                -fno-omit-frame-pointer $(FUZZ_SAN) -DFUZZ_LIBFUZZER
FUZZ_OBJS     = $(SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_LIB      = $(FUZZ_BUILD)/libpostern-fuzz.a
FUZZ_BINS     = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-cc

fuzz-cc:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
	    echo "make fuzz needs clang with libFuzzer; install it with:"; \
	    echo "    apt-get install -y clang libclang-rt-14-dev"; \
	    exit 1; }

fuzz-build: deps fuzz-cc
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t tests/fuzz/crashes/$$t; \
	    echo "fuzz $$t: $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=tests/fuzz/crashes/$$t/ \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t; \
	done

$(FUZZ_OBJS): $(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) $(FUZZ_CFLAGS) \
	    -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB)
	$(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) $(FUZZ_CFLAGS) -Werror \
	    -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) $(LDLIBS)

# The replay test #includes the targets: rebuild it when they change.
$(BUILD)/tests/test_fuzz_corpus: $(wildcard tests/fuzz/*.c tests/fuzz/*.h)

-include $(FUZZ_OBJS:.o=.d)

# ---------------------------------------------------------------------------
# Installation
#
#   make install     build ./postern if needed, then install
#   make uninstall   remove exactly the files install puts there
#
# Everything goes under $(DESTDIR)$(PREFIX) and $(DESTDIR)$(SYSCONFDIR):
#
#   $(PREFIX)/sbin/postern                          the daemon, 0755
#   $(SYSCONFDIR)/postern/postern.conf.example      0644; postern.conf itself
#                        is never written (copy the example: INSTALL)
#   $(PREFIX)/lib/systemd/system/postern.service    0644, made from
#                        contrib/postern.service.in with the paths above
#   $(PREFIX)/share/doc/postern/                    README.md, INSTALL and
#                        examples/ (trac-smtp.ini, mail-clients.md)
#   $(PREFIX)/share/man/man8/postern.8              0644, from man/
#   $(PREFIX)/share/man/man5/postern.conf.5         0644, as make built it
#                        ($(BUILD)/man/postern.conf.5); not compressed
#
# PREFIX defaults to /usr/local and SYSCONFDIR to $(PREFIX)/etc.
#   make install SYSCONFDIR=/etc                  what INSTALL uses: the
#        configuration in /etc/postern/, the daemon's default -c path
#   make install PREFIX=/usr SYSCONFDIR=/etc      the Debian package layout
#   make install DESTDIR=/tmp/stage               stage into another root
# Use the same variables for make uninstall. Uninstall also removes
# share/doc/postern/ and $(SYSCONFDIR)/postern/ when they are left empty;
# it never touches postern.conf, the sasldb or /var/lib/postern.
#
# Nothing is installed as `sendmail` by make install, so that installing
# Postern never replaces the system's sendmail. Opt in with
#   make install-sendmail   $(PREFIX)/sbin/sendmail, mailq and newaliases
#                           -> postern (symlinks, the names an MTA
#                           provides; refused, linking none, if one of
#                           them is there and not ours), and their man
#                           pages sendmail.8, mailq.8, newaliases.8 in
#                           share/man/man8 (pointing to postern(8); refused
#                           likewise); make uninstall removes those links
#                           and pages too, only if they are ours.

SYSCONFDIR ?= $(PREFIX)/etc
SBINDIR     = $(PREFIX)/sbin
UNITDIR     = $(PREFIX)/lib/systemd/system
DOCDIR      = $(PREFIX)/share/doc/postern
MANDIR      = $(PREFIX)/share/man
DOC_FILES   = README.md INSTALL
DOC_EXAMPLES = contrib/trac-smtp.ini contrib/trac-sendmail.ini \
               contrib/mail-clients.md

.PHONY: install uninstall install-sendmail

# Not after install: re-installing would rewrite the unit under a running
# service (systemd then asks for daemon-reload).
MTA_NAMES   = sendmail mailq newaliases
# The first line of each of their pages (man/NAME.8) says this: how
# install-sendmail and uninstall tell our pages from another MTA's.
MTA_MAN_MARK = as Postern provides it

install-sendmail:
	@for n in $(MTA_NAMES); do \
	    l=$(DESTDIR)$(SBINDIR)/$$n; \
	    if [ -e "$$l" -o -L "$$l" ] && \
	        [ "$$(readlink "$$l")" != postern ]; then \
	        echo "$$l exists and is not Postern's: remove it first"; \
	        exit 1; \
	    fi; \
	    p=$(DESTDIR)$(MANDIR)/man8/$$n.8; \
	    if [ -e "$$p" ] && ! grep -qs "$(MTA_MAN_MARK)" "$$p"; then \
	        echo "$$p exists and is not Postern's: remove it first"; \
	        exit 1; \
	    fi; \
	done; \
	if [ ! -x $(DESTDIR)$(SBINDIR)/postern ]; then \
	    echo "$(DESTDIR)$(SBINDIR)/postern is not there: make install first"; \
	    exit 1; \
	fi; \
	install -d $(DESTDIR)$(MANDIR)/man8 || exit 1; \
	for n in $(MTA_NAMES); do \
	    ln -sfn postern $(DESTDIR)$(SBINDIR)/$$n || exit 1; \
	    install -m 0644 man/$$n.8 $(DESTDIR)$(MANDIR)/man8/$$n.8 || \
	        exit 1; \
	done

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/postern \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 postern $(DESTDIR)$(SBINDIR)/postern
	install -m 0644 config/postern.conf.example \
	    $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf.example
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@DOCDIR@|$(DOCDIR)|g' contrib/postern.service.in \
	    > $(DESTDIR)$(UNITDIR)/postern.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/postern.service
	install -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(DOC_EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 man/postern.8 $(DESTDIR)$(MANDIR)/man8/postern.8
	install -m 0644 $(MAN_CONF) $(DESTDIR)$(MANDIR)/man5/postern.conf.5

uninstall:
	@for n in $(MTA_NAMES); do \
	    l=$(DESTDIR)$(SBINDIR)/$$n; \
	    if [ -L "$$l" ] && [ "$$(readlink "$$l")" = postern ]; then \
	        rm -f "$$l"; fi; \
	    p=$(DESTDIR)$(MANDIR)/man8/$$n.8; \
	    if grep -qs "$(MTA_MAN_MARK)" "$$p"; then rm -f "$$p"; fi; \
	done
	rm -f $(DESTDIR)$(SBINDIR)/postern \
	    $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf.example \
	    $(DESTDIR)$(UNITDIR)/postern.service \
	    $(DESTDIR)$(MANDIR)/man8/postern.8 \
	    $(DESTDIR)$(MANDIR)/man5/postern.conf.5 \
	    $(addprefix $(DESTDIR)$(DOCDIR)/,$(DOC_FILES)) \
	    $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(notdir $(DOC_EXAMPLES)))
	@for d in $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/postern; do \
	    if [ -d "$$d" ]; then rmdir --ignore-fail-on-non-empty "$$d"; fi; \
	done
