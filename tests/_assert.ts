/** Assertions for tests, on node:assert (JSR's @std/assert is unreachable here). */
import assert from "node:assert/strict";

/** Any Error subclass. */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

export function assert_(condition: unknown, message?: string): asserts condition {
  assert.ok(condition, message);
}
export { assert_ as assert };

/** `fn` throws an instance of `errorClass` whose message includes `includes`. */
export function assertThrows(fn: () => unknown, errorClass: ErrorClass, includes?: string): void {
  assert.throws(fn, (e: unknown) => matches(e, errorClass, includes));
}

/** `fn` rejects with an instance of `errorClass` whose message includes `includes`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass,
  includes?: string,
): Promise<void> {
  await assert.rejects(fn, (e: unknown) => matches(e, errorClass, includes));
}

function matches(e: unknown, errorClass: ErrorClass, includes?: string): boolean {
  if (!(e instanceof errorClass)) return false;
  if (includes && !e.message.includes(includes)) {
    throw new Error(`expected error message to include "${includes}", got: ${e.message}`);
  }
  return true;
}

/**
 * Max relative error check in llm.c's style: |a - b| <= atol + rtol * |b| element-wise.
 * Reports the worst element so a failure says where and by how much.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, label = "value" }: { rtol?: number; atol?: number; label?: string } =
    {},
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${label}: length ${actual.length} != ${expected.length}`,
  );
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new assert.AssertionError({
      message: `${label}[${worst}]: got ${actual[worst]}, want ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol})`,
    });
  }
}
