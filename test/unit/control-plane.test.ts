import t from 'tap';
import { parseControlMessage } from '../../src/cluster/control-plane.ts';

t.test('control messages are validated; malformed ones are null', async (t) => {
  t.same(parseControlMessage('{"type":"SPAWN","managerId":"m1"}'), { type: 'SPAWN', managerId: 'm1' });
  t.same(parseControlMessage('{"type":"KILL","managerId":"m1","workerId":"w"}'), { type: 'KILL', managerId: 'm1', workerId: 'w' });
  for (const raw of ['', 'nope', 'null', '[]', '{"type":"SPAWN"}', '{"type":"KILL","managerId":"m"}', '{"type":"EXPLODE"}', '{"type":"CANCEL","jobId":5}', `{"type":"SPAWN","managerId":"${'x'.repeat(200)}"}`]) {
    t.equal(parseControlMessage(raw), null, raw);
  }
});
