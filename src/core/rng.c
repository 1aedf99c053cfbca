/* Seeded random numbers: xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018), state filled by splitmix64 from a 64-bit seed; normals by the Marsaglia
 * polar method. */
#include <math.h>

#include "nde/core.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nde_rng_seed(nde_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t nde_rng_u64(nde_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double nde_rng_uniform(nde_rng *r) { return (double)(nde_rng_u64(r) >> 11) * 0x1.0p-53; }

double nde_rng_normal(nde_rng *r) {
  double u, v, s;
  do {
    u = 2.0 * nde_rng_uniform(r) - 1.0;
    v = 2.0 * nde_rng_uniform(r) - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  /* The second normal (v * factor) is discarded so that the state stays a plain value. */
  return u * sqrt(-2.0 * log(s) / s);
}
