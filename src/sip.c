/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * SIP messages with libosip2's parser (osipparser2): parse, fill an event,
 * and build the replies of responsive mode.
 *
 * libosip2 notes that shape this file:
 *  - parser_init() rebuilds global tables: it runs once, under
 *    pthread_once, before any parse. Its trace output goes to stdout by
 *    default (and is set up lazily, racily, on the first trace), so a no-op
 *    trace function is installed in the same once-block.
 *  - osip_message_parse() copies the buffer and NUL-terminates the copy, so
 *    ours need not be terminated; but it works on C strings, so a NUL in the
 *    header section silently ends the headers. We refuse those.
 *  - Every list append walks the list: n parameters, headers or
 *    comma-separated values cost O(n^2) (a 64 KiB "Allow: A,A,A..." takes
 *    over a second). The separators in the headers osip is given are
 *    counted and capped before it sees them.
 *  - osip only gets the start line and the headers the node reads (see
 *    select_headers), never Content-Type, so it never copies or parses a
 *    body (its multipart parser leaks); the Content-Length check it would
 *    have made is made here. A flood INVITE's parse went from 9.5 to 2.4 µs
 *    (tools/bench/bench_parse.c).
 *  - Its *_to_str() output does not always parse again (a URI host with an
 *    empty port, "host:", is accepted with a trailing space and written
 *    without one), so every reply is parsed back before it is sent.
 *  - URI user parts come back %XX-decoded already (and "%00" ends them).
 *    tel: URIs are not split: their number is decoded here.
 *  - A parse makes about 150 small allocations and a free frees them one
 *    by one: malloc and free were a third of the UDP listener's time. Its
 *    allocator hooks (osip_set_allocators, set before parser_init) point
 *    at a per-thread arena while a message is alive: an allocation is a
 *    pointer bump, a free does nothing (under ASan it poisons the block),
 *    and the arena is reset when the last message of the thread is freed,
 *    without walking the message. Outside a message, the hooks use the
 *    heap. So a message must be freed on the thread that parsed it.
 *
 * Replies are built from the parsed headers with osip's *_to_str() and
 * written with bounded copies; nothing from the message is ever a format
 * string.
 */
#include "sip.h"

#include "sp_error.h"

#include <osipparser2/osip_parser.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Separators (line ends, ',', ';', '&') allowed in the header section: each
 * can become one element of an osip list, whose appends are linear. 256
 * costs about 0.2 ms in the worst case; real messages use well under 100. */
#define SIP_MAX_ELEMENTS 256

/* A reply is at most this many times the request, plus REPLY_SLACK. */
#define REPLY_FACTOR 3
#define REPLY_SLACK 512

#define ALLOW_VALUE "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
#define DEFAULT_REALM "sip"

struct sp_sip_msg {
	osip_message_t *osip;
	size_t len;     /* bytes received: the reply budget is based on it */
	unsigned parts; /* HDR_* sets osip was given */
};

/* ------------------------------------------------------------- arena */

#if defined(__SANITIZE_ADDRESS__)
#define SIP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIP_ASAN 1
#endif
#endif
#ifdef SIP_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_CHUNK (64 * 1024) /* a typical message needs about 6 KiB */
#define MAGIC_ARENA 0x53504152u
#define MAGIC_HEAP 0x53504148u

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

/* Before every block libosip2 gets: what it is, for free and realloc. */
struct block {
	uint32_t magic;
	uint32_t size;
	uint64_t pad; /* blocks stay 16-byte aligned */
};

struct arena {
	struct chunk *head; /* the current chunk; the first one stays allocated */
	unsigned depth;     /* messages alive on this thread */
};

static _Thread_local struct arena t_arena;
static pthread_key_t arena_key; /* frees a thread's chunks when it ends */

static void arena_free_chunks(struct chunk *c)
{
	while (c) {
		struct chunk *next = c->next;
		UNPOISON(c->data, c->size);
		free(c);
		c = next;
	}
}

static void arena_thread_end(void *a)
{
	arena_free_chunks(((struct arena *)a)->head);
	((struct arena *)a)->head = NULL;
}

static struct chunk *chunk_new(size_t need)
{
	size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
	struct chunk *c = malloc(sizeof(*c) + size);
	if (!c)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	POISON(c->data, size);
	return c;
}

/* A new chunk for a block that does not fit the current one. */
static __attribute__((noinline)) struct chunk *arena_grow(struct arena *a, size_t need)
{
	struct chunk *c = chunk_new(need);
	if (!c)
		return NULL;
	if (!a->head)
		pthread_setspecific(arena_key, a);
	c->next = a->head;
	a->head = c;
	return c;
}

static __attribute__((noinline)) void *heap_alloc(size_t n)
{
	struct block *b = malloc(sizeof(*b) + n);
	if (!b)
		return NULL;
	b->magic = MAGIC_HEAP;
	b->size = (uint32_t)n;
	return b + 1;
}

static void *sip_alloc(size_t n)
{
	struct arena *a = &t_arena;
	if (n > UINT32_MAX - 64)
		return NULL;
	if (a->depth == 0)
		return heap_alloc(n);
	size_t need = (sizeof(struct block) + n + 15) & ~(size_t)15;
	struct chunk *c = a->head;
	if ((!c || c->size - c->used < need) && !(c = arena_grow(a, need)))
		return NULL;
	struct block *b = (struct block *)(void *)(c->data + c->used);
	c->used += need;
	UNPOISON(b, need);
	b->magic = MAGIC_ARENA;
	b->size = (uint32_t)n;
	return b + 1;
}

static void sip_release(void *p)
{
	if (!p)
		return;
	struct block *b = (struct block *)p - 1;
	if (b->magic == MAGIC_HEAP) {
		b->magic = 0;
		free(b);
	} else {
		/* arena memory goes at the reset; a use after free still shows */
		POISON(p, b->size);
	}
}

static void *sip_resize(void *p, size_t n)
{
	if (!p)
		return sip_alloc(n);
	struct block *b = (struct block *)p - 1;
	void *q = sip_alloc(n);
	if (q) {
		memcpy(q, p, b->size < n ? b->size : n);
		sip_release(p);
	}
	return q;
}

static void arena_enter(void)
{
	t_arena.depth++;
}

/* The last message of the thread gone: everything it used is free. */
static void arena_leave(void)
{
	struct arena *a = &t_arena;
	if (a->depth == 0 || --a->depth > 0 || !a->head)
		return;
	struct chunk *first = a->head;
	while (first->next)
		first = first->next;
	if (first != a->head) { /* a large message: drop the extra chunks */
		struct chunk *c = a->head;
		while (c->next != first)
			c = c->next;
		c->next = NULL;
		arena_free_chunks(a->head);
		a->head = first;
	}
	POISON(first->data, first->used);
	first->used = 0;
}

static pthread_once_t sip_once = PTHREAD_ONCE_INIT;
static int sip_init_rc;
static uint64_t sip_tag_key[2]; /* keys the To tags, see to_tag() */

/* ---------------------------------------------------------------- init */

static void random_fallback(uint8_t *buf, size_t len)
{
	/* only if getrandom(2) is unavailable: tags and nonces need to be
	 * unpredictable enough for a honeypot, not secret */
	static _Thread_local uint64_t s;
	if (s == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&s;
	}
	for (size_t i = 0; i < len; i++) {
		uint64_t z = (s += UINT64_C(0x9e3779b97f4a7c15));
		z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
		z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
		buf[i] = (uint8_t)(z ^ (z >> 31));
	}
}

/* Random bytes from a per-thread pool refilled by getrandom(2). */
static void random_bytes(void *out, size_t len)
{
	static _Thread_local uint8_t pool[256];
	static _Thread_local size_t left;
	uint8_t *o = out;

	while (len > 0) {
		if (left == 0) {
			size_t got = 0;
			while (got < sizeof(pool)) {
				ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
					break;
				got += (size_t)n;
			}
			if (got < sizeof(pool))
				random_fallback(pool + got, sizeof(pool) - got);
			left = sizeof(pool);
		}
		size_t n = len < left ? len : left;
		memcpy(o, pool + sizeof(pool) - left, n);
		memset(pool + sizeof(pool) - left, 0, n);
		left -= n;
		o += n;
		len -= n;
	}
}

static void quiet_trace(const char *file, int line, osip_trace_level_t level, const char *fmt,
			va_list ap)
{
	(void)file;
	(void)line;
	(void)level;
	(void)fmt;
	(void)ap;
}

static void sip_init(void)
{
	/* before anything allocates: every osip block is one of ours */
	pthread_key_create(&arena_key, arena_thread_end);
	osip_set_allocators(sip_alloc, sip_resize, sip_release);
	/* level 0: every level off; the function keeps osip from opening stdout */
	osip_trace_initialize_func(TRACE_LEVEL0, quiet_trace);
	sip_init_rc = parser_init() == 0 ? 0 : SP_EPARSE;
	random_bytes(sip_tag_key, sizeof(sip_tag_key));
}

/* ------------------------------------------------------------- parsing */

static bool is_token_char(unsigned char c)
{
	/* RFC 3261 token */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-.!%*_+`'~", c) != NULL;
}

static bool is_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!is_token_char((unsigned char)*s))
			return false;
	return true;
}

/* Separators in buf[0..len): '\n', ',', ';', '&', and a CR that no LF
 * follows (the byte after buf[len - 1] counts as not an LF). Sixteen bytes
 * at a time where SSE2 is there: a byte loop was 13% of a flood INVITE's
 * parse. */
static size_t count_separators(const char *buf, size_t len)
{
	/* 1: always a separator; 2: CR, one unless LF follows */
	static const uint8_t kind[256] = { ['\n'] = 1, [','] = 1, [';'] = 1, ['&'] = 1, ['\r'] = 2 };
	size_t n = 0, i = 0;
#ifdef __SSE2__
	const __m128i nl = _mm_set1_epi8('\n'), comma = _mm_set1_epi8(','),
		      semi = _mm_set1_epi8(';'), amp = _mm_set1_epi8('&'), cr = _mm_set1_epi8('\r');
	while (i + 17 <= len) { /* buf[i + 16] is the last byte's next */
		/* per-lane counts in bytes: at most 255 rounds before adding up */
		__m128i acc = _mm_setzero_si128();
		for (unsigned r = 0; r < 255 && i + 17 <= len; r++, i += 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + i));
			__m128i next = _mm_loadu_si128((const __m128i *)(const void *)(buf + i + 1));
			__m128i sep = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, nl), _mm_cmpeq_epi8(v, comma)),
						   _mm_or_si128(_mm_cmpeq_epi8(v, semi), _mm_cmpeq_epi8(v, amp)));
			__m128i lone_cr = _mm_andnot_si128(_mm_cmpeq_epi8(next, nl), _mm_cmpeq_epi8(v, cr));
			acc = _mm_sub_epi8(acc, _mm_or_si128(sep, lone_cr)); /* a match is -1 */
		}
		__m128i sum = _mm_sad_epu8(acc, _mm_setzero_si128());
		n += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sum, 8));
	}
#endif
	for (; i < len; i++) {
		uint8_t k = kind[(unsigned char)buf[i]];
		n += k & 1;
		if (k == 2)
			n += i + 1 == len || buf[i + 1] != '\n';
	}
	return n;
}

/* Index of the first CR or LF at or after i, or len: memchr twice beats a
 * byte loop on the hot path. */
static size_t next_eol(const char *buf, size_t len, size_t i)
{
	const char *lf = memchr(buf + i, '\n', len - i);
	size_t end = lf ? (size_t)(lf - buf) : len;
	const char *cr = memchr(buf + i, '\r', end - i);
	return cr ? (size_t)(cr - buf) : end;
}

/* Length of the line end at buf[i] (CRLF, CR or LF), 0 if none. */
static size_t eol_len(const char *buf, size_t len, size_t i)
{
	if (i >= len)
		return 0;
	if (buf[i] == '\r')
		return i + 1 < len && buf[i + 1] == '\n' ? 2 : 1;
	return buf[i] == '\n' ? 1 : 0;
}

/* Where osip's header section ends: after any leading CR/LF, the first
 * empty line (CRLF, CR or LF line ends). *body is set past that empty line;
 * both are len when there is none. */
static size_t header_section_end(const char *buf, size_t len, size_t *body)
{
	size_t i = 0;
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	while (i < len) {
		size_t e = eol_len(buf, len, i);
		if (e) { /* an empty line */
			*body = i + e;
			return i;
		}
		i = next_eol(buf, len, i);
		i += eol_len(buf, len, i);
	}
	*body = len;
	return len;
}

/* What libosip2 is given of a message: the headers the node reads. */
enum { HDR_EVENT = 1, HDR_REPLY = 2 };

/* The set a header name (long or compact form, any case) belongs to; 0 for
 * every header the node does not read. */
static unsigned header_set(const char *n, size_t len)
{
	switch (len) {
	case 1:
		switch (n[0] | 0x20) {
		case 't': /* To */
		case 'l': /* Content-Length */
			return HDR_EVENT;
		case 'v': /* Via */
		case 'f': /* From */
		case 'i': /* Call-ID */
			return HDR_REPLY;
		default:
			return 0;
		}
	case 2:
		return strncasecmp(n, "to", 2) == 0 ? HDR_EVENT : 0;
	case 3:
		return strncasecmp(n, "via", 3) == 0 ? HDR_REPLY : 0;
	case 4:
		return strncasecmp(n, "from", 4) == 0 || strncasecmp(n, "cseq", 4) == 0 ? HDR_REPLY
											 : 0;
	case 7:
		return strncasecmp(n, "call-id", 7) == 0 ? HDR_REPLY : 0;
	case 10:
		return strncasecmp(n, "user-agent", 10) == 0 ? HDR_EVENT : 0;
	case 14:
		return strncasecmp(n, "content-length", 14) == 0 ? HDR_EVENT : 0;
	default:
		return 0;
	}
}

/* Copy the start line of the header section s[0..len) and the headers of
 * the sets in want to out (which has len bytes), as osip finds header
 * lines: a line end followed by SP or HT continues the header. Every other
 * header is checked only as osip would check its framing (a name, then a
 * colon on the same logical line) and stays in the raw message: libosip2
 * parses what the node reads, the way Kamailio parses headers on demand.
 * Content-Type is never given, so osip never parses a body (its MIME
 * parser leaks memory on a part with two Content-Types, 5.3.0). Returns 0
 * with *olen set to the bytes written, or SP_EPARSE. */
static int select_headers(const char *s, size_t len, unsigned want, char *out, size_t *olen)
{
	size_t i = 0, o = 0;
	bool start_line = true;

	while (i < len && (s[i] == '\r' || s[i] == '\n'))
		i++;
	while (i < len) {
		size_t name = i, colon = len;
		/* one logical header: up to a line end not followed by SP/HT */
		for (;;) {
			size_t le = next_eol(s, len, i);
			if (colon == len) {
				const char *c = memchr(s + i, ':', le - i);
				if (c)
					colon = (size_t)(c - s);
			}
			i = le + eol_len(s, len, le);
			if (i >= len || (s[i] != ' ' && s[i] != '\t'))
				break;
		}
		if (start_line) {
			/* "A SP B SP C" on one line: osip looks for the second
			 * space from two bytes past the first, across line ends */
			const char *sp1 = memchr(s + name, ' ', i - name);
			size_t rest = sp1 ? (size_t)(s + i - sp1) : 0;
			if (rest < 3 || !memchr(sp1 + 2, ' ', rest - 2))
				return SP_EPARSE;
		} else {
			if (colon == len || colon == name)
				return SP_EPARSE; /* osip: no name, or no colon */
			size_t end = colon;
			while (end > name && strchr(" \t\r\n", s[end - 1]))
				end--;
			if (!(header_set(s + name, end - name) & want))
				continue;
		}
		start_line = false;
		memcpy(out + o, s + name, i - name);
		o += i - name;
	}
	*olen = o;
	return 0;
}

/* The first decimal number in s, saturated; 0 if none. */
static uint64_t leading_number(const char *s)
{
	uint64_t v = 0;
	if (!s)
		return 0;
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(*s - '0');
	return v;
}

static int parse(const char *buf, size_t len, unsigned want, sp_sip_msg **out)
{
	sp_sip_msg *m = NULL;
	char *head = NULL;
	size_t hdr, body, head_len = 0;
	int rc;

	if (!out)
		return SP_EPARSE;
	*out = NULL;
	if (!buf || len == 0)
		return SP_EPARSE;
	if (len > SP_SIP_MAX_MESSAGE)
		return SP_ETOOBIG;
	hdr = header_section_end(buf, len, &body);
	if (memchr(buf, '\0', hdr))
		return SP_EPARSE; /* osip works on C strings: it would stop there */
	pthread_once(&sip_once, sip_init);
	if (sip_init_rc)
		return sip_init_rc;

	/* osip gets the start line, the headers we read and the empty line
	 * (in its own copy); the message and everything osip allocates for it
	 * live in the arena */
	arena_enter();
	head = sip_alloc(body + 2);
	m = sip_alloc(sizeof(*m));
	if (!head || !m) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(m, 0, sizeof(*m));
	rc = select_headers(buf, hdr, want, head, &head_len);
	if (rc)
		goto fail;
	/* what osip would spend too long on */
	if (count_separators(head, head_len) > SIP_MAX_ELEMENTS) {
		rc = SP_ETOOBIG;
		goto fail;
	}
	memcpy(head + head_len, buf + hdr, body - hdr);
	head_len += body - hdr;
	/* no empty line (a datagram may end with the headers): osip accepts
	 * that after a header but not after a bare start line, which is all
	 * that is left when every header was left out: one is added */
	if (body == hdr && head_len > 0 &&
	    (head[head_len - 1] == '\n' || head[head_len - 1] == '\r')) {
		memcpy(head + head_len, "\r\n", 2);
		head_len += 2;
	}
	m->len = len;
	m->parts = want;
	if (osip_message_init(&m->osip) != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = osip_message_parse(m->osip, head, head_len);
	if (rc) {
		rc = rc == OSIP_NOMEM ? -ENOMEM : SP_EPARSE;
		goto fail;
	}
	if (MSG_IS_REQUEST(m->osip)) {
		if (!is_token(m->osip->sip_method) || !m->osip->req_uri || !m->osip->sip_version) {
			rc = SP_EPARSE;
			goto fail;
		}
	} else if (m->osip->status_code < 100 || m->osip->status_code > 699) {
		rc = SP_EPARSE;
		goto fail;
	}
	/* a body shorter than its Content-Length: the message was cut (bytes
	 * after it are ignored, RFC 3261 18.3) */
	if (m->osip->content_length &&
	    leading_number(m->osip->content_length->value) > (uint64_t)(len - body)) {
		rc = SP_EPARSE;
		goto fail;
	}
	sip_release(head);
	*out = m;
	return 0;

fail:
	/* the arena takes it all back, m included */
	arena_leave();
	return rc;
}

int sp_sip_parse(const char *buf, size_t len, sp_sip_msg **out)
{
	return parse(buf, len, HDR_EVENT | HDR_REPLY, out);
}

int sp_sip_parse_event(const char *buf, size_t len, sp_sip_msg **out)
{
	return parse(buf, len, HDR_EVENT, out);
}

void sp_sip_msg_free(sp_sip_msg *m)
{
	/* m and its osip message are arena blocks: no need to walk them */
	if (m)
		arena_leave();
}

bool sp_sip_is_request(const sp_sip_msg *m)
{
	return m && m->osip && MSG_IS_REQUEST(m->osip);
}

/* --------------------------------------------------------------- event */

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy up to n bytes of src into a field of size bytes: %XX decoded if
 * decode, control characters shown as '?' (tab as space), never cutting a
 * UTF-8 sequence in two. Stops at a NUL (or a decoded %00). */
static void field_copy(char *dst, size_t size, const char *src, size_t n, bool decode)
{
	size_t o = 0, i = 0;
	bool cut = false;

	if (size == 0)
		return;
	while (i < n && src[i]) {
		unsigned char c = (unsigned char)src[i++];
		if (decode && c == '%' && i + 1 < n) {
			int hi = hex_value((unsigned char)src[i]);
			int lo = hi >= 0 ? hex_value((unsigned char)src[i + 1]) : -1;
			if (lo >= 0) {
				c = (unsigned char)(hi << 4 | lo);
				i += 2;
				if (c == 0)
					break;
			}
		}
		if (o + 1 >= size) {
			cut = true;
			break;
		}
		if (c == '\t')
			c = ' ';
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		dst[o++] = (char)c;
	}
	if (cut) {
		/* drop a trailing partial UTF-8 sequence */
		size_t k = o;
		while (k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0xc0) {
			unsigned char lead = (unsigned char)dst[k - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
			if (o - (k - 1) < want)
				o = k - 1;
		}
	}
	dst[o] = '\0';
}

/* The user of a sip:/sips: URI (osip decoded it), or the number of a tel:
 * URI (up to its parameters, decoded here). */
static void uri_user(const osip_uri_t *u, char *dst, size_t size)
{
	dst[0] = '\0';
	if (!u)
		return;
	if (u->username) {
		field_copy(dst, size, u->username, strlen(u->username), false);
	} else if (u->scheme && u->string && strcasecmp(u->scheme, "tel") == 0) {
		size_t n = strcspn(u->string, ";?");
		field_copy(dst, size, u->string, n, true);
	}
}

void sp_sip_fill_event(const sp_sip_msg *m, sp_event *ev)
{
	osip_header_t *ua = NULL;

	if (!m || !m->osip || !ev)
		return;
	if (MSG_IS_REQUEST(m->osip))
		sp_field_set(ev->method, sizeof(ev->method), m->osip->sip_method);
	else
		ev->method[0] = '\0';
	uri_user(m->osip->req_uri, ev->ruri_user, sizeof(ev->ruri_user));
	uri_user(m->osip->to ? m->osip->to->url : NULL, ev->to_user, sizeof(ev->to_user));
	ev->user_agent[0] = '\0';
	if (osip_message_get_user_agent(m->osip, 0, &ua) >= 0 && ua && ua->hvalue)
		field_copy(ev->user_agent, sizeof(ev->user_agent), ua->hvalue,
			   strlen(ua->hvalue), false);
}

/* ------------------------------------------------------------- replies */

/* A bounded writer: once anything does not fit, it stays failed. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool fail;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->fail || n > b->cap - b->len) {
		b->fail = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* A header value must not carry line ends or other controls into a reply. */
static bool value_ok(const char *s)
{
	if (!s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

static void sb_header(struct sbuf *b, const char *name, const char *value)
{
	if (!value_ok(value)) {
		b->fail = true;
		return;
	}
	sb_puts(b, name);
	sb_put(b, ": ", 2);
	sb_puts(b, value);
	sb_put(b, "\r\n", 2);
}

static void sb_hex(struct sbuf *b, const uint8_t *bytes, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		char h[2] = {digits[bytes[i] >> 4], digits[bytes[i] & 15]};
		sb_put(b, h, 2);
	}
}

static bool ip_text_ok(const char *s)
{
	size_t n = 0;
	if (!s || !*s)
		return false;
	for (; *s; s++, n++)
		if (hex_value((unsigned char)*s) < 0 && *s != '.' && *s != ':')
			return false;
	return n < 64;
}

static bool quoted_ok(const char *s)
{
	return s && *s && value_ok(s) && !strpbrk(s, "\"\\");
}

/* A Contact URI we can put in <...>: one libosip2 parses as sip:, sips: or
 * tel:, or the 302 would make the whole reply unparseable. */
static bool uri_ok(const char *s)
{
	osip_uri_t *u = NULL;
	bool ok = false;

	if (!s || !*s || !value_ok(s) || strpbrk(s, "<> \t\"") || osip_uri_init(&u) != 0)
		return false;
	if (osip_uri_parse(u, s) == 0 && u->scheme &&
	    (strcasecmp(u->scheme, "sip") == 0 || strcasecmp(u->scheme, "sips") == 0 ||
	     strcasecmp(u->scheme, "tel") == 0) &&
	    (u->host || u->string))
		ok = true;
	osip_uri_free(u);
	return ok;
}

/* The top Via as we send it back: received= our view of the source, and
 * rport= filled in if the client asked for it (RFC 3261 18.2.1, RFC 3581). */
static int top_via_str(const osip_via_t *via, const struct sp_sip_reply_ctx *ctx, char **dest)
{
	osip_via_t *v = NULL;
	osip_generic_param_t *p = NULL;
	int rc = -1;

	*dest = NULL;
	if (osip_via_clone(via, &v) != 0)
		goto out;
	if (ip_text_ok(ctx->src_ip)) {
		char *ip = osip_strdup(ctx->src_ip);
		if (!ip)
			goto out;
		if (osip_via_param_get_byname(v, "received", &p) == 0 && p) {
			osip_free(p->gvalue);
			p->gvalue = ip;
		} else {
			char *name = osip_strdup("received");
			if (!name || osip_generic_param_add(&v->via_params, name, ip) != 0) {
				osip_free(name);
				osip_free(ip);
				goto out;
			}
		}
	}
	p = NULL;
	if (ctx->src_port && osip_via_param_get_byname(v, "rport", &p) == 0 && p &&
	    (!p->gvalue || !p->gvalue[0])) {
		char port[8];
		snprintf(port, sizeof(port), "%u", (unsigned)ctx->src_port);
		char *val = osip_strdup(port);
		if (!val)
			goto out;
		osip_free(p->gvalue);
		p->gvalue = val;
	}
	rc = osip_via_to_str(v, dest);
out:
	if (v)
		osip_via_free(v);
	return rc;
}

/* A To tag that is the same for every retransmission of a request (RFC 3261
 * 8.2.7: a stateless UAS must generate tags consistently): a keyed hash of
 * what identifies the transaction. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 33)) * UINT64_C(0xff51afd7ed558ccd);
	z = (z ^ (z >> 33)) * UINT64_C(0xc4ceb9fe1a85ec53);
	return z ^ (z >> 33);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
	return mix64(h ^ 0xff); /* 0xff never occurs in a C string: a separator */
}

static void to_tag(const osip_message_t *s, const char *call_id, char out[17])
{
	osip_generic_param_t *ftag = NULL, *branch = NULL;
	osip_via_t *top = osip_list_get(&s->vias, 0);
	uint64_t h = sip_tag_key[0];
	uint8_t b[8];

	osip_from_get_tag(s->from, &ftag);
	if (top)
		osip_via_param_get_byname(top, "branch", &branch);
	h = hash_str(h, call_id);
	h = hash_str(h, ftag ? ftag->gvalue : NULL);
	h = hash_str(h, s->cseq->number);
	h = hash_str(h, branch ? branch->gvalue : NULL);
	h = mix64(h ^ sip_tag_key[1]);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(h >> (8 * i));
	struct sbuf sb = {out, 0, 16, false};
	sb_hex(&sb, b, sizeof(b));
	out[16] = '\0';
}

/* To with a tag added, or as it was if it has one. */
static int to_tagged_str(const osip_message_t *s, const char *call_id, char **dest)
{
	osip_to_t *to = NULL;
	osip_generic_param_t *p = NULL;
	char tag[17];
	int rc = -1;

	*dest = NULL;
	if (osip_to_get_tag(s->to, &p) == 0 && p && p->gvalue && p->gvalue[0])
		return osip_to_to_str(s->to, dest);
	to_tag(s, call_id, tag);
	if (osip_to_clone(s->to, &to) != 0)
		goto out;
	char *val = osip_strdup(tag);
	if (!val)
		goto out;
	p = NULL;
	if (osip_to_get_tag(to, &p) == 0 && p) { /* ";tag" without a value */
		osip_free(p->gvalue);
		p->gvalue = val;
	} else if (osip_to_set_tag(to, val) != 0) {
		osip_free(val);
		goto out;
	}
	rc = osip_to_to_str(to, dest);
out:
	if (to)
		osip_to_free(to);
	return rc;
}

/* The headers every reply copies from the request, serialised once. */
struct reply_parts {
	char *vias[2]; /* the top Via (rewritten), then the rest as header lines */
	char *from, *to, *to_tagged, *call_id, *cseq;
	size_t rest_len;
};

static void parts_free(struct reply_parts *rp)
{
	osip_free(rp->vias[0]);
	free(rp->vias[1]);
	osip_free(rp->from);
	osip_free(rp->to);
	osip_free(rp->to_tagged);
	osip_free(rp->call_id);
	osip_free(rp->cseq);
}

static int parts_build(const osip_message_t *s, const struct sp_sip_reply_ctx *ctx, size_t cap,
		       struct reply_parts *rp)
{
	osip_list_iterator_t it;
	osip_via_t *via = osip_list_get_first(&s->vias, &it);
	int rc = -1;

	if (!via || top_via_str(via, ctx, &rp->vias[0]) != 0)
		goto out;
	/* the other Vias as "Via: ...\r\n" lines, bounded by the reply cap */
	struct sbuf rest = {malloc(cap), 0, cap, false};
	if (!rest.p)
		goto out;
	rp->vias[1] = rest.p;
	while ((via = osip_list_get_next(&it)) != NULL && !rest.fail) {
		char *v = NULL;
		if (osip_via_to_str(via, &v) != 0) {
			osip_free(v);
			goto out;
		}
		sb_header(&rest, "Via", v);
		osip_free(v);
	}
	if (rest.fail)
		goto out;
	rp->rest_len = rest.len;
	if (osip_from_to_str(s->from, &rp->from) != 0 || osip_to_to_str(s->to, &rp->to) != 0 ||
	    osip_call_id_to_str(s->call_id, &rp->call_id) != 0 ||
	    osip_cseq_to_str(s->cseq, &rp->cseq) != 0)
		goto out;
	if (to_tagged_str(s, rp->call_id, &rp->to_tagged) != 0)
		goto out;
	rc = 0;
out:
	return rc;
}

struct reply_spec {
	int code;
	const char *reason;
};

/* One reply into buf (at most cap bytes); returns its length, 0 if it does
 * not fit or a copied value is unsafe. */
static size_t reply_build(char *buf, size_t cap, const struct reply_spec *r,
			  const struct reply_parts *rp, const struct sp_sip_reply_ctx *ctx)
{
	struct sbuf b = {buf, 0, cap, false};
	char line[64];

	snprintf(line, sizeof(line), "SIP/2.0 %d ", r->code);
	sb_puts(&b, line);
	sb_puts(&b, r->reason);
	sb_put(&b, "\r\n", 2);
	sb_header(&b, "Via", rp->vias[0]);
	sb_put(&b, rp->vias[1], rp->rest_len);
	sb_header(&b, "From", rp->from);
	/* RFC 3261 8.2.6.2: a 100 may leave the To tag out; everything else
	 * has one */
	sb_header(&b, "To", r->code == 100 ? rp->to : rp->to_tagged);
	sb_header(&b, "Call-ID", rp->call_id);
	sb_header(&b, "CSeq", rp->cseq);
	switch (r->code) {
	case 200:
		sb_header(&b, "Allow", ALLOW_VALUE);
		sb_header(&b, "Accept", "application/sdp");
		break;
	case 302:
		sb_puts(&b, "Contact: <");
		sb_puts(&b, ctx->redirect_uri);
		sb_puts(&b, ">\r\n");
		break;
	case 401: {
		uint8_t nonce[16];
		random_bytes(nonce, sizeof(nonce));
		sb_puts(&b, "WWW-Authenticate: Digest realm=\"");
		sb_puts(&b, quoted_ok(ctx->realm) ? ctx->realm : DEFAULT_REALM);
		sb_puts(&b, "\", nonce=\"");
		sb_hex(&b, nonce, sizeof(nonce));
		sb_puts(&b, "\", algorithm=MD5, qop=\"auth\"\r\n");
		break;
	}
	case 405:
		sb_header(&b, "Allow", ALLOW_VALUE);
		break;
	default:
		break;
	}
	if (ctx->server && *ctx->server && value_ok(ctx->server))
		sb_header(&b, "Server", ctx->server);
	sb_puts(&b, "Content-Length: 0\r\n\r\n");
	return b.fail ? 0 : b.len;
}

/* A reply we could not parse ourselves is not sent. */
static bool reply_parses(const char *buf, size_t len, int code, int vias)
{
	osip_message_t *r = NULL;
	bool ok = false;

	if (osip_message_init(&r) != 0)
		return false;
	if (osip_message_parse(r, buf, len) == 0 && r->status_code == code &&
	    osip_list_size(&r->vias) == vias && r->call_id && r->cseq && r->from && r->to)
		ok = true;
	osip_message_free(r);
	return ok;
}

void sp_sip_respond(const sp_sip_msg *m, const struct sp_sip_reply_ctx *ctx,
		    struct sp_sip_replies *out)
{
	struct reply_spec r[2];
	struct reply_parts rp = {0};
	int n = 0;

	if (!out)
		return;
	out->n = 0;
	out->len[0] = out->len[1] = 0;
	if (!m || !m->osip || !ctx || !MSG_IS_REQUEST(m->osip) || !(m->parts & HDR_REPLY))
		return;

	const osip_message_t *s = m->osip;
	const char *method = s->sip_method;
	/* the transaction must be identifiable, or a reply matches nothing */
	if (!s->call_id || !s->cseq || !s->from || !s->to || osip_list_size(&s->vias) <= 0 ||
	    !s->cseq->method || !s->cseq->number || !s->from->url || !s->to->url)
		return;
	if (osip_strcasecmp(s->sip_version, "SIP/2.0") != 0 || strcmp(s->cseq->method, method) != 0)
		return;

	osip_generic_param_t *totag = NULL;
	bool in_dialog = osip_to_get_tag(s->to, &totag) == 0 && totag && totag->gvalue &&
			 totag->gvalue[0];

	if (strcmp(method, "ACK") == 0) {
		return;
	} else if (strcmp(method, "OPTIONS") == 0) {
		r[n++] = (struct reply_spec){200, "OK"};
	} else if (strcmp(method, "REGISTER") == 0) {
		r[n++] = (struct reply_spec){401, "Unauthorized"};
	} else if (strcmp(method, "INVITE") == 0) {
		r[n++] = (struct reply_spec){100, "Trying"};
		if (in_dialog) /* a re-INVITE for a dialog we never had */
			r[n++] = (struct reply_spec){481, "Call/Transaction Does Not Exist"};
		else if (ctx->invite_answer == SP_SIP_ANSWER_302 && uri_ok(ctx->redirect_uri))
			r[n++] = (struct reply_spec){302, "Moved Temporarily"};
		else
			r[n++] = (struct reply_spec){404, "Not Found"};
	} else if (strcmp(method, "BYE") == 0 || strcmp(method, "CANCEL") == 0) {
		r[n++] = (struct reply_spec){481, "Call/Transaction Does Not Exist"};
	} else {
		r[n++] = (struct reply_spec){405, "Method Not Allowed"};
	}

	size_t cap = SP_SIP_MAX_REPLY;
	if (m->len < (SP_SIP_MAX_REPLY - REPLY_SLACK) / REPLY_FACTOR)
		cap = REPLY_FACTOR * m->len + REPLY_SLACK;
	if (parts_build(s, ctx, cap, &rp) != 0)
		goto out;
	int vias = osip_list_size(&s->vias);
	for (int i = 0; i < n; i++) {
		size_t len = reply_build(out->buf[i], cap, &r[i], &rp, ctx);
		if (len == 0 || !reply_parses(out->buf[i], len, r[i].code, vias))
			goto out;
		if (len < SP_SIP_MAX_REPLY)
			out->buf[i][len] = '\0';
		out->len[i] = len;
	}
	out->n = n;
out:
	if (out->n == 0)
		out->len[0] = out->len[1] = 0;
	parts_free(&rp);
}
