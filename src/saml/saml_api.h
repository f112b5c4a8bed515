/* SAML's routes (saml_api.c): the SSO settings and /saml/metadata, /saml/login, /saml/acs. */
#ifndef BW_SAML_API_H
#define BW_SAML_API_H

#include "../http/http.h"

extern const struct route saml_routes[];
extern const size_t saml_routes_count;

#endif
