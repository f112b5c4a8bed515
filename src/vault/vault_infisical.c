/*
 * The Infisical provider: log in as a machine identity with Universal Auth
 * (POST /api/v1/auth/universal-auth/login, {"clientId","clientSecret"} ->
 * {"accessToken",...}), then list the secrets of one project, environment
 * and folder with the token as a Bearer credential: v3 GET
 * /api/v3/secrets/raw?workspaceId=&environment=&secretPath=, or v4 GET
 * /api/v4/secrets?projectId=&environment=&secretPath=; both answer
 * {"secrets":[{"secretKey","secretValue",...}],...}.
 *
 * The only file that includes curl. HTTPS only, certificate and host name
 * always verified, no redirects, every request under [vault] timeout and
 * every answer under INFISICAL_BODY_MAX. The client secret, the token and
 * the answers live in locked memory and are wiped as soon as they have
 * served. What cannot be wiped from here: copies inside libcurl and
 * OpenSSL (request and TLS buffers) and the parser's scratch memory in
 * jansson; the parsed strings themselves are wiped before they are freed.
 */
#include "vault_int.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INFISICAL_BODY_MAX (1024 * 1024) /* bytes of one answer */
#define INFISICAL_CRED_MAX 1024         /* bytes of the client ID or secret */
#define INFISICAL_TOKEN_MAX 8192        /* bytes of the access token */
#define INFISICAL_URL_MAX 4096

/* Secrets in flight; one vault_secure_alloc() block. */
struct infisical_scratch {
	unsigned char client_id[INFISICAL_CRED_MAX + 2];
	unsigned char client_secret[INFISICAL_CRED_MAX + 2];
	/* {"clientId":"…","clientSecret":"…"}, each byte escaped to at most 6 */
	char login_body[2 * 6 * INFISICAL_CRED_MAX + 64];
	char token[INFISICAL_TOKEN_MAX + 1];
	char auth_header[INFISICAL_TOKEN_MAX + 32];
};

/* An answer, in vault_secure_alloc() memory, with a hard maximum. */
struct infisical_body {
	unsigned char *p;
	size_t len, cap;
	int overflow;
};

struct infisical {
	const struct config *cfg;
	CURL *h;
	struct infisical_scratch *sc;
	struct infisical_body body;
	char base[INFISICAL_URL_MAX]; /* infisical_url without trailing '/' */
	char curlerr[CURL_ERROR_SIZE];
};

static size_t
infisical_write(char *data, size_t size, size_t nmemb, void *user)
{
	struct infisical_body *b = user;
	size_t n = size * nmemb; /* curl documents size as always 1 */
	if (size != 1 || n > b->cap - b->len) {
		b->overflow = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return n;
}

static void
infisical_body_reset(struct infisical_body *b)
{
	OPENSSL_cleanse(b->p, b->len);
	b->len = 0;
	b->overflow = 0;
}

/* Wipe every string in a parsed tree before it is freed. */
static void
infisical_json_wipe(json_t *j)
{
	size_t i;
	const char *k;
	json_t *x;
	switch (json_typeof(j)) {
	case JSON_STRING:
		/* jansson owns a private copy; nothing else refers to it. */
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(j), json_string_length(j));
		break;
	case JSON_ARRAY:
		json_array_foreach(j, i, x) infisical_json_wipe(x);
		break;
	case JSON_OBJECT:
		json_object_foreach(j, k, x) infisical_json_wipe(x);
		break;
	default:
		break;
	}
}

static void
infisical_json_free(json_t *j)
{
	if (j == NULL)
		return;
	infisical_json_wipe(j);
	json_decref(j);
}

/* JSON string escaping into out; 0 when it does not fit. */
static int
infisical_json_escape(const unsigned char *s, size_t n, char *out, size_t cap, size_t *pos)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		char esc[6];
		size_t el = 0;
		if (c == '"' || c == '\\') {
			esc[el++] = '\\';
			esc[el++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		} else {
			esc[el++] = (char)c;
		}
		if (el > cap - *pos)
			return 0;
		memcpy(out + *pos, esc, el);
		*pos += el;
	}
	return 1;
}

static int
infisical_append(char *out, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (n > cap - *pos)
		return 0;
	memcpy(out + *pos, s, n);
	*pos += n;
	return 1;
}

/* Append one header line to *list (which stays valid on failure). */
static bw_err
infisical_header(struct curl_slist **list, const char *line, char *why, size_t whylen)
{
	struct curl_slist *t = curl_slist_append(*list, line);
	if (t == NULL) {
		snprintf(why, whylen, "out of memory");
		return BW_ERR_NOMEM;
	}
	*list = t;
	return BW_OK;
}

/* Check the settings before anything is read or sent. */
static bw_err
infisical_settings(struct infisical *c, char *why, size_t whylen)
{
	const struct config *cfg = c->cfg;
	const char *u = cfg->vault_infisical_url;
	size_t n = strlen(u);
	if (strchr(u, '@') != NULL) {
		/* user:password@ would be a credential in the config file: not shown, not used. */
		snprintf(why, whylen, "[vault] infisical_url must not hold credentials ('@')");
		return BW_ERR_CONFIG;
	}
	if (strncasecmp(u, "https://", 8) != 0 || n <= 8) {
		snprintf(why, whylen, "[vault] infisical_url '%s' must be an https:// URL", u);
		return BW_ERR_CONFIG;
	}
	for (size_t i = 0; i < n; i++) {
		if (u[i] == '?' || u[i] == '#' || u[i] == ' ' || (unsigned char)u[i] < 0x20) {
			snprintf(why, whylen,
				 "[vault] infisical_url '%s' must be a base URL (no query, "
				 "fragment or spaces)",
				 u);
			return BW_ERR_CONFIG;
		}
	}
	while (n > 8 && u[n - 1] == '/')
		n--;
	if (n >= sizeof(c->base)) {
		snprintf(why, whylen, "[vault] infisical_url is too long");
		return BW_ERR_CONFIG;
	}
	memcpy(c->base, u, n);
	c->base[n] = '\0';
	if (cfg->vault_infisical_project_id[0] == '\0') {
		snprintf(why, whylen, "[vault] infisical_project_id is empty");
		return BW_ERR_CONFIG;
	}
	if (cfg->vault_infisical_environment[0] == '\0') {
		snprintf(why, whylen, "[vault] infisical_environment is empty");
		return BW_ERR_CONFIG;
	}
	if (cfg->vault_infisical_secret_path[0] != '/') {
		snprintf(why, whylen, "[vault] infisical_secret_path must start with '/'");
		return BW_ERR_CONFIG;
	}
	if (strcmp(cfg->vault_infisical_api, "v3") != 0 &&
	    strcmp(cfg->vault_infisical_api, "v4") != 0) {
		snprintf(why, whylen, "[vault] infisical_api must be v3 or v4");
		return BW_ERR_CONFIG;
	}
	if (cfg->vault_infisical_client_id_file[0] == '\0' ||
	    cfg->vault_infisical_client_secret_file[0] == '\0') {
		snprintf(why, whylen,
			 "[vault] infisical_client_id_file and infisical_client_secret_file must "
			 "both be set");
		return BW_ERR_CONFIG;
	}
	return BW_OK;
}

/* Read one credential file (mode-checked, one line, not empty). */
static bw_err
infisical_credential(const char *path, const char *what, unsigned char *buf, size_t *len,
		     char *why, size_t whylen)
{
	char w[512];
	bw_err e = vault_read_file(AT_FDCWD, path, path, buf, INFISICAL_CRED_MAX, len, w, sizeof(w));
	if (e == BW_OK && *len == 0) {
		snprintf(w, sizeof(w), "%s: empty", path);
		e = BW_ERR_CONFIG;
	}
	if (e != BW_OK) {
		snprintf(why, whylen, "%s: %s", what, w);
		return e == BW_ERR_NOTFOUND ? BW_ERR_CONFIG : e;
	}
	return BW_OK;
}

/* Options every request shares. Any refusal here is fatal: fail closed. */
static bw_err
infisical_curl_setup(struct infisical *c, char *why, size_t whylen)
{
	const struct config *cfg = c->cfg;
	CURL *h = c->h;
	CURLcode r = CURLE_OK;
#define SET(opt, val)                                                   \
	do {                                                            \
		if (r == CURLE_OK)                                      \
			r = curl_easy_setopt(h, opt, val);              \
	} while (0)
	SET(CURLOPT_ERRORBUFFER, c->curlerr);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->vault_infisical_ca_file[0] != '\0') {
		/* This file and nothing else: no system directory on the side. */
		SET(CURLOPT_CAINFO, cfg->vault_infisical_ca_file);
		SET(CURLOPT_CAPATH, (char *)NULL);
	}
	SET(CURLOPT_TIMEOUT, cfg->vault_timeout);
	SET(CURLOPT_CONNECTTIMEOUT, cfg->vault_timeout);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)INFISICAL_BODY_MAX);
	SET(CURLOPT_WRITEFUNCTION, infisical_write);
	SET(CURLOPT_WRITEDATA, &c->body);
	SET(CURLOPT_USERAGENT, "bulwark-vault/1");
#undef SET
	if (r != CURLE_OK) {
		snprintf(why, whylen, "libcurl refused an option: %s", curl_easy_strerror(r));
		return BW_ERR_INTERNAL;
	}
	return BW_OK;
}

/*
 * One request to the URL already set. endpoint ("POST https://h/api/...")
 * is what messages name; the token never is. BW_OK only for a 2xx answer.
 */
static bw_err
infisical_perform(struct infisical *c, const char *endpoint, struct curl_slist *headers, char *why,
		  size_t whylen)
{
	long status = 0;
	infisical_body_reset(&c->body);
	c->curlerr[0] = '\0';
	if (curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, headers) != CURLE_OK) {
		snprintf(why, whylen, "%s: libcurl refused the headers", endpoint);
		return BW_ERR_INTERNAL;
	}
	CURLcode r = curl_easy_perform(c->h);
	(void)curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	if (r != CURLE_OK) {
		if (c->body.overflow || r == CURLE_FILESIZE_EXCEEDED) {
			snprintf(why, whylen, "%s: answer larger than %d bytes", endpoint,
				 INFISICAL_BODY_MAX);
			return BW_ERR_TOO_LARGE;
		}
		if (r == CURLE_OPERATION_TIMEDOUT) {
			snprintf(why, whylen, "%s: no answer within %ld s ([vault] timeout): %s",
				 endpoint, c->cfg->vault_timeout,
				 c->curlerr[0] ? c->curlerr : curl_easy_strerror(r));
			return BW_ERR_UNAVAILABLE;
		}
		snprintf(why, whylen, "%s: %s", endpoint,
			 c->curlerr[0] ? c->curlerr : curl_easy_strerror(r));
		return BW_ERR_UNAVAILABLE;
	}
	if (curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	if (status < 200 || status > 299) {
		/* The body is not shown: it is the server's words, not ours to vouch for. */
		snprintf(why, whylen, "%s: HTTP %ld%s", endpoint, status,
			 status == 401 || status == 403 ? " (credentials or access refused)" : "");
		return status == 401 || status == 403 ? BW_ERR_UNAUTHORIZED : BW_ERR_UNAVAILABLE;
	}
	return BW_OK;
}

/* Parse the answer in c->body; *out is an object. No input text in messages. */
static bw_err
infisical_parse(struct infisical *c, const char *endpoint, json_t **out, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)c->body.p, c->body.len, JSON_REJECT_DUPLICATES, &jerr);
	infisical_body_reset(&c->body);
	if (j == NULL) {
		/* jerr.text may quote the input, which may hold secrets: position only. */
		snprintf(why, whylen, "%s: answer is not valid JSON (line %d, column %d)", endpoint,
			 jerr.line, jerr.column);
		return BW_ERR_INVALID;
	}
	if (!json_is_object(j)) {
		infisical_json_free(j);
		snprintf(why, whylen, "%s: answer is not a JSON object", endpoint);
		return BW_ERR_INVALID;
	}
	*out = j;
	return BW_OK;
}

static bw_err
infisical_login(struct infisical *c, char *why, size_t whylen)
{
	const struct config *cfg = c->cfg;
	struct infisical_scratch *sc = c->sc;
	char url[INFISICAL_URL_MAX + 64], endpoint[INFISICAL_URL_MAX + 80];
	size_t idlen = 0, seclen = 0, pos = 0;
	struct curl_slist *hdr = NULL;
	json_t *j = NULL;
	bw_err e;

	if ((e = infisical_credential(cfg->vault_infisical_client_id_file, "client ID file",
				      sc->client_id, &idlen, why, whylen)) != BW_OK)
		goto cleanup;
	if ((e = infisical_credential(cfg->vault_infisical_client_secret_file,
				      "client secret file", sc->client_secret, &seclen, why,
				      whylen)) != BW_OK)
		goto cleanup;
	const size_t cap = sizeof(sc->login_body) - 1;
	if (!infisical_append(sc->login_body, cap, &pos, "{\"clientId\":\"") ||
	    !infisical_json_escape(sc->client_id, idlen, sc->login_body, cap, &pos) ||
	    !infisical_append(sc->login_body, cap, &pos, "\",\"clientSecret\":\"") ||
	    !infisical_json_escape(sc->client_secret, seclen, sc->login_body, cap, &pos) ||
	    !infisical_append(sc->login_body, cap, &pos, "\"}")) {
		snprintf(why, whylen, "login request too large"); /* cannot happen: sized above */
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	sc->login_body[pos] = '\0';
	OPENSSL_cleanse(sc->client_secret, sizeof(sc->client_secret));

	snprintf(url, sizeof(url), "%s/api/v1/auth/universal-auth/login", c->base);
	snprintf(endpoint, sizeof(endpoint), "login POST %s", url);
	if ((e = infisical_header(&hdr, "Content-Type: application/json", why, whylen)) != BW_OK ||
	    (e = infisical_header(&hdr, "Accept: application/json", why, whylen)) != BW_OK)
		goto cleanup;
	/* POSTFIELDS (not COPYPOSTFIELDS): curl reads our locked buffer in place. */
	if (curl_easy_setopt(c->h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, sc->login_body) != CURLE_OK ||
	    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)pos) != CURLE_OK) {
		snprintf(why, whylen, "%s: libcurl refused the request", endpoint);
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	e = infisical_perform(c, endpoint, hdr, why, whylen);
	OPENSSL_cleanse(sc->login_body, sizeof(sc->login_body));
	if (e != BW_OK)
		goto cleanup;
	if ((e = infisical_parse(c, endpoint, &j, why, whylen)) != BW_OK)
		goto cleanup;
	json_t *tok = json_object_get(j, "accessToken");
	const char *tv = json_string_value(tok);
	size_t tl = json_string_length(tok);
	int ok = tv != NULL && tl > 0 && tl <= INFISICAL_TOKEN_MAX;
	/* It goes into a header: visible ASCII only, so no header can be smuggled in. */
	for (size_t i = 0; ok && i < tl; i++)
		ok = tv[i] > 0x20 && tv[i] < 0x7f;
	if (!ok) {
		snprintf(why, whylen, "%s: answer has no usable \"accessToken\"", endpoint);
		e = BW_ERR_INVALID;
		goto cleanup;
	}
	memcpy(sc->token, tv, tl);
	sc->token[tl] = '\0';
	e = BW_OK;
cleanup:
	infisical_json_free(j);
	curl_slist_free_all(hdr);
	OPENSSL_cleanse(sc->client_secret, sizeof(sc->client_secret));
	OPENSSL_cleanse(sc->login_body, sizeof(sc->login_body));
	return e;
}

/* Take {"secrets":[{"secretKey","secretValue"},...]} into the store. */
static bw_err
infisical_take(struct vault_store *st, const char *endpoint, json_t *j, char *why, size_t whylen)
{
	json_t *arr = json_object_get(j, "secrets"), *it;
	size_t i;
	if (!json_is_array(arr)) {
		snprintf(why, whylen, "%s: answer has no \"secrets\" array", endpoint);
		return BW_ERR_INVALID;
	}
	json_array_foreach(arr, i, it) {
		json_t *k = json_object_get(it, "secretKey");
		json_t *val = json_object_get(it, "secretValue");
		if (!json_is_string(k) || !json_is_string(val)) {
			snprintf(why, whylen,
				 "%s: secrets[%zu] lacks a string secretKey or secretValue", endpoint,
				 i);
			return BW_ERR_INVALID;
		}
		if (json_is_true(json_object_get(it, "secretValueHidden"))) {
			/* Name it only when it is a valid name: then it is safe to print. */
			const char *kn = json_string_value(k);
			char at[32];
			snprintf(at, sizeof(at), "secrets[%zu]", i);
			snprintf(why, whylen,
				 "%s: the value of %s is hidden from this identity (it needs "
				 "permission to read values)",
				 endpoint, vault_name_ok(kn, json_string_length(k)) ? kn : at);
			return BW_ERR_DENIED;
		}
		char w[256];
		bw_err e = vault_store_add(st, json_string_value(k), json_string_length(k),
					   json_string_value(val), json_string_length(val), w,
					   sizeof(w));
		if (e != BW_OK) {
			snprintf(why, whylen, "%s: %s", endpoint, w);
			return e;
		}
	}
	return BW_OK;
}

static bw_err
infisical_fetch(struct infisical *c, struct vault_store *st, char *why, size_t whylen)
{
	const struct config *cfg = c->cfg;
	struct infisical_scratch *sc = c->sc;
	int v4 = strcmp(cfg->vault_infisical_api, "v4") == 0;
	const char *path = v4 ? "/api/v4/secrets" : "/api/v3/secrets/raw";
	const char *projkey = v4 ? "projectId" : "workspaceId";
	char url[3 * INFISICAL_URL_MAX], endpoint[INFISICAL_URL_MAX + 64];
	char *proj = NULL, *env = NULL, *spath = NULL;
	struct curl_slist *hdr = NULL;
	json_t *j = NULL;
	bw_err e;

	snprintf(endpoint, sizeof(endpoint), "secrets GET %s%s", c->base, path);
	proj = curl_easy_escape(c->h, cfg->vault_infisical_project_id, 0);
	env = curl_easy_escape(c->h, cfg->vault_infisical_environment, 0);
	spath = curl_easy_escape(c->h, cfg->vault_infisical_secret_path, 0);
	if (proj == NULL || env == NULL || spath == NULL) {
		snprintf(why, whylen, "out of memory");
		e = BW_ERR_NOMEM;
		goto cleanup;
	}
	int n = snprintf(url, sizeof(url), "%s%s?%s=%s&environment=%s&secretPath=%s", c->base, path,
			 projkey, proj, env, spath);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(why, whylen, "%s: URL too long", endpoint);
		e = BW_ERR_CONFIG;
		goto cleanup;
	}
	snprintf(sc->auth_header, sizeof(sc->auth_header), "Authorization: Bearer %s", sc->token);
	OPENSSL_cleanse(sc->token, sizeof(sc->token));
	if ((e = infisical_header(&hdr, sc->auth_header, why, whylen)) != BW_OK ||
	    (e = infisical_header(&hdr, "Accept: application/json", why, whylen)) != BW_OK)
		goto cleanup;
	OPENSSL_cleanse(sc->auth_header, sizeof(sc->auth_header));
	if (curl_easy_setopt(c->h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
		snprintf(why, whylen, "%s: libcurl refused the request", endpoint);
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	if ((e = infisical_perform(c, endpoint, hdr, why, whylen)) != BW_OK)
		goto cleanup;
	if ((e = infisical_parse(c, endpoint, &j, why, whylen)) != BW_OK)
		goto cleanup;
	e = infisical_take(st, endpoint, j, why, whylen);
cleanup:
	infisical_json_free(j);
	/* curl_slist_append copied the header onto the heap: wipe that copy too. */
	for (struct curl_slist *s = hdr; s != NULL; s = s->next)
		OPENSSL_cleanse(s->data, strlen(s->data));
	curl_slist_free_all(hdr);
	curl_free(proj);
	curl_free(env);
	curl_free(spath);
	OPENSSL_cleanse(sc->token, sizeof(sc->token));
	OPENSSL_cleanse(sc->auth_header, sizeof(sc->auth_header));
	return e;
}

bw_err
vault_infisical_load(const struct config *cfg, struct vault_store *st, char *why, size_t whylen)
{
	struct infisical c;
	int global = 0;
	bw_err e;
	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	if ((e = infisical_settings(&c, why, whylen)) != BW_OK)
		return e;
	c.sc = vault_secure_alloc(sizeof(*c.sc));
	c.body.p = vault_secure_alloc(INFISICAL_BODY_MAX);
	c.body.cap = INFISICAL_BODY_MAX;
	if (c.sc == NULL || c.body.p == NULL) {
		snprintf(why, whylen, "cannot allocate locked memory");
		e = BW_ERR_NOMEM;
		goto cleanup;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(why, whylen, "libcurl would not initialise");
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	global = 1;
	if ((c.h = curl_easy_init()) == NULL) {
		snprintf(why, whylen, "libcurl would not initialise");
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	if ((e = infisical_curl_setup(&c, why, whylen)) != BW_OK)
		goto cleanup;
	if ((e = infisical_login(&c, why, whylen)) != BW_OK)
		goto cleanup;
	e = infisical_fetch(&c, st, why, whylen);
cleanup:
	if (c.h != NULL)
		curl_easy_cleanup(c.h);
	if (global)
		curl_global_cleanup();
	vault_secure_free(c.body.p, INFISICAL_BODY_MAX);
	vault_secure_free(c.sc, sizeof(*c.sc));
	return e;
}
