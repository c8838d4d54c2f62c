// GPT-2's pre-tokenizer, the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// run as a hand-written scanner over UTF-8 bytes. `\s` is Unicode White_Space (Rust regex's
// meaning, which tiktoken uses), not JavaScript's `\s`.

// Generated at build time from V8's regexes by tasks/build_wasm.ts (not a file on disk).
import { ASCII_CLASS, BLOCK_OF, BLOCKS } from "./_unicode_classes";

/**
 * Character classes, numbered as tasks/build_wasm.ts writes them: 0 other, 1 \p{L},
 * 2 \p{N}, 3 White_Space. Only whitespace needs naming: other runs stop at a class change.
 */
const SPACE: u32 = 3;

/**
 * Class of a non-ASCII code point: BLOCK_OF maps cp >> 8 to one of the deduplicated
 * 256-code-point BLOCKS, which hold 2 bits per code point.
 */
function classOf(cp: u32): u32 {
  const block = <usize> load<u16>(BLOCK_OF + ((<usize> cp >> 8) << 1));
  const bits = <u32> load<u8>(BLOCKS + (block << 6) + ((<usize> cp & 255) >> 2));
  return (bits >> ((cp & 3) << 1)) & 3;
}

/**
 * `(byte length << 2) | class` of the character starting at p. The input is well-formed UTF-8
 * (TextEncoder's output: lone surrogates already became U+FFFD).
 */
function charAt(p: usize): u32 {
  const b0 = <u32> load<u8>(p);
  if (b0 < 0x80) return 4 | <u32> load<u8>(ASCII_CLASS + b0);
  const b1 = <u32> load<u8>(p, 1) & 0x3f;
  if (b0 < 0xe0) return 8 | classOf(((b0 & 0x1f) << 6) | b1);
  const b2 = <u32> load<u8>(p, 2) & 0x3f;
  if (b0 < 0xf0) return 12 | classOf(((b0 & 0x0f) << 12) | (b1 << 6) | b2);
  const b3 = <u32> load<u8>(p, 3) & 0x3f;
  return 16 | classOf(((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3);
}

/** Length of a contraction ('s 't 'm 'd 're 've 'll, lowercase only) starting at p, or 0. */
function contraction(p: usize, end: usize): usize {
  if (p + 1 >= end) return 0;
  const c = load<u8>(p, 1);
  if (c == 0x73 || c == 0x74 || c == 0x6d || c == 0x64) return 2; // s t m d
  if (p + 2 >= end) return 0;
  const d = load<u8>(p, 2);
  if ((c == 0x72 || c == 0x76) && d == 0x65) return 3; // re ve
  if (c == 0x6c && d == 0x6c) return 3; // ll
  return 0;
}

/** End of the pre-token that starts at p (p < end): the regex's leftmost-first match. */
export function pieceEnd(p: usize, end: usize): usize {
  const first = load<u8>(p);
  if (first == 0x27) { // '
    const n = contraction(p, end);
    if (n) return p + n;
  }
  let q = p;
  let ch = charAt(p);
  // " ?X+" alternatives: a leading U+0020 joins a following run that is not whitespace.
  if (first == 0x20 && p + 1 < end) {
    const next = charAt(p + 1);
    if ((next & 3) != SPACE) {
      q = p + 1;
      ch = next;
    }
  }
  const cls = ch & 3;
  if (cls != SPACE) {
    // \p{L}+, \p{N}+ or [^\s\p{L}\p{N}]+: a maximal run of one class.
    q += ch >> 2;
    while (q < end) {
      const b = <u32> load<u8>(q);
      if (b < 0x80) { // ASCII, the common case: no UTF-8 decoding
        if (<u32> load<u8>(ASCII_CLASS + b) != cls) break;
        q++;
        continue;
      }
      const x = charAt(q);
      if ((x & 3) != cls) break;
      q += x >> 2;
    }
    return q;
  }
  // \s+(?!\S) then \s+: a whitespace run that ends the text is taken whole; one followed by
  // a non-space gives its last character back (to become " word" or a piece of its own),
  // unless that character is the whole run.
  let last = p;
  while (q < end) {
    const x = charAt(q);
    if ((x & 3) != SPACE) break;
    last = q;
    q += x >> 2;
  }
  return q == end || last == p ? q : last;
}
