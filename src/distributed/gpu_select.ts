/**
 * One GPU per rank on a multi-GPU host. WebGPU cannot enumerate adapters, so each rank asks
 * Mesa's Vulkan device-select layer (installed with `mesa-vulkan-drivers`) to expose only its
 * GPU: `DRI_PRIME=pci-DDDD_BB_DD_F` picks the device by PCI address and
 * `MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1` hides the others. The variables are set in
 * the rank's own environment before its first adapter request, so this works under every
 * launcher (ours, torchrun, srun, mpirun). A user's own DRI_PRIME or MESA_VK_DEVICE_SELECT wins.
 */
import { join } from "node:path";

/** PCI vendors of GPUs that do compute (NVIDIA, AMD, Intel); BMC VGA chips are not listed. */
const GPU_VENDORS = new Set(["0x10de", "0x1002", "0x8086"]);

/** The PCI addresses (`0000:17:00.0`) of this host's GPUs, in bus order. */
export function gpuPciAddresses(sysfs = "/sys/bus/pci/devices"): string[] {
  let entries: string[];
  try {
    entries = [...Deno.readDirSync(sysfs)].map((e) => e.name);
  } catch {
    return []; // not Linux, or no sysfs: nothing to choose from
  }
  const read = (dir: string, file: string) => {
    try {
      return Deno.readTextFileSync(join(sysfs, dir, file)).trim();
    } catch {
      return "";
    }
  };
  // Display controllers: 0x0300 VGA, 0x0302 3D (data-center GPUs), 0x0380 other.
  return entries
    .filter((d) => /^0x030[0-8]/.test(read(d, "class")) && GPU_VENDORS.has(read(d, "vendor")))
    .sort();
}

/** What {@link selectGpu} chose, for the start-up log. */
export interface GpuChoice {
  /** The PCI address chosen, or null when nothing was set. */
  address: string | null;
  /** Why, in words. */
  reason: string;
}

/**
 * Point this process's Vulkan at GPU number `localRank` (round-robin when there are fewer GPUs
 * than local ranks). Call before the first `requestGpu()`.
 */
export function selectGpu(
  localRank: number,
  env: { get(k: string): string | undefined; set(k: string, v: string): void } = Deno.env,
  addresses: string[] = gpuPciAddresses(),
): GpuChoice {
  if (env.get("DRI_PRIME") || env.get("MESA_VK_DEVICE_SELECT")) {
    return { address: null, reason: "DRI_PRIME / MESA_VK_DEVICE_SELECT set by the user" };
  }
  if (addresses.length <= 1) {
    return { address: null, reason: `${addresses.length} GPU(s) on this host: nothing to choose` };
  }
  const address = addresses[localRank % addresses.length];
  env.set("DRI_PRIME", `pci-${address.replace(/[:.]/g, "_")}`);
  env.set("MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE", "1");
  const shared = localRank >= addresses.length ? ` (shared: only ${addresses.length} GPUs)` : "";
  return { address, reason: `local rank ${localRank} of ${addresses.length} GPUs${shared}` };
}
