import t from 'tap';
import { ActiveJobs } from '../../src/jobs/admission.ts';

t.test('counts follow each job from added to started to finished', async (t) => {
  const active = new ActiveJobs([{ id: 'r1', owner: 'a', status: 'running' }, { id: 'q1', owner: 'a', status: 'queued' }, { id: 'q2', owner: null, status: 'queued' }]);
  t.same(active.counts(['a', 'b']), { queued: 2, byOwner: new Map([['a', 2]]) }, 'loaded from the database: owner-less jobs count only as queued');
  active.add('q3', 'b');
  t.same(active.counts(['a', 'b']), { queued: 3, byOwner: new Map([['a', 2], ['b', 1]]) });
  active.started('q3');
  t.equal(active.queued, 2, 'a started job no longer waits');
  t.equal(active.counts(['b']).byOwner.get('b'), 1, 'but is still active for its owner');
  active.finished('q3');
  t.same(active.counts(['b']), { queued: 2, byOwner: new Map() });
  active.finished('q1');
  t.same(active.counts(['a']), { queued: 1, byOwner: new Map([['a', 1]]) }, 'a queued job that finishes (cancelled) leaves both counts');
});

t.test('repeated and late messages change nothing', async (t) => {
  const active = new ActiveJobs();
  active.add('x', 'a');
  active.add('x', 'a');
  t.equal(active.size, 1, 'added once');
  active.started('x');
  active.started('x');
  t.equal(active.queued, 0, 'started once');
  active.finished('x');
  active.finished('x');
  active.started('x');
  active.started('unknown');
  active.finished('unknown');
  t.same(active.counts(['a']), { queued: 0, byOwner: new Map() });
});

t.test('matches compares with what the database lists', async (t) => {
  const listed = [{ id: '1', owner: 'a', status: 'queued' as const }, { id: '2', owner: 'b', status: 'running' as const }];
  const active = new ActiveJobs(listed);
  t.ok(active.matches(listed));
  active.started('1');
  t.notOk(active.matches(listed), 'one more running, one less queued');
  t.notOk(new ActiveJobs(listed).matches([listed[0]!]));
  t.notOk(new ActiveJobs([{ id: '1', owner: 'a', status: 'queued' }]).matches([{ id: '1', owner: 'c', status: 'queued' }]), 'same numbers, other owner');
});
