#!/usr/bin/env node
// Reports what the worker gave this Node.js action as one JSON document on
// stdout: the parameters (one JSON line on stdin, or the file named by
// ATTUNE_PARAMETER_FILE), the whole environment, the working directory and the
// script's own path.
'use strict';
const fs = require('fs');
const path = require('path');

// The first line of stdin: the parameters are one JSON line.
function readLine() {
  const buf = Buffer.alloc(65536);
  let text = '';
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    text += buf.toString('utf8', 0, n);
    const nl = text.indexOf('\n');
    if (nl >= 0) return text.slice(0, nl);
  }
  return text;
}

let text;
const file = process.env.ATTUNE_PARAMETER_FILE;
if (process.env.ATTUNE_PARAMETER_DELIVERY === 'file' && file) {
  text = fs.readFileSync(file, 'utf8');
} else {
  text = readLine();
}
const params = text.trim() ? JSON.parse(text) : null;

process.stdout.write(JSON.stringify({
  runtime: 'node',
  node: process.version,
  script: fs.realpathSync(path.resolve(__filename)),
  cwd: process.cwd(),
  params,
  env: process.env,
}) + '\n');
