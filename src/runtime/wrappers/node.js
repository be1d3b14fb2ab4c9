// attune-worker node wrapper: run as `node -e WRAPPER ENTRY_PATH`. Reads
// secrets and parameters from fd 3 (a socket), loads the action module, calls
// its exported entry function when it has one (async allowed), and sends the
// result or the error back on fd 3. Nothing goes to stdout. A spare process
// (`node -e WRAPPER`, started before its execution) finds in the control its
// environment, working directory and entry path as well.
'use strict';
(function attuneMain() {
  const fs = require('fs');
  const path = require('path');
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(3, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  const control = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  chunks.length = 0;
  if (control.env) {
    for (const name of Object.keys(process.env)) delete process.env[name];
    Object.assign(process.env, control.env);
    const Module = require('module');
    if (typeof Module._initPaths === 'function') Module._initPaths();
  }
  if (control.cwd) process.chdir(control.cwd);
  const secrets = control.secrets || {};
  global.getSecret = (name) =>
    Object.prototype.hasOwnProperty.call(secrets, name) ? secrets[name] : undefined;

  let replied = false;
  const reply = (obj) => {
    if (replied) return;
    replied = true;
    let text;
    try {
      text = JSON.stringify(obj);
    } catch (e) {
      text = JSON.stringify({ error: 'TypeError: result is not JSON-serializable: ' + e.message });
    }
    const data = Buffer.from(text === undefined ? '{}' : text);
    let off = 0;
    while (off < data.length) off += fs.writeSync(3, data, off);
    fs.closeSync(3);
  };
  const fail = (e) => {
    console.error(e);
    const name = (e && e.name) || 'Error';
    const message = e && e.message !== undefined ? e.message : String(e);
    reply({ error: name + ': ' + message });
    process.exitCode = 1;
  };
  process.on('uncaughtException', (e) => { fail(e); process.exit(1); });
  process.on('unhandledRejection', (e) => { fail(e); process.exit(1); });
  process.on('exit', () => reply({}));

  const entry = path.resolve(control.path || process.argv[1]);
  process.argv = [process.argv[0], entry];
  const mod = require(entry);
  const fn = mod && mod[control.entry || 'run'];
  if (typeof fn !== 'function') return;
  Promise.resolve()
    .then(() => fn(control.parameters || {}))
    .then((data) => reply({ data: data === undefined ? null : data }), fail);
})();
