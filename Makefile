# Bulwark build. `make` builds build/bulwark; `make run` and `make check`
# are the two commands the README starts with. Every public target first
# makes sure the Debian packages it needs are installed (scripts/install-deps),
# then re-enters make so pkg-config is only asked once they are there.

CC       ?= gcc
PKGS     := libmicrohttpd gnutls jansson inih sqlite3 libmariadb libcrypto libsodium libcurl libqrencode \
            icu-uc icu-i18n libmagic libarchive lasso gobject-2.0 glib-2.0 libxml-2.0 gmime-3.0 \
            opendkim
TESTPKGS := cmocka libcurl

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-missing-field-initializers
BASE     := -std=c17 -D_GNU_SOURCE -g -pthread -fstack-protector-strong -fPIE $(WARN)
OPT      := -O2 -D_FORTIFY_SOURCE=2
SAN      := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDHARD   := -pie -Wl,-z,relro,-z,now

SRC      := $(sort $(wildcard src/*.c src/*/*.c))
LIBSRC   := $(filter-out src/main.c,$(SRC))
UNITSRC  := $(sort $(wildcard tests/unit/test_*.c))

OBJ      := $(SRC:%.c=build/obj/%.o)
SANOBJ   := $(SRC:%.c=build/san/obj/%.o)
SANLIB   := $(LIBSRC:%.c=build/san/obj/%.o)
UNITBIN  := $(UNITSRC:tests/unit/%.c=build/san/tests/%)
LIBOBJ   := $(LIBSRC:%.c=build/obj/%.o)
BENCHSRC := $(sort $(wildcard bench/*.c))
BENCHBIN := $(BENCHSRC:bench/%.c=build/bench/%)

# Every core for the build (make check builds two trees on CI's fresh clone).
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)

.PHONY: all run check bench clean deps-build deps-run deps-test deps-bench \
        _all _check _san _bench fmt

all: deps-build
	@$(MAKE) --no-print-directory _all

run: deps-run
	@$(MAKE) --no-print-directory _all
	@scripts/dev-setup
	BULWARK_FILES_CLAMD_SOCKET=$${BULWARK_FILES_CLAMD_SOCKET:-$(CURDIR)/var/clamd/clamd.sock} \
	    exec build/bulwark serve

check: deps-test
	@$(MAKE) --no-print-directory _check

bench: deps-bench
	@$(MAKE) --no-print-directory _all
	bench/http_baseline
	bench/crypto_run
	bench/tenancy_run
	bench/rotation_run
	bench/auth_run
	bench/audit_run
	bench/webhook_run
	bench/api_run
	bench/api_run --driver mariadb

deps-build:
	@scripts/install-deps build
deps-run:
	@scripts/install-deps build run
deps-test:
	@scripts/install-deps build test
deps-bench:
	@scripts/install-deps build bench

# --- internal targets (packages present) ---------------------------------

_all: build/bulwark $(BENCHBIN)

_san: build/san/bulwark $(UNITBIN) build/fuzz/fuzz_netaddr build/fuzz/fuzz_query build/fuzz/fuzz_framing build/fuzz/fuzz_router \
        build/fuzz/fuzz_cookie build/fuzz/fuzz_host build/fuzz/fuzz_ifmatch build/fuzz/fuzz_cursor \
        build/fuzz/fuzz_filename build/fuzz/fuzz_archive build/fuzz/fuzz_webhooks build/fuzz/fuzz_saml

_check: _all _san
	@tests/run-all

# -isystem: warnings in the libraries' own headers (lasso's, glib's) are not ours to fix
CFLAGS_PKG  = $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS)))
# libunistring (src/core/email.c) has no pkg-config file on Debian 12; ICU
# (icu-uc, icu-i18n: the UTS #39 confusables, email.c too) has.
LIBS_PKG    = $(shell pkg-config --libs $(PKGS)) -lunistring
CFLAGS_TEST = $(shell pkg-config --cflags $(TESTPKGS))
LIBS_TEST   = $(shell pkg-config --libs $(TESTPKGS))

build/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(OPT) $(CFLAGS_PKG) -c $< -o $@

build/san/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(SAN) $(CFLAGS_PKG) -c $< -o $@

build/bulwark: $(OBJ)
	$(CC) $(BASE) $(OPT) $(LDHARD) $^ -o $@ $(LIBS_PKG)

build/bench/%: bench/%.c bench/bench.h $(LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(OPT) $(CFLAGS_PKG) $(LDHARD) $< $(LIBOBJ) -o $@ $(LIBS_PKG)

build/san/bulwark: $(SANOBJ)
	$(CC) $(BASE) $(SAN) $(LDHARD) $^ -o $@ $(LIBS_PKG)

build/san/tests/%: tests/unit/%.c tests/unit/unit.h tests/unit/dbenv.h $(SANLIB)
	@mkdir -p $(dir $@)
	$(CC) $(BASE) $(SAN) $(CFLAGS_PKG) $(CFLAGS_TEST) -Isrc $< $(SANLIB) -o $@ \
	    $(LIBS_PKG) $(LIBS_TEST)

# Fuzz targets: clang's libFuzzer with ASan/UBSan, over the parser sources they need.
FUZZCC := clang-14
build/fuzz/fuzz_netaddr: tests/fuzz/fuzz_netaddr.c src/core/netaddr.c src/core/util.c src/core/err.c src/core/log.c
	@mkdir -p $(dir $@)
	$(FUZZCC) -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ -o $@

build/fuzz/fuzz_query: tests/fuzz/fuzz_query.c src/http/query.c src/http/csv.c src/http/response.c src/op/op.c src/core/buf.c src/core/pool.c src/core/util.c src/core/err.c src/core/log.c
	@mkdir -p $(dir $@)
	$(FUZZCC) -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror $(CFLAGS_PKG) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ -o $@ \
	    $(shell pkg-config --libs jansson) -lcrypto

build/fuzz/fuzz_router: tests/fuzz/fuzz_router.c src/http/router.c src/http/query.c src/http/response.c src/op/op.c src/core/pool.c src/core/util.c src/core/err.c src/core/log.c
	@mkdir -p $(dir $@)
	$(FUZZCC) -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wno-missing-field-initializers $(CFLAGS_PKG) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ -o $@ \
	    $(shell pkg-config --libs jansson) -lcrypto

build/fuzz/fuzz_framing: tests/fuzz/fuzz_framing.c src/http/framing.c
	@mkdir -p $(dir $@)
	$(FUZZCC) -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror $(CFLAGS_PKG) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ -o $@

# Lists: the cursor and RFC 3339 parsers (fuzz_cursor.c says what the first byte picks).
build/fuzz/fuzz_cursor: tests/fuzz/fuzz_cursor.c src/http/page.c src/core/jsonw.c src/http/response.c src/op/op.c src/crypto/aead.c src/core/buf.c src/core/pool.c src/core/util.c src/core/err.c src/core/log.c
	@mkdir -p $(dir $@) build/fuzz/corpus-$(@F)
	$(FUZZCC) -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wno-missing-field-initializers $(CFLAGS_PKG) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ -o $@ \
	    $(shell pkg-config --libs jansson) -lcrypto -lsodium -lunistring
	@printf '\0002026-12-02T03:31:18.5+01:00' >build/fuzz/corpus-$(@F)/seed-1
	@printf '\002id\n5\ni5' >build/fuzz/corpus-$(@F)/seed-2
	@printf '\005-due_on\n3\nn' >build/fuzz/corpus-$(@F)/seed-3
	@printf '\010subject\n9\nsDrucker' >build/fuzz/corpus-$(@F)/seed-4
	@printf '\001aWQKNQppNQ' >build/fuzz/corpus-$(@F)/seed-5
	@printf '\005-due_on\n3\000\000\nn' >build/fuzz/corpus-$(@F)/seed-6 # a NUL in the id, once taken

# The Cookie, Host and If-Match parsers are files of their own so that these build
# from the parser alone. Each seeds its corpus with a few headers, one file
# per shell word of FUZZ_SEEDS_<target>.
FUZZFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror \
             -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SESSION := yMnKy8zNzs_Q0dLT1NXW19jZ2tvc3d7f4OHi4-Tl5uc
FUZZ_SEEDS_fuzz_cookie := '__Host-bulwark_session=$(FUZZ_SESSION)' \
	'theme=dark; __Host-bulwark_session=$(FUZZ_SESSION); other=1' \
	'x__Host-bulwark_session=$(FUZZ_SESSION);	__Host-bulwark_session=a b' \
	'bulwark_session=1;__Host-bulwark_session=$(FUZZ_SESSION) '
# The first byte picks the base domain (fuzz_host.c): A localhost, B psa.example.com, ...
FUZZ_SEEDS_fuzz_host := 'Aacme.localhost' 'AACME.LocalHost:8443' 'Bdemo-1.psa.example.com.' \
	'Cwww.example.com:443' 'Aacme.localhost.:8443' 'Dx.y.a.io:'
FUZZ_SEEDS_fuzz_ifmatch := '"3"' ' * ' 'W/"3", "17",, "4" ' '"0", "03", "", "a,b", "9223372036854775807"'
build/fuzz/fuzz_cookie: tests/fuzz/fuzz_cookie.c src/auth/cookie.c src/auth/auth.h
build/fuzz/fuzz_host: tests/fuzz/fuzz_host.c src/tenancy/host.c src/tenancy/tenancy.h
build/fuzz/fuzz_ifmatch: tests/fuzz/fuzz_ifmatch.c src/http/ifmatch.c src/http/http.h
build/fuzz/fuzz_cookie build/fuzz/fuzz_host build/fuzz/fuzz_ifmatch:
	@mkdir -p $(dir $@) build/fuzz/corpus-$(@F)
	$(FUZZCC) $(FUZZFLAGS) $(filter %.c,$^) -o $@
	@i=0; for s in $(FUZZ_SEEDS_$(@F)); do \
	    i=$$((i + 1)); printf '%s' "$$s" >build/fuzz/corpus-$(@F)/seed-$$i; done

# Webhooks: inbound signature headers (Standard Webhooks, Stripe, Intuit) and
# subscription URLs; the first byte picks (fuzz_webhooks.c).
FUZZ_SEEDS_fuzz_webhooks := '\000v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\nmsg_p5jXN8AQM9LWM0D4loKWxJek\n{"test": 2432232314}' \
	'\001t=1700000000,v1=00,v0=11\n\n{}' '\002gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs=\n\n{}' \
	'\003https://hooks.example.com/x' '\003https://0x7f000001/' '\007https://[::ffff:127.0.0.1]:8443/a'
build/fuzz/fuzz_webhooks: tests/fuzz/fuzz_webhooks.c src/webhooks/sig.c src/webhooks/egress.c src/crypto/aead.c \
	src/core/netaddr.c src/core/util.c src/core/err.c src/core/log.c src/core/pool.c src/core/buf.c
	@mkdir -p $(dir $@) build/fuzz/corpus-$(@F)
	$(FUZZCC) $(FUZZFLAGS) -Wno-missing-field-initializers $(filter %.c,$^) -o $@ -lcurl -lcrypto -lsodium
	@i=0; for s in $(FUZZ_SEEDS_$(@F)); do \
	    i=$$((i + 1)); printf "$$s" >build/fuzz/corpus-$(@F)/seed-$$i; done

# SAML: IdP metadata, the shape of a Response, certificates and IdP URLs; the
# first byte picks (fuzz_saml.c). Seeds: the metadata of an IdP and a signed
# response (each with a certificate openssl makes here), the certificates as
# PEM and as base64, a few URLs.
define FUZZ_SAML_SEEDS
import base64, subprocess
def cert(*key):
    return subprocess.run(['openssl', 'req', '-x509', '-newkey', *key, '-nodes', '-keyout', '/dev/null',
        '-subj', '/CN=idp.example.com', '-days', '30'], check=True, capture_output=True).stdout
rsa, ec = cert('rsa:2048'), cert('ec', '-pkeyopt', 'ec_paramgen_curve:P-256')
b64 = b''.join(l for l in rsa.splitlines() if not l.startswith(b'-----'))
md = (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
    b'<md:EntityDescriptor entityID="https://idp.example.com/"><md:IDPSSODescriptor '
    b'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing">'
    b'<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>' + b64 +
    b'</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService '
    b'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.com/slo"/>'
    b'<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
    b'Location="https://idp.example.com/sso?a=1&amp;b=2"/></md:IDPSSODescriptor></md:EntityDescriptor>'
    b'</md:EntitiesDescriptor>')
sig = lambda ref: (b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
    b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
    b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
    b'<ds:Reference URI="#' + ref + b'"><ds:Transforms><ds:Transform '
    b'Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform '
    b'Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces '
    b'xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="xs"/></ds:Transform></ds:Transforms>'
    b'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA'
    b'</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue>'
    b'<ds:KeyInfo><ds:X509Data><ds:X509Certificate>' + b64 + b'</ds:X509Certificate></ds:X509Data>'
    b'</ds:KeyInfo></ds:Signature>')
issuer = b'<saml:Issuer>https://idp.example.com/</saml:Issuer>'
resp = (b'<?xml version="1.0"?>\n<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0">' + issuer + sig(b'_r1') +
    b'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    b'<saml:Assertion ID="_a1" Version="2.0">' + issuer + sig(b'_a1') + b'<saml:Subject><saml:NameID '
    b'Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.com</saml:NameID>'
    b'</saml:Subject><saml:Conditions><saml:AudienceRestriction><saml:Audience>'
    b'https://acme.example.com/saml/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>'
    b'<saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue>Admins'
    b'</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>')
seeds = [b'\0' + md, b'\1' + resp, b'\2' + rsa, b'\2' + b64, b'\2' + ec,
    b'\3https://login.microsoftonline.com/3f0a9b6e/saml2', b'\3http://[::1]:8080/sso?x=1',
    b'\3https://user@idp.example.com:443/#x']
for i, s in enumerate(seeds):
    open('seed-%d' % (i + 1), 'wb').write(s)
endef
export FUZZ_SAML_SEEDS
build/fuzz/fuzz_saml: tests/fuzz/fuzz_saml.c src/saml/xml.c src/saml/xml.h src/core/buf.c src/core/core.h \
	src/core/util.c src/core/err.c src/core/log.c src/core/pool.c
	@mkdir -p $(dir $@) build/fuzz/corpus-$(@F)
	$(FUZZCC) $(FUZZFLAGS) $(shell pkg-config --cflags libxml-2.0) $(filter %.c,$^) -o $@ -lxml2 -lcrypto -lsodium
	@cd build/fuzz/corpus-$(@F) && /usr/bin/python3 -c "$$FUZZ_SAML_SEEDS"

# Uploads: the name checks, and the archive walk (libarchive, libmagic) over any bytes.
# fuzz_filename: the first byte picks the check (even: a file name, odd: an entry path);
# fuzz_archive: the first byte picks the type the name gave (an index into the allowlist).
FUZZ_SEEDS_fuzz_filename := 'xinvoice.pdf' 'x invoice.pdf. ' 'xinvoice.pdf.exe' 'xbackup.tar.gz' \
	'ydocs/readme' 'y../etc/passwd' 'yEvil.app/Contents/x' 'xfacture_e\314\201.pdf' \
	'xinvoice\342\200\256fdp.exe'
build/fuzz/fuzz_filename: tests/fuzz/fuzz_filename.c src/files/policy.c src/files/check.h
	@mkdir -p $(dir $@) build/fuzz/corpus-$(@F)
	$(FUZZCC) $(FUZZFLAGS) -Wno-missing-field-initializers $(filter %.c,$^) -o $@ -lunistring
	@i=0; for s in $(FUZZ_SEEDS_$(@F)); do \
	    i=$$((i + 1)); printf "$$s" >build/fuzz/corpus-$(@F)/seed-$$i; done

# Seeds: a zip, a nested zip, a tar, a tar.gz, a gz, a docx, a GIF with a zip appended.
define FUZZ_ARCHIVE_SEEDS
import gzip, io, tarfile, zipfile
def z(files):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as f:
        for n, d in files:
            f.writestr(n, d)
    return b.getvalue()
def t(mode):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as f:
        i = tarfile.TarInfo('d/a.txt'); i.size = 6; f.addfile(i, io.BytesIO(b'hello\n'))
    return b.getvalue()
n = {'zip': 28, 'tar': 30, 'tar.gz': 31, 'gz': 35, 'docx': 22, 'gif': 11}
inner = z([('a.txt', b'hello\n'), ('d/b.log', b'x' * 100)])
seeds = [bytes([n['zip']]) + inner, bytes([n['zip']]) + z([('in.zip', inner), ('in.tar', t('w'))]),
    bytes([n['tar']]) + t('w'), bytes([n['tar.gz']]) + t('w:gz'),
    bytes([n['gz']]) + gzip.compress(b'hello\n'),
    bytes([n['docx']]) + z([('[Content_Types].xml', b'<?xml version="1.0"?><Types/>'),
        ('word/document.xml', b'<w/>')]),
    bytes([n['gif']]) + b'GIF89a\x01\x00\x01\x00\x00\x00\x00;' + inner]
for i, s in enumerate(seeds):
    open('seed-%d' % (i + 1), 'wb').write(s)
endef
export FUZZ_ARCHIVE_SEEDS
build/fuzz/fuzz_archive: tests/fuzz/fuzz_archive.c src/files/archive.c src/files/sniff.c src/files/policy.c src/files/check.h
	@mkdir -p $(dir $@) build/fuzz/corpus-$(@F)
	$(FUZZCC) $(FUZZFLAGS) -Wno-missing-field-initializers $(filter %.c,$^) -o $@ \
	    $(shell pkg-config --libs libarchive libmagic) -lunistring
	@cd build/fuzz/corpus-$(@F) && /usr/bin/python3 -c "$$FUZZ_ARCHIVE_SEEDS"

fmt:
	clang-format -i $(SRC) $(wildcard src/*/*.h) $(UNITSRC)

clean:
	rm -rf build
