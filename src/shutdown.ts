/**
 * Graceful shutdown on SIGTERM / SIGINT for the long-running commands (serve, start, worker):
 * `close` first drains (HMS_SHUTDOWN_DRAIN: ready answers 503 while the listener stays open),
 * then stops accepting work, lets what is in flight finish (requests, jobs) and closes the
 * pools; the process then exits 0. If that takes more than HMS_SHUTDOWN_TIMEOUT seconds it exits
 * 1 anyway (whatever was cut off is recorded work: the outbox and the lab messages table bring it
 * back). A second signal does not start a second close.
 */
export function onShutdownSignals(close: () => Promise<void>, timeoutSeconds: number): void {
  let closing = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (closing) return;
      closing = true;
      process.stderr.write(`hms: ${sig}: finishing in-flight work (at most ${timeoutSeconds} s)\n`);
      const timer = setTimeout(() => {
        process.stderr.write(`hms: in-flight work did not finish within ${timeoutSeconds} s (HMS_SHUTDOWN_TIMEOUT): exiting anyway\n`);
        process.exit(1);
      }, timeoutSeconds * 1000);
      timer.unref();
      close().then(() => process.exit(0), (err: unknown) => {
        process.stderr.write(`hms: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      });
    });
  }
}
