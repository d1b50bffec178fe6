// Multi-buffer MD5: equal-length messages hashed side by side, one message per 32-bit SIMD lane.
// MD5 is strictly sequential within one message (0.9 GB/s per core in plain C); independent blobs are not, so
// hashing them side by side multiplies the rate. Each step waits for the one before (a chain of four dependent
// operations with AVX-512), so the rate per lane is set by latency and wider registers add lanes at no cost. The
// widest path the CPU has is chosen at run time (rates per core on AMD Zen 5 with clang -O2, 4 MiB messages):
//   AVX-512 F+VL: 16 lanes in zmm registers, about 8 GB/s; groups of at most 8 use ymm registers, about 4 GB/s.
//                 vpternlogd computes the round functions and vprold the rotates.
//   AVX2:         8 lanes in ymm registers, about 2.9 GB/s; 16 messages take two passes.
//   otherwise:    one message at a time in plain C, about 0.9 GB/s; also used for a single message.
// The SIMD paths load each lane's 64-byte block with whole-vector loads and transpose the words into lanes.
#include "CTygerNative.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MD5_X86 1
#endif

// The 64 steps of a block: round function, the state registers in their rotated roles, message word, rotate
// count, constant. STEP(f, a, b, c, d, g, s, k) computes a = b + rotl(a + f(b, c, d) + k + m[g], s).
#define MD5_STEPS(STEP)                                                                                      \
    STEP(F, a, b, c, d, 0, 7, 0xd76aa478) STEP(F, d, a, b, c, 1, 12, 0xe8c7b756)                            \
    STEP(F, c, d, a, b, 2, 17, 0x242070db) STEP(F, b, c, d, a, 3, 22, 0xc1bdceee)                           \
    STEP(F, a, b, c, d, 4, 7, 0xf57c0faf) STEP(F, d, a, b, c, 5, 12, 0x4787c62a)                            \
    STEP(F, c, d, a, b, 6, 17, 0xa8304613) STEP(F, b, c, d, a, 7, 22, 0xfd469501)                           \
    STEP(F, a, b, c, d, 8, 7, 0x698098d8) STEP(F, d, a, b, c, 9, 12, 0x8b44f7af)                            \
    STEP(F, c, d, a, b, 10, 17, 0xffff5bb1) STEP(F, b, c, d, a, 11, 22, 0x895cd7be)                         \
    STEP(F, a, b, c, d, 12, 7, 0x6b901122) STEP(F, d, a, b, c, 13, 12, 0xfd987193)                          \
    STEP(F, c, d, a, b, 14, 17, 0xa679438e) STEP(F, b, c, d, a, 15, 22, 0x49b40821)                         \
    STEP(G, a, b, c, d, 1, 5, 0xf61e2562) STEP(G, d, a, b, c, 6, 9, 0xc040b340)                             \
    STEP(G, c, d, a, b, 11, 14, 0x265e5a51) STEP(G, b, c, d, a, 0, 20, 0xe9b6c7aa)                          \
    STEP(G, a, b, c, d, 5, 5, 0xd62f105d) STEP(G, d, a, b, c, 10, 9, 0x02441453)                            \
    STEP(G, c, d, a, b, 15, 14, 0xd8a1e681) STEP(G, b, c, d, a, 4, 20, 0xe7d3fbc8)                          \
    STEP(G, a, b, c, d, 9, 5, 0x21e1cde6) STEP(G, d, a, b, c, 14, 9, 0xc33707d6)                            \
    STEP(G, c, d, a, b, 3, 14, 0xf4d50d87) STEP(G, b, c, d, a, 8, 20, 0x455a14ed)                           \
    STEP(G, a, b, c, d, 13, 5, 0xa9e3e905) STEP(G, d, a, b, c, 2, 9, 0xfcefa3f8)                            \
    STEP(G, c, d, a, b, 7, 14, 0x676f02d9) STEP(G, b, c, d, a, 12, 20, 0x8d2a4c8a)                          \
    STEP(H, a, b, c, d, 5, 4, 0xfffa3942) STEP(H, d, a, b, c, 8, 11, 0x8771f681)                            \
    STEP(H, c, d, a, b, 11, 16, 0x6d9d6122) STEP(H, b, c, d, a, 14, 23, 0xfde5380c)                         \
    STEP(H, a, b, c, d, 1, 4, 0xa4beea44) STEP(H, d, a, b, c, 4, 11, 0x4bdecfa9)                            \
    STEP(H, c, d, a, b, 7, 16, 0xf6bb4b60) STEP(H, b, c, d, a, 10, 23, 0xbebfbc70)                          \
    STEP(H, a, b, c, d, 13, 4, 0x289b7ec6) STEP(H, d, a, b, c, 0, 11, 0xeaa127fa)                           \
    STEP(H, c, d, a, b, 3, 16, 0xd4ef3085) STEP(H, b, c, d, a, 6, 23, 0x04881d05)                           \
    STEP(H, a, b, c, d, 9, 4, 0xd9d4d039) STEP(H, d, a, b, c, 12, 11, 0xe6db99e5)                           \
    STEP(H, c, d, a, b, 15, 16, 0x1fa27cf8) STEP(H, b, c, d, a, 2, 23, 0xc4ac5665)                          \
    STEP(I, a, b, c, d, 0, 6, 0xf4292244) STEP(I, d, a, b, c, 7, 10, 0x432aff97)                            \
    STEP(I, c, d, a, b, 14, 15, 0xab9423a7) STEP(I, b, c, d, a, 5, 21, 0xfc93a039)                          \
    STEP(I, a, b, c, d, 12, 6, 0x655b59c3) STEP(I, d, a, b, c, 3, 10, 0x8f0ccc92)                           \
    STEP(I, c, d, a, b, 10, 15, 0xffeff47d) STEP(I, b, c, d, a, 1, 21, 0x85845dd1)                          \
    STEP(I, a, b, c, d, 8, 6, 0x6fa87e4f) STEP(I, d, a, b, c, 15, 10, 0xfe2ce6e0)                           \
    STEP(I, c, d, a, b, 6, 15, 0xa3014314) STEP(I, b, c, d, a, 13, 21, 0x4e0811a1)                          \
    STEP(I, a, b, c, d, 4, 6, 0xf7537e82) STEP(I, d, a, b, c, 11, 10, 0xbd3af235)                           \
    STEP(I, c, d, a, b, 2, 15, 0x2ad7d2bb) STEP(I, b, c, d, a, 9, 21, 0xeb86d391)

#define MD5_A0 0x67452301
#define MD5_B0 0xefcdab89
#define MD5_C0 0x98badcfe
#define MD5_D0 0x10325476

// Keeps `x` as computed. Each step forms a + k + m[g] (plus any part of f that does not involve b) before adding
// f(b, c, d): only f and the operations after it wait for b, the result of the step before. Left alone, compilers
// reassociate the sum and put more additions on that critical path.
#if defined(__GNUC__) || defined(__clang__)
#define MD5_KEEP1(x) __asm__("" : "+r"(x))
#else
#define MD5_KEEP1(x) ((void)0)
#endif

// ---- One lane, portable C ----

// Round functions split into a part without b (MD5_x1P, added early) and the part with b. G's two halves have no
// bit in common, so their sum is their union.
#define MD5_F1P(c, d) 0
#define MD5_F1(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define MD5_G1P(c, d) ((c) & ~(d))
#define MD5_G1(b, c, d) ((b) & (d))
#define MD5_H1P(c, d) 0
#define MD5_H1(b, c, d) ((b) ^ ((c) ^ (d)))
#define MD5_I1P(c, d) 0
#define MD5_I1(b, c, d) ((c) ^ ((b) | ~(d)))
#define STEP1(f, a, b, c, d, g, s, k)                       \
    a += (uint32_t)(k) + m[g] + MD5_##f##1P(c, d);          \
    MD5_KEEP1(a);                                           \
    a += MD5_##f##1(b, c, d);                               \
    a = b + ((a << (s)) | (a >> (32 - (s))));

static void md5_block1(uint32_t st[4], const unsigned char *p) {
    uint32_t m[16];
    memcpy(m, p, 64);  // little-endian host
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    MD5_STEPS(STEP1)
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
}

/// Writes the padded final one or two blocks of a message of `length` bytes whose last `rest` (< 64) bytes are at
/// `tail` into `out`, and returns how many blocks there are.
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
    uint32_t st[4] = {MD5_A0, MD5_B0, MD5_C0, MD5_D0};
    size_t full = length / 64;
    for (size_t i = 0; i < full; i++) md5_block1(st, p + i * 64);
    unsigned char tail[128];
    int blocks = md5_tail(tail, p + full * 64, length - full * 64, length);
    for (int i = 0; i < blocks; i++) md5_block1(st, tail + i * 64);
    memcpy(digest, st, 16);
}

#ifdef MD5_X86

// MD5_KEEP1 for vector registers.
#define MD5_KEEP(x) __asm__("" : "+v"(x))

/// How far ahead of the block being hashed each lane's data is prefetched: the hardware prefetchers alone fall
/// slightly behind 16 streams read from memory.
#define MD5_PREFETCH 512
#define MD5_PREFETCH_LANES(p, lanes, offset)                                                             \
    for (int j_ = 0; j_ < (lanes); j_++) _mm_prefetch((const char *)(p)[j_] + (offset) + MD5_PREFETCH, _MM_HINT_T0)

/// Pads the final blocks of `lanes` messages of `length` bytes into `tails` (128 bytes per lane), pointing `p` at
/// them; returns how many blocks each has.
static int md5_tails(unsigned char (*tails)[128], const unsigned char **p, const unsigned char *const *msg,
                     int lanes, size_t length) {
    size_t full = length / 64 * 64;
    int blocks = 1;
    for (int j = 0; j < lanes; j++) {
        blocks = md5_tail(tails[j], msg[j] + full, length - full, length);
        p[j] = tails[j];
    }
    return blocks;
}

/// Scatters the final state of the first `count` lanes (`words[k][lane]`) into 16-byte digests.
static void md5_digests(const uint32_t *words, int lanes, int count, unsigned char *digests) {
    for (int j = 0; j < count; j++)
        for (int k = 0; k < 4; k++) memcpy(digests + j * 16 + k * 4, &words[k * lanes + j], 4);
}

/// Transposes 8 rows of 8 words (`r[j]` = 8 consecutive words of lane j) into `m[w]` = word w of every lane.
#define MD5_TRANSPOSE8(m, r)                                                                             \
    do {                                                                                                 \
        __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);          \
        __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);          \
        __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);          \
        __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);          \
        __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);                  \
        __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);                  \
        __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);                  \
        __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);                  \
        (m)[0] = _mm256_permute2x128_si256(u0, u4, 0x20), (m)[4] = _mm256_permute2x128_si256(u0, u4, 0x31); \
        (m)[1] = _mm256_permute2x128_si256(u1, u5, 0x20), (m)[5] = _mm256_permute2x128_si256(u1, u5, 0x31); \
        (m)[2] = _mm256_permute2x128_si256(u2, u6, 0x20), (m)[6] = _mm256_permute2x128_si256(u2, u6, 0x31); \
        (m)[3] = _mm256_permute2x128_si256(u3, u7, 0x20), (m)[7] = _mm256_permute2x128_si256(u3, u7, 0x31); \
    } while (0)

/// Loads the 64-byte block at `p[j] + offset` of 8 lanes into `m[w]` = word w of every lane.
#define MD5_LOAD8(m, p, offset)                                                                          \
    do {                                                                                                 \
        __m256i r_[8];                                                                                   \
        for (int j_ = 0; j_ < 8; j_++) r_[j_] = _mm256_loadu_si256((const __m256i *)((p)[j_] + (offset))); \
        MD5_TRANSPOSE8(m, r_);                                                                           \
        for (int j_ = 0; j_ < 8; j_++)                                                                   \
            r_[j_] = _mm256_loadu_si256((const __m256i *)((p)[j_] + (offset) + 32));                     \
        MD5_TRANSPOSE8((m) + 8, r_);                                                                     \
    } while (0)

// One SIMD path of N lanes in __m<BITS>i vectors (_mm<BITS>_ intrinsics), compiled for TARGET:
//   md5_block<N>_<SUFFIX>(st, p, offset) prefetches ahead, loads the 64-byte block at p[j] + offset of every lane
//     with LOAD(m, p, offset), runs the 64 steps with STEP and adds the result into the state st.
//   md5_lanes<N>_<SUFFIX>(msg, length, digests, count) hashes N messages of `length` bytes (full blocks in place,
//     then the padded final blocks) and writes the digests of the first `count`.
#define MD5_SIMD_PATH(N, SUFFIX, TARGET, BITS, LOAD, STEP)                                                   \
    __attribute__((target(TARGET))) static void md5_block##N##_##SUFFIX(                                     \
        __m##BITS##i st[4], const unsigned char *const p[N], size_t offset) {                                \
        __m##BITS##i m[16];                                                                                  \
        MD5_PREFETCH_LANES(p, N, offset);                                                                    \
        LOAD(m, p, offset);                                                                                  \
        __m##BITS##i a = st[0], b = st[1], c = st[2], d = st[3];                                             \
        MD5_STEPS(STEP)                                                                                      \
        st[0] = _mm##BITS##_add_epi32(st[0], a);                                                             \
        st[1] = _mm##BITS##_add_epi32(st[1], b);                                                             \
        st[2] = _mm##BITS##_add_epi32(st[2], c);                                                             \
        st[3] = _mm##BITS##_add_epi32(st[3], d);                                                             \
    }                                                                                                        \
                                                                                                             \
    __attribute__((target(TARGET))) static void md5_lanes##N##_##SUFFIX(                                     \
        const unsigned char *const msg[N], size_t length, unsigned char *digests, int count) {               \
        __m##BITS##i st[4] = {_mm##BITS##_set1_epi32(MD5_A0), _mm##BITS##_set1_epi32((int)MD5_B0),           \
                              _mm##BITS##_set1_epi32((int)MD5_C0), _mm##BITS##_set1_epi32(MD5_D0)};          \
        size_t full = length / 64;                                                                           \
        for (size_t i = 0; i < full; i++) md5_block##N##_##SUFFIX(st, msg, i * 64);                          \
        unsigned char tails[N][128];                                                                         \
        const unsigned char *p[N];                                                                           \
        int blocks = md5_tails(tails, p, msg, N, length);                                                    \
        for (int b = 0; b < blocks; b++) md5_block##N##_##SUFFIX(st, p, (size_t)b * 64);                     \
        uint32_t words[4][N];                                                                                \
        for (int k = 0; k < 4; k++) _mm##BITS##_storeu_si##BITS((__m##BITS##i *)words[k], st[k]);            \
        md5_digests(&words[0][0], N, count, digests);                                                        \
    }

// ---- 8 lanes, AVX2 ----

#define MD5_F8P(c, d) _mm256_setzero_si256()
#define MD5_F8(b, c, d) _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
#define MD5_G8P(c, d) _mm256_andnot_si256(d, c)
#define MD5_G8(b, c, d) _mm256_and_si256(b, d)
#define MD5_H8P(c, d) _mm256_setzero_si256()
#define MD5_H8(b, c, d) _mm256_xor_si256(b, _mm256_xor_si256(c, d))
#define MD5_I8P(c, d) _mm256_setzero_si256()
#define MD5_I8(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, _mm256_set1_epi32(-1))))
#define STEP8(f, a, b, c, d, g, s, k)                                                                    \
    a = _mm256_add_epi32(a, _mm256_add_epi32(_mm256_add_epi32(m[g], _mm256_set1_epi32((int)(k))),       \
                                             MD5_##f##8P(c, d)));                                        \
    MD5_KEEP(a);                                                                                         \
    a = _mm256_add_epi32(a, MD5_##f##8(b, c, d));                                                        \
    a = _mm256_add_epi32(b, _mm256_or_si256(_mm256_slli_epi32(a, s), _mm256_srli_epi32(a, 32 - (s))));

MD5_SIMD_PATH(8, avx2, "avx2", 256, MD5_LOAD8, STEP8)

// ---- 8 lanes (ymm) and 16 lanes (zmm), AVX-512 F+VL ----

// vpternlogd truth tables for the round functions of (b, c, d).
#define MD5_TL_F 0xca  // b ? c : d
#define MD5_TL_G 0xe4  // d ? b : c
#define MD5_TL_H 0x96  // b ^ c ^ d
#define MD5_TL_I 0x39  // c ^ (b | ~d)

// One step on __m<BITS>i vectors: the round function is a vpternlogd, the rotate a vprold.
#define MD5_STEP_TL(BITS, f, a, b, c, d, g, s, k)                                                        \
    a = _mm##BITS##_add_epi32(a, _mm##BITS##_add_epi32(m[g], _mm##BITS##_set1_epi32((int)(k))));         \
    MD5_KEEP(a);                                                                                         \
    a = _mm##BITS##_add_epi32(a, _mm##BITS##_ternarylogic_epi32(b, c, d, MD5_TL_##f));                   \
    a = _mm##BITS##_add_epi32(b, _mm##BITS##_rol_epi32(a, s));
#define STEP8X(f, a, b, c, d, g, s, k) MD5_STEP_TL(256, f, a, b, c, d, g, s, k)
#define STEP16(f, a, b, c, d, g, s, k) MD5_STEP_TL(512, f, a, b, c, d, g, s, k)

MD5_SIMD_PATH(8, avx512, "avx2,avx512f,avx512vl", 256, MD5_LOAD8, STEP8X)

/// Loads the 64-byte block at `p[j] + offset` of 16 lanes into `m[w]` = word w of every lane (a 16x16 transpose).
__attribute__((target("avx2,avx512f,avx512vl"))) static inline void md5_load16(__m512i m[16],
                                                                              const unsigned char *const p[16],
                                                                              size_t offset) {
    __m512i r[16], t[16];
    for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_si512((const void *)(p[j] + offset));
    // Pairs of rows interleaved by word, then by pair of words: t[4g + q] holds, in 128-bit lane l, word 4l + q of
    // rows 4g...4g+3.
    for (int g = 0; g < 4; g++) {
        __m512i lo01 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]);
        __m512i hi01 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
        __m512i lo23 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]);
        __m512i hi23 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
        t[4 * g] = _mm512_unpacklo_epi64(lo01, lo23);
        t[4 * g + 1] = _mm512_unpackhi_epi64(lo01, lo23);
        t[4 * g + 2] = _mm512_unpacklo_epi64(hi01, hi23);
        t[4 * g + 3] = _mm512_unpackhi_epi64(hi01, hi23);
    }
    // Then a 4x4 transpose of 128-bit lanes across the four row groups.
    for (int q = 0; q < 4; q++) {
        __m512i v0 = _mm512_shuffle_i32x4(t[q], t[4 + q], 0x44);
        __m512i v1 = _mm512_shuffle_i32x4(t[q], t[4 + q], 0xee);
        __m512i v2 = _mm512_shuffle_i32x4(t[8 + q], t[12 + q], 0x44);
        __m512i v3 = _mm512_shuffle_i32x4(t[8 + q], t[12 + q], 0xee);
        m[q] = _mm512_shuffle_i32x4(v0, v2, 0x88);
        m[4 + q] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
        m[8 + q] = _mm512_shuffle_i32x4(v1, v3, 0x88);
        m[12 + q] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
    }
}

MD5_SIMD_PATH(16, avx512, "avx2,avx512f,avx512vl", 512, md5_load16, STEP16)

#endif  // MD5_X86

int tyger_md5_multi(const void *const *messages, int count, size_t length, unsigned char *digests) {
    int start = 0, simd = 0;
#ifdef MD5_X86
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    if (count > 1 && (avx512 || __builtin_cpu_supports("avx2"))) {
        simd = 1;
        // Passes of up to 16 (AVX-512) or 8 (AVX2) lanes; a last message on its own is faster in plain C.
        for (int lanes = avx512 ? 16 : 8; count - start > 1;) {
            int n = count - start < lanes ? count - start : lanes;
            const unsigned char *msg[16];
            for (int j = 0; j < 16; j++) msg[j] = (const unsigned char *)messages[start + (j < n ? j : 0)];  // pad
            if (n > 8) md5_lanes16_avx512(msg, length, digests + start * 16, n);
            else if (avx512) md5_lanes8_avx512(msg, length, digests + start * 16, n);
            else md5_lanes8_avx2(msg, length, digests + start * 16, n);
            start += n;
        }
    }
#endif
    for (; start < count; start++) md5_one((const unsigned char *)messages[start], length, digests + start * 16);
    return simd;
}
