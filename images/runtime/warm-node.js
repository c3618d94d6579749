// A warm Node.js for bd-supervisor (--warm): started with the container, before any job, it waits on
// fd 3 (a socket) for the run step's argv ("node", FILE, ARGS..., each NUL-terminated, then EOF),
// acknowledges it with one byte (0x06) on the same socket, and then runs FILE as the main module, as
// `node FILE ARGS...` would have: same process.argv, require.main, module ids and exit status. Only
// Node's start-up (~150 ms for Debian's build) has been paid already. Without the acknowledgement the
// supervisor kills this interpreter and runs the job cold (docs/protocol.md).
'use strict';
const fs = require('fs');
const path = require('path');
const Module = require('module');

function readArgv() {
  const chunks = [];
  const buffer = Buffer.allocUnsafe(65536);
  for (;;) {
    const n = fs.readSync(3, buffer, 0, buffer.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.writeSync(3, Buffer.from([0x06])); // the job is taken: from here on the supervisor counts it as a warm run
  fs.closeSync(3);
  return Buffer.concat(chunks).toString('utf8').split('\0').slice(0, -1);
}

const argv = readArgv();
if (argv.length >= 2) {
  process.argv = [process.argv[0], path.resolve(argv[1]), ...argv.slice(2)];
  // This loader leaves no trace among the modules: the job's file is the main one.
  delete require.cache[__filename];
  Module.runMain();
}
