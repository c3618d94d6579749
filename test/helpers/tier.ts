/**
 * Two tiers run the same test files. The full tier (`./deploy.sh test`) uses real Docker, Redis and
 * PostgreSQL; the fast tier (`npm run test:fast`, BRAINDRILL_TEST_TIER=fast) runs sandboxes on the
 * in-memory runtime with embedded PGlite, and skips, with its reason, what needs a real service.
 */
export const FAST = process.env.BRAINDRILL_TEST_TIER === 'fast';

export type Service = 'docker' | 'postgres' | 'redis';

/** Tap's `skip` option for a test that needs `service`: false in the full tier, the reason in the fast one. */
export function needs(...services: Service[]): false | string {
  return FAST ? `needs ${services.join(' and ')}: runs in the full tier (./deploy.sh test)` : false;
}
