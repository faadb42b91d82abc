// SPDX-License-Identifier: MIT
/*
 * json-get: a jq-free way for the shell tests to look into JSON output.
 *
 *   json-get PATH    < JSON   prints the value at PATH: strings bare, the rest
 *                             as compact JSON; exit 1 if PATH does not exist
 *   json-get -l PATH < JSON   prints the length of the array/object (0 for others)
 *   json-get -c      < JSON   prints the document canonically (sorted keys, compact)
 *   json-get -f KEY=VALUE ARRAYPATH < JSON
 *                             prints the index of the first element of the array
 *                             whose KEY (a path) prints as VALUE; exit 1 if none
 *
 * PATH: dot-separated keys and array indexes, e.g. "0.namespaces.1.uuid";
 * "." or "" is the whole document.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

static json_t *lookup(json_t *j, const char *path)
{
	char *copy = strdup(path), *save = NULL;

	for (char *tok = strtok_r(copy, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j)) {
			char *end;
			long i = strtol(tok, &end, 10);

			if (*end)
				j = NULL;
			else
				j = json_array_get(j, i < 0 ? (long)json_array_size(j) + i : i);
		} else {
			j = json_object_get(j, tok);
		}
	}
	free(copy);
	return j;
}

static char *show(json_t *v)
{
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int run(int argc, char **argv, json_t *doc);

int main(int argc, char **argv)
{
	json_error_t err;
	json_t *doc;
	int ret;

	doc = json_loadf(stdin, JSON_DECODE_ANY, &err);
	if (!doc) {
		fprintf(stderr, "json-get: invalid JSON: %s (line %d)\n", err.text, err.line);
		return 2;
	}
	ret = run(argc, argv, doc);
	json_decref(doc);
	return ret;
}

static int run(int argc, char **argv, json_t *doc)
{
	int opt, mode = 0;
	const char *find = NULL;
	json_t *v;
	char *s;
	int ret;

	while ((opt = getopt(argc, argv, "lcf:")) != -1) {
		switch (opt) {
		case 'l':
		case 'c':
			mode = opt;
			break;
		case 'f':
			mode = 'f';
			find = optarg;
			break;
		default:
			return 2;
		}
	}
	if (mode == 'c') {
		s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		printf("%s\n", s);
		free(s);
		return 0;
	}
	v = lookup(doc, optind < argc ? argv[optind] : "");
	if (!v)
		return 1;
	if (mode == 'l') {
		printf("%zu\n", json_is_array(v) ? json_array_size(v) :
				json_is_object(v) ? json_object_size(v) : 0);
		return 0;
	}
	if (mode == 'f') {
		const char *eq = strchr(find, '=');
		char *key;
		size_t i;
		json_t *el;

		if (!eq || !json_is_array(v))
			return 1;
		key = strndup(find, eq - find);
		ret = 1;
		json_array_foreach(v, i, el) {
			json_t *f = lookup(el, key);

			if (!f)
				continue;
			s = show(f);
			if (s && !strcmp(s, eq + 1)) {
				printf("%zu\n", i);
				ret = 0;
			}
			free(s);
			if (!ret)
				break;
		}
		free(key);
		return ret;
	}
	s = show(v);
	printf("%s\n", s ? s : "");
	free(s);
	return 0;
}
