/**
 * The API while its database is away (a failover, a restart): every request answers 503 with
 * Retry-After as an OperationOutcome, never 500, and the same process serves again once the
 * database is back. The database sits behind a TCP proxy the test cuts (MariaDB run).
 */
import t from 'tap';
import { buildApp } from '../../src/api/app.js';
import { createDb } from '../../src/db/knex.js';
import { testApp } from '../helpers/app.js';
import { CuttableProxy } from '../helpers/processes.js';

t.test('database cut: 503 + Retry-After, never 500; served again after', { skip: process.env.DATABASE_URL ? false : 'needs DATABASE_URL (MariaDB behind a proxy)' }, async (t) => {
  const h = await testApp(t);
  const created = await h.fhir({ method: 'POST', url: '/fhir/Patient', payload: { resourceType: 'Patient', name: [{ family: 'Outage' }] } });
  const id = String(created.json().id);
  const url = new URL(process.env.DATABASE_URL!);
  const proxy = new CuttableProxy(url.hostname, Number(url.port || 3306));
  const port = await proxy.listen();
  t.teardown(() => proxy.close());
  url.host = `127.0.0.1:${port}`;
  const config = { ...h.config, DATABASE_URL: url.toString() };
  const db = createDb(config);
  t.teardown(() => db.destroy());
  const app = await buildApp({ config, db, logger: false });
  t.teardown(() => app.close());
  const ask = (method: 'GET' | 'POST', path: string, payload?: object) => app.inject({
    method, url: path, headers: { authorization: `Bearer ${h.token}`, ...(payload ? { 'content-type': 'application/fhir+json' } : {}) }, ...(payload ? { payload } : {}),
  });
  t.equal((await ask('GET', `/fhir/Patient/${id}`)).statusCode, 200, 'served through the proxy');

  await proxy.cut();
  for (const [method, path, payload] of [['GET', `/fhir/Patient/${id}`], ['GET', '/fhir/Patient?family=Outage'], ['POST', '/fhir/Patient', { resourceType: 'Patient', name: [{ family: 'Outage' }] }]] as const) {
    const res = await ask(method, path, payload);
    t.equal(res.statusCode, 503, `${method} ${path} while the database is away: 503`);
    t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After');
    t.equal(res.json().resourceType, 'OperationOutcome');
  }
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 503, 'not ready');

  await proxy.listen(port);
  t.equal((await ask('GET', `/fhir/Patient/${id}`)).statusCode, 200, 'served again once it is back');
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'ready again');
});
