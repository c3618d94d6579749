// worker_threads, the libuv thread pool (fs, crypto), a child process, timers.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const crypto = require('crypto');
const fs = require('fs');
const { execFileSync } = require('child_process');

if (!isMainThread) {
  let x = 0;
  for (let i = 0; i < 1e6; i++) x += i % (workerData + 1);
  parentPort.postMessage(workerData);
} else {
  // Two workers: each has its own V8 heap, and the language's limit is 50 MB.
  const workers = [0, 1].map((n) => new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: n });
    w.on('message', resolve);
    w.on('error', reject);
  }));
  Promise.all(workers).then(async (ids) => {
    const hash = await new Promise((resolve, reject) => crypto.pbkdf2('pw', 'salt', 1000, 16, 'sha256', (e, k) => (e ? reject(e) : resolve(k.toString('hex')))));
    await fs.promises.writeFile('/tmp/w.txt', 'file');
    const read = await fs.promises.readFile('/tmp/w.txt', 'utf8');
    const child = execFileSync('echo', ['child']).toString().trim();
    console.log('workers', ids.join(','), hash.length, read, child);
    console.log('ok javascript');
  });
}
