/*
 * config_table - the one declarative table of configuration settings
 *
 * config.c declares every setting exactly once: its dotted name (members of
 * list entries as "listen.port"), type, default, bounds and a one-line
 * description. config_load() checks files against this table, and tests
 * check the table against config/postern.conf.example and its own defaults.
 * The table is static and read-only; nothing here allocates or fails.
 */
#ifndef POSTERN_CONFIG_TABLE_H
#define POSTERN_CONFIG_TABLE_H

#include <stddef.h>
#include <stdint.h>

enum config_key_type {
	CONFIG_KEY_GROUP,	/* name = { ... }; */
	CONFIG_KEY_LIST,	/* name = ( { ... }, ... ); a list of groups */
	CONFIG_KEY_STRING,	/* non-empty string */
	CONFIG_KEY_BOOL,	/* true or false */
	CONFIG_KEY_INT,		/* integer (plain or L suffix) in [min, max] */
	CONFIG_KEY_DURATION,	/* seconds, or "45s" "5m" "2h" "1d"; [min, max] */
	CONFIG_KEY_ENUM,	/* one of the strings in choices */
	CONFIG_KEY_STRINGS,	/* [ "a", "b" ]: non-empty strings */
};

#define CONFIG_KEY_REQUIRED	0x01	/* must be present in its group */
#define CONFIG_KEY_NONEMPTY	0x02	/* list or array needs an element */

struct config_key {
	const char		*name;	/* dotted path, e.g. "limits.recipients" */
	enum config_key_type	 type;
	unsigned		 flags;	/* CONFIG_KEY_REQUIRED, _NONEMPTY */
	const char		*def;	/* default as written in a file (arrays:
					   space-separated); NULL: none, or
					   computed (see desc) */
	int64_t			 min;	/* INT, DURATION (seconds) */
	int64_t			 max;
	const char		*choices;	/* ENUM: "a|b|c" */
	const char		*desc;
};

/* config_keys - the table, in file order; *n gets its length */
const struct config_key	*config_keys(size_t *n);

#endif
