// Does nothing; with probe=true returns the path of the interpreter that runs it.
module.exports.run = async ({ probe }) => (probe ? { exe: process.execPath } : null);
