// Multi-buffer MD5: up to 8 equal-length messages hashed together in the 8 32-bit lanes of AVX2 registers.
// MD5 is strictly sequential within one message (0.75 GB/s per core); independent blobs are not, so hashing them
// side by side multiplies the rate. A portable one-lane version of the same code serves CPUs without AVX2.
#include "CTygerNative.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const int S[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9,  14, 20, 5, 9,
                          14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                          4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static inline uint32_t rotl(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

static void md5_block1(uint32_t st[4], const unsigned char *p) {
    uint32_t m[16];
    memcpy(m, p, 64);  // little-endian host
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) & 15; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) & 15; }
        else { f = c ^ (b | ~d); g = (7 * i) & 15; }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl(a + f + K[i] + m[g], S[i]);
        a = t;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
}

/// The final one or two blocks of a message of `length` bytes whose last `rest` (< 64) bytes are at `tail`.
static int md5_tail(unsigned char out[128], const unsigned char *tail, size_t rest, size_t length) {
    memset(out, 0, 128);
    memcpy(out, tail, rest);
    out[rest] = 0x80;
    int blocks = rest + 1 + 8 <= 64 ? 1 : 2;
    uint64_t bits = (uint64_t)length * 8;
    memcpy(out + blocks * 64 - 8, &bits, 8);
    return blocks;
}

static void md5_one(const unsigned char *p, size_t length, unsigned char digest[16]) {
    uint32_t st[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    size_t full = length / 64;
    for (size_t i = 0; i < full; i++) md5_block1(st, p + i * 64);
    unsigned char tail[128];
    int blocks = md5_tail(tail, p + full * 64, length - full * 64, length);
    for (int i = 0; i < blocks; i++) md5_block1(st, tail + i * 64);
    memcpy(digest, st, 16);
}

#define ROTL8(x, s) _mm256_or_si256(_mm256_slli_epi32((x), (s)), _mm256_srli_epi32((x), 32 - (s)))

__attribute__((target("avx2"))) static void md5_block8(__m256i st[4], const unsigned char *const p[8]) {
    __m256i m[16];
    for (int w = 0; w < 16; w++) {
        m[w] = _mm256_setr_epi32(((const int32_t *)p[0])[w], ((const int32_t *)p[1])[w], ((const int32_t *)p[2])[w],
                                 ((const int32_t *)p[3])[w], ((const int32_t *)p[4])[w], ((const int32_t *)p[5])[w],
                                 ((const int32_t *)p[6])[w], ((const int32_t *)p[7])[w]);
    }
    __m256i a = st[0], b = st[1], c = st[2], d = st[3];
    const __m256i ones = _mm256_set1_epi32(-1);
    for (int i = 0; i < 64; i++) {
        __m256i f;
        int g;
        if (i < 16) {
            f = _mm256_or_si256(_mm256_and_si256(b, c), _mm256_andnot_si256(b, d));
            g = i;
        } else if (i < 32) {
            f = _mm256_or_si256(_mm256_and_si256(d, b), _mm256_andnot_si256(d, c));
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = _mm256_xor_si256(_mm256_xor_si256(b, c), d);
            g = (3 * i + 5) & 15;
        } else {
            f = _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)));
            g = (7 * i) & 15;
        }
        __m256i t = d;
        d = c;
        c = b;
        __m256i x = _mm256_add_epi32(_mm256_add_epi32(a, f), _mm256_add_epi32(_mm256_set1_epi32((int)K[i]), m[g]));
        int s = S[i];
        b = _mm256_add_epi32(b, ROTL8(x, s));
        a = t;
    }
    st[0] = _mm256_add_epi32(st[0], a);
    st[1] = _mm256_add_epi32(st[1], b);
    st[2] = _mm256_add_epi32(st[2], c);
    st[3] = _mm256_add_epi32(st[3], d);
}

__attribute__((target("avx2"))) static void md5_eight(const unsigned char *const msg[8], size_t length,
                                                      unsigned char *digests, int count) {
    __m256i st[4] = {_mm256_set1_epi32(0x67452301), _mm256_set1_epi32((int)0xefcdab89),
                     _mm256_set1_epi32((int)0x98badcfe), _mm256_set1_epi32(0x10325476)};
    size_t full = length / 64;
    const unsigned char *p[8];
    for (size_t i = 0; i < full; i++) {
        for (int j = 0; j < 8; j++) p[j] = msg[j] + i * 64;
        md5_block8(st, p);
    }
    unsigned char tails[8][128];
    int blocks = 1;
    for (int j = 0; j < 8; j++) blocks = md5_tail(tails[j], msg[j] + full * 64, length - full * 64, length);
    for (int b = 0; b < blocks; b++) {
        for (int j = 0; j < 8; j++) p[j] = tails[j] + b * 64;
        md5_block8(st, p);
    }
    uint32_t words[4][8];
    for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)words[k], st[k]);
    for (int j = 0; j < count; j++)
        for (int k = 0; k < 4; k++) memcpy(digests + j * 16 + k * 4, &words[k][j], 4);
}

int tyger_md5_multi(const void *const *messages, int count, size_t length, unsigned char *digests) {
    if (count <= 0) return 0;
    if (count > 1 && count <= 8 && __builtin_cpu_supports("avx2")) {
        const unsigned char *msg[8];
        for (int j = 0; j < 8; j++) msg[j] = (const unsigned char *)messages[j < count ? j : 0];  // pad lanes
        md5_eight(msg, length, digests, count);
        return 1;
    }
    for (int j = 0; j < count; j++) md5_one((const unsigned char *)messages[j], length, digests + j * 16);
    return 0;
}
