/** loadConfig: defaults, coercion and one-line errors that name the variable (no I/O beyond the schema). */
import t, { type Test } from 'tap';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';

/** The ConfigError loadConfig throws for an environment (fails the test when it does not throw). */
function configError(t: Test, env: NodeJS.ProcessEnv): ConfigError | undefined {
  try {
    loadConfig(env);
  } catch (err) {
    t.type(err, ConfigError, 'throws a ConfigError');
    return err as ConfigError;
  }
  t.fail(`expected a ConfigError for ${JSON.stringify(env)}`);
  return undefined;
}

t.test('an empty environment gets the documented defaults', async (t) => {
  const c = loadConfig({});
  t.equal(c.PORT, 8080);
  t.equal(c.HOST, '127.0.0.1');
  t.equal(c.HMS_DATA_DIR, resolve('./data'), 'HMS_DATA_DIR is ./data made absolute');
  t.equal(c.LOG_LEVEL, 'info');
  t.equal(c.HMS_SESSION_TTL, 28_800);
  t.equal(c.HMS_SESSION_IDLE, 900);
  t.equal(c.HMS_BCRYPT_COST, 12);
  t.equal(c.HMS_LOGIN_MAX_FAILURES, 5);
  t.equal(c.HMS_BODY_LIMIT, 10_485_760);
  t.equal(c.DATABASE_URL, undefined, 'no DATABASE_URL means embedded SQLite');
  t.equal(c.REDIS_URL, undefined);
});

t.test('empty strings count as unset', async (t) => {
  const c = loadConfig({ PORT: '', DATABASE_URL: '' });
  t.equal(c.PORT, 8080);
  t.equal(c.DATABASE_URL, undefined);
});

t.test('numeric variables are coerced from strings', async (t) => {
  const c = loadConfig({ PORT: '3001', HMS_BODY_LIMIT: '2048', HMS_SESSION_TTL: '86400', HMS_LOGIN_MAX_FAILURES: '3', HMS_BCRYPT_COST: '13' });
  t.equal(c.PORT, 3001);
  t.equal(c.HMS_BODY_LIMIT, 2048);
  t.equal(c.HMS_SESSION_TTL, 86_400, 'exactly 24 h is allowed');
  t.equal(c.HMS_LOGIN_MAX_FAILURES, 3);
  t.equal(c.HMS_BCRYPT_COST, 13);
});

t.test('a relative HMS_DATA_DIR is resolved and a trailing slash is dropped from HMS_BASE_URL', async (t) => {
  const c = loadConfig({ HMS_DATA_DIR: 'some/dir', HMS_BASE_URL: 'https://hms.example.org/fhir/' });
  t.equal(c.HMS_DATA_DIR, resolve('some/dir'));
  t.equal(c.HMS_BASE_URL, 'https://hms.example.org/fhir');
});

t.test('overrides win over the environment', async (t) => {
  const c = loadConfig({ PORT: '3001' }, { PORT: 4002 });
  t.equal(c.PORT, 4002);
});

for (const port of ['abc', '70000', '-1', '80.5']) {
  t.test(`PORT=${port} throws a ConfigError whose one-line message names PORT`, async (t) => {
    const err = configError(t, { PORT: port });
    t.match(err?.message, /\bPORT\b/);
    t.notOk(err?.message.includes('\n'), 'one line');
  });
}

t.test('a DATABASE_URL with another scheme is refused, naming DATABASE_URL and not echoing its credentials', async (t) => {
  const err = configError(t, { DATABASE_URL: 'postgres://hms:s3cret-pw@db.example.org/hms' });
  t.match(err?.message, /\bDATABASE_URL\b/);
  t.notOk(err?.message.includes('\n'), 'one line');
  t.notOk(err?.message.includes('s3cret-pw'), 'the password is not repeated in the message (it ends up in logs)');
  t.equal(loadConfig({ DATABASE_URL: 'mysql://root@127.0.0.1:3306/hms' }).DATABASE_URL, 'mysql://root@127.0.0.1:3306/hms', 'mysql:// is accepted');
  t.equal(loadConfig({ DATABASE_URL: 'mariadb://root@127.0.0.1/hms' }).DATABASE_URL, 'mariadb://root@127.0.0.1/hms', 'mariadb:// is accepted');
});

t.test('a LOG_LEVEL outside the enum is refused, naming LOG_LEVEL', async (t) => {
  const err = configError(t, { LOG_LEVEL: 'verbose' });
  t.match(err?.message, /\bLOG_LEVEL\b/);
  t.notOk(err?.message.includes('\n'), 'one line');
  t.equal(loadConfig({ LOG_LEVEL: 'warn' }).LOG_LEVEL, 'warn');
});

t.test('HMS_SESSION_TTL above 86400 (24 h) is refused', async (t) => {
  const err = configError(t, { HMS_SESSION_TTL: '86401' });
  t.match(err?.message, /\bHMS_SESSION_TTL\b/);
  t.notOk(err?.message.includes('\n'), 'one line');
});

t.test('HMS_BCRYPT_COST below 12 is refused', async (t) => {
  const err = configError(t, { HMS_BCRYPT_COST: '10' });
  t.match(err?.message, /\bHMS_BCRYPT_COST\b/);
});

t.test('a bad value among good ones is reported by its own name', async (t) => {
  const err = configError(t, { PORT: '8081', HOST: '0.0.0.0', HMS_BODY_LIMIT: 'lots', LOG_LEVEL: 'debug' });
  t.match(err?.message, /\bHMS_BODY_LIMIT\b/);
  t.notMatch(err?.message, /\bPORT\b/);
});
