/**
 * Fault injection for the crash tests (docs/testing.md), off unless HMS_TEST_FAULTS is set in the
 * worker's environment: `exit:<control id>` kills the process (SIGKILL) while it processes that
 * message, inside its transaction; `throw:<control id>` makes the run throw an unexpected error.
 * Comma-separated. Nothing in production sets it.
 */
export function faultFor(controlId: string, kind: 'exit' | 'throw'): void {
  const setting = process.env.HMS_TEST_FAULTS;
  if (!setting) return;
  const faults = setting.split(',').map((f) => f.trim()).filter(Boolean);
  const hit = faults.some((f) => f.startsWith(`${kind}:`) && controlId.endsWith(`|${f.slice(kind.length + 1)}`));
  if (!hit) return;
  if (kind === 'exit') process.kill(process.pid, 'SIGKILL');
  throw new Error(`injected fault for message ${controlId.slice(-40)}`);
}
