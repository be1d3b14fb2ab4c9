// The wrong copy: must never run.
console.log('{"copy": "wrong"}');
process.exit(42);
