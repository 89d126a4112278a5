/**
 * The queue dashboard (@bull-board/fastify) at /admin/queues (docs/jobs.md): admins only, by
 * bearer token or by the HttpOnly SameSite=Strict cookie POST /admin/queues/session sets; served
 * only with BullMQ (REDIS_URL), a 404 OperationOutcome in the embedded mode.
 */
import t from 'tap';
import { startSession } from '../../src/auth/sessions.js';
import { QUEUE_NAMES } from '../../src/workers/queues.js';
import { testApp } from '../helpers/app.js';
import { makePractitioner } from '../helpers/access-world.js';
import { dropQueuesAtTeardown, testPrefix } from '../helpers/jobs.js';

t.test('without Redis (embedded mode): /admin/queues is a 404 with an OperationOutcome', async (t) => {
  const h = await testApp(t, { REDIS_URL: undefined });
  t.equal(h.app.jobs, undefined, 'no BullMQ producers');
  for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
    const res = await h.fhir({ method: 'GET', url });
    t.equal(res.statusCode, 404, url);
    t.equal(res.json().resourceType, 'OperationOutcome');
    t.match(res.json().issue[0].diagnostics, /BullMQ|REDIS_URL/);
  }
});

t.test('with Redis: the dashboard for admins only', { skip: process.env.REDIS_URL ? false : 'needs REDIS_URL (the dashboard is served only with BullMQ)' }, async (t) => {
  const h = await testApp(t, { HMS_QUEUE_PREFIX: testPrefix() });
  dropQueuesAtTeardown(t, h);

  const page = await h.fhir({ method: 'GET', url: '/admin/queues' });
  t.equal(page.statusCode, 200, 'an admin bearer token opens it');
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /<html/i);
  t.match(String(page.headers['content-security-policy']), /default-src/, 'with a content security policy');

  const session = await h.fhir({ method: 'POST', url: '/admin/queues/session' });
  t.equal(session.statusCode, 204, session.body);
  const setCookie = String(session.headers['set-cookie']);
  t.match(setCookie, /^hms_queue_board=[^;]+/, 'sets the board cookie');
  t.match(setCookie, /; HttpOnly/);
  t.match(setCookie, /; SameSite=Strict/);
  t.match(setCookie, /; Path=\/admin\/queues/);
  t.notMatch(setCookie, /; Secure/, 'not Secure over plain http');
  const cookie = setCookie.split(';')[0]!;

  const byCookie = await h.app.inject({ method: 'GET', url: '/admin/queues', headers: { cookie } });
  t.equal(byCookie.statusCode, 200, 'the cookie alone opens it');
  t.match(byCookie.body, /<html/i);
  const api = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } });
  t.equal(api.statusCode, 200, api.body.slice(0, 300));
  const names = (api.json().queues as { name: string }[]).map((q) => q.name).sort();
  t.same(names, [...QUEUE_NAMES].sort(), 'its API lists our queues');

  const secure = await h.fhir({ method: 'POST', url: '/admin/queues/session', headers: { 'x-forwarded-proto': 'https' } });
  t.equal(secure.statusCode, 204);

  const none = await h.app.inject({ method: 'GET', url: '/admin/queues' });
  t.equal(none.statusCode, 401, 'no auth: 401');
  t.equal(none.json().resourceType, 'OperationOutcome');
  t.equal((await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues' })).statusCode, 401, 'nor its API');
  t.equal((await h.app.inject({ method: 'POST', url: '/admin/queues/session' })).statusCode, 401, 'nor the cookie without a token');

  const doctor = await makePractitioner(h);
  const doctorToken = await startSession(h.db, doctor, { ttlSeconds: 600 });
  const forbidden = await h.fhir({ method: 'GET', url: '/admin/queues', token: doctorToken });
  t.equal(forbidden.statusCode, 403, 'a doctor: 403');
  t.equal(forbidden.json().resourceType, 'OperationOutcome');
  const refusal = await h.db('security_logs').where({ user_id: doctor, action: 'refused' }).orderBy('seq', 'desc').first();
  t.match(refusal, { success: 0, failure_reason: /^403/ }, "the refusal is in the security log, as every admin route's is");
  t.equal((await h.fhir({ method: 'POST', url: '/admin/queues/session', token: doctorToken })).statusCode, 403, 'and gets no cookie');
  t.equal((await h.app.inject({ method: 'GET', url: '/admin/queues', headers: { cookie: `hms_queue_board=${doctorToken}` } })).statusCode, 403, "a doctor's token as the cookie: 403");

  for (const junk of ['hms_queue_board=not-a-session-token', 'hms_queue_board=%00%3Cscript%3E', 'hms_queue_board=', 'other=1']) {
    const res = await h.app.inject({ method: 'GET', url: '/admin/queues', headers: { cookie: junk } });
    t.equal(res.statusCode, 401, `a junk cookie (${junk}): 401`);
  }
  const api401 = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie: 'hms_queue_board=junk' } });
  t.equal(api401.statusCode, 401, 'the API with a junk cookie: 401');

  // a logged-out session's cookie stops working
  const other = await startSession(h.db, h.userId, { ttlSeconds: 600 });
  const otherCookie = { cookie: `hms_queue_board=${other}` };
  t.equal((await h.app.inject({ method: 'GET', url: '/admin/queues', headers: otherCookie })).statusCode, 200);
  t.equal((await h.fhir({ method: 'POST', url: '/auth/logout', token: other })).statusCode < 300, true, 'logout');
  t.equal((await h.app.inject({ method: 'GET', url: '/admin/queues', headers: otherCookie })).statusCode, 401, "a logged-out session's cookie: 401");
});
