// Byte-string hashing and comparison, 8 bytes at a time. Both read up to 7 bytes past the
// end of a string: every buffer they run over keeps 8 bytes of slack after its data.

function mix(x: u64): u64 {
  x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9;
  return x ^ (x >> 32);
}

/** Mask keeping the low n bytes of a u64 (0 < n < 8). */
function lowBytes(n: usize): u64 {
  return (<u64> 1 << (<u64> n << 3)) - 1;
}

/** 32-bit hash of the n bytes at p. */
export function hashBytes(p: usize, n: usize): u32 {
  let h: u64 = <u64> n * 0x9e3779b97f4a7c15;
  while (n >= 8) {
    h = mix(h ^ load<u64>(p));
    p += 8;
    n -= 8;
  }
  if (n) h = mix(h ^ (load<u64>(p) & lowBytes(n)));
  return <u32> h;
}

/** Whether the n bytes at a equal the n bytes at b. */
export function sameBytes(a: usize, b: usize, n: usize): bool {
  while (n >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  return n == 0 || ((load<u64>(a) ^ load<u64>(b)) & lowBytes(n)) == 0;
}

/** Hash of a token-id pair, for the pair table. */
export function hashPair(key: u64): u32 {
  return <u32> (mix(key * 0x9e3779b97f4a7c15) >> 8);
}
