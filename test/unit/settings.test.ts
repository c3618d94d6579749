import t from 'tap';
import { ConfigError } from '../../src/errors.ts';
import { VARIABLES, loadSettings } from '../../src/settings.ts';

t.test('defaults', async (t) => {
  const settings = loadSettings({});
  t.equal(settings.port, 8080);
  t.equal(settings.host, '127.0.0.1', 'development binds loopback');
  t.equal(settings.redisUrl, null);
  t.equal(settings.rateLimitMaxRequests, 100);
  t.equal(settings.jobsTtlSeconds, 3600);
  t.equal(settings.outputKeepBytes, 65536);
  t.equal(loadSettings({ NODE_ENV: 'production' }).host, '0.0.0.0');
  t.equal(loadSettings({ HOST: '::1' }).host, '::1');
});

t.test('bad values name the variable', async (t) => {
  t.throws(() => loadSettings({ PORT: 'eighty' }), /PORT="eighty" must be an integer/);
  t.throws(() => loadSettings({ PORT: '70000' }), ConfigError);
  t.throws(() => loadSettings({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
  t.throws(() => loadSettings({ DATABASE_URL: 'mysql://x' }), /DATABASE_URL/);
  t.throws(() => loadSettings({ REDIS_URL: 'redis://127.0.0.1:6379' }), /REDIS_URL is set but DATABASE_URL is not/);
});

t.test('TRUST_PROXY takes what Fastify\'s trustProxy takes, and refuses what it would misread', async (t) => {
  t.equal(loadSettings({}).trustProxy, false, 'off by default');
  t.equal(loadSettings({ TRUST_PROXY: 'false' }).trustProxy, false);
  t.equal(loadSettings({ TRUST_PROXY: 'true' }).trustProxy, true);
  t.same(loadSettings({ TRUST_PROXY: '10.0.0.1' }).trustProxy, ['10.0.0.1']);
  t.same(loadSettings({ TRUST_PROXY: ' 10.0.0.0/8, 192.168.1.1/24 ,::1,fd00::/8,loopback ' }).trustProxy, ['10.0.0.0/8', '192.168.1.1/24', '::1', 'fd00::/8', 'loopback']);
  t.throws(() => loadSettings({ TRUST_PROXY: '1' }), /TRUST_PROXY="1": a hop count is not accepted/);
  t.throws(() => loadSettings({ TRUST_PROXY: 'yes' }), /TRUST_PROXY="yes" must be false, true, or comma-separated proxy addresses/);
  t.throws(() => loadSettings({ TRUST_PROXY: '10.0.0.0/33' }), /"10\.0\.0\.0\/33" is none of them/);
  t.throws(() => loadSettings({ TRUST_PROXY: '::1/129' }), /TRUST_PROXY/);
  t.throws(() => loadSettings({ TRUST_PROXY: '10.0.0.0/0' }), /TRUST_PROXY/, 'a zero prefix would trust everyone: say true');
  t.throws(() => loadSettings({ TRUST_PROXY: '10.0.0.0/8/8' }), /TRUST_PROXY/);
  t.throws(() => loadSettings({ TRUST_PROXY: '10.0.0.1,' }), /"" is none of them/);
  t.throws(() => loadSettings({ TRUST_PROXY: 'proxy.internal' }), ConfigError, 'host names are not resolved');
});

t.test('every variable is documented in the README', async (t) => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const v of VARIABLES) t.match(readme, `\`${v.name}\``, v.name);
});

t.test('the development keys only on loopback: bound elsewhere without API_KEYS, a node refuses to start', async (t) => {
  for (const host of ['127.0.0.1', '127.0.1.1', '::1', '[::1]', 'localhost']) t.equal(loadSettings({ HOST: host }).host, host, `${host} is loopback`);
  t.throws(() => loadSettings({ HOST: '0.0.0.0' }), /HOST=0\.0\.0\.0: the development keys work only while the engine listens on loopback.*API_KEYS/);
  t.throws(() => loadSettings({ HOST: '::' }), /API_KEYS/);
  t.equal(loadSettings({ HOST: '0.0.0.0', API_KEYS: 'ops:a-sixteen-chars-key:admin' }).host, '0.0.0.0', 'with API_KEYS it may listen anywhere');
  t.equal(loadSettings({ HOST: '0.0.0.0', ROLE: 'worker', REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgres://x@127.0.0.1/x' }).role, 'worker', 'a manager node takes no keys');
  t.equal(loadSettings({ NODE_ENV: 'production' }).host, '0.0.0.0', 'production never has the development keys');
});
