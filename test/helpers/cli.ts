/**
 * What the tests of the real `hms` command share (test/e2e/cli*.test.ts): a temp dir, waiting for
 * a spawned server's health, the admin password they create.
 */
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Run } from './processes.js';

/** Polls url until it answers 200 (bounded), failing early if the server exits. */
export async function waitForHealth(url: string, run: Run, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  let exited = false;
  void run.exited.then(() => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`server exited early: ${run.stderr()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 within ${ms} ms; stderr: ${run.stderr()}`);
}

export function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hms-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const ADMIN_PASSWORD = 'a long enough e2e password';
