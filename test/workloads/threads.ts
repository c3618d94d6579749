// TypeScript compiled by tsc, then worker_threads and async code on Node.js.
import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';

if (!isMainThread) {
  parentPort!.postMessage((workerData as number) * 2);
} else {
  const run = (n: number) => new Promise<number>((resolve, reject) => {
    const w = new Worker(__filename, { workerData: n });
    w.on('message', resolve);
    w.on('error', reject);
  });
  Promise.all([1, 2, 3].map(run)).then((doubled) => {
    console.log('workers', doubled.join(','));
    console.log('ok typescript');
  });
}
