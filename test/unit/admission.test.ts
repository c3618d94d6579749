import t from 'tap';
import { Budget } from '../../src/cluster/admission.ts';
import { parseControlMessage } from '../../src/cluster/control.ts';

t.test('executions wait until their memory and CPU fit the budget, in order', async (t) => {
  const budget = new Budget(300, 2);
  await budget.acquire(256, 2);
  const order: string[] = [];
  const python = budget.acquire(50, 1).then(() => order.push('python'));
  const perl = budget.acquire(20, 1).then(() => order.push('perl'));
  await new Promise((r) => setTimeout(r, 10));
  t.same(order, [], 'nothing fits beside a 2-CPU Java run');
  budget.release(256, 2);
  await Promise.all([python, perl]);
  t.same(order, ['python', 'perl']);
  t.same(budget.used, { memoryMb: 70, cpus: 2 });
});

t.test('an execution larger than the whole budget still runs alone', async (t) => {
  const budget = new Budget(100, 1);
  await budget.acquire(512, 1);
  t.same(budget.used, { memoryMb: 512, cpus: 1 });
});

t.test('control messages are validated; malformed ones are null', async (t) => {
  t.same(parseControlMessage('{"type":"SPAWN","managerId":"m1"}'), { type: 'SPAWN', managerId: 'm1' });
  t.same(parseControlMessage('{"type":"KILL","managerId":"m1","workerId":"w"}'), { type: 'KILL', managerId: 'm1', workerId: 'w' });
  for (const raw of ['', 'nope', 'null', '[]', '{"type":"SPAWN"}', '{"type":"KILL","managerId":"m"}', '{"type":"EXPLODE"}', '{"type":"CANCEL","jobId":5}', `{"type":"SPAWN","managerId":"${'x'.repeat(200)}"}`]) {
    t.equal(parseControlMessage(raw), null, raw);
  }
});
