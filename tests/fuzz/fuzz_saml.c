/*
 * libFuzzer target for what SAML single sign-on reads from outside
 * (src/saml/xml.c). The first byte picks, the rest is the input:
 *   0  saml_idp_parse (IdP metadata an administrator pastes)
 *   1  saml_response_shape (a decoded SAMLResponse)
 *   2  saml_cert_normalize (a certificate, PEM or base64)
 *   3  saml_url_ok (an SSO or SLO URL)
 * Held to: no crash, leak or read past the input; and what is accepted
 * keeps its promises. Metadata read is written back by saml_idp_xml and
 * reads back the same; a shape accepted is signed somewhere and names two
 * IDs; a certificate normalised normalises to itself; a URL accepted is
 * https (or http to loopback), printable, without user-info or fragment.
 *   build/fuzz/fuzz_saml -max_total_time=60 build/fuzz/corpus-fuzz_saml
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../src/saml/xml.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	saml_xml_init();
	return 0;
}

static void
check_idp(const char *p, size_t n)
{
	struct saml_idp idp, back;
	const char *why = NULL;
	if (saml_idp_parse(p, n, &idp, &why) != BW_OK) {
		if (why == NULL || idp.ncerts != 0)
			abort();
		return;
	}
	if (idp.entity_id[0] == '\0' || !saml_url_ok(idp.sso_url) || idp.ncerts == 0 ||
	    idp.ncerts > SAML_CERTS_MAX || (idp.slo_url[0] != '\0' && !saml_url_ok(idp.slo_url)))
		abort();
	char *x = saml_idp_xml(&idp);
	if (x == NULL)
		abort(); /* what was read can be written */
	if (saml_idp_parse(x, strlen(x), &back, &why) != BW_OK)
		abort(); /* and read back */
	if (strcmp(idp.entity_id, back.entity_id) != 0 || strcmp(idp.sso_url, back.sso_url) != 0 ||
	    strcmp(idp.slo_url, back.slo_url) != 0 || idp.ncerts != back.ncerts)
		abort();
	for (size_t i = 0; i < idp.ncerts; i++)
		if (strcmp(idp.certs[i], back.certs[i]) != 0)
			abort();
	free(x);
	saml_idp_free(&back);
	saml_idp_free(&idp);
}

static void
check_shape(const char *p, size_t n)
{
	struct saml_shape s;
	const char *reason = NULL, *why = NULL;
	if (saml_response_shape(p, n, &s, &reason, &why) != BW_OK) {
		if (reason == NULL || why == NULL || s.response_id[0] != '\0')
			abort();
		return;
	}
	if ((!s.response_signed && !s.assertion_signed) || s.response_id[0] == '\0' ||
	    s.assertion_id[0] == '\0' || strcmp(s.response_id, s.assertion_id) == 0)
		abort();
}

static void
check_cert(const char *text)
{
	char *pem = NULL, *again = NULL;
	struct saml_cert_info info, info2;
	const char *why = NULL;
	if (saml_cert_normalize(text, &pem, &info, &why) != BW_OK) {
		if (pem != NULL || why == NULL)
			abort();
		return;
	}
	if (info.key_bits < 256 || strlen(info.sha256) != 95)
		abort();
	if (saml_cert_normalize(pem, &again, &info2, &why) != BW_OK || strcmp(pem, again) != 0 ||
	    memcmp(&info, &info2, sizeof(info)) != 0)
		abort();
	free(again);
	free(pem);
}

static void
check_url(const char *url)
{
	if (!saml_url_ok(url))
		return;
	size_t n = strlen(url);
	int https = strncasecmp(url, "https://", 8) == 0;
	if (n > SAML_URL_MAX || (!https && strncasecmp(url, "http://", 7) != 0))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f ||
		    url[i] == '#' || url[i] == '\\')
			abort();
	const char *auth = url + (https ? 8 : 7);
	size_t alen = strcspn(auth, "/?");
	if (alen == 0 || memchr(auth, '@', alen) != NULL)
		abort();
	if (!https && strncmp(auth, "127.0.0.1", 9) != 0 && strncmp(auth, "[::1]", 5) != 0 &&
	    strncasecmp(auth, "localhost", 9) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = size - 1;
	int pick = data[0] % 4;
	/* exactly n bytes for the XML readers (ASan sees a read past them), a string for the others
	 */
	char *p = malloc(n + (pick >= 2));
	if (p == NULL)
		abort();
	memcpy(p, data + 1, n);
	switch (pick) {
	case 0:
		check_idp(p, n);
		break;
	case 1:
		check_shape(p, n);
		break;
	case 2:
		p[n] = '\0';
		check_cert(p);
		break;
	case 3:
		p[n] = '\0';
		check_url(p);
		break;
	default:
		abort();
	}
	free(p);
	return 0;
}
