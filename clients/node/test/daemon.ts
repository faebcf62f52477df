/** Starts the real srtpd binary for the tests ($SRTPD_BIN, else the checkout's
 * target/debug/srtpd, built by `cargo build`). */
import { ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's root (this file runs from clients/node/dist/test). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export class Daemon {
  readonly dir: string;
  readonly socket: string;
  private readonly proc: ChildProcess;

  private constructor(dir: string, socket: string, proc: ChildProcess) {
    this.dir = dir;
    this.socket = socket;
    this.proc = proc;
  }

  static async start(): Promise<Daemon> {
    const dir = mkdtempSync(path.join(tmpdir(), "srtpd-node-"));
    const socket = path.join(dir, "srtpd.sock");
    const config = path.join(dir, "srtpd.toml");
    writeFileSync(
      config,
      `[control]\nsocket = "${socket}"\n[media]\nbind_v4 = "127.0.0.1"\nworkers = 1\n[log]\nlevel = "warn"\n`,
    );
    const bin = process.env["SRTPD_BIN"] ?? path.join(ROOT, "target", "debug", "srtpd");
    const proc = spawn(bin, ["--config", config], { stdio: ["ignore", "ignore", "inherit"] });
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`srtpd did not start (${bin})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return new Daemon(dir, socket, proc);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
