/** README.md's table of train flags is the one src/train/options.ts generates. */
import { assertEquals } from "./_assert.ts";
import { withTrainFlags } from "../tasks/docs.ts";

Deno.test("README: the train flags table matches the option table", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const fresh = withTrainFlags(readme);
  assertEquals(
    readme === fresh,
    true,
    "README.md's train flags table differs from src/train/options.ts: regenerate it with " +
      "`deno task docs`",
  );
});
