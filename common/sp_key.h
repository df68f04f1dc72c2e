/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Keys: what an IP address or a called number is stored and looked up as.
 *
 * IPs are kept in the canonical text form of inet_ntop(3); IPv4-mapped IPv6
 * (::ffff:203.0.113.5) becomes plain IPv4. Numbers are digits only: a
 * leading "+" or "00" international prefix is dropped, so "+441234",
 * "00441234" and "441234" are one key; visual separators (space - . ( ))
 * are ignored. A single leading 0 (national prefix) is kept.
 */
#ifndef SP_KEY_H
#define SP_KEY_H

#include <stdbool.h>
#include <stddef.h>

#define SP_KEY_MAX 64        /* buffer for a normalised key, NUL included */
#define SP_NUMBER_DIGITS_MAX 32

enum sp_kind { SP_KIND_IP = 1, SP_KIND_NUMBER = 2 };

/* Where an address lives; only SP_SCOPE_PUBLIC and SP_SCOPE_DOC (the
 * documentation ranges, used by examples and tests) leave the node by default. */
enum sp_ip_scope {
	SP_SCOPE_PUBLIC,
	SP_SCOPE_DOC,
	SP_SCOPE_LOOPBACK,
	SP_SCOPE_PRIVATE,   /* RFC 1918, CGNAT 100.64/10, ULA fc00::/7 */
	SP_SCOPE_LINKLOCAL,
	SP_SCOPE_RESERVED,  /* unspecified, multicast, 240/4, broadcast, ... */
};

/* Normalise an IP address. out holds SP_KEY_MAX bytes; *family (may be NULL)
 * gets AF_INET or AF_INET6. Returns 0 or SP_EBADIP. */
int sp_ip_normalize(const char *in, char *out, int *family);
/* Normalise a called number. Returns 0 or SP_EBADNUMBER. */
int sp_number_normalize(const char *in, char *out);
/* An IP if it parses as one, else a number. Returns 0, SP_EBADIP when it
 * looks like an address but is not one, or SP_EBADNUMBER. */
int sp_key_classify(const char *in, enum sp_kind *kind, char *out);

/* Scope of a normalised address; SP_SCOPE_RESERVED if it does not parse. */
enum sp_ip_scope sp_ip_scope(const char *ip);
bool sp_ip_scope_is_shareable(enum sp_ip_scope scope);

const char *sp_kind_name(enum sp_kind kind);

/* This host's addresses, normalised (getifaddrs); *out is freed by the
 * caller. Returns 0 or -errno. */
int sp_own_addresses(char (**out)[SP_KEY_MAX], size_t *n);

#endif
