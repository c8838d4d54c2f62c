import { join } from "node:path";
import { assertEquals } from "./_assert.ts";
import { gpuPciAddresses, selectGpu } from "../src/distributed/gpu_select.ts";

/** A fake /sys/bus/pci/devices: a BMC VGA chip, two NVIDIA 3D controllers, a NIC. */
async function fakeSysfs(): Promise<string> {
  const root = await Deno.makeTempDir();
  const devices: [string, string, string][] = [
    ["0000:03:00.0", "0x030000", "0x1a03"], // ASPEED BMC VGA
    ["0000:b7:00.0", "0x030200", "0x10de"],
    ["0000:17:00.0", "0x030200", "0x10de"],
    ["0000:19:00.0", "0x020000", "0x15b3"], // Mellanox NIC
  ];
  for (const [addr, cls, vendor] of devices) {
    await Deno.mkdir(join(root, addr));
    await Deno.writeTextFile(join(root, addr, "class"), `${cls}\n`);
    await Deno.writeTextFile(join(root, addr, "vendor"), `${vendor}\n`);
  }
  return root;
}

function fakeEnv(init: Record<string, string> = {}) {
  const vars = new Map(Object.entries(init));
  return {
    vars,
    get: (k: string) => vars.get(k),
    set: (k: string, v: string) => void vars.set(k, v),
  };
}

Deno.test("gpu select: GPUs from sysfs in bus order, one per local rank", async () => {
  const root = await fakeSysfs();
  try {
    const gpus = gpuPciAddresses(root);
    assertEquals(gpus, ["0000:17:00.0", "0000:b7:00.0"]);
    const env = fakeEnv();
    assertEquals(selectGpu(1, env, gpus).address, "0000:b7:00.0");
    assertEquals(env.vars.get("DRI_PRIME"), "pci-0000_b7_00_0");
    assertEquals(env.vars.get("MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE"), "1");
    // More ranks than GPUs share them round-robin, and say so.
    const third = selectGpu(2, fakeEnv(), gpus);
    assertEquals(third.address, "0000:17:00.0");
    assertEquals(third.reason.includes("shared"), true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("gpu select: a user's choice and single-GPU hosts are left alone", () => {
  const env = fakeEnv({ DRI_PRIME: "1" });
  assertEquals(selectGpu(3, env, ["0000:17:00.0", "0000:b7:00.0"]).address, null);
  assertEquals(env.vars.get("DRI_PRIME"), "1");
  const single = fakeEnv();
  assertEquals(selectGpu(0, single, ["0000:17:00.0"]).address, null);
  assertEquals(single.vars.has("DRI_PRIME"), false);
  assertEquals(gpuPciAddresses("/nonexistent"), []);
});
