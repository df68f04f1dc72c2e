/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The node's signing identity: an Ed25519 key pair (gnutls), made once and
 * kept in DATA_DIR/identity.pem (PKCS#8, mode 0600), so the key id is stable
 * across restarts.
 *
 * The key id is the 32-byte public key itself, as 64 lowercase hex digits:
 * it is what other nodes see as the reporter of a value, what allow and deny
 * lists name, and everything a reader needs to check a signature. OpenDHT's
 * own RSA identities are not used: their signatures do not cover the key a
 * value is stored under (see docs/dht.md), and signing costs ~10 ms each.
 */
#ifndef SP_IDENTITY_H
#define SP_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_PUBKEY_LEN 32
#define SP_SIG_LEN 64
#define SP_KEYID_LEN 65 /* hex, NUL included (= SP_REPORTER_MAX) */
#define SP_IDENTITY_FILE "identity.pem"

typedef struct sp_identity sp_identity;

/* Load DIR/identity.pem, or make it when create is set and there is none
 * (*created tells, may be NULL). Errors: SP_ENOTFOUND (none and !create),
 * SP_EPARSE (not an Ed25519 key), SP_EACCESS (mode allows others), -errno. */
int sp_identity_open(sp_identity **out, const char *dir, bool create, bool *created);
void sp_identity_free(sp_identity *id);
const uint8_t *sp_identity_pubkey(const sp_identity *id);
const char *sp_identity_keyid(const sp_identity *id);

/* Sign data (Ed25519, no prehash). Safe from any thread. */
int sp_identity_sign(const sp_identity *id, const void *data, size_t len, uint8_t sig[SP_SIG_LEN]);
/* 0 when sig is pub's signature over data, SP_EBADSIG otherwise. */
int sp_signature_verify(const uint8_t pub[SP_PUBKEY_LEN], const void *data, size_t len,
			const uint8_t sig[SP_SIG_LEN]);

/* Hex forms of a public key. keyid_parse accepts 64 hex digits, any case. */
void sp_keyid_format(const uint8_t pub[SP_PUBKEY_LEN], char out[SP_KEYID_LEN]);
int sp_keyid_parse(const char *hex, uint8_t pub[SP_PUBKEY_LEN]);

#endif
