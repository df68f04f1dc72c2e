/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "identity.h"

#include "sp_error.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX 4096

struct sp_identity {
	gnutls_privkey_t key;
	uint8_t pub[SP_PUBKEY_LEN];
	char keyid[SP_KEYID_LEN];
};

void sp_keyid_format(const uint8_t pub[SP_PUBKEY_LEN], char out[SP_KEYID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < SP_PUBKEY_LEN; i++) {
		out[2 * i] = hex[pub[i] >> 4];
		out[2 * i + 1] = hex[pub[i] & 15];
	}
	out[2 * SP_PUBKEY_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sp_keyid_parse(const char *hex, uint8_t pub[SP_PUBKEY_LEN])
{
	if (strlen(hex) != 2 * SP_PUBKEY_LEN)
		return SP_EPARSE;
	for (size_t i = 0; i < SP_PUBKEY_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return SP_EPARSE;
		pub[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* The raw public key of an Ed25519 private key. */
static int fill_public(sp_identity *id)
{
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x = { 0 }, k = { 0 };
	int rc = gnutls_privkey_export_ecc_raw2(id->key, &curve, &x, NULL, &k,
						GNUTLS_EXPORT_FLAG_NO_LZ);
	if (rc < 0)
		return SP_EPARSE;
	int ok = curve == GNUTLS_ECC_CURVE_ED25519 && x.size == SP_PUBKEY_LEN;
	if (ok)
		memcpy(id->pub, x.data, SP_PUBKEY_LEN);
	gnutls_free(x.data);
	gnutls_memset(k.data, 0, k.size);
	gnutls_free(k.data);
	if (!ok)
		return SP_EPARSE;
	sp_keyid_format(id->pub, id->keyid);
	return 0;
}

static int load(sp_identity *id, const char *path)
{
	char pem[PEM_MAX];
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? SP_ENOTFOUND : -errno;
	if (fstat(fd, &sb) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || sb.st_size >= PEM_MAX) {
		close(fd);
		return SP_EPARSE;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return SP_EKEYPERM;
	}
	ssize_t n = read(fd, pem, sizeof(pem) - 1);
	int e = n < 0 ? -errno : 0;
	close(fd);
	if (e)
		return e;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)n };
	int rc = gnutls_privkey_import_x509_raw(id->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_memset(pem, 0, sizeof(pem));
	if (rc < 0)
		return SP_EPARSE;
	return fill_public(id);
}

/* Make a key and write it with O_EXCL to a temporary name, then link it
 * into place, so a reader never sees half a file and two starting
 * processes cannot both win. */
static int create(sp_identity *id, const char *dir, const char *path)
{
	char tmp[PATH_MAX];
	gnutls_x509_privkey_t x509 = NULL;
	gnutls_datum_t pem = { 0 };
	int rc, fd = -1;

	if (gnutls_privkey_generate2(id->key, GNUTLS_PK_EDDSA_ED25519,
				     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0, NULL, 0) < 0 ||
	    gnutls_privkey_export_x509(id->key, &x509) < 0 ||
	    gnutls_x509_privkey_export2_pkcs8(x509, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
					      &pem) < 0) {
		rc = -EIO;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/.identity.%ld.tmp", dir, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (write(fd, pem.data, pem.size) != (ssize_t)pem.size || fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		unlink(tmp);
		goto out;
	}
	rc = link(tmp, path) == 0 ? 0 : -errno;
	unlink(tmp);
	if (rc == -EEXIST) /* another process made one first: use that */
		rc = 1;
	else if (rc == 0)
		rc = fill_public(id);
out:
	if (fd >= 0)
		close(fd);
	if (pem.data) {
		gnutls_memset(pem.data, 0, pem.size);
		gnutls_free(pem.data);
	}
	if (x509)
		gnutls_x509_privkey_deinit(x509);
	return rc;
}

int sp_identity_open(sp_identity **out, const char *dir, bool create_it, bool *created)
{
	char path[PATH_MAX];
	sp_identity *id;
	int rc;

	*out = NULL;
	if (created)
		*created = false;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, SP_IDENTITY_FILE) >= sizeof(path))
		return -ENAMETOOLONG;
	if (!(id = calloc(1, sizeof(*id))))
		return -ENOMEM;
	if (gnutls_privkey_init(&id->key) < 0) {
		free(id);
		return -ENOMEM;
	}
	rc = load(id, path);
	if (rc == SP_ENOTFOUND && create_it) {
		rc = create(id, dir, path);
		if (rc == 0 && created)
			*created = true;
		if (rc == 1) { /* lost a race: load the winner's key */
			gnutls_privkey_deinit(id->key);
			if (gnutls_privkey_init(&id->key) < 0) {
				free(id);
				return -ENOMEM;
			}
			rc = load(id, path);
		}
	}
	if (rc) {
		sp_identity_free(id);
		return rc;
	}
	*out = id;
	return 0;
}

void sp_identity_free(sp_identity *id)
{
	if (!id)
		return;
	gnutls_privkey_deinit(id->key);
	free(id);
}

const uint8_t *sp_identity_pubkey(const sp_identity *id) { return id->pub; }
const char *sp_identity_keyid(const sp_identity *id) { return id->keyid; }

int sp_identity_sign(const sp_identity *id, const void *data, size_t len, uint8_t sig[SP_SIG_LEN])
{
	gnutls_datum_t d = { (unsigned char *)(uintptr_t)data, (unsigned)len }, s = { 0 };
	if (len > UINT_MAX)
		return SP_ETOOBIG;
	if (gnutls_privkey_sign_data2(id->key, GNUTLS_SIGN_EDDSA_ED25519, 0, &d, &s) < 0)
		return -EIO;
	int rc = s.size == SP_SIG_LEN ? 0 : -EIO;
	if (rc == 0)
		memcpy(sig, s.data, SP_SIG_LEN);
	gnutls_free(s.data);
	return rc;
}

int sp_signature_verify(const uint8_t pub[SP_PUBKEY_LEN], const void *data, size_t len,
			const uint8_t sig[SP_SIG_LEN])
{
	gnutls_pubkey_t pk;
	gnutls_datum_t x = { (unsigned char *)(uintptr_t)pub, SP_PUBKEY_LEN };
	gnutls_datum_t d = { (unsigned char *)(uintptr_t)data, (unsigned)len };
	gnutls_datum_t s = { (unsigned char *)(uintptr_t)sig, SP_SIG_LEN };
	if (len > UINT_MAX)
		return SP_ETOOBIG;
	if (gnutls_pubkey_init(&pk) < 0)
		return -ENOMEM;
	int rc = SP_EBADSIG;
	if (gnutls_pubkey_import_ecc_raw(pk, GNUTLS_ECC_CURVE_ED25519, &x, NULL) >= 0 &&
	    gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_EDDSA_ED25519, 0, &d, &s) >= 0)
		rc = 0;
	gnutls_pubkey_deinit(pk);
	return rc;
}
