/*
 * mkconf5 - write postern.conf(5) from its template and the settings table
 *
 *	mkconf5 TEMPLATE > postern.conf.5
 *
 * Copies TEMPLATE (man/postern.conf.5.in, mdoc(7)) to standard output and
 * puts, in place of its one line "@SETTINGS@", an entry for every setting
 * of config_keys() (config/config_table.h): its dotted name, what it is
 * (type, bounds, choices), whether it is required, its default as a file
 * would write it, and its description. So the manual cannot drift from
 * the code: a setting added to the table is in the next build's page, and
 * tests/e2e/test_man.py checks every row of the table against the page.
 *
 * Layout: a subsection "Top level" for the top-level settings that are
 * not groups, then one subsection per group or list (named by its dotted
 * name), holding the group itself and its direct members; a nested group
 * gets its own subsection right after its parent's (domains, then
 * domains.dkim). Within a subsection, table order.
 *
 * Text from the table is escaped for roff: a backslash becomes \e, a line
 * starting with "." or "'" gets \& in front, `quoted` words become
 * typographic single quotes; values go into quoted macro arguments, where
 * a double quote becomes \(dq.
 *
 * Exit status: 0; 1 after one line on stderr (the template unreadable,
 * without or with several @SETTINGS@ lines, a write error). Build tool:
 * run by the Makefile, never installed.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "config/config.h"
#include "config/config_table.h"

#define MARKER		"@SETTINGS@"
#define TEXT_WIDTH	72	/* longest text line we write (mandoc: 80) */

static const struct config_key	*keys;
static size_t			 nkeys;

/* put_escaped - s (n bytes) with roff escapes; quoted: for a "quoted"
   macro argument (where a line may break after a colon), else for a text
   line, where backticks become quotes (*open: whether one is open, kept
   from call to call) */
static void
put_escaped(const char *s, size_t n, int quoted, int *open)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\e", stdout);
		else if (s[i] == '"' && quoted)
			fputs("\\(dq", stdout);
		else if (s[i] == ':' && quoted)
			fputs(":\\:", stdout);	/* a line may break
						   there: cipher lists */
		else if (s[i] == '`' && !quoted) {
			fputs(*open ? "\\(cq" : "\\(oq", stdout);
			*open = !*open;
		} else
			putchar(s[i]);
	}
}

/* is_choice - is the word s[0..n) a value of some enum ("mx")? */
static int
is_choice(const char *s, size_t n)
{
	const char *c;
	size_t i;

	for (i = 0; i < nkeys; i++)
		for (c = keys[i].choices; c != NULL; c = strchr(c, '|')) {
			c += *c == '|';
			if (strncmp(c, s, n) == 0 && (c[n] == '|' ||
			    c[n] == '\0'))
				return 1;
		}
	return 0;
}

/* put_text - desc as a sentence (first letter capitalised unless the
   first word is a value, as in "mx mode: ...", a full stop at the end)
   on text lines of at most TEXT_WIDTH bytes (a longer word alone), with
   \& before a "." or "'" that would start a line */
static void
put_text(const char *desc)
{
	size_t col = 0, n, len = strlen(desc);
	char *text, *s;
	int open = 0;

	text = xasprintf("%s%s", desc, len > 0 && desc[len - 1] == '.' ?
	    "" : ".");
	if (!is_choice(text, strcspn(text, " :")))
		text[0] = (char)toupper((unsigned char)text[0]);
	for (s = text + strspn(text, " "); *s != '\0'; s += strspn(s, " ")) {
		n = strcspn(s, " ");
		if (col > 0 && col + 1 + n > TEXT_WIDTH) {
			putchar('\n');
			col = 0;
		} else if (col > 0) {
			putchar(' ');
			col++;
		}
		if (col == 0 && (s[0] == '.' || s[0] == '\''))
			fputs("\\&", stdout);
		put_escaped(s, n, 0, &open);
		col += n;
		s += n;
	}
	putchar('\n');
	free(text);
}

/* put_literal - ".Ql "s" punct": s as a literal, then punctuation */
static void
put_literal(const char *s, size_t n, const char *punct)
{
	int open = 0;

	fputs(".Ql \"", stdout);
	put_escaped(s, n, 1, &open);
	printf("\"%s%s\n", *punct ? " " : "", punct);
}

/* leaf - the last component of a dotted name */
static const char *
leaf(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? dot + 1 : name;
}

/* parent - the table entry of k's group, or NULL at the top level */
static const struct config_key *
parent(const struct config_key *k)
{
	const char *dot = strrchr(k->name, '.');
	size_t i, n;

	if (dot == NULL)
		return NULL;
	n = (size_t)(dot - k->name);
	for (i = 0; i < nkeys; i++)
		if (strlen(keys[i].name) == n &&
		    strncmp(keys[i].name, k->name, n) == 0)
			return &keys[i];
	fprintf(stderr, "mkconf5: %s: no table entry for its group\n",
	    k->name);
	exit(1);
}

/* is_group - a group or a list of groups: it gets a subsection */
static int
is_group(const struct config_key *k)
{
	return k->type == CONFIG_KEY_GROUP || k->type == CONFIG_KEY_LIST;
}

/* put_default - k's default as a file writes it: strings and enums
   quoted, string arrays as [ "a", "b" ], durations quoted unless plain
   seconds */
static void
put_default(const struct config_key *k)
{
	const char *p = k->def, *end;
	char *v, *w;
	size_t len;
	int quote = k->type == CONFIG_KEY_STRING ||
	    k->type == CONFIG_KEY_ENUM ||
	    (k->type == CONFIG_KEY_DURATION &&
	    strspn(p, "0123456789") != strlen(p));

	/* at worst "a b" -> [ "a", "b" ]: 3 bytes a byte, and the brackets */
	w = v = xmalloc(3 * strlen(p) + 8);
	if (k->type == CONFIG_KEY_STRINGS) {
		w += sprintf(w, "[ ");
		for (;;) {
			end = p + strcspn(p, " ");
			w += sprintf(w, "\"%.*s\"", (int)(end - p), p);
			if (*end == '\0')
				break;
			w += sprintf(w, ", ");
			p = end + 1;
		}
		w += sprintf(w, " ]");
	} else
		w += sprintf(w, quote ? "\"%s\"" : "%s", p);
	len = (size_t)(w - v);
	fputs("Default:\n", stdout);
	put_literal(v, len, ".");
	free(v);
}

/* put_kind - what k is: "A string.", "An integer from 1 to 10." ... */
static void
put_kind(const struct config_key *k)
{
	char lo[32], hi[32], syntax[128];
	const char *c, *bar;
	int last;

	switch (k->type) {
	case CONFIG_KEY_GROUP:
	case CONFIG_KEY_LIST:
		snprintf(syntax, sizeof(syntax), k->type == CONFIG_KEY_GROUP ?
		    "%s = { ... }" : "%s = ( { ... }, ... )", leaf(k->name));
		printf("%s\n", k->type == CONFIG_KEY_GROUP ? "A group," :
		    (k->flags & CONFIG_KEY_NONEMPTY) ?
		    "A list of groups, at least one," : "A list of groups,");
		put_literal(syntax, strlen(syntax), ".");
		break;
	case CONFIG_KEY_STRING:
		printf("A string.\n");
		break;
	case CONFIG_KEY_BOOL:
		printf("A boolean,\n.Ql true\nor\n.Ql false .\n");
		break;
	case CONFIG_KEY_INT:
		printf("An integer from %" PRId64 " to %" PRId64 ".\n",
		    k->min, k->max);
		break;
	case CONFIG_KEY_DURATION:
		printf("A duration from %s to %s.\n",
		    config_format_duration(k->min, lo, sizeof(lo)),
		    config_format_duration(k->max, hi, sizeof(hi)));
		break;
	case CONFIG_KEY_ENUM:
		printf("One of\n");
		for (c = k->choices; ; c = bar + 1) {
			bar = strchr(c, '|');
			last = bar == NULL;
			put_literal(c, last ? strlen(c) : (size_t)(bar - c),
			    last ? "." : strchr(bar + 1, '|') ? "," : "");
			if (last)
				break;
			if (strchr(bar + 1, '|') == NULL)
				printf("or\n");
		}
		break;
	case CONFIG_KEY_STRINGS:
		printf("An array of strings%s.\n",
		    (k->flags & CONFIG_KEY_NONEMPTY) ? ", at least one" : "");
		break;
	}
}

/* put_entry - one setting: name, description, kind, required or default */
static void
put_entry(const struct config_key *k)
{
	const struct config_key *p = parent(k);

	printf(".It Ic %s\n", k->name);
	put_text(k->desc);
	put_kind(k);
	if (k->flags & CONFIG_KEY_REQUIRED) {
		if (p == NULL)
			printf("Required.\n");
		else
			printf("Required %s\n.Ic %s .\n",
			    p->type == CONFIG_KEY_LIST ? "in each entry of" :
			    "when there is", p->name);
	} else if (k->def != NULL)
		put_default(k);
	else if (!is_group(k))
		printf("%s\n", strstr(k->desc, "default") ?
		    "No fixed default: see above." : "Not set by default.");
}

/* put_section - the subsection of group g (NULL: the top level), then
   those of the groups in it */
static void
put_section(const struct config_key *g)
{
	size_t i;

	printf(".Ss %s\n.Bl -tag -width Ds\n", g ? g->name : "Top level");
	if (g != NULL)
		put_entry(g);
	for (i = 0; i < nkeys; i++)
		if (parent(&keys[i]) == g && !is_group(&keys[i]))
			put_entry(&keys[i]);
	printf(".El\n");
	for (i = 0; i < nkeys; i++)
		if (parent(&keys[i]) == g && is_group(&keys[i]))
			put_section(&keys[i]);
}

int
main(int argc, char **argv)
{
	char line[4096];
	FILE *in;
	int seen = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: mkconf5 TEMPLATE > postern.conf.5\n");
		return 1;
	}
	if ((in = fopen(argv[1], "r")) == NULL) {
		perror(argv[1]);
		return 1;
	}
	keys = config_keys(&nkeys);
	while (fgets(line, sizeof(line), in) != NULL) {
		if (strcmp(line, MARKER "\n") != 0) {
			fputs(line, stdout);
			continue;
		}
		if (seen++) {
			fprintf(stderr, "mkconf5: %s: " MARKER " twice\n",
			    argv[1]);
			return 1;
		}
		put_section(NULL);
	}
	if (ferror(in) || fclose(in) != 0) {
		perror(argv[1]);
		return 1;
	}
	if (!seen) {
		fprintf(stderr, "mkconf5: %s: no " MARKER " line\n", argv[1]);
		return 1;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("mkconf5: standard output");
		return 1;
	}
	return 0;
}
