import { formatEvalLine, formatExp, formatStepLine, formatThousands } from "../src/log/console.ts";
import { assertEquals } from "./_assert.ts";

Deno.test("console: step and eval lines line up in llm.c style", () => {
  assertEquals(
    formatStepLine({
      step: 42,
      maxSteps: 90000,
      loss: 5.1234564,
      lr: 1e-2,
      gradNorm: 1.23449,
      ms: 312.44,
      tokensPerS: 52430.4,
      mfu: 0.4123,
      etaSeconds: 3 * 3600 + 62,
    }),
    "step    42/90000 | loss 5.123456 | lr 1.00e-02 | norm 1.2345 | 312.4 ms | 52,430 tok/s | MFU 41.2% | ETA 3:01:02",
  );
  assertEquals(
    formatStepLine({
      step: 7,
      maxSteps: 10,
      loss: NaN,
      lr: 0,
      gradNorm: Infinity,
      ms: 5,
      tokensPerS: 999,
    }),
    "step  7/10 | loss NaN | lr 0.00e+00 | norm Infinity | 5.0 ms | 999 tok/s",
  );
  assertEquals(
    formatEvalLine({
      step: 1000,
      maxSteps: 90000,
      valLoss: 3.4567891,
      batches: 100,
      seconds: 2.3149,
    }),
    "step  1000/90000 | val loss 3.456789 | 100 batches | 2.31 s",
  );
});

Deno.test("console: number formats", () => {
  assertEquals(formatThousands(0), "0");
  assertEquals(formatThousands(999.6), "1,000");
  assertEquals(formatThousands(1_130_000), "1,130,000");
  assertEquals(formatThousands(-1234), "-1,234");
  assertEquals(formatExp(6e-4), "6.00e-04");
  assertEquals(formatExp(123456), "1.23e+05");
  assertEquals(formatExp(-2.5e-10), "-2.50e-10");
});
