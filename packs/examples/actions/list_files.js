// Lists a directory; the worker awaits run(params) and stores the value it returns as `data`.
const fs = require('fs/promises');

function kind(entry) {
  if (entry.isDirectory()) return 'directory';
  if (entry.isFile()) return 'file';
  if (entry.isSymbolicLink()) return 'symlink';
  return 'other';
}

module.exports.run = async ({ path = '.' }) => {
  const entries = await fs.readdir(path, { withFileTypes: true });
  const listed = entries
    .map((e) => ({ name: e.name, type: kind(e) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return { path, count: listed.length, entries: listed };
};
