/*
 * The vault: a small vtable of secret providers (env and files here,
 * Infisical in vault_infisical.c) filling one store in locked memory.
 * Everything is loaded at open so that a missing or unreachable provider
 * stops start-up instead of failing some request later.
 */
#include "vault_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VAULT_ENV_PREFIX "BULWARK_SECRET_"

struct vault_provider {
	const char *name;
	bw_err (*load)(const struct config *cfg, struct vault_store *st, char *why, size_t whylen);
};

struct vault {
	const struct vault_provider *prov;
	struct vault_store *st; /* vault_secure_alloc()ed */
};

void *
vault_secure_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/*
	 * Best effort: RLIMIT_MEMLOCK or the kernel may say no. The system
	 * call directly, because sanitizer runtimes make mlock() a no-op and
	 * the tests run on a sanitizer build.
	 */
	(void)syscall(SYS_mlock, p, n);
	(void)madvise(p, n, MADV_DONTDUMP);
	return p;
}

void
vault_secure_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
	(void)syscall(SYS_munlock, p, n);
	(void)munmap(p, n);
}

int
vault_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > VAULT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/*
 * A name from outside (a variable, a file, a server) fit to print: at most
 * 64 characters, anything unusual shown as '?'. Names are not secrets, but
 * they may be junk.
 */
static const char *
vault_shown_name(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, m = n < VAULT_NAME_MAX ? n : VAULT_NAME_MAX;
	if (m >= outlen)
		m = outlen - 1;
	for (i = 0; i < m; i++) {
		char c = s[i];
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '_' || c == '-' || c == '.';
		out[i] = plain ? c : '?';
	}
	out[i] = '\0';
	if (n > m && m >= 3)
		memcpy(out + m - 3, "...", 3);
	return out;
}

static const struct vault_secret *
vault_find(const struct vault_store *st, const char *name, size_t namelen)
{
	for (size_t i = 0; i < st->n; i++)
		if (strlen(st->s[i].name) == namelen && memcmp(st->s[i].name, name, namelen) == 0)
			return &st->s[i];
	return NULL;
}

/* Checks before a value goes into st->s[st->n]. */
static bw_err
vault_store_check(const struct vault_store *st, const char *name, size_t namelen, char *why,
		  size_t whylen)
{
	char shown[VAULT_NAME_MAX + 1];
	if (!vault_name_ok(name, namelen)) {
		snprintf(why, whylen, "secret name '%s' is not [A-Z0-9_]{1,%d}",
			 vault_shown_name(name, namelen, shown, sizeof(shown)), VAULT_NAME_MAX);
		return BW_ERR_INVALID;
	}
	if (vault_find(st, name, namelen) != NULL) {
		snprintf(why, whylen, "secret %.*s is given more than once", (int)namelen, name);
		return BW_ERR_INVALID;
	}
	if (st->n >= VAULT_MAX_SECRETS) {
		snprintf(why, whylen, "more than %d secrets (at %.*s)", VAULT_MAX_SECRETS,
			 (int)namelen, name);
		return BW_ERR_NOMEM;
	}
	return BW_OK;
}

/* Accept the value already in st->s[st->n] (len bytes) under name. */
static bw_err
vault_store_commit(struct vault_store *st, const char *name, size_t namelen, size_t len, char *why,
		   size_t whylen)
{
	struct vault_secret *s = &st->s[st->n];
	if (len == 0 || len > VAULT_SECRET_MAX) {
		OPENSSL_cleanse(s, sizeof(*s));
		if (len == 0) {
			snprintf(why, whylen, "secret %.*s is empty", (int)namelen, name);
			return BW_ERR_INVALID;
		}
		snprintf(why, whylen, "secret %.*s is larger than %d bytes", (int)namelen, name,
			 VAULT_SECRET_MAX);
		return BW_ERR_TOO_LARGE;
	}
	memcpy(s->name, name, namelen);
	s->name[namelen] = '\0';
	s->len = len;
	st->n++;
	return BW_OK;
}

bw_err
vault_store_add(struct vault_store *st, const char *name, size_t namelen, const void *val,
		size_t len, char *why, size_t whylen)
{
	bw_err e = vault_store_check(st, name, namelen, why, whylen);
	if (e != BW_OK)
		return e;
	if (len <= VAULT_SECRET_MAX)
		memcpy(st->s[st->n].val, val, len);
	return vault_store_commit(st, name, namelen, len, why, whylen);
}

bw_err
vault_read_file(int dirfd, const char *path, const char *shown, unsigned char *buf, size_t max,
		size_t *len, char *why, size_t whylen)
{
	struct stat st;
	size_t got = 0;
	bw_err e = BW_OK;
	/* O_NONBLOCK: opening a FIFO must not hang start-up; it is refused below. */
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, whylen, "%s: cannot open: %s", shown, strerror(errno));
		return BW_ERR_CONFIG;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "%s: cannot stat: %s", shown, strerror(errno));
		e = BW_ERR_CONFIG;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", shown);
		e = BW_ERR_NOTFOUND;
		goto cleanup;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(why, whylen, "%s: group or others may access it (mode %04o); chmod 600 it",
			 shown, (unsigned)(st.st_mode & 07777));
		e = BW_ERR_CONFIG;
		goto cleanup;
	}
	/* Room for max bytes, one newline, and one byte that proves "too long". */
	while (got < max + 2) {
		ssize_t r = read(fd, buf + got, max + 2 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "%s: cannot read: %s", shown, strerror(errno));
			e = BW_ERR_CONFIG;
			goto cleanup;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > max) {
		snprintf(why, whylen, "%s: longer than %zu bytes", shown, max);
		e = BW_ERR_TOO_LARGE;
		goto cleanup;
	}
	*len = got;
cleanup:
	if (e != BW_OK)
		OPENSSL_cleanse(buf, max + 2);
	close(fd);
	return e;
}

/*
 * env: BULWARK_SECRET_<NAME>. Every such variable is wiped in place and
 * removed, valid or not and whether or not loading succeeds, so that no
 * child process inherits it and the value does not linger in the
 * environment block (/proc/<pid>/environ shows the original one). The
 * first problem found is the one reported.
 */
static bw_err
vault_env_load(const struct config *cfg, struct vault_store *st, char *why, size_t whylen)
{
	const size_t plen = strlen(VAULT_ENV_PREFIX);
	bw_err first = BW_OK;
	size_t bound = 1;
	(void)cfg;
	for (char **e = environ; e != NULL && *e != NULL; e++)
		bound++;
	/* Each round removes one variable; the bound only guards against a libc surprise. */
	for (size_t round = 0; round < bound; round++) {
		char *var = NULL;
		for (char **e = environ; e != NULL && *e != NULL; e++) {
			if (strncmp(*e, VAULT_ENV_PREFIX, plen) == 0) {
				var = *e;
				break;
			}
		}
		if (var == NULL)
			return first;
		char *eq = strchr(var, '=');
		size_t varlen = eq != NULL ? (size_t)(eq - var) : strlen(var);
		const char *name = var + plen;
		size_t namelen = varlen - plen;
		if (first == BW_OK) {
			char w[256];
			size_t vlen = eq != NULL ? strlen(eq + 1) : 0;
			bw_err e = vault_store_add(st, name, namelen, eq != NULL ? eq + 1 : "", vlen, w,
						   sizeof(w));
			if (e != BW_OK) {
				char shown[VAULT_NAME_MAX + 1];
				first = e;
				/* w names the secret; say which variable it came from. */
				snprintf(why, whylen, "environment variable %s%s: %s", VAULT_ENV_PREFIX,
					 vault_shown_name(name, namelen, shown, sizeof(shown)), w);
			}
		}
		char *copy = strndup(var, varlen);
		if (eq != NULL)
			OPENSSL_cleanse(eq + 1, strlen(eq + 1));
		if (copy == NULL) {
			snprintf(why, whylen, "out of memory removing %s* variables", VAULT_ENV_PREFIX);
			return BW_ERR_NOMEM;
		}
		int rc = unsetenv(copy);
		free(copy);
		if (rc != 0) {
			snprintf(why, whylen, "cannot remove an environment variable: %s",
				 strerror(errno));
			return BW_ERR_INTERNAL;
		}
	}
	snprintf(why, whylen, "%s* variables would not go away", VAULT_ENV_PREFIX);
	return BW_ERR_INTERNAL;
}

/*
 * files: one regular file per secret, named <NAME>, in files_dir or else
 * $CREDENTIALS_DIRECTORY (systemd LoadCredential=). Other entries (README,
 * dot-files, lower-case names, directories) are not secrets and are
 * skipped; a secret file others may read stops the load.
 */
static bw_err
vault_files_load(const struct config *cfg, struct vault_store *st, char *why, size_t whylen)
{
	const char *dir = cfg->vault_files_dir;
	bw_err e = BW_OK;
	DIR *d = NULL;
	if (dir[0] == '\0') {
		dir = getenv("CREDENTIALS_DIRECTORY");
		if (dir == NULL || dir[0] == '\0') {
			snprintf(why, whylen,
				 "[vault] files_dir is empty and $CREDENTIALS_DIRECTORY is not set");
			return BW_ERR_CONFIG;
		}
	}
	d = opendir(dir);
	if (d == NULL) {
		snprintf(why, whylen, "directory %s: cannot open: %s", dir, strerror(errno));
		return BW_ERR_CONFIG;
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				snprintf(why, whylen, "directory %s: cannot list: %s", dir,
					 strerror(errno));
				e = BW_ERR_CONFIG;
			}
			break;
		}
		size_t nl = strlen(de->d_name);
		if (!vault_name_ok(de->d_name, nl))
			continue;
		char shown[CONFIG_STR + VAULT_NAME_MAX + 2];
		snprintf(shown, sizeof(shown), "%.*s/%.*s", CONFIG_STR - 1, dir, VAULT_NAME_MAX,
			 de->d_name);
		if ((e = vault_store_check(st, de->d_name, nl, why, whylen)) != BW_OK)
			break;
		size_t len = 0;
		e = vault_read_file(dirfd(d), de->d_name, shown, st->s[st->n].val, VAULT_SECRET_MAX,
				    &len, why, whylen);
		if (e == BW_ERR_NOTFOUND) { /* a directory or device with a secret's name */
			e = BW_OK;
			continue;
		}
		if (e != BW_OK)
			break;
		if ((e = vault_store_commit(st, de->d_name, nl, len, why, whylen)) != BW_OK) {
			/* add the path: the secret's name alone does not say where */
			char w[512];
			snprintf(w, sizeof(w), "%s", why);
			snprintf(why, whylen, "%s: %s", shown, w);
			break;
		}
	}
	closedir(d);
	return e;
}

static const struct vault_provider vault_providers[] = {
	{"env", vault_env_load},
	{"files", vault_files_load},
	{"infisical", vault_infisical_load},
};

bw_err
vault_open(const struct config *cfg, struct vault **out, char *err, size_t errlen)
{
	char why[768] = "";
	bw_err e;
	struct vault *v = NULL;
	const struct vault_provider *prov = NULL;
	*out = NULL;
	for (size_t i = 0; i < BW_ARRAY_LEN(vault_providers); i++)
		if (strcmp(cfg->vault_provider, vault_providers[i].name) == 0)
			prov = &vault_providers[i];
	if (prov == NULL) {
		snprintf(err, errlen, "vault: unknown provider '%s' (env, files or infisical)",
			 cfg->vault_provider);
		return BW_ERR_CONFIG;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL ||
	    (v->st = vault_secure_alloc(sizeof(*v->st))) == NULL) {
		e = BW_ERR_NOMEM;
		snprintf(why, sizeof(why), "cannot allocate the secret store");
		goto fail;
	}
	v->prov = prov;
	if ((e = prov->load(cfg, v->st, why, sizeof(why))) != BW_OK)
		goto fail;
	*out = v;
	return BW_OK;
fail:
	snprintf(err, errlen, "vault provider %s: %s", prov->name, why[0] ? why : bw_strerror(e));
	vault_close(v);
	return e;
}

bw_err
vault_get(struct vault *v, const char *name, unsigned char *buf, size_t cap, size_t *len)
{
	size_t n = strnlen(name, VAULT_NAME_MAX + 1);
	if (!vault_name_ok(name, n))
		return BW_ERR_INVALID;
	const struct vault_secret *s = vault_find(v->st, name, n);
	if (s == NULL)
		return BW_ERR_NOTFOUND;
	*len = s->len;
	if (cap < s->len)
		return BW_ERR_TOO_LARGE;
	memcpy(buf, s->val, s->len);
	return BW_OK;
}

const char *
vault_provider_name(const struct vault *v)
{
	return v->prov->name;
}

void
vault_close(struct vault *v)
{
	if (v == NULL)
		return;
	vault_secure_free(v->st, sizeof(*v->st));
	free(v);
}
