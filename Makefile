# Postern - outbound submission relay.
#
#   make          build ./postern (installs missing Debian packages first)
#   make check    build and run every test suite
#   make run      development instance on 127.0.0.1 (see README)
#
# Sources are found by folder: every .c file under common/, config/,
# submit/, relay/ and keys/ goes into build/libpostern.a, which main.c and
# each tests/unit/test_*.c link against.

CC       ?= cc
PKGS      = libevent libevent_openssl libevent_pthreads openssl libsasl2 \
            libconfig opendkim libunbound
# Evaluated once, on first use, after the deps target has run.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
            -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing
CPPFLAGS += -I. -D_GNU_SOURCE
LDLIBS   += -lpthread

BUILD     = build
SRCS      = $(sort $(wildcard common/*.c config/*.c submit/*.c relay/*.c keys/*.c))
OBJS      = $(SRCS:%.c=$(BUILD)/%.o)
LIB       = $(BUILD)/libpostern.a
UNIT_SRCS = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: all deps check unit e2e run clean

all: deps
	@$(MAKE) --no-print-directory postern

deps:
	@contrib/install-deps.sh --if-missing

postern: $(BUILD)/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(LIB): $(OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(LIB) \
	    $(PKG_LIBS) -lcmocka $(LDLIBS)

unit-build: $(UNIT_BINS)

check: deps
	@$(MAKE) --no-print-directory postern unit-build
	@tests/run-all

unit: deps
	@$(MAKE) --no-print-directory unit-build
	@tests/run-all --unit-only

e2e: deps
	@$(MAKE) --no-print-directory postern
	@tests/run-all --e2e-only

run: deps
	@$(MAKE) --no-print-directory postern
	@contrib/dev-run.sh

clean:
	rm -rf $(BUILD) postern

-include $(OBJS:.o=.d) $(BUILD)/main.d
