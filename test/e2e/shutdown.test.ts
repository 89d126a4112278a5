/**
 * Graceful shutdown of the real `hms start` process: on SIGTERM it stops accepting connections,
 * finishes the request in flight (its body still arriving), then exits 0; a request that does not
 * finish within HMS_SHUTDOWN_TIMEOUT does not hold the process: it exits 1 when that runs out.
 * Runs on MariaDB when DATABASE_URL is set (passed through), else on SQLite in a temp dir.
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { childEnv, freePort, hms, sleep, within } from '../helpers/processes.js';
import { tempDir, waitForHealth } from '../helpers/cli.js';

/** A keep-alive connection that has had one answer (so the server has accepted it), then the head and half the body of a login. */
async function requestInFlight(port: number): Promise<{ socket: Socket; rest: string; response: Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8').on('data', (d: string) => { received += d; });
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
  await within((async () => { while (!received.includes('"status":"ok"')) await sleep(20); })(), 10_000, 'the first answer');
  received = '';
  const body = JSON.stringify({ email: `nobody-${randomUUID()}@shutdown.test.example.org`, password: 'not the password at all' });
  const half = Math.floor(body.length / 2);
  socket.write(`POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, half)}`);
  const response = new Promise<string>((resolve) => {
    socket.on('data', () => { if (/\r\n\r\n[\s\S]*\}$/.test(received)) resolve(received); });
    socket.on('close', () => resolve(received));
  });
  return { socket, rest: body.slice(half), response };
}

t.test('SIGTERM: no new connections, the request in flight is answered, then exit 0', async (t) => {
  const port = await freePort();
  const server = hms(t, ['start'], childEnv({ HMS_DATA_DIR: tempDir(t), PORT: String(port) }));
  await waitForHealth(`http://127.0.0.1:${port}/health/ready`, server);
  const inFlight = await requestInFlight(port);
  await sleep(300); // the head has been read
  server.child.kill('SIGTERM');
  await within((async () => { while (!server.stderr().includes('SIGTERM: finishing in-flight work')) await sleep(20); })(), 10_000, 'the shutdown message');
  await t.rejects(fetch(`http://127.0.0.1:${port}/health/live`), 'a new connection is refused');
  t.ok(server.running(), 'still running while the request is in flight');
  inFlight.socket.write(inFlight.rest);
  const answer = await within(inFlight.response, 10_000, 'the answer to the request in flight');
  // an unknown login: 401 (or 429 if the address's failures on a shared database reached the throttle)
  t.match(answer, /^HTTP\/1\.1 (401|429) /, 'the request in flight was answered');
  t.match(answer, /"resourceType":"OperationOutcome"/);
  t.match(answer, /connection: close/i, 'and its connection closed after it');
  const exit = await within(server.exited, 15_000, 'the process exiting');
  t.equal(exit.code, 0, `exits 0 (stderr: ${server.stderr().slice(-500)})`);
});

t.test('SIGTERM with a request that never finishes: exit 1 once HMS_SHUTDOWN_TIMEOUT runs out', async (t) => {
  const port = await freePort();
  const server = hms(t, ['start'], childEnv({ HMS_DATA_DIR: tempDir(t), PORT: String(port), HMS_SHUTDOWN_TIMEOUT: '1' }));
  await waitForHealth(`http://127.0.0.1:${port}/health/ready`, server);
  const inFlight = await requestInFlight(port);
  t.teardown(() => inFlight.socket.destroy());
  await sleep(300);
  const sent = Date.now();
  server.child.kill('SIGTERM');
  const exit = await within(server.exited, 15_000, 'the process exiting');
  t.equal(exit.code, 1, 'exits 1: the shutdown did not finish');
  t.ok(Date.now() - sent >= 900, 'after the timeout, not before');
  t.match(server.stderr(), /did not finish within 1 s \(HMS_SHUTDOWN_TIMEOUT\)/);
});
