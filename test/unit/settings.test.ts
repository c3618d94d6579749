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

t.test('every variable is documented in the README', async (t) => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const v of VARIABLES) t.match(readme, `\`${v.name}\``, v.name);
});
